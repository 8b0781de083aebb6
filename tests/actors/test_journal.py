"""The journal: validate, deduplicate, sequence, persist with group commit, publish, replay.

Most tests run the real `JournalActor` in an `ActorHost` with inproc endpoints and talk to
it as the other actors do: requests on `journal.ingest` and `journal.replay`, a SUB socket
on `journal.events` (one `EventsCommitted` per group commit). The store's tests run
`JournalStore` on its own.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import zmq

from actors.journal import INGEST_ENDPOINT, JournalActor
from actors.journal_store import JournalStore, JournalStoreError
from actors.runtime.actor import Inbound, handles
from actors.runtime.client import RequestClient
from actors.runtime.host import ActorHost
from messages import (
    Acknowledgement,
    Acknowledgements,
    DeliveryRefused,
    ErrorCode,
    ErrorReply,
    EventBatch,
    ExecutionReport,
    OrderStatus,
    ReplayEvents,
    SequencedEvent,
    Transfer,
)
from messages.base import Message
from messages.codec import decode, encode
from messages.journal import EventsCommitted
from service.config import load_config
from service.registry import ACTOR_CLASSES
from tests.support.factories import T0, execution_report, transfer
from tests.support.group import write_config

JOURNAL_ENDPOINTS = ("journal.ingest", "journal.events", "journal.replay")


# -- test subclasses, loaded by the host through actor_classes ----------------------------


@dataclass(frozen=True)
class Hold:
    """Told to `GatedJournal`: block its thread until `release` is set (at most 5 s)."""

    holding: threading.Event
    release: threading.Event


class GatedJournal(JournalActor):
    """A journal that can be paused: told a `Hold`, or right after handling a chosen event."""

    pause_after: dict[str, Hold] = {}

    @handles(Hold)
    def on_hold(self, hold: Hold, inbound: Inbound | None) -> None:
        hold.holding.set()
        hold.release.wait(timeout=5)

    @handles(ExecutionReport, Transfer, on=INGEST_ENDPOINT)
    def on_event(self, event, inbound: Inbound | None):
        answer = super().on_event(event, inbound)
        hold = type(self).pause_after.pop(getattr(event, type(event).delivery_key), None)
        if hold is not None:
            self.on_hold(hold, inbound)
        return answer


class FailingCommitStore(JournalStore):
    """A store whose next commit fails as a full disk would make it."""

    fail_next_commit = False

    def commit(self) -> int:
        if type(self).fail_next_commit:
            type(self).fail_next_commit = False
            raise sqlite3.OperationalError("database or disk is full")
        return super().commit()


class FailingDiskJournal(JournalActor):
    """A journal on a `FailingCommitStore`."""

    def started(self) -> None:
        super().started()
        self._store.close()
        settings = self.config.journal
        self._store = FailingCommitStore(settings.database, synchronous=settings.synchronous)


class ScriptedClockJournal(JournalActor):
    """A journal whose clock reads `readings` in turn."""

    readings: list[int] = []

    def clock(self) -> int:
        return type(self).readings.pop(0)


# -- the rig --------------------------------------------------------------------------------


class JournalRig:
    """One journal actor in an ActorHost, and clients to its three endpoints."""

    def __init__(
        self, tmp_path: Path, actor_class: str = "actors.journal:JournalActor", **extra
    ) -> None:
        settings = {
            "journal": {"synchronous": "NORMAL"},
            **extra,
            "actor_classes": {"journal": actor_class},
        }
        path = write_config(
            tmp_path,
            processes={"books": ["journal"]},
            endpoints={name: f"inproc://{name}" for name in JOURNAL_ENDPOINTS},
            extra=settings,
        )
        self.config = load_config(path)
        self.context = zmq.Context()
        self.host: ActorHost | None = None
        self._sockets: list[zmq.Socket] = []

    def start(self) -> None:
        self.host = ActorHost(self.config, "books", registry=ACTOR_CLASSES, context=self.context)
        self.host.start()

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
            self.host = None

    def close(self) -> None:
        self.stop()
        for sock in self._sockets:
            sock.close(linger=0)
        self.context.destroy(linger=0)

    @property
    def actor(self):
        assert self.host is not None
        return self.host.refs["journal"]

    def counter(self, name: str) -> int:
        return getattr(self.actor.proxy(), name).get(timeout=2)

    def client(self, endpoint: str) -> RequestClient:
        return RequestClient(
            self.context, endpoint, self.config.endpoints[endpoint], self.config.transport
        )

    def send(self, *events: Message) -> list[Message]:
        with self.client("journal.ingest") as ingest:
            return [ingest.request(event, raise_on_error=False) for event in events]

    def replay(self, from_seq: int, to_seq: int | None = None, max_events: int = 1000):
        with self.client("journal.replay") as replay:
            batch = replay.request(
                ReplayEvents(
                    correlation_id="replay-1",
                    from_seq=from_seq,
                    to_seq=to_seq,
                    max_events=max_events,
                )
            )
        assert isinstance(batch, EventBatch)
        return batch

    def dealer(self) -> zmq.Socket:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.config.endpoints["journal.ingest"])
        self._sockets.append(sock)
        return sock

    def subscriber(self, probe_from: int = 90_000) -> tuple[zmq.Socket, int]:
        """A SUB socket that is known to receive: probe events are sent until one arrives.

        Returns the socket and the seq of the last probe seen; later events follow it.
        """
        sock = self.context.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self.config.endpoints["journal.events"])
        self._sockets.append(sock)
        deadline = time.monotonic() + 5
        n = probe_from
        while time.monotonic() < deadline:
            (ack,) = self.send(execution_report(n=n))
            n += 1
            if sock.poll(100, zmq.POLLIN):
                seen = decode(sock.recv())
                while sock.poll(50, zmq.POLLIN):  # later probes may still be on their way
                    seen = decode(sock.recv())
                assert isinstance(seen, EventsCommitted)
                assert seen.seq == ack.seq
                return sock, seen.seq
        raise AssertionError("the subscriber never received a probe event")


def receive_published(sub: zmq.Socket, quiet_ms: int = 300) -> list[tuple[int, EventsCommitted]]:
    """Every (frame size, message) published until nothing more comes for `quiet_ms`."""
    received = []
    while sub.poll(quiet_ms, zmq.POLLIN):
        frame = sub.recv()
        received.append((len(frame), decode(frame)))
    return received


def events_of(published: list[tuple[int, EventsCommitted]]) -> list[SequencedEvent]:
    """The events of consecutive publications, in order; each publication must be whole."""
    events: list[SequencedEvent] = []
    for _, commit in published:
        assert isinstance(commit, EventsCommitted)
        assert [e.seq for e in commit.events] == list(range(commit.first_seq, commit.seq + 1))
        events.extend(commit.events)
    return events


def hold_journal(journal: JournalRig) -> Hold:
    """Block the (gated) journal's thread until the returned hold is released."""
    hold = Hold(threading.Event(), threading.Event())
    journal.actor.tell(hold)
    assert hold.holding.wait(5)
    return hold


