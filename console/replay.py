"""`runner.py replay FILE`: a file's events through the service's own actors, in one process.

The journal, cash, positions, prices, drawdown and portfolio actors run together on inproc
endpoints, with their databases in a temporary folder. Opening balances (`--balance
USD=10000`) go in first as transfers, then every event of the file in order; the answer is
the portfolio state once it reflects the last event.

Time is the file's: a `PriceMark` is a quote received at its `ts`, the drawdown actor marks
equity at every event in event time (a fill at its `ts_event`), and the portfolio values
the final state as of the last event. A quote takes effect exactly between the journal
events it sits between in the file, so a file spanning days and weeks yields the daily and
weekly figures it would have live.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import zmq

from actors.drawdown import DrawdownActor, PricesAfter
from actors.portfolio import PortfolioActor
from actors.prices import quote_from_price_mark
from actors.runtime.client import RemoteError, RequestClient
from actors.runtime.host import ActorHost
from console.report import report_limits, write_report
from messages import (
    DeliveryRefused,
    DrawdownReport,
    ErrorReply,
    ExecutionReport,
    GetDrawdownState,
    GetPortfolioState,
    PortfolioState,
    PriceMark,
    PriceQuote,
    PricesUpdated,
    Transfer,
)
from messages.base import Message
from service.config import ProcessSettings, ServiceConfig
from service.registry import ACTOR_CLASSES

ASK_TIMEOUT_SECONDS = 10.0


class ReplayDrawdownActor(DrawdownActor):
    """Marks every event, in event time."""

    marks_every_event = True
    snapshot_every_events = 100_000


class ReplayPortfolioActor(PortfolioActor):
    """Values as of the latest event, not the wall clock."""

    event_clock = True


REPLAY_ACTORS = ("journal", "cash", "positions", "prices", "drawdown", "portfolio")
REPLAY_CLASSES = {
    "prices": "actors.prices:ReplayPricesActor",
    "drawdown": f"{__name__}:ReplayDrawdownActor",
    "portfolio": f"{__name__}:ReplayPortfolioActor",
}
REPLAY_ENDPOINTS = (
    "journal.ingest",
    "journal.events",
    "journal.replay",
    "cash.events",
    "cash.query",
    "positions.events",
    "positions.query",
    "portfolio.query",
    "prices.events",
    "prices.query",
    "drawdown.events",
    "drawdown.query",
)


class ReplayFailed(RuntimeError):
    """The replay could not complete; the message says which event and why."""


def replay_config(config: ServiceConfig, folder: Path) -> ServiceConfig:
    """`config` with the books actors in one process, on inproc endpoints, under `folder`."""
    return replace(
        config,
        service=replace(config.service, run_dir=folder),
        processes={"replay": ProcessSettings(actors=REPLAY_ACTORS)},
        endpoints={name: f"inproc://replay-{name}" for name in REPLAY_ENDPOINTS},
        journal=replace(config.journal, database=folder / "journal.sqlite", synchronous="NORMAL"),
        drawdown=replace(config.drawdown, database=folder / "drawdown.sqlite"),
        actor_classes={**config.actor_classes, **REPLAY_CLASSES},
    )


def opening_transfers(balances: list[tuple[str, Decimal]], ts_ns: int) -> list[Transfer]:
    """One deposit per `--balance` option, stamped before the file's first event."""
    return [
        Transfer(
            transfer_id=f"opening-balance-{asset}",
            asset=asset,
            amount=amount,
            ts_event=ts_ns,
            ts_init=ts_ns,
        )
        for asset, amount in balances
        if amount != 0
    ]


