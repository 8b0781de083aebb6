"""The journal actor: the ordered, durable event log every book is folded from.

Events come in on `journal.ingest` (the reliable channel: the sender resends until it gets an
answer). An event whose delivery key (`exec_id`, `transfer_id`) is already in the log gets
`Acknowledgement(duplicate=True)` with the seq of the original, and nothing else happens. Any
other event is checked before it is accepted (`validate_event`); a refused event gets a
`DeliveryRefused` naming the field, and nothing is journaled. A new, valid event gets the next
seq (1, 2, 3, ... with no gap), goes into the open SQLite transaction, and only once that
transaction has committed is it acknowledged and published on `journal.events`.

Group commit: the transaction is committed when the actor's inbox has nothing more waiting or
the batch reaches `journal.max_batch`; then each sender gets its answers of the batch in one
`Acknowledgements` frame (a lone answer goes as a plain `Acknowledgement`), and the events
are published, in seq order, as one `EventsCommitted` (several frames when they would not
fit in one of `transport.max_frame_bytes`). A new event is stored as the frame it arrived in
(the codec checked every field of it on the way in), not encoded again. One fsync and one
publication thus cover a whole burst, and a lone event is still committed and published at
once. If a commit fails, the batch is rolled back and every sender gets an `ErrorReply`
(code UNAVAILABLE): nothing was acknowledged, so the reliable senders resend.

`journal.replay` answers `ReplayEvents` from the committed log, rebuilt from the stored
frames, bounded by `journal.replay_max_events` and by the transport's frame size limit, and
`GetJournalStatus` (whether commits succeed; the risk actor asks). Every replayed and
published batch carries the journal's id (`JournalStore.journal_id`), so a follower knows
whether this is the journal its snapshot was folded from.

The database file is checked before every commit and every `FILE_CHECK_SECONDS`: once it is
deleted or replaced by another file, nothing more is acknowledged (it would go into a file
nobody can open again): the open batch is rolled back, every event and replay is refused, and
the actor refuses to go on (`ServiceActor.refuse`), so the runner stops the group.

`ts_journal` comes from `clock()` (wall time in ns; tests override it) and never decreases
along the log: an event is stamped max(clock, previous stamp), so a clock stepped back does
not make the log's time run backwards.
"""

from __future__ import annotations

import decimal
import sqlite3
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from actors.core.accounting import BookingError, booking_for
from actors.core.event_bounds import check_event_bounds
from actors.journal_store import JournalFileLost, JournalStore, JournalStoreError, StoredEvent
from actors.runtime.actor import Inbound, Publish, Serve, ServiceActor, SocketSpec, handles
from kraken.names import KrakenNames, UnknownPairName
from messages import (
    Acknowledgement,
    Acknowledgements,
    BalanceAdjusted,
    DeliveryRefused,
    ErrorCode,
    ErrorReply,
    EventBatch,
    ExecutionReport,
    GetJournalStatus,
    JournalStatus,
    ReplayEvents,
    SequencedEvent,
    Transfer,
)
from messages.codec import CodecError, decode, encode, encode_nesting
from messages.journal import EventsCommitted
from service.config import decimal_context

__all__ = [
    "BATCH_OVERHEAD_BYTES",
    "COMMITTED_OVERHEAD_BYTES",
    "EVENTS_ENDPOINT",
    "EVENT_OVERHEAD_BYTES",
    "INGEST_ENDPOINT",
    "REPLAY_ENDPOINT",
    "JournalActor",
    "JournalEvent",
    "max_event_bytes",
    "validate_event",
]

INGEST_ENDPOINT = "journal.ingest"
EVENTS_ENDPOINT = "journal.events"
REPLAY_ENDPOINT = "journal.replay"

EVENT_OVERHEAD_BYTES = 128
"""Upper bound of what wrapping an encoded event in a `SequencedEvent` adds (about 60 bytes:
the tag, seq, ts_journal and field names), with room to spare."""

BATCH_OVERHEAD_BYTES = 4096
"""Upper bound of an `EventBatch` frame without its events (tag, correlation id of at most
128 characters, head_seq, complete; about 600 bytes), with room to spare."""

