"""The shell shared by actors that fold the journal: follow, catch up, snapshot, restore.

A follower subscribes to `journal.events` and applies events strictly in `seq` order. The
journal publishes one `EventsCommitted` per group commit; the follower folds its events in
order and tells its readers once per commit, with one change covering the whole range. It
catches up by asking `journal.replay` (at start, after a gap, and once a second when idle, so
a lost last commit is never missed for long); it never guesses. While catching up it asks for
the next range as soon as a range arrives, before folding it, so the journal reads one range
while the follower folds the other. Its state is saved, with the seq it reflects, to its own
SQLite file every `snapshot_every_events` events (and at stop); a restart loads the snapshot
and replays what follows.

No single event may crash-loop a follower. One it cannot fold (the fold raises, or computes
a value the wire cannot carry, say a balance beyond 1E+999) halts it, loudly: the state is
rolled back to the seq before, the halt is logged once with the seq and the reason and
counted (`halts`), and a `FoldHalted` goes out on the follower's events endpoint (again every
second, for readers that join later). The follower stops folding, keeps answering its queries
(saying where it halted), and the risk actor denies orders while it is halted. After a restart
it replays to the same event and halts at the same seq again.

The snapshot also keeps the id of the journal it was folded from (`EventBatch.journal_id`).
At start the follower is ready only once the journal's first replay answer agrees with it:
a journal with another id (deleted and made again, replaced by another file), or one whose
head is behind the snapshot's seq, is refused (`ServiceActor.refuse`, naming both), so the
group does not start on it; the same found later stops the group. A snapshot without an id
(made before ids existed) takes the journal's, if the journal is not behind it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.core.accounting import BooksLedger, CashLedger, PositionBook, PositionLedger
from actors.runtime.actor import (
    Connect,
    Inbound,
    RequestFailed,
    ServiceActor,
    SocketSpec,
    Subscribe,
    handles,
)
from messages import EventBatch, ExecutionReport, FoldHalted, ReplayEvents, SequencedEvent
from messages.base import Message
from messages.codec import decimal_problem, decode, encode
from messages.errors import ServiceFieldError
from messages.journal import EventsCommitted
from service.config import decimal_context

MAX_HALT_REASON_CHARS = 500
"""A halt's reason is cut to this length (it travels in every state answer)."""


class StateNotCarried(ServiceFieldError, ValueError):
    """A fold computed a value the wire cannot carry; `field` names it (`USD`, `XBT.quantity`)."""


def check_balances(balances: Mapping[str, Decimal]) -> None:
    """Raise `StateNotCarried` naming the first balance the wire cannot carry."""
    for asset, amount in balances.items():
        problem = decimal_problem(amount)
        if problem is not None:
            raise StateNotCarried(asset, problem)


def check_positions(positions: Mapping[str, PositionBook]) -> None:
    """Raise `StateNotCarried` naming the first position figure the wire cannot carry
    (average cost and fees must also stay >= 0, as `PositionState` requires)."""
    for asset, book in positions.items():
        for name in ("quantity", "average_cost", "realized_pnl", "fees"):
            value = getattr(book, name)
            problem = decimal_problem(value)
            if problem is None and name in ("average_cost", "fees") and value < 0:
                problem = f"must be >= 0, got {value}"
            if problem is not None:
                raise StateNotCarried(f"{asset}.{name}", problem)


def _ledger_checkpoint(ledger: Any) -> tuple:
    """What it takes to put `ledger` back as it is (its dicts are small: a copy is cheap)."""
    if isinstance(ledger, BooksLedger):
        return (ledger.seq, dict(ledger.cash.balances), dict(ledger.positions.positions))
    if isinstance(ledger, CashLedger):
        return (ledger.seq, dict(ledger.balances), None)
    return (ledger.seq, None, dict(ledger.positions))


