"""The execution actor against a real paper exchange, a recording journal and a stub risk actor.

Every test runs real actors (`ActorHost`) and a real `PaperExchangeServer` (no background
ticking: prices move only when a test moves them). The journal stub deduplicates by exec_id,
records every arrival (so resends can be counted) and can hold back its first answers; the
risk stub approves, denies or stays silent. The pure parts (fee from the ledger, order
completion, demo planning, the resume file) are tested directly at the end.
"""

from __future__ import annotations

import decimal
import json
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import zmq

from actors.exchange_feed import MarketSeen
from actors.execution import (
    RESUME_OVERLAP_NS,
    ExecutionStats,
    GetExecutionStats,
    RequestCancel,
    ResumeStateError,
    SubmitOrder,
    load_resume_point,
    plan_demo_order,
    save_resume_point,
)
from actors.runtime.actor import Inbound, Serve, ServiceActor, SocketSpec, handles
from actors.runtime.client import RequestClient
from actors.runtime.host import ActorHost
from kraken.joins import completes_order, fee_from_ledger
from kraken.models import LedgerEntry, Order, Ticker, Trade
from kraken.names import KrakenNames
from kraken.paper import PaperExchangeServer, PaperSettings
from messages import (
    Acknowledgement,
    CheckOrder,
    ExecutionReport,
    OrderStatus,
    ReplayEvents,
    RiskDecision,
    Side,
)
from service.config import ExecutionSettings, load_config
from service.registry import ACTOR_CLASSES
from tests.support.group import wait_for, write_config

HOUR_NS = 3600 * 1_000_000_000
XBT_USD = "XXBTZUSD"
MONEY = decimal.Context(prec=40)

# ---------------------------------------------------------------------------- stub actors


@dataclass(frozen=True)
class GetJournalRecord:
    """Ask the recording journal what it holds."""


@dataclass(frozen=True)
class JournalRecord:
    events: tuple[ExecutionReport, ...]  # accepted once each, in arrival order
    arrivals: dict[str, int]  # every send that arrived, resends included

    def by_id(self) -> dict[str, ExecutionReport]:
        return {event.exec_id: event for event in self.events}


@dataclass(frozen=True)
class HoldBackAcks:
    """Leave the first `count` arrivals of each exec_id unanswered."""

    count: int


class RecordingJournal(ServiceActor):
    """journal.ingest for tests: dedup by exec_id, acknowledge, record every arrival."""

    def sockets(self) -> Iterable[SocketSpec]:
        return (Serve("journal.ingest"),)

    def started(self) -> None:
        self.events: dict[str, ExecutionReport] = {}
        self.arrivals: Counter[str] = Counter()
        self.hold_back = 0

    @handles(ExecutionReport, on="journal.ingest")
    def on_report(self, report: ExecutionReport, inbound: Inbound | None):
        self.arrivals[report.exec_id] += 1
        if self.arrivals[report.exec_id] <= self.hold_back:
            return None
        duplicate = report.exec_id in self.events
        self.events.setdefault(report.exec_id, report)
        seq = list(self.events).index(report.exec_id) + 1
        return Acknowledgement(key=report.exec_id, seq=seq, duplicate=duplicate)

    @handles(HoldBackAcks)
    def on_hold_back(self, command: HoldBackAcks, inbound: Inbound | None) -> None:
        self.hold_back = command.count

    @handles(GetJournalRecord)
    def on_get(self, request: GetJournalRecord, inbound: Inbound | None) -> JournalRecord:
        return JournalRecord(events=tuple(self.events.values()), arrivals=dict(self.arrivals))


@dataclass(frozen=True)
class SetRiskMode:
    mode: str  # approve, deny or silent


@dataclass(frozen=True)
class GetRiskChecks:
    pass


class StubRisk(ServiceActor):
    """risk.query for tests: approves, denies or never answers; records every CheckOrder."""

    def sockets(self) -> Iterable[SocketSpec]:
        return (Serve("risk.query"),)

    def started(self) -> None:
        self.mode = "approve"
        self.checks: list[CheckOrder] = []

    @handles(CheckOrder, on="risk.query")
    def on_check(self, check: CheckOrder, inbound: Inbound | None):
        self.checks.append(check)
        if self.mode == "silent":
            return None
        approved = self.mode == "approve"
        return RiskDecision(
            correlation_id=check.correlation_id,
            approved=approved,
            reason="" if approved else "stub says no",
            state_seq=0,
            state_age_ms=0,
        )

    @handles(SetRiskMode)
    def on_mode(self, command: SetRiskMode, inbound: Inbound | None) -> None:
        self.mode = command.mode

    @handles(GetRiskChecks)
    def on_get(self, request: GetRiskChecks, inbound: Inbound | None) -> tuple[CheckOrder, ...]:
        return tuple(self.checks)