COMMITTED_OVERHEAD_BYTES = 256
"""Upper bound of an `EventsCommitted` frame without its events (tag, version, first_seq, seq
and the field names; about 60 bytes), with room to spare."""

ACK_MAX_BYTES = 640
"""Upper bound of one `Acknowledgement` inside an `Acknowledgements` frame (a key of 128
characters of up to 4 bytes each, its seq, the flag and the field names; about 600 bytes),
so that a frame of them can be kept within `transport.max_frame_bytes`."""

REPLAY_CACHE_RANGES = 3
"""Replayed ranges the journal keeps ready to send (a range is at most
`journal.replay_max_events` events): followers that catch up together ask for the same ranges
one after the other."""

FILE_CHECK_SECONDS = 1.0
"""How often the journal checks, between commits, that its database file is still there."""

JournalEvent = ExecutionReport | Transfer | BalanceAdjusted
"""What the journal accepts on its ingest channel."""


def max_event_bytes(max_frame_bytes: int) -> int:
    """The largest encoded event the journal accepts: one that still fits, wrapped, in a
    replay batch and a published frame of `max_frame_bytes`."""
    return max_frame_bytes - BATCH_OVERHEAD_BYTES - EVENT_OVERHEAD_BYTES


def validate_event(
    event: JournalEvent,
    *,
    names: KrakenNames,
    valuation_currency: str,
    context: decimal.Context,
    max_bytes: int,
    now_ns: int,
    frame: bytes | None = None,
) -> bytes:
    """Check that `event` can be journaled and folded; return its encoded frame (`frame`,
    when the event was decoded from it: the codec checked every field on the way in, so the
    received bytes are stored as they are instead of being encoded again).

    An execution report's `pair` must be a known pair in the service's normalized form
    (`XBT/USD`, as `PairInfo.symbol`; not `BTC/USD` nor `XXBTZUSD`, which the folds would
    take for another pair). The event must book (`booking_for`): a fill needs a price, a
    cross pair its `quote_rate`, a fee the base or quote currency; a transfer a non-zero
    amount. Its amounts, times and fee currency must be within what the folds can carry
    (`check_event_bounds`: no 1E+999 quantity, no timestamp of 1970 or more than a day
    after `now_ns`, no fee currency foreign to the pair even with a zero fee). Its frame
    must be at most `max_bytes`, so that it can always be replayed. Raises `BookingError`
    naming the field otherwise.
    """
    if isinstance(event, ExecutionReport):
        try:
            pair = names.pair(event.pair)
        except UnknownPairName:
            raise BookingError("pair", f"unknown pair {event.pair!r}") from None
        if pair.symbol != event.pair:
            raise BookingError(
                "pair", f"{event.pair!r} is not the normalized name; send {pair.symbol!r}"
            )
    try:
        booking_for(event, valuation_currency, context, lambda _: None)
    except ArithmeticError as exc:
        raise BookingError("amounts", f"cannot be computed: {type(exc).__name__}") from None
    check_event_bounds(event, context=context, now_ns=now_ns)
    if frame is None:
        frame = encode(event)
    if len(frame) > max_bytes:
        raise BookingError(
            "size",
            f"the event encodes to {len(frame)} bytes; the journal takes at most {max_bytes}",
        )
    return frame


class _CheckFile:
    """Timer message: check that the database file is still the one open."""


@dataclass(frozen=True, slots=True)
class _Answer:
    """An answer held back until the batch commits, and the event to publish then: its
    `SequencedEvent` frame, with the bound of its size inside a published frame."""

    inbound: Inbound | None
    reply: Acknowledgement
    event: bytes | None
    size: int = 0


def _sequenced_frame(seq: int, ts_journal: int, frame: bytes) -> bytes:
    """The `SequencedEvent` frame of a stored event frame, spliced, not re-encoded."""
    return encode_nesting(SequencedEvent, {"seq": seq, "ts_journal": ts_journal, "event": frame})