def _ledger_rollback(ledger: Any, saved: tuple) -> None:
    seq, balances, positions = saved
    if isinstance(ledger, BooksLedger):
        ledger.cash.balances, ledger.positions.positions = balances, positions
    elif isinstance(ledger, CashLedger):
        ledger.balances = balances
    else:
        ledger.positions = positions
    ledger.seq = seq


class _CatchUp:
    """Timer message: look for events the follower may have missed."""


class SnapshotStore:
    """One row per follower: the encoded state message, the seq it reflects and the id of
    the journal it was folded from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a power cut may lose the last snapshots, never corrupt the file; the journal
        # (FULL) is the truth, so a lost snapshot only means replaying from an older one.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS snapshot (name TEXT PRIMARY KEY, seq INTEGER, state BLOB,"
            " journal_id TEXT)"
        )
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(snapshot)")]
        if "journal_id" not in columns:  # a file made before snapshots named their journal
            self._db.execute("ALTER TABLE snapshot ADD COLUMN journal_id TEXT")

    def load(self, name: str) -> tuple[int, Message, str | None] | None:
        """The last saved (seq, state, journal id or None) of `name`, or None."""
        row = self._db.execute(
            "SELECT seq, state, journal_id FROM snapshot WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else (row[0], decode(row[1], max_bytes=1 << 30), row[2])

    def save(self, name: str, seq: int, state: Message, journal_id: str | None = None) -> None:
        """Replace the saved state of `name` atomically."""
        self._db.execute(
            "INSERT OR REPLACE INTO snapshot (name, seq, state, journal_id) VALUES (?, ?, ?, ?)",
            (name, seq, encode(state), journal_id),
        )

    def close(self) -> None:
        """Close the database."""
        self._db.close()


class JournalFollower(ServiceActor):
    """Base of the cash and positions actors: in-order application of the journal."""

    snapshot_every_events = 10_000
    catch_up_interval_seconds = 1.0
    replay_batch = 1000
    ledger_class: type[CashLedger] | type[PositionLedger] | type[BooksLedger]
    """The pure fold this actor owns (its `seq` is the follower's)."""
    events_endpoint: str | None = None
    """The follower's `Publish` endpoint, where a `FoldHalted` goes out (None: nowhere)."""

    def follower_sockets(self) -> Iterable[SocketSpec]:
        """The sockets of the concrete follower (override)."""
        return ()

    def sockets(self) -> Iterable[SocketSpec]:
        return (
            Subscribe("journal.events"),
            Connect("journal.replay"),
            *self.follower_sockets(),
        )

    @property
    def seq(self) -> int:
        """The seq of the last event applied."""
        return self.ledger.seq

    # -- what a concrete follower provides -----------------------------------------------------
    def restore(self, seq: int, state: Message) -> None:
        """Take a saved state (override)."""
        raise NotImplementedError

    def current_state(self) -> Message:
        """The state to save (override)."""
        raise NotImplementedError

    def fold(self, event: SequencedEvent) -> dict[str, Any]:
        """Fold one event whose seq is exactly `self.seq + 1`; what it changed (override).

        Raise (anything) when the event cannot be folded or gives a state the wire cannot
        carry (`check_balances`, `check_positions`): the follower then rolls back and halts.
        """
        raise NotImplementedError

    def checkpoint(self) -> Any:
        """What `rollback` needs to undo a fold that raised (extend for state besides the
        ledger)."""
        return _ledger_checkpoint(self.ledger)

    def rollback(self, saved: Any) -> None:
        """Put the state back as `checkpoint` saw it."""
        _ledger_rollback(self.ledger, saved)

    def publish_changes(self, first_seq: int, seq: int, changed: dict[str, Any]) -> None:
        """Tell readers what events `first_seq`..`seq` changed (override)."""
        raise NotImplementedError

    def snapshot_path(self) -> Path:
        """The SQLite file the follower's snapshots go to (override to move it)."""
        return self.config.run_dir / "state" / f"{self.name}.sqlite"

    # -- the shell -------------------------------------------------------------------------
    def started(self) -> None:
        accounting = self.config.accounting
        self.ledger = self.ledger_class(
            cash_currencies=accounting.cash_currencies,
            valuation_currency=accounting.valuation_currency,
            context=decimal_context(self.config),
        )
        self._store = SnapshotStore(self.snapshot_path())
        saved = self._store.load(self.name)
        self.journal_id: str | None = None  # of the journal folded from; None: not known yet
        if saved is not None:
            seq, state, self.journal_id = saved
            self.restore(seq, state)
            self.log.info("restored from snapshot at seq {} of journal {}", seq, self.journal_id)
        self._journal_refused = False
        self.defer_ready()  # ready once the journal's first answer agrees with the snapshot
        self._replaying = False
        self.halted: FoldHalted | None = None
        self.halts = 0
        self.events_applied = 0
        self.fills_applied = 0
        self._since_snapshot = 0
        self._last_event_at = time.monotonic()
        self._catch_up()
        self.schedule(self.catch_up_interval_seconds, _CatchUp())

    def stopping(self) -> None:
        store = getattr(self, "_store", None)
        if store is not None:
            try:
                self._save()
            except Exception as exc:  # the journal still has it all: a restart replays
                self.log.opt(exception=exc).error("could not save the snapshot: {}", exc)
            store.close()

    def save_snapshot(self) -> None:
        """Save the state now (its seq and every part of it together)."""
        self._save()

    def _save(self) -> None:
        self._store.save(self.name, self.seq, self.current_state(), self.journal_id)
        self._since_snapshot = 0

    def _journal_agrees(self, journal_id: str, head_seq: int | None) -> bool:
        """Whether the journal that answered (`journal_id`, its `head_seq` when known) is the
        one the state was folded from; if not, refuse to go on, naming both. An empty id (a
        journal without one) is not compared; an unknown own id takes the journal's."""
        if self._journal_refused:
            return False
        database = self.config.journal.database
        snapshot = f"{self._store.path} at seq {self.seq} (journal id {self.journal_id})"
        problem = None
        if journal_id and self.journal_id is not None and journal_id != self.journal_id:
            problem = (
                f"the journal {database} (id {journal_id}, last seq {head_seq}) is not the one "
                f"the snapshot {snapshot} was folded from"
            )
        elif head_seq is not None and head_seq < self.seq:
            problem = (
                f"the journal {database} (id {journal_id or '?'}) ends at seq {head_seq}, "
                f"behind the snapshot {snapshot}"
            )
        if problem is not None:
            self._journal_refused = True
            self.refuse(
                f"{self.name}: {problem}; restore that journal, or move the snapshot aside "
                "to fold this journal from its start"
            )
            return False
        if journal_id and self.journal_id is None:
            self.journal_id = journal_id
            self._save()  # the snapshot names its journal from now on
            self.log.info("following journal {}", journal_id)
        return True

    @handles(EventsCommitted, on="journal.events")
    def on_events_committed(self, batch: EventsCommitted, inbound: Inbound | None) -> None:
        """Apply a group commit's events and tell readers once; on a gap, catch up by replay."""
        self._last_event_at = time.monotonic()
        if not self._journal_agrees(batch.journal_id, None):
            return
        if self.halted is not None or batch.seq <= self.seq:
            return  # halted, or already applied (a replay overlapped the live stream)
        if self._replaying or batch.first_seq > self.seq + 1:
            self._catch_up()  # a gap before this commit (a replay under way covers it)
            return
        self._apply_in_order(batch.events)
        if self.seq < batch.seq:
            self._catch_up()  # the commit itself was not whole

    @handles(_CatchUp)
    def on_catch_up(self, tick: _CatchUp, inbound: Inbound | None) -> None:
        """Once a second: if nothing arrived lately, ask the journal what we may have missed;
        when halted, say so again instead (a reader may have joined since)."""
        if self.halted is not None:
            self._publish_halt()
        elif time.monotonic() - self._last_event_at >= self.catch_up_interval_seconds:
            self._catch_up()
        self.schedule(self.catch_up_interval_seconds, _CatchUp())

    def counters(self) -> dict[str, int]:
        return {
            "events_applied": self.events_applied,
            "fills_applied": self.fills_applied,
            "halts": self.halts,
        }

    # -- halting ---------------------------------------------------------------------------
    def halt(self, seq: int, cause: BaseException) -> None:
        """Stop folding at event `seq`: log once, count, tell readers. The state must be
        what it was before `seq` (the caller rolled it back)."""
        if self.halted is not None:
            return
        reason = f"{type(cause).__name__}: {cause}"[:MAX_HALT_REASON_CHARS]
        self.halted = FoldHalted(actor=self.name, seq=seq, reason=reason)
        self.halts += 1
        self.failed += 1
        self.log.opt(exception=cause).error(
            "halted at seq {}: this event cannot be folded ({}); the state stays at seq {}, "
            "orders are denied until the cause is dealt with",
            seq,
            reason,
            self.seq,
        )
        self._publish_halt()

    def _publish_halt(self) -> None:
        if self.halted is not None and self.events_endpoint is not None:
            self.publish(self.events_endpoint, self.halted)

    def _apply_one(self, event: SequencedEvent) -> dict[str, Any] | None:
        """Fold one event; None (and halted) when it cannot be."""
        saved = self.checkpoint()
        try:
            changed = self.fold(event)
        except Exception as exc:
            self.rollback(saved)
            self.halt(event.seq, exc)
            return None
        self.events_applied += 1
        if isinstance(event.event, ExecutionReport) and event.event.last_qty > 0:
            self.fills_applied += 1
        self._since_snapshot += 1
        if self._since_snapshot >= self.snapshot_every_events:
            self._save()
        return changed

    def _apply_in_order(self, events: Sequence[SequencedEvent]) -> None:
        """Fold the events that follow `self.seq` (those already applied are skipped; a gap
        stops the fold), then publish one change for the whole range folded.

        The change is published even when a fold fails part way, so readers stay in
        lockstep with what was applied.
        """
        first_seq = self.seq + 1
        changed: dict[str, Any] = {}
        try:
            for event in events:
                if self.halted is not None:
                    break
                if event.seq <= self.seq:
                    continue
                if event.seq != self.seq + 1:
                    break
                folded = self._apply_one(event)
                if folded is not None:
                    changed.update(folded)
        finally:
            if self.seq >= first_seq:
                self.publish_changes(first_seq, self.seq, changed)

    def _catch_up(self) -> None:
        if not self._replaying and self.halted is None and not self._journal_refused:
            self._ask_replay(self.seq + 1)

    def _ask_replay(self, from_seq: int) -> None:
        self._replaying = True
        self.request(
            "journal.replay",
            ReplayEvents(
                correlation_id=self.next_correlation_id(),
                from_seq=from_seq,
                to_seq=None,
                max_events=self.replay_batch,
            ),
            on_reply=self._replayed,
            on_failure=self._replay_failed,
        )

    def _replayed(self, batch: Any) -> None:
        self._replaying = False
        if not isinstance(batch, EventBatch):
            self.log.warning("journal answered a replay with {}", type(batch).__name__)
            self.ready()  # the next answer is checked
            return
        if not self._journal_agrees(batch.journal_id, batch.head_seq):
            return
        self.ready()
        events = batch.events
        if self.halted is not None:
            return
        if events and events[0].seq <= self.seq + 1 <= events[-1].seq < batch.head_seq:
            # More follows and this range connects: ask for the next one before folding
            # this one, so the journal reads it while this actor folds.
            self._ask_replay(events[-1].seq + 1)
        self._apply_in_order(events)
        if not self._replaying and (not batch.complete or self.seq < batch.head_seq):
            self._catch_up()

    def _replay_failed(self, failure: RequestFailed) -> None:
        self._replaying = False  # the next event or the next tick tries again
        if not self._journal_refused:
            self.ready()  # no journal to compare with yet: its first answer is checked