def receive_frames(sock: zmq.Socket, count: int, timeout: float = 5.0) -> list[list[Message]]:
    """The next frames' answers, until `count` answers came: one list per frame (the
    acknowledgements of an `Acknowledgements` frame, or the one answer of a frame)."""
    frames: list[list[Message]] = []
    deadline = time.monotonic() + timeout
    while sum(map(len, frames)) < count:
        left_ms = int((deadline - time.monotonic()) * 1000)
        got = sum(map(len, frames))
        assert left_ms > 0 and sock.poll(left_ms, zmq.POLLIN), f"only {got} answers"
        answer = decode(sock.recv_multipart()[-1])
        frames.append(list(answer.acks) if isinstance(answer, Acknowledgements) else [answer])
    return frames


def receive_answers(sock: zmq.Socket, count: int, timeout: float = 5.0) -> list[Message]:
    return [answer for frame in receive_frames(sock, count, timeout) for answer in frame]


@pytest.fixture
def rig_factory(tmp_path) -> Iterator:
    rigs: list[JournalRig] = []

    def make(**options) -> JournalRig:
        rig = JournalRig(tmp_path, **options)
        rigs.append(rig)
        rig.start()
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            rig.close()


@pytest.fixture
def journal(rig_factory) -> JournalRig:
    return rig_factory()


# -- ingest ---------------------------------------------------------------------------------