# ---------------------------------------------------------------------------- the rig


class ShiftedClock:
    """Wall time plus an offset the test moves (the paper exchange's clock)."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset_ns


class Rig:
    """A paper exchange, the books process (journal and risk stubs) and the execution
    process, each started and stopped on its own; `close()` stops whatever runs."""

    def __init__(
        self,
        tmp_path: Path,
        journal: str = "tests.actors.test_execution:RecordingJournal",
        **execution: object,
    ) -> None:
        self.clock = ShiftedClock()
        self.state_file = tmp_path / "execution.json"
        self.server = PaperExchangeServer(
            PaperSettings(tick_interval_seconds=0, seed=11), clock=self.clock
        )
        self.server.start()
        try:
            self.config = self._configure(tmp_path, journal, execution)
        except BaseException:
            self.server.stop()
            raise
        self.context = zmq.Context()
        self.books: ActorHost | None = None
        self.execution: ActorHost | None = None

    def _configure(self, tmp_path: Path, journal: str, execution: dict):
        key_file = tmp_path / "kraken.key"
        key_file.write_text(f"{self.server.key}\n{self.server.secret}\n")
        key_file.chmod(0o600)
        mode = execution.pop("mode", "paper")
        path = write_config(
            tmp_path,
            processes={"books": ["journal", "risk"], "exec": ["execution"]},
            endpoints={
                "journal.ingest": f"ipc://{tmp_path}/j.sock",
                "journal.events": "inproc://journal.events",
                "journal.replay": "inproc://journal.replay",
                "risk.query": "inproc://risk.query",
                "execution.query": f"ipc://{tmp_path}/x.sock",
            },
            exchange_mode=mode,
            extra={
                "transport": {"request_timeout_ms": 200, "request_retries": 1},
                "actor_classes": {
                    "execution": "actors.execution:ExecutionActor",
                    "journal": journal,
                    "risk": "tests.actors.test_execution:StubRisk",
                },
                "journal": {"synchronous": "NORMAL"},
                "exchange": {
                    "url": self.server.url,
                    "timeout_seconds": 5,
                    "key_file": str(key_file),
                },
                "execution": {
                    "poll_interval_seconds": 0.05,
                    "state_file": str(self.state_file),
                    "demo_orders": False,
                    **execution,
                },
            },
        )
        return load_config(path)

    def start_books(self) -> None:
        self.books = ActorHost(self.config, "books", registry=ACTOR_CLASSES, context=self.context)
        self.books.start()

    def start_execution(self) -> None:
        self.execution = ActorHost(
            self.config, "exec", registry=ACTOR_CLASSES, context=self.context
        )
        self.execution.start()

    def stop_execution(self) -> None:
        if self.execution is not None:
            self.execution.stop()
            self.execution = None

    def close(self) -> None:
        try:
            self.stop_execution()
            if self.books is not None:
                self.books.stop()
        finally:
            self.context.destroy(linger=0)
            self.server.stop()

    # -- asking the actors ------------------------------------------------------------------
    def submit(self, order: SubmitOrder) -> None:
        self.execution.refs["execution"].tell(order)

    def stats(self) -> ExecutionStats:
        return self.execution.refs["execution"].ask(GetExecutionStats(), timeout=5)

    def journal(self) -> JournalRecord:
        return self.books.refs["journal"].ask(GetJournalRecord(), timeout=5)

    def risk_checks(self) -> tuple[CheckOrder, ...]:
        return self.books.refs["risk"].ask(GetRiskChecks(), timeout=5)

    def set_risk(self, mode: str) -> None:
        self.books.refs["risk"].ask(SetRiskMode(mode), timeout=5)

    def wait_reported(self, exec_ids: Iterable[str], timeout: float = 10.0) -> JournalRecord:
        """Wait until the journal holds every exec_id and nothing waits for an answer."""
        wanted = set(exec_ids)

        def done() -> JournalRecord | None:
            record = self.journal()
            if wanted <= set(record.by_id()) and self.stats().unacknowledged == 0:
                return record
            return None

        return wait_for(done, timeout=timeout)

    # -- the exchange ------------------------------------------------------------------------
    def external_trade(self, pair: str, side: str, volume: str) -> dict:
        answer = requests.post(
            f"{self.server.url}/admin/trade",
            json={"pair": pair, "side": side, "volume": volume},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def trades_of(self, order_txid: str) -> list:
        """The paper exchange's trades of an order, oldest first."""
        return [t for t in reversed(self.server.exchange.trades()) if t.order_txid == order_txid]

    def ledger_legs(self, trade_txid: str) -> list:
        return [e for e in self.server.exchange.ledger_entries() if e.refid == trade_txid]


