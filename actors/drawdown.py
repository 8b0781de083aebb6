"""The drawdown actor: marks equity, keeps the peaks of every window, watches the limits.

It folds the journal like the cash and positions actors (all of the books, so it knows the
equity just before and after every event) and follows the prices actor's quotes. It marks
equity (`actors.core.drawdown.mark`):

- on every fill and every price move, at most once per `drawdown.mark_interval_seconds` in
  live running (a move inside the interval is marked when it ends, so the last one is never
  lost); on every event in replay (`marks_every_event`);
- on every deposit or withdrawal, always: a flow scales every peak by equity after ÷ equity
  before (`actors.core.drawdown.flow`), so it is not performance. A reconciliation
  adjustment is treated the same way: it corrects the books, it is not trading.

Marks are in event time (a fill's `ts_event`, a quote's receive time), never earlier than
the previous mark. A mark needs an equity from fresh prices: with a holding unpriced or
priced only by a stale quote, nothing is marked (it is counted), so a feed outage never
freezes or zeroes a peak. Each mark is checked against the risk limits and every crossing
published once (`DrawdownLimitBreached`, `DrawdownRecovered`).

An event the actor cannot fold, or whose equity it cannot mark (a value beyond what the wire
carries, a valuation that raises), halts it (`JournalFollower.halt`): its books and figures
stay as they were before, it stops marking, keeps answering (saying where it halted), and
the risk actor denies orders. A mark is checked before it is taken, so the figures it serves
and saves can always be sent.

The books, the peaks and the breached windows are saved together at one journal seq after
every mark in live running (and with every follower snapshot), so a restart neither resets
nor loses a peak; every mark is also appended to the `marks` table (the equity curve).
`DrawdownChanged` goes out for every journal range applied, `DrawdownMarked` for every mark
between events.
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.core.accounting import BooksLedger
from actors.core.conversion import PriceBook, PriceError
from actors.core.drawdown import (
    Breached,
    BreachTracker,
    DrawdownState,
    Window,
    drawdowns,
    flow,
    mark,
)
from actors.core.valuation import Valuation
from actors.journal_follower import JournalFollower, check_balances, check_positions
from actors.runtime.actor import (
    Connect,
    Inbound,
    Publish,
    RequestFailed,
    Serve,
    SocketSpec,
    Subscribe,
    handles,
)
from actors.translate import (
    figures_state,
    limits_of,
    position_book,
    position_state,
    settings_of,
    valuer_of,
    with_quotes,
)
from messages import (
    BalanceAdjusted,
    DrawdownChanged,
    DrawdownFigures,
    DrawdownLimitBreached,
    DrawdownMarked,
    DrawdownRecovered,
    DrawdownReport,
    DrawdownSnapshot,
    ExecutionReport,
    GetDrawdownState,
    GetPrices,
    PriceQuote,
    PricesState,
    PricesUpdated,
    SequencedEvent,
    Transfer,
)
from messages.base import Message
from messages.codec import decimal_problem


class _MarkDue:
    """Timer message: the mark interval ended; mark what moved inside it."""


@dataclass(frozen=True)
class PricesAfter:
    """Quotes that take effect just after journal event `after_seq` (replay keeps the file's
    order of fills and prices with it)."""

    after_seq: int
    quotes: tuple[PriceQuote, ...]


class MarkStore:
    """The equity curve: one row per mark (time, seq, equity, each window's peak)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS marks (ts_ns INTEGER, seq INTEGER, equity TEXT,"
            " peak_equity TEXT, daily_peak TEXT, weekly_peak TEXT, flow INTEGER)"
        )
        self._pending: list[tuple] = []

    def add(self, ts_ns: int, seq: int, state: DrawdownState, is_flow: bool) -> None:
        """Queue one mark (written by `flush`)."""
        self._pending.append(
            (
                ts_ns,
                seq,
                str(state.last_equity),
                str(state.peak_equity),
                str(state.daily_peak),
                str(state.weekly_peak),
                int(is_flow),
            )
        )

    def pending_count(self) -> int:
        """How many marks wait for `flush`."""
        return len(self._pending)

    def drop_pending_after(self, count: int) -> None:
        """Forget the marks queued after the first `count` (a fold that was rolled back)."""
        del self._pending[count:]

    def flush(self) -> None:
        """Write the queued marks in one transaction."""
        if not self._pending:
            return
        with self._db:
            self._db.executemany("INSERT INTO marks VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending)
        self._pending.clear()

    def close(self) -> None:
        """Write what is queued and close."""
        self.flush()
        self._db.close()


class DrawdownActor(JournalFollower):
    """Owns the peaks and windows; serves them on `drawdown.query`."""

    ledger_class = BooksLedger
    events_endpoint = "drawdown.events"
    marks_every_event = False
    """Replay: mark every event, in event time, and save with the follower's snapshots."""

    def follower_sockets(self) -> Iterable[SocketSpec]:
        if self.marks_every_event:
            # replay: quotes come as PricesAfter, in the file's order with the events; the
            # prices actor's stream would bring them again, out of that order
            return (Publish("drawdown.events"), Serve("drawdown.query"))
        return (
            Subscribe("prices.events"),
            Connect("prices.query"),
            Publish("drawdown.events"),
            Serve("drawdown.query"),
        )

    def snapshot_path(self) -> Path:
        return self.config.drawdown.database

    def clock(self) -> int:
        """Now, integer ns since the epoch (UTC)."""
        return time.time_ns()

    # -- life ----------------------------------------------------------------------------------
    def started(self) -> None:
        self.valuer = valuer_of(self.config)
        self.context = self.valuer.context
        self.settings = settings_of(self.config)
        self.state = DrawdownState()
        self.tracker = BreachTracker(limits_of(self.config))
        self.prices = PriceBook()
        self.marks = 0
        self.marks_skipped = 0
        self.flows_unvalued = 0
        self._dirty = False
        self._mark_scheduled = False
        self._last_mark_wall = 0.0
        self._prices_after: deque[PricesAfter] = deque()
        self._mark_store = MarkStore(self.config.drawdown.database)
        super().started()
        if not self.marks_every_event:
            self._ask_prices()

    def stopping(self) -> None:
        super().stopping()
        store = getattr(self, "_mark_store", None)
        if store is not None:
            store.close()

    def restore(self, seq: int, state: Message) -> None:
        assert isinstance(state, DrawdownSnapshot)
        self.ledger.cash.balances = dict(state.cash)
        self.ledger.positions.positions = {
            asset: position_book(p) for asset, p in state.positions.items()
        }
        self.ledger.seq = seq
        self.state = figures_state(state.figures)
        self.tracker = BreachTracker(
            self.tracker.limits, frozenset(Window(w) for w in state.figures.breached)
        )
        self.marks = state.figures.marks

    def current_state(self) -> DrawdownSnapshot:
        self._mark_store.flush()
        return DrawdownSnapshot(
            seq=self.seq,
            cash=dict(self.ledger.cash.balances),
            positions={
                asset: position_state(asset, book)
                for asset, book in self.ledger.positions.positions.items()
            },
            figures=self.figures(),
        )

    def checkpoint(self) -> Any:
        return (
            super().checkpoint(),
            self.state,
            self.tracker,
            self.marks,
            self._mark_store.pending_count(),
        )

    def rollback(self, saved: Any) -> None:
        ledger, self.state, self.tracker, self.marks, pending = saved
        super().rollback(ledger)
        self._mark_store.drop_pending_after(pending)

    def figures(self) -> DrawdownFigures:
        """The peaks and windows now, in their wire form."""
        state = self.state
        return DrawdownFigures(
            seq=self.seq,
            peak_equity=state.peak_equity,
            daily_peak=state.daily_peak,
            weekly_peak=state.weekly_peak,
            daily_window_start_ns=state.daily_window_start,
            weekly_window_start_ns=state.weekly_window_start,
            last_equity=state.last_equity,
            last_mark_ns=state.last_mark_ns,
            breached=tuple(w.value for w in Window if w in self.tracker.breached),
            marks=self.marks,
        )

    # -- the journal ---------------------------------------------------------------------------
    def fold(self, event: SequencedEvent) -> dict[str, Any]:
        self._take_prices_through(event.seq - 1)
        payload = event.event
        if isinstance(payload, Transfer | BalanceAdjusted):
            ts = self._mark_time(payload.ts_event)
            before = self.valuation(ts)
            self._apply(event.seq, payload)
            after = self.valuation(ts)
            self._flow(before, after, ts)
        else:
            self._apply(event.seq, payload)
            if isinstance(payload, ExecutionReport) and payload.last_qty > 0:
                self._mark_due(self._mark_time(payload.ts_event))
        self._take_prices_through(event.seq)
        return {}

    def _apply(self, seq: int, payload: Any) -> None:
        cash, positions = self.ledger.apply(seq, payload)
        check_balances(cash)
        check_positions(positions)

    def publish_changes(self, first_seq: int, seq: int, changed: dict[str, Any]) -> None:
        self.publish(
            "drawdown.events", DrawdownChanged(first_seq=first_seq, seq=seq, figures=self.figures())
        )

    # -- prices --------------------------------------------------------------------------------
    @handles(PricesUpdated, on="prices.events")
    def on_prices_updated(self, update: PricesUpdated, inbound: Inbound | None) -> None:
        """Take the quotes (latest wins) and mark the move."""
        newest = self._take_quotes(update.quotes)
        if newest and self._marked_or_halted(
            lambda: self._mark_due(
                self._mark_time(newest if self.marks_every_event else self.clock())
            )
        ):
            self._publish_mark()

    @handles(PricesAfter)
    def on_prices_after(self, update: PricesAfter, inbound: Inbound | None) -> None:
        """Replay: quotes that apply once the journal event `after_seq` is folded."""
        self._prices_after.append(update)
        if self.seq >= update.after_seq and self._marked_or_halted(
            lambda: self._take_prices_through(self.seq) or True
        ):
            self._publish_mark()

    def _take_prices_through(self, seq: int) -> None:
        while self._prices_after and self._prices_after[0].after_seq <= seq:
            update = self._prices_after.popleft()
            newest = self._take_quotes(update.quotes)
            if newest:
                self._mark_due(self._mark_time(newest))

    def _take_quotes(self, quotes: Iterable[PriceQuote]) -> int:
        try:
            self.prices, newest = with_quotes(self.prices, quotes)
        except PriceError as exc:
            self.failed += 1
            self.log.warning("refused quotes: {}", exc)
            return 0
        return newest

    def _ask_prices(self) -> None:
        self.request(
            "prices.query",
            GetPrices(correlation_id=self.next_correlation_id()),
            on_reply=self._got_prices,
            on_failure=self._prices_failed,
        )

    def _got_prices(self, answer: Any) -> None:
        if isinstance(answer, PricesState):
            self._take_quotes(answer.quotes)

    def _prices_failed(self, failure: RequestFailed) -> None:
        self.log.info("no prices from the prices actor yet: {}", failure)

    # -- marking -------------------------------------------------------------------------------
    def valuation(self, now_ns: int) -> Valuation:
        """The books valued with the quotes held, at `now_ns`."""
        return self.valuer.value(
            self.ledger.cash.balances, self.ledger.positions.positions, self.prices, now_ns
        )

    def _mark_time(self, ts_ns: int) -> int:
        last = self.state.last_mark_ns
        return ts_ns if last is None else max(ts_ns, last)

    def _mark_due(self, ts_ns: int) -> bool:
        """Mark now (True when marked), or at the end of the mark interval when one was
        made inside it."""
        if self.marks_every_event:
            return self._mark(ts_ns)
        interval = self.config.drawdown.mark_interval_seconds
        waited = time.monotonic() - self._last_mark_wall
        if waited >= interval:
            return self._mark(ts_ns)
        self._dirty = True
        if not self._mark_scheduled:
            self._mark_scheduled = True
            self.schedule(interval - waited, _MarkDue())
        return False

    @handles(_MarkDue)
    def on_mark_due(self, due: _MarkDue, inbound: Inbound | None) -> None:
        """The interval ended: mark the moves made inside it."""
        self._mark_scheduled = False
        if self._dirty and self._marked_or_halted(
            lambda: self._mark(self._mark_time(self.clock())) or True
        ):
            self._publish_mark()

    def _marked_or_halted(self, marking: Any) -> bool:
        """Run `marking` (a mark between journal events) unless halted; what it returns, or
        False when it raised: a mark that cannot be made halts the actor at its seq (the
        books there cannot be valued), its figures unchanged."""
        if self.halted is not None:
            return False
        saved = (self.state, self.tracker, self.marks, self._mark_store.pending_count())
        try:
            return bool(marking())
        except Exception as exc:
            self.state, self.tracker, self.marks, pending = saved
            self._mark_store.drop_pending_after(pending)
            self.halt(max(self.seq, 1), exc)
            return False

    def _mark(self, ts_ns: int) -> bool:
        self._dirty = False
        self._last_mark_wall = time.monotonic()
        valued = self.valuation(ts_ns)
        if valued.equity is None or valued.stale:
            self.marks_skipped += 1
            return False
        self._take(mark(self.state, valued.equity, ts_ns, self.settings), ts_ns, is_flow=False)
        return True

    def _take(self, state: DrawdownState, ts_ns: int, *, is_flow: bool) -> None:
        """Take a marked state, once it is known that it can be carried: its figures within
        what the wire takes and its drawdowns computable (else this raises, nothing taken)."""
        for name in ("peak_equity", "daily_peak", "weekly_peak", "last_equity"):
            value = getattr(state, name)
            problem = None if value is None else decimal_problem(value)
            if problem is not None:
                raise ValueError(f"drawdown {name}: {problem}")
        tracker, crossings = self.tracker.observe(drawdowns(state, self.context))
        for crossing in crossings:
            problem = decimal_problem(crossing.pct)
            if problem is not None:
                raise ValueError(f"{crossing.window.value} drawdown %: {problem}")
        self.state = state
        self._after_mark(ts_ns, tracker, crossings, is_flow=is_flow)

    def _flow(self, before: Valuation, after: Valuation, ts_ns: int) -> None:
        if before.equity is None or after.equity is None:
            # Without both equities there is no ratio; the peaks stay as they are.
            self.flows_unvalued += 1
            self.log.warning(
                "a transfer at seq {} could not be valued (unpriced: {}); peaks not scaled",
                self.seq,
                ", ".join(after.unpriced or before.unpriced),
            )
            return
        self._take(
            flow(self.state, before.equity, after.equity, ts_ns, self.settings, self.context),
            ts_ns,
            is_flow=True,
        )

    def _after_mark(
        self, ts_ns: int, tracker: BreachTracker, crossings: Any, *, is_flow: bool
    ) -> None:
        self.marks += 1
        self._mark_store.add(ts_ns, self.seq, self.state, is_flow)
        self.tracker = tracker
        equity = self.state.last_equity
        assert equity is not None
        for crossing in crossings:
            if isinstance(crossing, Breached):
                self.log.warning(
                    "{} drawdown {}% reached its limit {}%",
                    crossing.window.value,
                    crossing.pct.quantize(Decimal("0.01")),
                    crossing.limit,
                )
                self.publish(
                    "drawdown.events",
                    DrawdownLimitBreached(
                        window=crossing.window.value,
                        pct=crossing.pct,
                        limit=crossing.limit,
                        equity=equity,
                        ts_ns=ts_ns,
                    ),
                )
            else:
                self.log.info(
                    "{} drawdown recovered to {}%",
                    crossing.window.value,
                    crossing.pct.quantize(Decimal("0.01")),
                )
                self.publish(
                    "drawdown.events",
                    DrawdownRecovered(
                        window=crossing.window.value,
                        pct=crossing.pct,
                        limit=crossing.limit,
                        equity=equity,
                        ts_ns=ts_ns,
                    ),
                )
        if not self.marks_every_event:
            self.save_snapshot()  # the peaks survive a restart from this mark on

    def _publish_mark(self) -> None:
        """Figures changed between journal events: readers replace those at this seq."""
        self.publish("drawdown.events", DrawdownMarked(seq=self.seq, figures=self.figures()))

    # -- serving -------------------------------------------------------------------------------
    @handles(GetDrawdownState, on="drawdown.query")
    def on_get_drawdown_state(
        self, request: GetDrawdownState, inbound: Inbound | None
    ) -> DrawdownReport:
        """The figures at the current seq (a reader resyncs with it), and where the actor
        halted, if it did."""
        return DrawdownReport(
            correlation_id=request.correlation_id,
            seq=self.seq,
            figures=self.figures(),
            halted=self.halted,
        )