def test_new_events_are_acknowledged_with_consecutive_seqs(journal):
    answers = journal.send(execution_report(n=1), transfer(n=1), execution_report(n=2))

    assert answers == [
        Acknowledgement(key=execution_report(n=1).exec_id, seq=1, duplicate=False),
        Acknowledgement(key=transfer(n=1).transfer_id, seq=2, duplicate=False),
        Acknowledgement(key=execution_report(n=2).exec_id, seq=3, duplicate=False),
    ]
    batch = journal.replay(1)
    assert [event.event for event in batch.events] == [
        execution_report(n=1),
        transfer(n=1),
        execution_report(n=2),
    ]
    assert journal.counter("journaled") == 3


def test_a_report_sent_again_gets_the_original_seq_and_is_not_journaled_twice(journal):
    journal.send(execution_report(n=1), execution_report(n=2))

    (again,) = journal.send(execution_report(n=1))

    assert again == Acknowledgement(key=execution_report(n=1).exec_id, seq=1, duplicate=True)
    (altered,) = journal.send(
        execution_report(n=1, pair="FOO/BAR", fee_currency="USD")
    )  # the journaled original stands
    assert altered == Acknowledgement(key=execution_report(n=1).exec_id, seq=1, duplicate=True)
    batch = journal.replay(1)
    assert [event.seq for event in batch.events] == [1, 2] and batch.head_seq == 2
    assert journal.counter("duplicates") == 2


def test_a_duplicate_inside_one_open_batch_is_answered_with_the_original_seq(rig_factory):
    journal = rig_factory(actor_class="tests.actors.test_journal:GatedJournal")
    dealer = journal.dealer()
    commits_before = journal.counter("commits")
    hold = Hold(threading.Event(), threading.Event())
    journal.actor.tell(hold)
    assert hold.holding.wait(5)
    for event in (
        execution_report(n=1),
        execution_report(n=2),
        execution_report(n=1),
        transfer(n=1),
    ):
        dealer.send_multipart([b"", encode(event)])
    hold.release.set()

    frames = receive_frames(dealer, 4)

    assert frames == [  # one sender, one commit: one frame of answers, in order
        [
            Acknowledgement(key=execution_report(n=1).exec_id, seq=1, duplicate=False),
            Acknowledgement(key=execution_report(n=2).exec_id, seq=2, duplicate=False),
            Acknowledgement(key=execution_report(n=1).exec_id, seq=1, duplicate=True),
            Acknowledgement(key=transfer(n=1).transfer_id, seq=3, duplicate=False),
        ]
    ]
    assert journal.counter("commits") == commits_before + 1  # one batch, one commit
    assert [event.seq for event in journal.replay(1).events] == [1, 2, 3]


def test_a_batch_is_committed_when_it_reaches_max_batch(rig_factory):
    journal = rig_factory(
        actor_class="tests.actors.test_journal:GatedJournal",
        journal={"synchronous": "NORMAL", "max_batch": 2},
    )
    dealer = journal.dealer()
    hold = Hold(threading.Event(), threading.Event())
    journal.actor.tell(hold)
    assert hold.holding.wait(5)
    for n in range(1, 6):
        dealer.send_multipart([b"", encode(execution_report(n=n))])
    hold.release.set()

    answers = receive_answers(dealer, 5)

    assert [answer.seq for answer in answers] == [1, 2, 3, 4, 5]
    assert journal.counter("commits") == 3  # 2 + 2 + 1


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (execution_report(n=1, pair="FOO/BAR", fee_currency="USD"), "pair"),
        (
            execution_report(n=1, pair="BTC/USD"),
            "pair",
        ),  # known, but not the normalized name XBT/USD
        (
            execution_report(n=1, pair="ETH/XBT", last_price=Decimal("0.05"), fee_currency="USD"),
            "quote_rate",
        ),
        (execution_report(n=1, fee_currency="EUR"), "fee_currency"),
        (execution_report(n=1, last_price=Decimal(0)), "last_price"),
        (transfer(n=1, amount="0"), "amount"),
        (execution_report(n=1, last_qty=Decimal("1E+999")), "last_qty"),
        (execution_report(n=1, last_price=Decimal("1." + "3" * 40)), "last_price"),
        (execution_report(n=1, ts_event=1), "ts_event"),
        (execution_report(n=1, ts_init=time.time_ns() + 2 * 86_400 * 10**9), "ts_init"),
        (execution_report(n=1, fee=Decimal(0), fee_currency="DOGE"), "fee_currency"),
        (transfer(n=1, amount="-1E+999"), "amount"),
    ],
    ids=[
        "unknown-pair",
        "unnormalized-pair",
        "cross-without-rate",
        "third-fee",
        "no-price",
        "t0",
        "absurd-quantity",
        "too-many-digits",
        "1970",
        "two-days-ahead",
        "foreign-fee-currency",
        "absurd-withdrawal",
    ],
)
def test_an_invalid_event_is_refused_naming_the_field_and_nothing_is_journaled(
    journal, event, field
):
    (answer,) = journal.send(event)

    key = getattr(event, type(event).delivery_key)
    assert isinstance(answer, DeliveryRefused) and answer.key == key
    assert answer.reason.startswith(f"{field}:"), answer.reason
    assert journal.replay(1).head_seq == 0
    assert journal.counter("refusals") == 1
    (next_answer,) = journal.send(execution_report(n=2))
    assert next_answer == Acknowledgement(key=execution_report(n=2).exec_id, seq=1, duplicate=False)