def run_replay(
    config: ServiceConfig,
    messages: list[Message],
    balances: list[tuple[str, Decimal]],
    *,
    timeout_seconds: float = 120.0,
    report_dir: Path | None = None,
) -> PortfolioState:
    """Feed the events through the actors; the portfolio state after the last one.

    With `report_dir`, the report of what the drawdown actor recorded goes there too.
    """
    events = [m for m in messages if isinstance(m, ExecutionReport | Transfer | PriceMark)]
    first_ts = min((e.ts_event for e in events), default=0)
    events = [*opening_transfers(balances, max(0, first_ts - 1)), *events]
    with tempfile.TemporaryDirectory(prefix="replay-") as folder:
        settings = replay_config(config, Path(folder))
        context = zmq.Context()
        host = ActorHost(settings, "replay", registry=ACTOR_CLASSES, context=context)
        host.start()
        try:
            deadline = time.monotonic() + timeout_seconds
            head, quotes = _ingest(context, settings, host, events)
            marks = _drawdown_marks_at(host, head, deadline)
            state = _state_at(context, settings, head, quotes, marks, deadline)
        finally:
            host.stop()  # the drawdown actor writes its marks and snapshot as it stops
            context.destroy(linger=0)
        if report_dir is not None:
            write_report(
                settings.drawdown.database,
                report_dir,
                valuation_currency=config.accounting.valuation_currency,
                limits=report_limits(config),
                title="Portfolio report (replay)",
            )
        return state


def _ingest(
    context: zmq.Context, config: ServiceConfig, host: ActorHost, events: list[Message]
) -> tuple[int, dict[str, PriceQuote]]:
    """Journal the events in order; each quote goes to the drawdown actor stamped with the
    seq it follows (and to the prices actor). The head seq, the last quote of each pair."""
    head = 0
    quotes: dict[str, PriceQuote] = {}
    address = config.endpoints["journal.ingest"]
    with RequestClient(context, "journal.ingest", address, config.transport) as journal:
        for number, event in enumerate(events, 1):
            if isinstance(event, PriceMark):
                quote = quote_from_price_mark(event)
                quotes[quote.pair] = quote
                # asked, not told: the next journal event must not overtake the quote
                host.refs["drawdown"].ask(
                    PricesAfter(after_seq=head, quotes=(quote,)), timeout=ASK_TIMEOUT_SECONDS
                )
                host.refs["prices"].tell(PricesUpdated(quotes=(quote,)))
                continue
            answer = journal.request(event, raise_on_error=False)
            if isinstance(answer, DeliveryRefused | ErrorReply):
                detail = answer.reason if isinstance(answer, DeliveryRefused) else answer.detail
                raise ReplayFailed(f"event {number} ({type(event).__name__}) refused: {detail}")
            head = max(head, answer.seq or 0)
    return head, quotes


def _drawdown_marks_at(host: ActorHost, head: int, deadline: float) -> int:
    """How many marks the drawdown actor made once it folded every event and quote."""
    drawdown = host.refs["drawdown"]
    while True:
        answer = drawdown.ask(
            GetDrawdownState(correlation_id="replay"), timeout=ASK_TIMEOUT_SECONDS
        )
        if isinstance(answer, DrawdownReport) and answer.seq >= head:
            return answer.figures.marks
        if time.monotonic() > deadline:
            raise ReplayFailed(f"the drawdown actor did not reach seq {head} in time")
        time.sleep(0.01)  # poll interval, bounded by the deadline


def _state_at(
    context: zmq.Context,
    config: ServiceConfig,
    head: int,
    quotes: dict[str, PriceQuote],
    marks: int,
    deadline: float,
) -> PortfolioState:
    """The portfolio's state once it shows the last event, the last quotes and every mark."""
    address = config.endpoints["portfolio.query"]

    def complete(state: PortfolioState) -> bool:
        if state.seq < head or state.drawdown is None or state.drawdown.marks < marks:
            return False
        return all(
            pair in state.prices
            and (state.prices[pair].bid, state.prices[pair].ask) == (quote.bid, quote.ask)
            for pair, quote in quotes.items()
        )

    with RequestClient(context, "portfolio.query", address, config.transport) as portfolio:
        while True:
            try:
                state = portfolio.request(GetPortfolioState(correlation_id="replay"))
            except RemoteError:
                state = None  # still catching up
            if isinstance(state, PortfolioState) and complete(state):
                return state
            if time.monotonic() > deadline:
                raise ReplayFailed(f"the books did not reach seq {head} in time")
            time.sleep(0.01)  # poll interval, bounded by the deadline
