"""The drawdown actor on its own: peaks survive a restart, live marks are throttled."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import zmq

from actors.portfolio import PortfolioActor
from actors.runtime.client import RemoteError, RequestClient
from actors.runtime.host import ActorHost
from console.replay import replay_config
from messages import (
    DrawdownChanged,
    DrawdownMarked,
    DrawdownReport,
    ExecutionReport,
    GetDrawdownState,
    GetPortfolioState,
    PortfolioState,
    Transfer,
    decode,
)
from service.config import ProcessSettings, load_config
from service.registry import ACTOR_CLASSES
from tests.support.factories import fill, prices_updated, quote, transfer
from tests.support.group import wait_for


class QuietPortfolioActor(PortfolioActor):
    """Resyncs only at start: what it shows later came on the change streams."""

    resync_interval_seconds = 3600.0


def settings(folder: Path, mark_interval_seconds: float, *, with_books: bool = False):
    config = replay_config(load_config(), folder)
    actors = ("journal", "prices", "drawdown")
    classes = {"prices": "actors.prices:ReplayPricesActor"}
    if with_books:
        actors += ("cash", "positions", "portfolio")
        classes["portfolio"] = f"{__name__}:QuietPortfolioActor"
    return replace(
        config,
        processes={"market": ProcessSettings(actors=actors)},
        actor_classes=classes,
        drawdown=replace(config.drawdown, mark_interval_seconds=mark_interval_seconds),
    )


class Market:
    """A journal, a feedless prices actor and a live drawdown actor in this process."""

    def __init__(
        self, folder: Path, mark_interval_seconds: float = 0.0, *, with_books: bool = False
    ) -> None:
        self.config = settings(folder, mark_interval_seconds, with_books=with_books)
        self.context = zmq.Context()
        self.host = ActorHost(self.config, "market", registry=ACTOR_CLASSES, context=self.context)
        self.host.start()

    def close(self) -> None:
        self.host.stop()
        self.context.destroy(linger=0)

    def journal(self, event) -> int:
        address = self.config.endpoints["journal.ingest"]
        with RequestClient(self.context, "journal.ingest", address, self.config.transport) as c:
            return c.request(event).seq

    def price(self, bid: str) -> None:
        now = time.time_ns()
        self.host.refs["drawdown"].tell(prices_updated(quote(bid=bid, ask=bid, received_ns=now)))

    def portfolio(self) -> PortfolioState | None:
        address = self.config.endpoints["portfolio.query"]
        with RequestClient(self.context, "portfolio.query", address, self.config.transport) as c:
            try:
                answer = c.request(GetPortfolioState(correlation_id="t"))
            except RemoteError:
                return None  # still catching up
        return answer if isinstance(answer, PortfolioState) else None

    def figures(self):
        report = self.host.refs["drawdown"].ask(GetDrawdownState(correlation_id="t"), timeout=5)
        assert isinstance(report, DrawdownReport)
        return report.figures


def deposit(amount: str) -> Transfer:
    now = time.time_ns()
    return transfer(transfer_id=f"D-{now}", amount=amount, ts_event=now)


def buy_one_xbt(price: str) -> ExecutionReport:
    now = time.time_ns()
    return fill(
        exec_id=f"T-{now}", order_id="O-1", last_qty=1, last_price=price, fee=0, ts_event=now
    )


def test_peaks_windows_and_breaches_survive_a_restart(tmp_path):
    market = Market(tmp_path)
    try:
        market.price("50000")
        market.journal(deposit("100000"))
        market.journal(buy_one_xbt("50000"))
        wait_for(lambda: market.figures().seq == 2)  # the fill is in its books
        market.price("60000")  # 110000: the peak
        market.price("55000")  # 105000
        before = wait_for(
            lambda: (f := market.figures()).last_equity == Decimal(105000) and f.seq == 2 and f
        )
    finally:
        market.close()
    assert before.peak_equity == Decimal(110000)

    market = Market(tmp_path)
    try:
        after = market.figures()
        assert after == before  # not reset, not replayed a second time (no flow scaled twice)
        market.price("66000")  # 116000: a new peak, from the restored one
        wait_for(lambda: market.figures().peak_equity == Decimal(116000))
    finally:
        market.close()
    with sqlite3.connect(tmp_path / "drawdown.sqlite") as db:
        curve = [Decimal(e) for (e,) in db.execute("SELECT equity FROM marks ORDER BY rowid")]
    assert curve[-1] == Decimal(116000) and Decimal(110000) in curve


def test_live_marks_are_throttled_and_the_last_move_is_still_marked(tmp_path):
    market = Market(tmp_path, mark_interval_seconds=0.5)
    try:
        market.price("50000")
        market.journal(deposit("100000"))
        market.journal(buy_one_xbt("50000"))
        wait_for(lambda: market.figures().seq == 2)
        marks_before = market.figures().marks
        started = time.monotonic()
        for bid in range(50001, 50021):  # 20 moves well inside one interval
            market.price(str(bid))
        marked = wait_for(lambda: (f := market.figures()).last_equity == Decimal(100020) and f)
        inside = time.monotonic() - started < 0.5
        assert marked.marks - marks_before <= 2 if inside else True
        assert marked.marks - marks_before <= 3, "one mark per interval, not one per move"
    finally:
        market.close()


def test_a_mark_between_events_goes_out_as_drawdown_marked_at_the_seq_it_is_at(tmp_path):
    market = Market(tmp_path, mark_interval_seconds=0.0)
    events = market.context.socket(zmq.SUB)
    try:
        events.setsockopt(zmq.SUBSCRIBE, b"")
        events.connect(market.config.endpoints["drawdown.events"])
        market.price("50000")
        market.journal(deposit("100000"))
        market.journal(buy_one_xbt("50000"))
        wait_for(lambda: market.figures().seq == 2)
        seen: list = []

        def marks():
            market.price(str(50001 + len(seen)))  # a price move, no journal event
            while events.poll(50):
                seen.append(decode(events.recv()))
            return [m for m in seen if isinstance(m, DrawdownMarked) and m.seq == 2]

        marked = wait_for(marks)
        assert marked[-1].figures.seq == 2
        assert marked[-1].figures.last_equity > Decimal(100000), "the move is marked"
        every_mark = [m for m in seen if isinstance(m, DrawdownMarked)]
        assert all(m.figures.seq == m.seq for m in every_mark), "the figures at the mark's seq"
        ranges = [m for m in seen if isinstance(m, DrawdownChanged)]
        assert all(m.first_seq <= m.seq for m in ranges), "a range is a range, never a mark"
    finally:
        events.close(linger=0)
        market.close()


def test_the_portfolio_shows_a_mark_between_events_from_the_stream(tmp_path):
    market = Market(tmp_path, mark_interval_seconds=0.0, with_books=True)
    try:
        market.price("50000")
        market.journal(deposit("100000"))
        market.journal(buy_one_xbt("50000"))
        wait_for(lambda: (state := market.portfolio()) is not None and state.seq == 2)
        marks_at_2 = market.figures().marks
        market.price("51000")  # a mark between events, no new journal event
        marked = wait_for(lambda: (f := market.figures()).marks > marks_at_2 and f)
        shown = wait_for(
            lambda: (
                (state := market.portfolio()) is not None
                and state.drawdown is not None
                and state.drawdown.marks == marked.marks
                and state
            )
        )
        assert shown.seq == 2 and shown.drawdown.seq == 2
    finally:
        market.close()