def test_a_cross_pair_fill_with_its_quote_rate_is_accepted(journal):
    fill = execution_report(
        n=1,
        pair="ETH/XBT",
        last_price=Decimal("0.05"),
        fee=Decimal("0.00001"),
        fee_currency="XBT",
        quote_rate=Decimal("60000"),
    )

    (answer,) = journal.send(fill)

    assert answer == Acknowledgement(key=fill.exec_id, seq=1, duplicate=False)


def test_an_event_too_large_to_replay_is_refused(rig_factory):
    journal = rig_factory(transport={"max_frame_bytes": 16384})

    (answer,) = journal.send(
        execution_report(n=1, status=OrderStatus.REJECTED, reason="x" * 15_000)
    )

    assert isinstance(answer, DeliveryRefused) and answer.reason.startswith("size:")
    assert journal.replay(1).head_seq == 0


def test_a_failed_commit_acknowledges_nothing_and_the_resend_gets_the_same_seq(rig_factory):
    journal = rig_factory(actor_class="tests.actors.test_journal:FailingDiskJournal")
    journal.send(execution_report(n=1))
    FailingCommitStore.fail_next_commit = True

    (failed,) = journal.send(execution_report(n=2))

    assert isinstance(failed, ErrorReply) and failed.code is ErrorCode.UNAVAILABLE
    assert journal.replay(1).head_seq == 1
    (resent,) = journal.send(execution_report(n=2))
    assert resent == Acknowledgement(key=execution_report(n=2).exec_id, seq=2, duplicate=False)
    assert [e.event for e in journal.replay(1).events] == [
        execution_report(n=1),
        execution_report(n=2),
    ]


# -- publish --------------------------------------------------------------------------------


def test_a_subscriber_sees_every_event_once_in_seq_order(journal):
    sub, last_probe = journal.subscriber()
    sent = [execution_report(n=n) if n % 3 else transfer(n=n) for n in range(1, 31)]

    journal.send(*sent, execution_report(n=1))  # the last one is a duplicate: not published again

    received = events_of(receive_published(sub))
    assert [event.seq for event in received] == list(range(last_probe + 1, last_probe + 31))
    assert [event.event for event in received] == sent
    stamps = [event.ts_journal for event in received]
    assert stamps == sorted(stamps) and stamps[0] > T0


def test_a_group_commit_is_published_as_one_message_after_its_answers(rig_factory):
    journal = rig_factory(actor_class="tests.actors.test_journal:GatedJournal")
    sub, last_probe = journal.subscriber()
    dealer = journal.dealer()
    hold = hold_journal(journal)
    sent = [execution_report(n=n) for n in range(1, 21)]
    for event in (*sent, execution_report(n=1)):  # a duplicate inside the batch is not published
        dealer.send_multipart([b"", encode(event)])
    hold.release.set()

    answers = receive_answers(dealer, 21)
    published = receive_published(sub)

    assert [answer.seq for answer in answers[:20]] == list(range(last_probe + 1, last_probe + 21))
    assert len(published) == 1  # one commit, one publication
    (_, commit) = published[0]
    assert (commit.first_seq, commit.seq) == (last_probe + 1, last_probe + 20)
    assert [event.event for event in events_of(published)] == sent