class _RecentReplays:
    """The last few ranges of committed events read for replay, as `SequencedEvent` frames
    with their sizes.

    After a restart every follower replays the log from about the same seq at about the same
    pace: the first to ask for a range has it read, the others find it here. A committed event
    never changes, so what is kept never goes stale.
    """

    def __init__(self, ranges: int) -> None:
        self._ranges: deque[tuple[int, list[tuple[int, bytes, int]]]] = deque(maxlen=ranges)

    def starting_at(self, seq: int) -> list[tuple[int, bytes, int]]:
        """The kept (seq, frame, size) entries from `seq` to the end of the range holding it,
        or []."""
        for first, entries in self._ranges:
            if first <= seq < first + len(entries):
                return entries[seq - first :]
        return []

    def keep(self, entries: list[tuple[int, bytes, int]]) -> None:
        """Keep a range of consecutive events (the oldest range kept is dropped)."""
        if entries:
            self._ranges.append((entries[0][0], entries))


class JournalActor(ServiceActor):
    """The event log: validate, deduplicate, sequence, persist (group commit), publish, replay.

    Counters besides the runtime's: `journaled` (new events committed), `commits` (batches
    committed; journaled / commits is the group-commit factor), `duplicates` (events answered
    as already journaled), `refusals` (events refused as invalid).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.journaled = 0
        self.commits = 0
        self.duplicates = 0
        self.refusals = 0
        self._store: JournalStore | None = None
        self._batch: list[_Answer] = []
        self._recent_replays = _RecentReplays(REPLAY_CACHE_RANGES)
        self._lost: JournalFileLost | None = None
        self._commit_failures = 0
        self._failing_since_ns: int | None = None
        self._last_error = ""

    def sockets(self) -> Iterable[SocketSpec]:
        return (Serve(INGEST_ENDPOINT), Publish(EVENTS_ENDPOINT), Serve(REPLAY_ENDPOINT))

    def clock(self) -> int:
        """Now, in integer nanoseconds since the epoch (UTC): the source of `ts_journal`."""
        return time.time_ns()

    # -- lifecycle ------------------------------------------------------------------------
    def started(self) -> None:
        settings = self.config.journal
        if settings.max_batch < 1:
            raise ValueError(f"journal.max_batch: must be at least 1, got {settings.max_batch}")
        if settings.replay_max_events < 1:
            raise ValueError(
                f"journal.replay_max_events: must be at least 1, got {settings.replay_max_events}"
            )
        frame_limit = self.config.transport.max_frame_bytes
        self._max_event_bytes = max_event_bytes(frame_limit)
        if self._max_event_bytes < 1024:
            raise ValueError(
                f"transport.max_frame_bytes: {frame_limit} leaves no room for journal events; "
                f"use at least {1024 + BATCH_OVERHEAD_BYTES + EVENT_OVERHEAD_BYTES}"
            )
        self._replay_budget = frame_limit - BATCH_OVERHEAD_BYTES
        self._publish_budget = frame_limit - COMMITTED_OVERHEAD_BYTES
        self._acks_per_frame = max(1, self._publish_budget // ACK_MAX_BYTES)
        self._names = KrakenNames.bundled()
        self._decimal = decimal_context(self.config)
        self._valuation_currency = self.config.accounting.valuation_currency
        self._store = JournalStore(settings.database, synchronous=settings.synchronous)
        self.log.info(
            "journal {} open at seq {} (synchronous {}, batches of at most {})",
            settings.database,
            self._store.committed_seq,
            settings.synchronous,
            settings.max_batch,
        )
        self.log.info("journal id {}", self._store.journal_id)
        self.schedule(FILE_CHECK_SECONDS, _CheckFile())

    @handles(_CheckFile)
    def on_check_file(self, tick: _CheckFile, inbound: Inbound | None) -> None:
        """Between commits too: a database file deleted while idle is noticed within
        `FILE_CHECK_SECONDS`, not at the next event."""
        if self._store is not None and self._lost is None:
            try:
                self._store.check_file()
            except JournalFileLost as exc:
                self._file_lost(exc)
                return
        self.schedule(FILE_CHECK_SECONDS, _CheckFile())

    def _file_lost(self, exc: JournalFileLost) -> None:
        """Acknowledge nothing more: roll back what is open, refuse what comes, stop."""
        if self._lost is not None:
            return
        self._lost = exc
        self._note_commit_failure(exc)
        if self._batch:
            self._abandon_batch(exc)
        self.refuse(
            f"journal: {exc} (at seq "
            f"{self._store.committed_seq if self._store else '?'}); nothing more is "
            "acknowledged. Restore the file, or move the followers' snapshots aside to "
            "rebuild the books from a new journal"
        )

    def _note_commit_failure(self, exc: BaseException) -> None:
        if self._commit_failures == 0:
            self._failing_since_ns = self.clock()
        self._commit_failures += 1
        self._last_error = str(exc)

    def stopping(self) -> None:
        store = self._store
        if store is None:
            return
        if self._lost is None:
            self._commit_batch()
        elif self._batch:
            self._abandon_batch(self._lost)
        self._store = None
        try:
            store.close()
        except (sqlite3.Error, JournalStoreError) as exc:
            self.log.error("closing the journal failed: {}", exc)
        self.log.info("journal closed at seq {}", store.committed_seq)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        super().on_failure(exception_type, exception_value, traceback)
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()  # what is pending was never acknowledged: resends will find it
            except (sqlite3.Error, JournalStoreError) as exc:
                self.log.error("closing the journal after a failure failed: {}", exc)

    def on_receive(self, message: Any) -> Any:
        try:
            return super().on_receive(message)
        finally:
            # Whatever the message was, the batch is committed once nothing else waits:
            # a burst shares one commit, and a lone event is never held back.
            if self._batch and self.inbox.empty():
                self._commit_batch()

    def counters(self) -> dict[str, int]:
        return {
            "journaled": self.journaled,
            "duplicates": self.duplicates,
            "refused": self.refusals,
            "commits": self.commits,
        }

    # -- ingest -----------------------------------------------------------------------------
    @handles(ExecutionReport, Transfer, BalanceAdjusted, on=INGEST_ENDPOINT)
    def on_event(
        self, event: JournalEvent, inbound: Inbound | None
    ) -> Acknowledgement | DeliveryRefused | ErrorReply | None:
        """Refuse, answer as a duplicate, or journal `event`; new events are answered later.

        A copy of an event already in the log is a duplicate whatever it says (the original
        stands), valid or not: the key's unique index finds it when the copy is valid, a
        lookup when it is refused.
        """
        store = self._require_store()
        if self._lost is not None:
            return _unavailable(self._lost)
        key = getattr(event, type(event).delivery_key)
        now = self.clock()  # read once: it bounds the event's times and stamps ts_journal
        try:
            frame = validate_event(
                event,
                names=self._names,
                valuation_currency=self._valuation_currency,
                context=self._decimal,
                max_bytes=self._max_event_bytes,
                now_ns=now,
                frame=inbound.frame if inbound is not None else None,
            )
        except (BookingError, CodecError) as exc:
            try:
                known = store.seq_of(key)
            except sqlite3.Error as db_exc:
                self._abandon_batch(db_exc)
                return _unavailable(db_exc)
            if known is not None:
                return self._duplicate(store, key, known, inbound)
            self.refusals += 1
            self.log.warning("refused {} {}: {}", type(event).__name__, key, exc)
            return DeliveryRefused(key=key, reason=str(exc))
        ts_journal = max(now, store.last_ts_journal)
        try:
            seq, new = store.append(key, ts_journal, frame)
        except sqlite3.Error as exc:
            self._abandon_batch(exc)
            return _unavailable(exc)
        if not new:
            return self._duplicate(store, key, seq, inbound)
        self._batch.append(
            _Answer(
                inbound,
                Acknowledgement(key=key, seq=seq, duplicate=False),
                _sequenced_frame(seq, ts_journal, frame),
                len(frame) + EVENT_OVERHEAD_BYTES,
            )
        )
        self._commit_if_full()
        return None

    def _duplicate(
        self, store: JournalStore, key: str, known: int, inbound: Inbound | None
    ) -> Acknowledgement | None:
        """Answer a copy of the event journaled at `known`: at once when that is committed,
        after its original's commit otherwise."""
        self.duplicates += 1
        self.log.debug("{} is already journaled at seq {}", key, known)
        duplicate = Acknowledgement(key=key, seq=known, duplicate=True)
        if known <= store.committed_seq:
            return duplicate
        self._batch.append(_Answer(inbound, duplicate, None))
        self._commit_if_full()
        return None

    def _commit_if_full(self) -> None:
        if len(self._batch) >= self.config.journal.max_batch:
            self._commit_batch()

    def _commit_batch(self) -> None:
        """Commit the open transaction, then answer and publish the batch in seq order."""
        if not self._batch or self._store is None:
            return
        batch, self._batch = self._batch, []
        try:
            self._store.check_file()
        except JournalFileLost as exc:
            self._batch = batch
            self._file_lost(exc)
            return
        try:
            self._store.commit()
        except (sqlite3.Error, JournalStoreError) as exc:
            self._batch = batch
            self._abandon_batch(exc)
            return
        self.commits += 1
        self._commit_failures = 0
        self._failing_since_ns = None
        published = 0
        try:
            for inbound, acks in _acknowledgements_by_sender(batch, self._acks_per_frame):
                self.reply(inbound, acks[0] if len(acks) == 1 else Acknowledgements(acks=acks))
            for first_seq, events in _committed_runs(batch, self._publish_budget):
                self.publish_frame(
                    EVENTS_ENDPOINT,
                    encode_nesting(
                        EventsCommitted,
                        {
                            "first_seq": first_seq,
                            "seq": first_seq + len(events) - 1,
                            "events": events,
                            "journal_id": self._store.journal_id,
                        },
                    ),
                )
                published += len(events)
        except Exception as exc:  # the events are safe; subscribers catch up by replay
            self.failed += 1
            self.log.opt(exception=exc).error("answering a committed batch failed: {}", exc)
        self.journaled += sum(1 for answer in batch if answer.event is not None)
        self.log.trace("committed {} events, head seq {}", published, self._store.committed_seq)

    def _abandon_batch(self, cause: BaseException) -> None:
        """Roll back the open transaction and tell every sender of the batch it failed."""
        batch, self._batch = self._batch, []
        self.failed += 1
        if not isinstance(cause, JournalFileLost):
            self._note_commit_failure(cause)
        self.log.error(
            "could not journal a batch of {} events, none acknowledged: {}", len(batch), cause
        )
        if self._store is not None:
            try:
                self._store.rollback()
            except sqlite3.Error as exc:
                self.log.error("rolling the batch back failed too: {}", exc)
        failure = _unavailable(cause)
        for answer in batch:
            if answer.inbound is not None and answer.inbound.route is not None:
                self.reply(answer.inbound, failure)

    # -- replay -----------------------------------------------------------------------------
    @handles(ReplayEvents, on=REPLAY_ENDPOINT)
    def on_replay(self, request: ReplayEvents, inbound: Inbound | None) -> bytes:
        """The committed events from `from_seq` on, up to `to_seq` (or the head), bounded.

        At most min(max_events, journal.replay_max_events) events, and no more than fit in
        one frame of `transport.max_frame_bytes`; `complete` when the batch reaches the end
        asked for (or the head, if that is sooner). The answer is the `EventBatch` frame,
        made of the stored frames without encoding them again.
        """
        store = self._require_store()
        if self._lost is not None:
            raise self._lost  # answered as an ErrorReply: nothing is served from a lost file
        head = store.committed_seq
        end = head if request.to_seq is None else min(request.to_seq, head)
        max_events = min(request.max_events, self.config.journal.replay_max_events)
        budget = self._replay_budget
        chosen: list[tuple[int, bytes, int]] = []
        used = 0
        for entry in self._recent_replays.starting_at(request.from_seq):
            seq, _, size = entry
            if seq > end or len(chosen) >= max_events or (chosen and used + size > budget):
                break
            chosen.append(entry)
            used += size
        next_seq = chosen[-1][0] + 1 if chosen else request.from_seq
        if next_seq <= end and len(chosen) < max_events and used < budget:
            read: list[tuple[int, bytes, int]] = []
            for row in store.read(
                next_seq,
                end,
                max_events=max_events - len(chosen),
                max_bytes=budget - used,
                overhead_per_event=EVENT_OVERHEAD_BYTES,
            ):
                size = len(row.frame) + EVENT_OVERHEAD_BYTES
                if chosen and used + size > budget:
                    break  # the store returns a first event even when it alone is too large
                _check_stored(row)
                entry = (row.seq, _sequenced_frame(row.seq, row.ts_journal, row.frame), size)
                read.append(entry)
                chosen.append(entry)
                used += size
            self._recent_replays.keep(read)
        last = chosen[-1][0] if chosen else request.from_seq - 1
        # The stored frames are relayed as they are, inside the batch: never encoded again.
        return encode_nesting(
            EventBatch,
            {
                "correlation_id": request.correlation_id,
                "events": tuple(frame for _, frame, _ in chosen),
                "head_seq": head,
                "complete": last >= end,
                "journal_id": store.journal_id,
            },
        )

    @handles(GetJournalStatus, on=REPLAY_ENDPOINT)
    def on_status(self, request: GetJournalStatus, inbound: Inbound | None) -> JournalStatus:
        """Whether commits succeed now (the risk actor denies orders while they fail)."""
        store = self._require_store()
        return JournalStatus(
            correlation_id=request.correlation_id,
            journal_id=store.journal_id,
            committed_seq=store.committed_seq,
            commit_failures=self._commit_failures,
            failing_since_ns=self._failing_since_ns,
            last_error=self._last_error[:500],
        )

    def _require_store(self) -> JournalStore:
        if self._store is None:
            raise JournalStoreError("the journal database is closed")
        return self._store