@pytest.fixture
def rig(tmp_path) -> Iterator[Rig]:
    running = Rig(tmp_path)
    try:
        running.start_books()
        running.start_execution()
        yield running
    finally:
        running.close()


def placed_order_txid(rig: Rig) -> str:
    """The txid of the only order the service placed (waits for it)."""
    wait_for(lambda: rig.stats().orders_placed == 1)
    orders = rig.server.exchange.open_orders() + rig.server.exchange.finished_orders()
    assert len(orders) == 1
    return orders[0].txid


# ---------------------------------------------------------------------------- fills


def test_a_market_order_becomes_one_fill_report_per_trade_with_the_exchanges_numbers(rig):
    rig.submit(
        SubmitOrder(
            pair="XBT/USD",
            side=Side.BUY,
            ordertype="market",
            volume=Decimal("0.05"),
            reference_price=Decimal("60000"),
        )
    )
    order_txid = placed_order_txid(rig)
    trades = rig.trades_of(order_txid)
    assert trades
    record = rig.wait_reported(t.txid for t in trades)

    [check] = rig.risk_checks()
    assert (check.pair, check.side, check.quantity) == ("XBT/USD", Side.BUY, Decimal("0.05"))
    reports = record.by_id()
    for index, trade in enumerate(trades):
        report = reports[trade.txid]
        assert report.order_id == order_txid
        assert (report.pair, report.side) == ("XBT/USD", Side.BUY)
        assert (report.last_qty, report.last_price) == (trade.volume, trade.price)
        assert (report.cost, report.fee, report.fee_currency) == (trade.cost, trade.fee, "USD")
        assert report.fee > 0 and report.quote_rate is None
        assert 0 <= trade.time_ns - report.ts_event < 100_000  # Kraken's 100 µs grain
        last = index == len(trades) - 1
        expected = OrderStatus.FILLED if last else OrderStatus.PARTIALLY_FILLED
        assert report.status is expected
    assert sum(reports[t.txid].last_qty for t in trades) == Decimal("0.05")


def test_an_fcib_fill_reports_the_fee_in_base_as_the_ledger_charged_it(rig):
    rig.submit(
        SubmitOrder(
            pair="XBT/USD",
            side=Side.BUY,
            ordertype="market",
            volume=Decimal("0.05"),
            reference_price=Decimal("60000"),
            oflags=("fcib",),
        )
    )
    trades = rig.trades_of(placed_order_txid(rig))
    reports = rig.wait_reported(t.txid for t in trades).by_id()
    for trade in trades:
        [base_leg] = [leg for leg in rig.ledger_legs(trade.txid) if leg.asset_id == "XXBT"]
        report = reports[trade.txid]
        assert report.fee_currency == "XBT"
        assert report.fee == base_leg.fee > 0
        assert report.fee != trade.fee  # the trade row states its fee in quote, not charged


def test_a_trade_made_outside_the_service_is_reported(rig):
    made = rig.external_trade("XBTUSD", "buy", "0.02")
    [trade_txid] = made["trades"]
    report = rig.wait_reported([trade_txid]).by_id()[trade_txid]
    assert report.order_id == made["txid"]
    assert report.status is OrderStatus.FILLED  # its one trade filled the whole order
    assert report.last_qty == Decimal("0.02")
    assert rig.risk_checks() == ()  # nothing was placed by the service


def test_a_cross_pair_fill_carries_the_quote_to_valuation_rate_read_with_it(rig):
    rig.server.exchange.deposit("XBT", Decimal("1"))
    rig.server.exchange.set_price("XBT/USD", Decimal("60000"))
    quote = rig.server.exchange.quote(XBT_USD)
    made = rig.external_trade("ETHXBT", "buy", "0.1")
    [trade_txid] = made["trades"]
    report = rig.wait_reported([trade_txid]).by_id()[trade_txid]
    assert report.pair == "ETH/XBT" and report.fee_currency == "XBT"
    assert report.quote_rate == MONEY.divide(quote.bid + quote.ask, 2)