def test_each_sender_gets_its_answers_of_a_commit_in_one_frame_of_its_own(rig_factory):
    journal = rig_factory(actor_class="tests.actors.test_journal:GatedJournal")
    first, second = journal.dealer(), journal.dealer()
    commits_before = journal.counter("commits")
    hold = hold_journal(journal)
    for n in range(1, 7):  # interleaved: 1, 3, 5 from the first sender, 2, 4, 6 from the other
        (first if n % 2 else second).send_multipart([b"", encode(execution_report(n=n))])
    hold.release.set()

    from_first, from_second = receive_frames(first, 3), receive_frames(second, 3)

    assert [(a.key, a.seq) for frame in from_first for a in frame] == [
        (execution_report(n=n).exec_id, n) for n in (1, 3, 5)
    ]
    assert [(a.key, a.seq) for frame in from_second for a in frame] == [
        (execution_report(n=n).exec_id, n) for n in (2, 4, 6)
    ]
    commits = journal.counter("commits") - commits_before
    assert len(from_first) <= commits and len(from_second) <= commits  # a frame per commit
    if commits == 1:  # the usual case: all six were waiting when the journal went on
        assert (len(from_first), len(from_second)) == (1, 1)


def test_a_commit_with_more_answers_than_fit_in_a_frame_answers_in_several(rig_factory):
    frame_limit = 8192  # room for 12 acknowledgements of the largest size per frame
    journal = rig_factory(
        actor_class="tests.actors.test_journal:GatedJournal",
        transport={"max_frame_bytes": frame_limit},
    )
    dealer = journal.dealer()
    commits_before = journal.counter("commits")
    hold = hold_journal(journal)
    for n in range(1, 31):
        dealer.send_multipart([b"", encode(execution_report(n=n))])
    hold.release.set()

    frames = receive_frames(dealer, 30)

    assert [answer.seq for frame in frames for answer in frame] == list(range(1, 31))
    assert all(len(frame) <= 12 for frame in frames)
    if journal.counter("commits") - commits_before == 1:
        assert [len(frame) for frame in frames] == [12, 12, 6]


def test_a_commit_too_large_for_one_frame_is_published_in_consecutive_parts(rig_factory):
    frame_limit = 16384
    journal = rig_factory(
        actor_class="tests.actors.test_journal:GatedJournal",
        transport={"max_frame_bytes": frame_limit},
    )
    sub, last_probe = journal.subscriber()
    dealer = journal.dealer()
    hold = hold_journal(journal)
    # Each event is close to the largest accepted (about 11 KB of 12 KB allowed): no two fit
    # in one frame together.
    sent = [
        execution_report(n=n, status=OrderStatus.REJECTED, reason="x" * 11_000) for n in range(1, 6)
    ]
    for event in sent:
        dealer.send_multipart([b"", encode(event)])
    hold.release.set()

    answers = receive_answers(dealer, 5)
    published = receive_published(sub)

    assert all(isinstance(answer, Acknowledgement) for answer in answers)
    assert len(published) == 5
    assert all(size <= frame_limit for size, _ in published)
    received = events_of(published)
    assert [event.seq for event in received] == list(range(last_probe + 1, last_probe + 6))
    assert [event.event for event in received] == sent


def test_ts_journal_comes_from_the_clock_and_never_goes_back(rig_factory):
    ScriptedClockJournal.readings = [T0 + 100, T0 + 300, T0 + 200, T0 + 400]
    journal = rig_factory(actor_class="tests.actors.test_journal:ScriptedClockJournal")

    journal.send(
        execution_report(n=1), execution_report(n=2), execution_report(n=3), execution_report(n=4)
    )

    stamps = [event.ts_journal for event in journal.replay(1).events]
    assert stamps == [T0 + 100, T0 + 300, T0 + 300, T0 + 400]


# -- replay ---------------------------------------------------------------------------------


def test_replay_serves_ranges_bounded_and_says_when_complete(rig_factory):
    journal = rig_factory(journal={"synchronous": "NORMAL", "replay_max_events": 5})
    sent = [execution_report(n=n) for n in range(1, 11)]
    journal.send(*sent)

    middle = journal.replay(3, 6)
    assert [e.seq for e in middle.events] == [3, 4, 5, 6]
    assert [e.event for e in middle.events] == sent[2:6]
    assert middle.complete and middle.head_seq == 10

    capped = journal.replay(1, None, max_events=100)  # the journal's own cap: 5
    assert [e.seq for e in capped.events] == [1, 2, 3, 4, 5] and not capped.complete

    asked = journal.replay(4, 9, max_events=2)
    assert [e.seq for e in asked.events] == [4, 5] and not asked.complete

    tail = journal.replay(8, 50)  # beyond the head: complete at the head
    assert [e.seq for e in tail.events] == [8, 9, 10] and tail.complete

    past = journal.replay(11)
    assert past.events == () and past.complete and past.head_seq == 10

    backwards = journal.replay(5, 4)
    assert backwards.events == () and backwards.complete


