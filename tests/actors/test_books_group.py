"""The books through the real actors: journal → cash, positions → portfolio, in one snapshot."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import zmq

from actors.runtime.client import RemoteError, RequestClient
from actors.runtime.host import ActorHost
from console.replay import REPLAY_ACTORS, REPLAY_ENDPOINTS
from messages import (
    Acknowledgement,
    DeliveryRefused,
    GetPortfolioState,
    OrderStatus,
    PortfolioState,
)
from service.config import load_config
from service.registry import ACTOR_CLASSES
from tests.support.factories import execution_report, fill, transfer
from tests.support.group import write_config

BOOKS_ENDPOINTS = REPLAY_ENDPOINTS
BOOKS_ACTORS = list(REPLAY_ACTORS)
HALF_XBT = {"last_qty": "0.5", "last_price": "60000", "fee": "12"}
"""The fill the tests book: 0.5 XBT at 60,000 USD, 12 USD fee (30,012 USD a buy)."""


def books_config(tmp_path, scheme: str = "inproc"):
    if scheme == "inproc":
        endpoints = {name: f"inproc://{name}" for name in BOOKS_ENDPOINTS}
    else:
        endpoints = {name: f"ipc://{tmp_path}/run/{name}.sock" for name in BOOKS_ENDPOINTS}
    return write_config(
        tmp_path,
        processes={"books": BOOKS_ACTORS},
        endpoints=endpoints,
        extra={"actor_classes": {}, "journal": {"synchronous": "NORMAL"}},
    )


class Books:
    def __init__(self, tmp_path) -> None:
        self.config = load_config(books_config(tmp_path))
        self.context = zmq.Context()
        self.host: ActorHost | None = None

    def start(self) -> None:
        self.host = ActorHost(self.config, "books", registry=ACTOR_CLASSES, context=self.context)
        self.host.start()

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
            self.host = None

    def client(self, endpoint: str) -> RequestClient:
        return RequestClient(
            self.context, endpoint, self.config.endpoints[endpoint], self.config.transport
        )

    def send(self, *events) -> list:
        with self.client("journal.ingest") as journal:
            return [journal.request(event) for event in events]

    def state(self) -> PortfolioState | None:
        with self.client("portfolio.query") as portfolio:
            try:
                return portfolio.request(GetPortfolioState(correlation_id="q"))
            except RemoteError:
                return None

    def state_at(self, seq: int, timeout: float = 10.0) -> PortfolioState:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.state()
            if state is not None and state.seq >= seq:
                return state
            time.sleep(0.02)
        raise AssertionError(f"portfolio did not reach seq {seq}: {state}")


@pytest.fixture
def books(tmp_path) -> Iterator[Books]:
    books = Books(tmp_path)
    books.start()
    try:
        yield books
    finally:
        books.stop()
        books.context.destroy(linger=0)


def test_fills_reach_one_consistent_snapshot(books):
    acks = books.send(
        transfer(n=1, amount="100000"),
        fill(n=2, **HALF_XBT),
        fill(n=3, side="sell", last_qty="0.2", last_price="61000", fee="12"),
    )
    assert [a.seq for a in acks] == [1, 2, 3]
    state = books.state_at(3)
    assert state.seq == 3
    assert state.cash == {"USD": Decimal("100000") - Decimal("30000") - 12 + Decimal("12200") - 12}
    xbt = state.positions["XBT"]
    assert xbt.quantity == Decimal("0.3") and xbt.average_cost == Decimal("60000")
    assert xbt.realized_pnl == Decimal("200") - 24 and xbt.fees == Decimal("24")


def test_a_duplicate_is_acknowledged_once_and_booked_once(books):
    first, again = books.send(
        fill(n=1, **HALF_XBT),
        fill(n=1, **HALF_XBT),
    )
    assert isinstance(again, Acknowledgement) and again.duplicate and again.seq == first.seq
    assert books.state_at(1).positions["XBT"].quantity == Decimal("0.5")


def test_a_cancel_after_partial_fills_keeps_the_fills_and_moves_no_money(books):
    cancel = execution_report(
        n=3,
        exec_id="OABCDE-FGHIJ-KLMNOP:CANCELED",
        status=OrderStatus.CANCELED,
        last_qty=0,
        last_price=0,
        fee=0,
    )
    books.send(
        transfer(n=1, amount="100000"),
        fill(n=2, status=OrderStatus.PARTIALLY_FILLED, **HALF_XBT),
        cancel,
    )
    state = books.state_at(3)
    assert state.positions["XBT"].quantity == Decimal("0.5")
    assert state.cash["USD"] == Decimal("100000") - Decimal("30000") - 12


def test_a_bad_event_is_refused_and_the_books_keep_serving(books):
    refused, accepted = books.send(
        fill(n=1, pair="ETH/XBT", fee_currency="USD", **HALF_XBT),
        fill(n=2, **HALF_XBT),
    )
    assert isinstance(refused, DeliveryRefused) and "quote_rate" in refused.reason
    assert accepted.seq == 1
    assert books.state_at(1).positions["XBT"].quantity == Decimal("0.5")


def test_a_restart_resumes_from_snapshots_and_the_journal(books):
    books.send(
        transfer(n=1, amount="100000"),
        *(fill(n=n, **HALF_XBT) for n in range(2, 12)),
    )
    before = books.state_at(11)
    books.stop()
    books.start()
    books.send(fill(n=12, **HALF_XBT))
    after = books.state_at(12)
    assert after.positions["XBT"].quantity == before.positions["XBT"].quantity + Decimal("0.5")
    assert after.cash["USD"] == before.cash["USD"] - Decimal("30012")
