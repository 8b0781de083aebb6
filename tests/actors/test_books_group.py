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
    ExecutionReport,
    GetPortfolioState,
    OrderStatus,
    PortfolioState,
    Side,
    Transfer,
)
from service.config import load_config
from service.registry import ACTOR_CLASSES
from tests.support.group import write_config

BOOKS_ENDPOINTS = REPLAY_ENDPOINTS
BOOKS_ACTORS = list(REPLAY_ACTORS)


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


def fill(n, side="buy", qty="0.5", price="60000", fee="12", pair="XBT/USD", status=None):
    return ExecutionReport(
        exec_id=f"T{n:05d}-AAAAA-BBBBBB",
        order_id="OABCDE-FGHIJ-KLMNOP",
        pair=pair,
        side=Side(side),
        status=status or OrderStatus.FILLED,
        last_qty=Decimal(qty),
        last_price=Decimal(price),
        fee=Decimal(fee),
        fee_currency="USD",
        quote_rate=None,
        ts_event=1_700_000_000_000_000_000 + n,
        ts_init=1_700_000_000_000_000_000 + n,
    )


def deposit(n, amount="100000", asset="USD"):
    return Transfer(
        transfer_id=f"L{n:05d}-DEPOS-ITXXXX",
        asset=asset,
        amount=Decimal(amount),
        ts_event=1_700_000_000_000_000_000 + n,
        ts_init=1_700_000_000_000_000_000 + n,
    )


def test_fills_reach_one_consistent_snapshot(books):
    acks = books.send(deposit(1), fill(2), fill(3, side="sell", qty="0.2", price="61000"))
    assert [a.seq for a in acks] == [1, 2, 3]
    state = books.state_at(3)
    assert state.seq == 3
    assert state.cash == {"USD": Decimal("100000") - Decimal("30000") - 12 + Decimal("12200") - 12}
    xbt = state.positions["XBT"]
    assert xbt.quantity == Decimal("0.3") and xbt.average_cost == Decimal("60000")
    assert xbt.realized_pnl == Decimal("200") - 24 and xbt.fees == Decimal("24")


def test_a_duplicate_is_acknowledged_once_and_booked_once(books):
    first, again = books.send(fill(1), fill(1))
    assert isinstance(again, Acknowledgement) and again.duplicate and again.seq == first.seq
    assert books.state_at(1).positions["XBT"].quantity == Decimal("0.5")


def test_a_cancel_after_partial_fills_keeps_the_fills_and_moves_no_money(books):
    cancel = ExecutionReport(
        exec_id="OABCDE-FGHIJ-KLMNOP:CANCELED",
        order_id="OABCDE-FGHIJ-KLMNOP",
        pair="XBT/USD",
        side=Side.BUY,
        status=OrderStatus.CANCELED,
        last_qty=Decimal(0),
        last_price=Decimal(0),
        fee=Decimal(0),
        fee_currency="USD",
        quote_rate=None,
        ts_event=1_700_000_000_000_000_003,
        ts_init=1_700_000_000_000_000_003,
    )
    books.send(deposit(1), fill(2, status=OrderStatus.PARTIALLY_FILLED), cancel)
    state = books.state_at(3)
    assert state.positions["XBT"].quantity == Decimal("0.5")
    assert state.cash["USD"] == Decimal("100000") - Decimal("30000") - 12


def test_a_bad_event_is_refused_and_the_books_keep_serving(books):
    refused, accepted = books.send(fill(1, pair="ETH/XBT"), fill(2))
    assert isinstance(refused, DeliveryRefused) and "quote_rate" in refused.reason
    assert accepted.seq == 1
    assert books.state_at(1).positions["XBT"].quantity == Decimal("0.5")


def test_a_restart_resumes_from_snapshots_and_the_journal(books):
    books.send(deposit(1), *(fill(n) for n in range(2, 12)))
    before = books.state_at(11)
    books.stop()
    books.start()
    books.send(fill(12))
    after = books.state_at(12)
    assert after.positions["XBT"].quantity == before.positions["XBT"].quantity + Decimal("0.5")
    assert after.cash["USD"] == before.cash["USD"] - Decimal("30012")