def test_replay_batches_stay_under_the_frame_limit_and_page_to_the_end(rig_factory):
    journal = rig_factory(transport={"max_frame_bytes": 16384})
    sent = [execution_report(n=n, reason="r" * 3000) for n in range(1, 11)]
    assert all(isinstance(a, Acknowledgement) for a in journal.send(*sent))

    for max_events in (100, 3):  # the second reader pages through ranges already read
        events: list[SequencedEvent] = []
        batches = 0
        complete = False
        while not complete:
            # the client refuses any frame above max_frame_bytes, so each batch fits
            batch = journal.replay(len(events) + 1, None, max_events=max_events)
            assert batch.events, "a replay must make progress"
            events.extend(batch.events)
            complete = batch.complete
            batches += 1

        assert batches > 1
        assert [e.event for e in events] == sent


def test_followers_replaying_side_by_side_each_get_every_event_once_in_order(rig_factory):
    journal = rig_factory(journal={"synchronous": "NORMAL", "replay_max_events": 7})
    sent = [execution_report(n=n) if n % 4 else transfer(n=n) for n in range(1, 41)]
    journal.send(*sent)
    # Pages of different sizes start inside ranges another reader had read, and run past them.
    pages: dict[int, list[SequencedEvent]] = {3: [], 5: [], 7: []}
    complete = dict.fromkeys(pages, False)

    while not all(complete.values()):
        for max_events, events in pages.items():
            if not complete[max_events]:
                batch = journal.replay(len(events) + 1, None, max_events=max_events)
                assert batch.events, "a replay must make progress"
                events.extend(batch.events)
                complete[max_events] = batch.complete

    for events in pages.values():
        assert [e.seq for e in events] == list(range(1, 41))
        assert [e.event for e in events] == sent


def test_a_restarted_journal_keeps_its_seq_and_its_dedup(rig_factory):
    first = rig_factory()
    first.send(execution_report(n=1), execution_report(n=2), transfer(n=3))
    first.close()

    second = rig_factory()
    answers = second.send(execution_report(n=2), execution_report(n=4), transfer(n=3))

    assert answers == [
        Acknowledgement(key=execution_report(n=2).exec_id, seq=2, duplicate=True),
        Acknowledgement(key=execution_report(n=4).exec_id, seq=4, duplicate=False),
        Acknowledgement(key=transfer(n=3).transfer_id, seq=3, duplicate=True),
    ]
    batch = second.replay(1)
    assert [e.event for e in batch.events] == [
        execution_report(n=1),
        execution_report(n=2),
        transfer(n=3),
        execution_report(n=4),
    ]


def test_a_damaged_stored_event_is_refused_naming_its_seq_and_the_rest_still_replays(
    rig_factory,
):
    first = rig_factory()
    first.send(execution_report(n=1), execution_report(n=2), execution_report(n=3))
    first.close()
    with sqlite3.connect(first.config.journal.database) as db:  # a damaged file, not our write
        db.execute("UPDATE events SET frame = ? WHERE seq = 2", (b"\x93garbage",))

    second = rig_factory()
    with second.client("journal.replay") as replay:
        answer = replay.request(
            ReplayEvents(correlation_id="damaged", from_seq=1, to_seq=None, max_events=10),
            raise_on_error=False,
        )

    assert isinstance(answer, ErrorReply)
    assert "seq 2" in answer.detail and "cannot be decoded" in answer.detail
    assert [e.event for e in second.replay(3).events] == [execution_report(n=3)]  # still serving
    assert second.send(execution_report(n=4)) == [
        Acknowledgement(key=execution_report(n=4).exec_id, seq=4, duplicate=False)
    ]