# ---------------------------------------------------------------------------- order lifecycle


def test_a_limit_order_partially_filled_then_canceled_gives_new_fills_and_canceled(rig):
    exchange = rig.server.exchange
    exchange.set_price("XBT/USD", Decimal("60000"))
    rig.submit(
        SubmitOrder(
            pair="XBT/USD",
            side=Side.BUY,
            ordertype="limit",
            volume=Decimal("0.01"),
            limit_price=Decimal("59000"),
        )
    )
    order_txid = placed_order_txid(rig)
    rig.wait_reported([f"{order_txid}:NEW"])

    exchange.set_price("XBT/USD", Decimal("58000"))  # the ask crosses the limit: one pass
    exchange.set_price("XBT/USD", Decimal("60000"))
    fills = rig.trades_of(order_txid)
    assert len(fills) == 1 and fills[0].volume < Decimal("0.01")
    rig.wait_reported([fills[0].txid])
    rig.execution.refs["execution"].tell(RequestCancel(order_txid=order_txid))
    record = rig.wait_reported([f"{order_txid}:CANCELED"])

    ids = [event.exec_id for event in record.events]
    assert ids == [f"{order_txid}:NEW", fills[0].txid, f"{order_txid}:CANCELED"]
    new, fill, canceled = record.events
    assert new.status is OrderStatus.NEW and canceled.status is OrderStatus.CANCELED
    for status_report in (new, canceled):
        assert status_report.order_id == order_txid and status_report.fee_currency == "USD"
        assert status_report.last_qty == status_report.last_price == status_report.fee == 0
    assert canceled.reason == "User requested"
    assert fill.status is OrderStatus.PARTIALLY_FILLED
    assert (fill.last_qty, fill.last_price) == (fills[0].volume, Decimal("59000"))
    assert exchange.order(order_txid).vol_exec == fill.last_qty  # the fill was kept


def test_an_order_the_exchange_refuses_is_reported_rejected(rig):
    rig.submit(  # the account holds no XBT to sell
        SubmitOrder(
            pair="XBT/USD",
            side=Side.SELL,
            ordertype="market",
            volume=Decimal("1"),
            reference_price=Decimal("60000"),
        )
    )
    wait_for(lambda: rig.stats().orders_rejected == 1)
    [report] = rig.wait_reported([]).events
    assert report.status is OrderStatus.REJECTED and report.exec_id.endswith(":REJECTED")
    assert report.order_id == report.exec_id.removesuffix(":REJECTED")  # its cl_ord_id
    assert "Insufficient funds" in report.reason
    assert report.last_qty == report.fee == 0 and report.fee_currency == "USD"
    assert rig.server.exchange.state_summary()["orders"] == 0


def test_a_denied_or_unanswered_check_places_nothing(rig):
    order = SubmitOrder(
        pair="XBT/USD",
        side=Side.BUY,
        ordertype="market",
        volume=Decimal("0.01"),
        reference_price=Decimal("60000"),
    )
    rig.set_risk("deny")
    rig.submit(order)
    wait_for(lambda: rig.stats().orders_denied == 1)
    rig.set_risk("silent")
    rig.submit(order)
    wait_for(lambda: rig.stats().risk_unanswered == 1)

    assert len(rig.risk_checks()) >= 2  # asked both times (the silent one more than once)
    stats = rig.stats()
    assert stats.orders_submitted == 2 and stats.orders_placed == 0
    assert rig.server.exchange.state_summary()["orders"] == 0
    assert rig.journal().events == ()


# ---------------------------------------------------------------------------- delivery


def test_reports_are_resent_until_the_journal_acknowledges_them(rig):
    rig.books.refs["journal"].ask(HoldBackAcks(2), timeout=5)
    [trade_txid] = rig.external_trade("XBTUSD", "buy", "0.01")["trades"]
    record = rig.wait_reported([trade_txid])
    assert record.arrivals[trade_txid] >= 3  # two unanswered sends, then the acknowledged one
    stats = rig.stats()
    assert stats.reports_sent == 1 and stats.acknowledged == 1 and stats.duplicates == 0


