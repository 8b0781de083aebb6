"""Malformed messages sent to every endpoint are refused and counted; the group keeps serving.

The group runs under runner.py with the shipped layout and endpoints (books, risk and feed
processes, the paper exchange) in a run directory of its own, demo orders off so that only
the test moves the books. To every endpoint an actor serves (a ROUTER) the test sends random
bytes, a truncated frame, an unknown type tag, a known type with a field that breaks its
contract, and a valid message of a type the endpoint does not serve. Each must get an
`ErrorReply`, raise the serving actor's `malformed` or `failed` counter (as `GetProcessHealth`
shows it) by exactly one, and leave the endpoint answering and the books working: a deposit
sent afterwards is journaled and shows in the portfolio.

Endpoints an actor publishes on (PUB) cannot receive anything: ZeroMQ has no way to send to a
PUB socket, so they are listed only to check that every endpoint is accounted for.

A last group of tests sends each books endpoint a message its actor does handle, but from
another socket (a journal event to a query endpoint, say): a query endpoint must not become a
back door into the books.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import msgpack
import pytest
import yaml
import zmq

from actors.runtime.actor import Publish, RequestFailed, Serve
from actors.runtime.client import RemoteError, RequestClient
from actors.runtime.host import resolve_actor_class
from messages import (
    Acknowledgement,
    CashChanged,
    CheckOrder,
    ErrorCode,
    ErrorReply,
    EventBatch,
    GetCashState,
    GetDrawdownState,
    GetPortfolioState,
    GetPositionsState,
    GetPrices,
    GetProcessHealth,
    Ping,
    Pong,
    PortfolioState,
    ProcessHealth,
    ReplayEvents,
    SequencedEvent,
    Side,
    Transfer,
    decode,
    encode,
)
from messages.base import Message
from messages.journal import EventsCommitted
from service.config import ServiceConfig, load_config
from service.registry import ACTOR_CLASSES
from tests.support.group import ROOT, RunningGroup, group_pids, wait_for

SERVED = {  # endpoint -> (process, actor) in the shipped layout
    "journal.ingest": ("journal", "journal"),
    "journal.replay": ("journal", "journal"),
    "cash.query": ("books", "cash"),
    "positions.query": ("positions", "positions"),
    "portfolio.query": ("books", "portfolio"),
    "risk.query": ("risk", "risk"),
    "execution.query": ("feed", "execution"),
    "prices.query": ("market", "prices"),
    "drawdown.query": ("market", "drawdown"),
    "reconciliation.query": ("reconcile", "reconciliation"),
}
PUBLISHED = {
    "journal.events": "journal",
    "cash.events": "cash",
    "positions.events": "positions",
    "prices.events": "prices",
    "drawdown.events": "drawdown",
    "reconciliation.events": "reconciliation",
}

FOREIGN_REQUEST = {  # endpoint -> a request that belongs to another endpoint
    "journal.ingest": GetPortfolioState(correlation_id="wrong-door-1"),
    "journal.replay": GetCashState(correlation_id="wrong-door-2"),
    "cash.query": GetPositionsState(correlation_id="wrong-door-3"),
    "positions.query": GetCashState(correlation_id="wrong-door-4"),
    "portfolio.query": CheckOrder(
        correlation_id="wrong-door-5",
        pair="XBT/USD",
        side=Side.BUY,
        quantity=Decimal("0.1"),
        price=Decimal("60000"),
    ),
    "risk.query": GetPortfolioState(correlation_id="wrong-door-6"),
    "execution.query": GetPortfolioState(correlation_id="wrong-door-7"),
    "prices.query": GetDrawdownState(correlation_id="wrong-door-8"),
    "drawdown.query": GetPrices(correlation_id="wrong-door-9"),
    "reconciliation.query": GetDrawdownState(correlation_id="wrong-door-10"),
}

REPLY_TIMEOUT_MS = 5000
TS0 = 1_700_000_000_000_000_000
_deposit_numbers = itertools.count(1)


def deposit(amount: str = "1000") -> Transfer:
    """A USD deposit with an id of its own."""
    n = next(_deposit_numbers)
    return Transfer(
        transfer_id=f"L{n:05d}-MALFORMED-TEST",
        asset="USD",
        amount=Decimal(amount),
        ts_event=TS0 + n,
        ts_init=TS0 + n,
    )


# -- malformed frames -------------------------------------------------------------------------
def _wire(message: Message) -> tuple[str, int, dict]:
    tag, version, fields = msgpack.unpackb(encode(message), raw=False)
    return tag, version, fields


def random_bytes(endpoint: str) -> bytes:
    return random.Random(endpoint).randbytes(64)


def truncated_frame(endpoint: str) -> bytes:
    return encode(deposit())[:-7]


def unknown_type_tag(endpoint: str) -> bytes:
    return msgpack.packb(["NoSuchMessage", 1, {"correlation_id": "x"}])


def field_breaking_its_contract(endpoint: str) -> bytes:
    tag, version, fields = _wire(deposit())
    return msgpack.packb([tag, version, {**fields, "amount": "a lot"}])


@dataclass(frozen=True)
class Garbage:
    """One kind of bad input: how to build it, the counter it raises, what the reply says."""

    build: Callable[[str], bytes]
    counter: str  # "malformed" (the codec refused it) or "failed" (the actor refused it)
    codes: frozenset[ErrorCode]
    detail: str  # a fragment the ErrorReply's detail must contain ("" for any)


GARBAGE = {
    "random bytes": Garbage(random_bytes, "malformed", frozenset({ErrorCode.MALFORMED}), ""),
    "truncated frame": Garbage(
        truncated_frame, "malformed", frozenset({ErrorCode.MALFORMED}), "msgpack"
    ),
    "unknown type tag": Garbage(
        unknown_type_tag,
        "malformed",
        frozenset({ErrorCode.MALFORMED, ErrorCode.UNKNOWN_TYPE}),
        "NoSuchMessage",
    ),
    "field breaking its contract": Garbage(
        field_breaking_its_contract, "malformed", frozenset({ErrorCode.MALFORMED}), "amount"
    ),
    "type the endpoint does not serve": Garbage(
        lambda endpoint: encode(FOREIGN_REQUEST[endpoint]),
        "failed",
        frozenset({ErrorCode.REFUSED}),
        "does not handle",
    ),
}


# -- the group --------------------------------------------------------------------------------
def shipped_config(
    directory: Path, processes: dict[str, list[str]] | None = None, **changes: dict
) -> Path:
    """The shipped config.yaml with its run directory under `directory`, sections changed,
    and optionally only some of its processes."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["service"]["run_dir"] = str(directory / "run")
    if processes is not None:
        config["processes"] = {name: {"actors": actors} for name, actors in processes.items()}
    config["service"]["log_level"] = "INFO"  # the children's console is an unread pipe
    config["metrics"]["port"] = 0  # a free port: groups of consecutive tests never collide
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section].update(values)
        else:
            config[section] = values
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Group:
    """A running group, its config, and the test's ZeroMQ context."""

    config: ServiceConfig
    context: zmq.Context

    def client(self, endpoint: str) -> RequestClient:
        return RequestClient(
            self.context,
            endpoint,
            self.config.endpoints[endpoint],
            self.config.transport,
            timeout_ms=REPLY_TIMEOUT_MS,
            retries=0,
        )

    def head(self) -> int:
        """The journal's head seq once the portfolio has caught up with it."""
        return self.portfolio_at(self.journal_head()).seq

    def send_raw(
        self, endpoint: str, frame: bytes, timeout_ms: int = REPLY_TIMEOUT_MS
    ) -> Message | None:
        """Send one frame as a request; the decoded answer, or None if none came in time."""
        sock = self.context.socket(zmq.DEALER)
        sock.linger = 0
        try:
            sock.connect(self.config.endpoints[endpoint])
            sock.send_multipart([b"", frame])
            if not sock.poll(timeout_ms, zmq.POLLIN):
                return None
            return decode(sock.recv_multipart()[-1])
        finally:
            sock.close(linger=0)

    def pong(self, process: str, actor: str) -> Pong:
        """The actor's counters, through its process's control endpoint."""
        with RequestClient(
            self.context,
            f"{process}.control",
            self.config.control_endpoint(process),
            self.config.transport,
            timeout_ms=REPLY_TIMEOUT_MS,
            retries=1,
        ) as control:
            health = control.request(GetProcessHealth(correlation_id="malformed-test-health"))
        assert isinstance(health, ProcessHealth) and health.ready
        return next(pong for pong in health.actors if pong.actor == actor)

    def portfolio(self) -> PortfolioState | None:
        with self.client("portfolio.query") as portfolio:
            try:
                state = portfolio.request(GetPortfolioState(correlation_id="malformed-test"))
            except (RequestFailed, RemoteError):
                return None  # still catching up
        assert isinstance(state, PortfolioState)
        return state

    def portfolio_at(self, seq: int) -> PortfolioState:
        def reached() -> PortfolioState | None:
            state = self.portfolio()
            return state if state is not None and state.seq >= seq else None

        return wait_for(reached, timeout=20, interval=0.05)

    def journal_head(self) -> int:
        """The journal's committed head seq (a replay of no events: to_seq 0)."""
        with self.client("journal.replay") as journal:
            batch = journal.request(
                ReplayEvents(
                    correlation_id="malformed-test-head", from_seq=1, to_seq=0, max_events=1
                )
            )
        assert isinstance(batch, EventBatch)
        return batch.head_seq

    def assert_books_keep_serving(self) -> None:
        """A deposit is journaled and shows in the portfolio, exactly once, at its seq."""
        before = self.portfolio_at(self.journal_head())
        money = deposit("1234.5")
        with self.client("journal.ingest") as journal:
            ack = journal.request(money)
        assert isinstance(ack, Acknowledgement) and not ack.duplicate
        assert ack.seq == before.seq + 1
        after = self.portfolio_at(ack.seq)
        assert after.seq == ack.seq
        assert after.cash["USD"] == before.cash.get("USD", Decimal(0)) + Decimal("1234.5")
        assert after.positions == before.positions