def _committed_runs(
    batch: Iterable[_Answer], budget: int
) -> Iterable[tuple[int, tuple[bytes, ...]]]:
    """The new events of a committed batch, in seq order, cut into runs whose sizes add up
    to at most `budget` bytes: (first seq, `SequencedEvent` frames), each run published as
    one `EventsCommitted`.

    A run always holds at least one event: every accepted event fits alone, since
    `max_event_bytes` leaves room for both wrappers.
    """
    run: list[bytes] = []
    first_seq = 0
    used = 0
    for answer in batch:
        if answer.event is None:
            continue
        if run and used + answer.size > budget:
            yield first_seq, tuple(run)
            run, used = [], 0
        if not run:
            first_seq = answer.reply.seq
        run.append(answer.event)
        used += answer.size
    if run:
        yield first_seq, tuple(run)


def _acknowledgements_by_sender(
    batch: Iterable[_Answer], per_frame: int
) -> Iterable[tuple[Inbound, tuple[Acknowledgement, ...]]]:
    """The answers of a committed batch grouped by sender (socket and route), each sender's
    in the order its events were taken, cut into groups of at most `per_frame`."""
    by_sender: dict[tuple[str, tuple[bytes, ...]], tuple[Inbound, list[Acknowledgement]]] = {}
    for answer in batch:
        inbound = answer.inbound
        if inbound is None or inbound.route is None:
            continue
        sender = (inbound.socket, inbound.route)
        if sender not in by_sender:
            by_sender[sender] = (inbound, [])
        by_sender[sender][1].append(answer.reply)
    for inbound, acks in by_sender.values():
        for start in range(0, len(acks), per_frame):
            yield inbound, tuple(acks[start : start + per_frame])


def _check_stored(row: StoredEvent) -> None:
    """Refuse to relay a stored frame that does not decode (a damaged database), naming its
    seq; what is relayed is the frame itself, not the decoded message."""
    try:
        decode(row.frame, max_bytes=len(row.frame))
    except CodecError as exc:
        raise JournalStoreError(
            f"seq {row.seq}: the stored event cannot be decoded: {exc}"
        ) from exc


def _unavailable(cause: BaseException) -> ErrorReply:
    return ErrorReply(
        correlation_id=None,
        code=ErrorCode.UNAVAILABLE,
        detail=f"the journal could not store the event, send it again: {cause}",
    )