def test_reports_made_while_the_journal_is_down_arrive_when_it_starts(tmp_path):
    rig = Rig(tmp_path)
    try:
        rig.start_execution()  # the journal is not running yet
        [trade_txid] = rig.external_trade("XBTUSD", "buy", "0.01")["trades"]
        wait_for(lambda: rig.stats().reports_sent == 1)
        assert rig.stats().unacknowledged == 1
        rig.start_books()
        record = rig.wait_reported([trade_txid])
        assert record.by_id()[trade_txid].last_qty == Decimal("0.01")
    finally:
        rig.close()


def test_a_restart_resumes_where_the_journal_left_off_without_losing_or_doubling(tmp_path):
    rig = Rig(tmp_path)
    try:
        rig.start_books()
        rig.start_execution()
        [first] = rig.external_trade("XBTUSD", "buy", "0.01")["trades"]
        rig.wait_reported([first])
        assert HOUR_NS > RESUME_OVERLAP_NS
        rig.clock.offset_ns += HOUR_NS
        [second] = rig.external_trade("XBTUSD", "buy", "0.02")["trades"]
        second_ns = rig.wait_reported([second]).by_id()[second].ts_event
        wait_for(lambda: load_resume_point(rig.state_file) == second_ns)
        rig.stop_execution()

        rig.clock.offset_ns += HOUR_NS
        [third] = rig.external_trade("XBTUSD", "sell", "0.01")["trades"]  # while down
        rig.start_execution()
        record = rig.wait_reported([third])

        assert [event.exec_id for event in record.events] == [first, second, third]
        # Read again from a little before the resume point: the second trade once more
        # (a duplicate the journal absorbs); the first, an hour older, not again.
        assert record.arrivals == {first: 1, second: 2, third: 1}
        stats = rig.stats()
        assert stats.duplicates == 1 and stats.reports_sent == 2
        third_ns = record.by_id()[third].ts_event
        wait_for(lambda: load_resume_point(rig.state_file) == third_ns)
    finally:
        rig.close()


# ---------------------------------------------------------------------------- errors, modes