def started_group(path: Path) -> Iterator[Group]:
    """Start the group of `path`, yield it once ready, then stop it and check that no process
    of it is left."""
    running = RunningGroup(path)
    started: Group | None = None
    try:
        running.wait_ready(timeout=40)
        started = Group(load_config(path), zmq.Context())
        yield started
    finally:
        if started is not None:
            started.context.destroy(linger=0)
        assert running.stop() == 0, "the group did not stop cleanly"
        assert group_pids(str(path)) == [], "a process of the group outlived the test"


@pytest.fixture(scope="module")
def group(tmp_path_factory) -> Iterator[Group]:
    """The shipped layout on the paper exchange; only the test moves the books."""
    path = shipped_config(tmp_path_factory.mktemp("shipped"), execution={"demo_orders": False})
    yield from started_group(path)


# -- the tests --------------------------------------------------------------------------------
def test_every_endpoint_is_covered():
    """The tables above name every endpoint the shipped layout's actors bind, and only those."""
    config = load_config(ROOT / "config.yaml")
    served, published = {}, {}
    for process, settings in config.processes.items():
        for actor in settings.actors:
            cls = resolve_actor_class(actor, config.actor_classes, ACTOR_CLASSES)
            # sockets() is a declaration; read it without starting the actor.
            declared = object.__new__(cls)
            declared.config = config
            for spec in cls.sockets(declared):
                if isinstance(spec, Serve):
                    served[spec.endpoint] = (process, actor)
                elif isinstance(spec, Publish):
                    published[spec.endpoint] = actor
    assert served == SERVED
    assert published == PUBLISHED
    assert set(SERVED) | set(PUBLISHED) == set(config.endpoints)


