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

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import msgpack
import pytest

from actors.runtime.actor import Publish, Serve
from actors.runtime.host import resolve_actor_class
from messages import (
    CashChanged,
    CheckOrder,
    ErrorCode,
    ErrorReply,
    GetCashState,
    GetDrawdownState,
    GetPortfolioState,
    GetPositionsState,
    GetPrices,
    Ping,
    Pong,
    ReplayEvents,
    Side,
    encode,
)
from messages.base import Message
from service.config import load_config
from service.registry import ACTOR_CLASSES
from tests.support.factories import events_committed, sequenced, transfer
from tests.support.group import ROOT
from tests.support.shipped import (
    ShippedGroup,
    deposit,
    shipped_config,
    started_group,
)

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

TS0 = 1_700_000_000_000_000_000


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
@pytest.fixture(scope="module")
def group(tmp_path_factory) -> Iterator[ShippedGroup]:
    """The shipped layout on the paper exchange; only the test moves the books."""
    path = shipped_config(
        tmp_path_factory.mktemp("shipped"), log_level="INFO", execution={"demo_orders": False}
    )
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
    forged = transfer(
        transfer_id=f"L{seq:05d}-FORGED-{asset}",
        asset=asset,
        amount=amount,
        unit_price=unit_price,
        ts_event=TS0,
    )
    return events_committed(sequenced(forged, seq=seq, ts_journal=TS0))


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
def books(tmp_path) -> Iterator[ShippedGroup]:
    """The journal, positions and books processes of the shipped layout alone (no exchange
    is used)."""
    path = shipped_config(
        tmp_path,
        processes={
            "journal": ["journal"],
            "positions": ["positions"],
            "books": ["cash", "portfolio"],
        },
        log_level="INFO",
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