def test_exchange_errors_are_counted_and_following_resumes_after_them(rig):
    answer = requests.post(
        f"{rig.server.url}/admin/fault",
        json={"kind": "unavailable", "rate": 1, "seconds": 60},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    wait_for(lambda: rig.stats().exchange_errors >= 1)
    [trade_txid] = rig.external_trade("XBTUSD", "buy", "0.01")["trades"]
    requests.post(f"{rig.server.url}/admin/fault/clear", json={}, timeout=5)
    record = rig.wait_reported([trade_txid], timeout=15)
    assert record.arrivals[trade_txid] == 1  # reported once, not once per failed poll
    assert rig.stats().feed_running


def test_live_mode_follows_from_now_and_never_places_an_order(tmp_path):
    rig = Rig(tmp_path, mode="live")
    try:
        rig.clock.offset_ns = -HOUR_NS
        [before] = rig.external_trade("XBTUSD", "buy", "0.01")["trades"]
        rig.clock.offset_ns = 0
        rig.start_books()
        rig.start_execution()
        assert load_resume_point(rig.state_file) is not None  # "now", kept at once
        rig.submit(
            SubmitOrder(
                pair="XBT/USD",
                side=Side.BUY,
                ordertype="market",
                volume=Decimal("0.01"),
                reference_price=Decimal("60000"),
            )
        )
        wait_for(lambda: rig.stats().orders_not_placed == 1)
        [after] = rig.external_trade("XBTUSD", "buy", "0.01")["trades"]
        record = rig.wait_reported([after])

        assert before not in record.arrivals
        assert rig.risk_checks() == ()
        assert rig.server.exchange.state_summary()["orders"] == 2  # the two external ones
    finally:
        rig.close()


def test_the_paper_demo_flow_checks_each_order_with_risk_before_placing_it(tmp_path):
    rig = Rig(tmp_path, demo_orders=True, order_interval_seconds=0.05)
    try:
        rig.start_books()
        rig.start_execution()
        wait_for(lambda: rig.stats().orders_placed >= 3, timeout=15)
        rig.stop_execution()
        placed = rig.server.exchange.open_orders() + rig.server.exchange.finished_orders()
        checks = rig.risk_checks()
        assert 3 <= len(placed) <= len(checks)
        assert {order.pair_id for order in placed} <= {"XXBTZUSD", "XETHZUSD", "SOLUSD"}
        for order in placed:  # each placed order is one that risk approved
            assert any(
                c.pair == KrakenNames.bundled().pair(order.pair_id).symbol
                and c.quantity == order.volume
                for c in checks
            )
    finally:
        rig.close()


def test_the_real_journal_accepts_every_kind_of_report_in_order(tmp_path):
    rig = Rig(tmp_path, journal="actors.journal:JournalActor")
    try:
        rig.start_books()
        rig.start_execution()
        exchange = rig.server.exchange
        exchange.set_price("XBT/USD", Decimal("60000"))
        limit = SubmitOrder(
            pair="XBT/USD",
            side=Side.BUY,
            ordertype="limit",
            volume=Decimal("0.01"),
            limit_price=Decimal("59000"),
        )
        rig.submit(limit)
        order_txid = placed_order_txid(rig)
        wait_for(lambda: rig.stats().statuses_reported == 1)  # NEW
        exchange.set_price("XBT/USD", Decimal("58000"))
        exchange.set_price("XBT/USD", Decimal("60000"))
        rig.execution.refs["execution"].tell(RequestCancel(order_txid=order_txid))
        rig.submit(  # fee in base, then a refusal (no ETH to sell)
            SubmitOrder(
                pair="XBT/USD",
                side=Side.BUY,
                ordertype="market",
                volume=Decimal("0.01"),
                reference_price=Decimal("60000"),
                oflags=("fcib",),
            )
        )
        rig.submit(
            SubmitOrder(
                pair="ETH/USD",
                side=Side.SELL,
                ordertype="market",
                volume=Decimal("1"),
                reference_price=Decimal("3000"),
            )
        )

        def settled() -> ExecutionStats | None:
            stats = rig.stats()
            done = stats.orders_rejected == 1 and stats.statuses_reported == 3
            return stats if done and stats.unacknowledged == 0 else None

        stats = wait_for(settled)
        assert stats.refused_by_journal == 0 and stats.acknowledged == stats.reports_sent
        with RequestClient(
            rig.context,
            "journal.replay",
            rig.config.endpoints["journal.replay"],
            rig.config.transport,
        ) as replay:
            batch = replay.request(
                ReplayEvents(correlation_id="r", from_seq=1, to_seq=None, max_events=100)
            )
        statuses = [event.event.status for event in batch.events]
        assert [event.seq for event in batch.events] == list(range(1, stats.reports_sent + 1))
        assert statuses[0] is OrderStatus.NEW
        assert statuses.count(OrderStatus.CANCELED) == 1
        assert statuses.count(OrderStatus.REJECTED) == 1
        assert statuses.index(OrderStatus.NEW) < statuses.index(OrderStatus.CANCELED)
    finally:
        rig.close()


# ---------------------------------------------------------------------------- pure parts


def _trade(**overrides) -> Trade:
    values = {
        "txid": "T1",
        "order_txid": "O1",
        "position_txid": None,
        "pair_id": "XXBTZUSD",
        "symbol": "XBT/USD",
        "base": "XBT",
        "quote": "USD",
        "side": "buy",
        "ordertype": "market",
        "price": Decimal("60000"),
        "cost": Decimal("600"),
        "fee": Decimal("2.4"),
        "fee_asset": "USD",
        "volume": Decimal("0.01"),
        "margin": Decimal(0),
        "misc": (),
        "time_ns": 1,
        "trade_id": None,
        "maker": None,
        "ledger_ids": (),
    }
    values.update(overrides)
    return Trade(**values)


def _leg(asset: str, fee: str) -> LedgerEntry:
    return LedgerEntry(
        ledger_id=f"L-{asset}",
        refid="T1",
        time_ns=1,
        type="trade",
        subtype=None,
        asset=asset,
        raw_asset=asset,
        is_variant=False,
        amount=Decimal(1),
        fee=Decimal(fee),
        balance=Decimal(1),
    )


def test_the_fee_comes_from_the_ledger_leg_that_paid_it():
    trade = _trade()
    assert fee_from_ledger(trade, [_leg("XBT", "0.00004"), _leg("USD", "0")]) == (
        Decimal("0.00004"),
        "XBT",
    )
    assert fee_from_ledger(trade, [_leg("XBT", "0"), _leg("USD", "2.4")]) == (
        Decimal("2.4"),
        "USD",
    )
    assert fee_from_ledger(trade, [_leg("XBT", "0"), _leg("USD", "0")]) == (Decimal(0), "USD")


def _order(volume: str, executed: str, trades: tuple[str, ...]) -> Order:
    return Order(
        txid="O1",
        status="closed",
        symbol="XBT/USD",
        pair_id="XXBTZUSD",
        pair_altname="XBTUSD",
        side="buy",
        ordertype="limit",
        limit_price=Decimal("60000"),
        price2=None,
        stop_price=None,
        volume=Decimal(volume),
        volume_executed=Decimal(executed),
        cost=Decimal(0),
        fee=Decimal(0),
        average_price=None,
        userref=None,
        cl_ord_id=None,
        open_ns=1,
        close_ns=None,
        start_ns=None,
        expire_ns=None,
        reason=None,
        misc=(),
        oflags=(),
        time_in_force=None,
        trade_txids=trades,
        description="",
    )


def test_only_the_trade_that_fills_the_order_completes_it():
    assert completes_order(_trade(txid="T2"), _order("1", "1", ("T1", "T2")))
    assert not completes_order(_trade(txid="T1"), _order("1", "1", ("T1", "T2")))
    assert not completes_order(_trade(txid="T2"), _order("1", "0.5", ("T1", "T2")))
    assert not completes_order(_trade(), None)  # unknown order: a partial fill


def _market(bid: str, ask: str, available: dict | None = None) -> MarketSeen:
    names = KrakenNames.bundled()
    pair = names.pair("XBT/USD")
    ticker = Ticker(
        symbol="XBT/USD",
        pair_id=pair.id,
        ask=Decimal(ask),
        ask_volume=Decimal(1),
        bid=Decimal(bid),
        bid_volume=Decimal(1),
        last=Decimal(bid),
        last_volume=Decimal(1),
        volume_today=Decimal(0),
        volume_24h=Decimal(0),
        vwap_today=Decimal(0),
        vwap_24h=Decimal(0),
        trades_today=0,
        trades_24h=0,
        low_today=Decimal(0),
        low_24h=Decimal(0),
        high_today=Decimal(0),
        high_24h=Decimal(0),
        open=Decimal(bid),
        received_ns=0,
    )
    return MarketSeen(
        tickers={"XBT/USD": ticker},
        pairs={"XBT/USD": pair},
        rates={},
        available=available or {},
    )


def test_demo_orders_are_sized_to_the_order_value_priced_on_ticks_and_repeatable():
    settings = ExecutionSettings(order_pairs=("XBT/USD",), order_value=Decimal("500"))
    market = _market("59990.0", "60010.0")
    context = decimal.Context(prec=34)
    first = [plan_demo_order(random.Random(3), market, settings, "USD", context)]
    plans = [
        plan_demo_order(random.Random(seed), market, settings, "USD", context) for seed in range(40)
    ]
    assert first == [plans[3]]  # the same seed plans the same order
    assert {p.ordertype for p in plans} == {"market", "limit"}
    for plan in plans:
        assert plan.side is Side.BUY  # nothing held to sell
        assert plan.volume == Decimal("0.00833194")  # 500 / 60010 (the ask), lot decimals 8
        if plan.ordertype == "limit":
            assert plan.limit_price % Decimal("0.1") == 0
            assert plan.limit_price < Decimal("60010.0")  # rests: never crosses the ask
    held = _market("59990.0", "60010.0", available={"XBT": Decimal("1")})
    sides = {
        plan_demo_order(random.Random(s), held, settings, "USD", context).side for s in range(40)
    }
    assert sides == {Side.BUY, Side.SELL}


def test_the_resume_point_survives_a_rewrite_and_a_damaged_file_is_named(tmp_path):
    path = tmp_path / "state" / "execution.json"
    assert load_resume_point(path) is None
    save_resume_point(path, 1_700_000_000_000_000_000)
    save_resume_point(path, 1_700_000_000_000_000_001)
    assert load_resume_point(path) == 1_700_000_000_000_000_001
    assert [p.name for p in path.parent.iterdir()] == ["execution.json"]
    path.write_text(json.dumps({"version": 1, "acknowledged_through_ns": "soon"}))
    with pytest.raises(ResumeStateError) as error:
        load_resume_point(path)
    assert error.value.field == "acknowledged_through_ns"
    path.write_text("{not json")
    with pytest.raises(ResumeStateError, match="not JSON"):
        load_resume_point(path)