@pytest.mark.parametrize("kind", list(GARBAGE))
@pytest.mark.parametrize("endpoint", list(SERVED))
def test_bad_input_is_refused_and_counted_and_the_group_keeps_serving(group, endpoint, kind):
    garbage = GARBAGE[kind]
    process, actor = SERVED[endpoint]
    before = group.pong(process, actor)

    reply = group.send_raw(endpoint, garbage.build(endpoint))

    assert isinstance(reply, ErrorReply), f"{endpoint} answered {kind} with {reply!r}"
    assert reply.code in garbage.codes
    assert garbage.detail in reply.detail
    after = group.pong(process, actor)
    other = "failed" if garbage.counter == "malformed" else "malformed"
    assert getattr(after, garbage.counter) == getattr(before, garbage.counter) + 1
    assert getattr(after, other) == getattr(before, other)
    assert after.pid == before.pid, f"{actor}'s process restarted"
    with group.client(endpoint) as same_endpoint:
        pong = same_endpoint.request(Ping(correlation_id="still-there", sent_ns=time.time_ns()))
    assert isinstance(pong, Pong) and pong.actor == actor
    group.assert_books_keep_serving()


def test_an_oversized_frame_is_refused_and_counted(group):
    before = group.pong("journal", "journal")
    frame = b"\x00" * (group.config.transport.max_frame_bytes + 1)
    reply = group.send_raw("journal.ingest", frame)
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.MALFORMED
    assert "exceeds the limit" in reply.detail
    assert group.pong("journal", "journal").malformed == before.malformed + 1