def test_a_batch_still_open_when_the_journal_stops_is_committed_and_answered(rig_factory):
    journal = rig_factory(actor_class="tests.actors.test_journal:GatedJournal")
    dealer = journal.dealer()
    hold = Hold(threading.Event(), threading.Event())
    GatedJournal.pause_after = {execution_report(n=1).exec_id: hold}
    dealer.send_multipart([b"", encode(execution_report(n=1))])
    assert hold.holding.wait(5)  # report 1 is in the open batch, not committed yet
    actor = journal.actor
    stopping = threading.Thread(target=journal.stop)
    stopping.start()
    deadline = time.monotonic() + 5
    while actor.actor_inbox.empty():  # the stop is queued behind the open batch
        assert time.monotonic() < deadline, "the stop never reached the journal's inbox"
        time.sleep(0.005)
    hold.release.set()
    stopping.join(timeout=10)
    assert not stopping.is_alive()

    assert receive_answers(dealer, 1) == [
        Acknowledgement(key=execution_report(n=1).exec_id, seq=1, duplicate=False)
    ]
    with JournalStore(journal.config.journal.database) as store:
        assert store.committed_seq == 1 and store.seq_of(execution_report(n=1).exec_id) == 1


# -- the store ------------------------------------------------------------------------------


def test_store_appends_commits_and_looks_up_keys(tmp_path):
    path = tmp_path / "nested" / "journal.sqlite"
    with JournalStore(path, synchronous="FULL") as store:
        assert (store.head_seq, store.committed_seq) == (0, 0)
        assert store.append("A", T0 + 1, b"frame-a") == (1, True)
        assert store.append("B", T0 + 2, b"frame-b") == (2, True)
        assert store.seq_of("B") == 2 and store.committed_seq == 0 and store.pending == 2
        assert store.commit() == 2
        assert store.seq_of("C") is None
        assert store.append("A", T0 + 3, b"again") == (1, False)  # committed: nothing added
        assert store.append("D", T0 + 4, b"frame-d") == (3, True)
        assert store.append("D", T0 + 5, b"again") == (3, False)  # pending key: the same
        assert (store.head_seq, store.pending, store.seq_of("D")) == (3, 1, 3)
        store.rollback()
        assert store.head_seq == 2 and store.seq_of("D") is None

    with JournalStore(path) as reopened:
        assert reopened.committed_seq == 2 and reopened.last_ts_journal == T0 + 2
        rows = reopened.read(1, 2, max_events=10, max_bytes=1 << 20)
    assert [(r.seq, r.ts_journal, r.frame) for r in rows] == [
        (1, T0 + 1, b"frame-a"),
        (2, T0 + 2, b"frame-b"),
    ]
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        check.close()


def test_store_rollback_hands_the_seqs_out_again_and_keeps_nothing(tmp_path):
    with JournalStore(tmp_path / "j.sqlite") as store:
        store.append("A", T0, b"a")
        store.commit()
        store.append("B", T0 + 5, b"b")
        store.rollback()
        assert store.seq_of("B") is None and store.last_ts_journal == T0
        assert store.append("C", T0 + 6, b"c") == (2, True)


def test_store_read_is_bounded_by_count_and_bytes_but_always_progresses(tmp_path):
    with JournalStore(tmp_path / "j.sqlite") as store:
        for n in range(1, 11):
            store.append(f"K{n}", T0 + n, bytes(100))
        store.commit()

        assert [r.seq for r in store.read(2, 9, max_events=3, max_bytes=1 << 20)] == [2, 3, 4]
        by_bytes = store.read(1, 10, max_events=10, max_bytes=350, overhead_per_event=10)
        assert [r.seq for r in by_bytes] == [1, 2, 3]  # 3 × 110 fits, 4 × 110 does not
        assert [r.seq for r in store.read(5, 10, max_events=10, max_bytes=1)] == [5]
        assert store.read(7, 6, max_events=10, max_bytes=1 << 20) == []


def test_store_refuses_to_claim_a_commit_sqlite_already_rolled_back(tmp_path):
    with JournalStore(tmp_path / "j.sqlite") as store:
        store.append("A", T0, b"a")
        store._db.execute("ROLLBACK")  # what SQLite does by itself on a full disk

        with pytest.raises(JournalStoreError, match="rolled back"):
            store.commit()

        assert store.head_seq == 0 and store.seq_of("A") is None


def test_store_refuses_a_database_that_is_not_a_journal(tmp_path):
    path = tmp_path / "other.sqlite"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, payload TEXT)")
    other.commit()
    other.close()

    with pytest.raises(JournalStoreError, match="columns"):
        JournalStore(path)