def test_an_oversized_frame_leaves_the_group_serving(group):
    frame = b"\x00" * (group.config.transport.max_frame_bytes + 1)
    for endpoint in SERVED:
        group.send_raw(endpoint, frame, timeout_ms=500)
    for endpoint, (_, actor) in SERVED.items():
        with group.client(endpoint) as same_endpoint:
            pong = same_endpoint.request(Ping(correlation_id="after-big", sent_ns=time.time_ns()))
        assert isinstance(pong, Pong) and pong.actor == actor
    group.assert_books_keep_serving()


# -- back doors -------------------------------------------------------------------------------
BACK_DOOR_TIMEOUT_MS = 2000
"""An idle group answers in milliseconds; waiting longer only slows the expected failures."""


def forged_event(seq: int, asset: str, amount: str, unit_price: str | None = None) -> Message:
    transfer = Transfer(
        transfer_id=f"L{seq:05d}-FORGED-{asset}",
        asset=asset,
        amount=Decimal(amount),
        unit_price=None if unit_price is None else Decimal(unit_price),
        ts_event=TS0,
        ts_init=TS0,
    )
    return EventsCommitted(
        first_seq=seq, seq=seq, events=(SequencedEvent(seq=seq, ts_journal=TS0, event=transfer),)
    )


BACK_DOORS: dict[str, Callable[[int], Message]] = {
    # endpoint -> a message its actor takes on another socket, given the journal's head seq
    "cash.query": lambda head: forged_event(head + 1, "USD", "1000000"),
    "positions.query": lambda head: forged_event(head + 1, "XBT", "10", unit_price="60000"),
    "portfolio.query": lambda head: CashChanged(
        first_seq=head + 1, seq=head + 1, balances={"USD": Decimal("1E9")}
    ),
    "journal.replay": lambda head: deposit("777"),
    "journal.ingest": lambda head: ReplayEvents(
        correlation_id="back-door", from_seq=1, to_seq=None, max_events=10
    ),
}


@pytest.fixture
def books(tmp_path) -> Iterator[Group]:
    """The journal, positions and books processes of the shipped layout alone (no exchange
    is used)."""
    path = shipped_config(
        tmp_path,
        processes={
            "journal": ["journal"],
            "positions": ["positions"],
            "books": ["cash", "portfolio"],
        },
        exchange={"mode": "live"},
    )
    yield from started_group(path)


@pytest.mark.parametrize("endpoint", list(BACK_DOORS))
def test_a_message_its_actor_takes_elsewhere_is_refused_on_a_serve_endpoint(books, endpoint):
    process, actor = SERVED[endpoint]
    books.assert_books_keep_serving()  # the books hold something at a known seq
    head = books.head()
    before = books.pong(process, actor)

    reply = books.send_raw(endpoint, encode(BACK_DOORS[endpoint](head)), BACK_DOOR_TIMEOUT_MS)

    assert isinstance(reply, ErrorReply), f"{endpoint} answered {reply!r}"
    assert reply.code is ErrorCode.REFUSED
    assert books.pong(process, actor).failed == before.failed + 1
    assert books.journal_head() == head, "the journal took an event through its replay door"
    books.assert_books_keep_serving()
