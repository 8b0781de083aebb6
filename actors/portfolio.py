"""The portfolio actor: the read model that answers `GetPortfolioState`.

It owns nothing of its own. It follows the cash and positions actors' change streams (and
the drawdown actor's, when the group has one) and keeps each part in lockstep: a part's
changes up to journal event `seq` are applied only when every other part can reach that same
`seq` too, so every snapshot it serves has every part at exactly one `seq`. Changes come per
event live and per replayed range while catching up; a range applies whole. A gap in a
stream (a lost message, a restarted actor) is repaired by asking that actor for its full
state; until the parts meet again at one seq, queries get the last consistent snapshot,
never a mix.

When the group has a prices actor, the portfolio follows its quotes (latest wins) and values
the snapshot at the moment it answers, with `actors.core.valuation` (the same module the
drawdown actor marks with): market value and unrealized P&L per position, equity, the age of
every price, and which holdings are stale or unpriced. Drawdown is shown against the
snapshot's own equity: each window's peak from the drawdown actor at the same seq, in the
window that contains the answer's time (a reset since the last mark already shows).

A follower that halted (`FoldHalted`: it could not fold a journal event) is named in every
answer's `halted`, from the halt it publishes and from its state answers, until it moves past
that seq; the risk actor denies orders meanwhile. Should valuing the books ever fail (or give
figures the wire cannot carry), the portfolio halts its valuation the same way: it logs it
once, counts it, and from then on answers the unvalued books with itself named in `halted`.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from actors.core.conversion import PriceBook
from actors.core.drawdown import Window, drawdowns, mark
from actors.core.valuation import Valuation, value_portfolio
from actors.runtime.actor import (
    Connect,
    Inbound,
    RequestFailed,
    Serve,
    ServiceActor,
    SocketSpec,
    Subscribe,
    handles,
)
from actors.translate import figures_state, limits_of, position_book, settings_of, with_quotes
from messages import (
    CashChanged,
    CashState,
    DrawdownChanged,
    DrawdownFigures,
    DrawdownReport,
    DrawdownView,
    ErrorCode,
    ErrorReply,
    FoldHalted,
    GetCashState,
    GetDrawdownState,
    GetPortfolioState,
    GetPositionsState,
    GetPrices,
    GetReconciliationState,
    PortfolioState,
    PositionsChanged,
    PositionsState,
    PricesState,
    PricesUpdated,
    PriceView,
    ReconciliationReport,
    ReconciliationStatus,
)
from messages.codec import Packed, encode, encode_nesting, pack_field
from messages.units import NS_PER_SECOND
from service.config import decimal_context

MAX_PENDING_CHANGES = 10_000
"""Changes queued for a part that is ahead of the other; past this, it resyncs in full."""


class _Resync:
    """Timer message: check both parts are following, resync a silent one."""


@dataclass
class _Part:
    """One followed part (cash or positions): its values at `seq` and changes queued beyond."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    pending: deque = field(default_factory=deque)  # (first, last, changed), contiguous ranges
    resyncing: bool = False
    synced: bool = False  # a full state has been taken at least once

    @property
    def received(self) -> int:
        """The highest seq this part can reach with what has arrived."""
        return self.pending[-1][1] if self.pending else self.seq

    def queue(self, first_seq: int, seq: int, changed: dict[str, Any]) -> bool:
        """Queue the changes of events first_seq..seq; False when that leaves a gap, or
        when too much is queued (the part then needs a resync from the full state)."""
        if seq <= self.received:
            return True  # already have it
        if first_seq != self.received + 1 or len(self.pending) >= MAX_PENDING_CHANGES:
            return False
        self.pending.append((first_seq, seq, changed))
        return True

    def advance_to(self, target: int) -> None:
        """Apply queued ranges that end at or before `target` (a range applies whole)."""
        while self.pending and self.pending[0][1] <= target:
            _, seq, changed = self.pending.popleft()
            self.values.update(changed)
            self.seq = seq

    def reset(self, seq: int, values: dict[str, Any]) -> None:
        """Take a full state at `seq`; drop queued changes it already covers."""
        self.values = dict(values)
        self.seq = seq
        while self.pending and self.pending[0][1] <= seq:
            self.pending.popleft()
        if self.pending and self.pending[0][0] != seq + 1:
            self.pending.clear()  # what is queued does not follow on: wait for more


_PORTFOLIO_FIELDS = tuple(field.name for field in dataclasses.fields(PortfolioState))
"""The fields of the answer, in their declared (wire) order."""

HALT_SOURCES = {
    "cash.events": "cash",
    "positions.events": "positions",
    "drawdown.events": "drawdown",
    "reconciliation.events": "reconciliation",
}
"""The streams a `FoldHalted` may come on, and the followed actor each stands for."""


def in_group(config: Any, actor: str) -> bool:
    """Whether some process of the group hosts `actor`."""
    return any(actor in process.actors for process in config.processes.values())


class PortfolioActor(ServiceActor):
    """Serves the portfolio state on `portfolio.query` (request/reply)."""

    resync_interval_seconds = 1.0
    event_clock = False
    """Replay: "now" is the latest event time seen (quotes, marks), not the wall clock."""

    def sockets(self) -> Iterable[SocketSpec]:
        specs: list[SocketSpec] = [
            Subscribe("cash.events"),
            Subscribe("positions.events"),
            Connect("cash.query"),
            Connect("positions.query"),
        ]
        if in_group(self.config, "prices"):
            specs += [Subscribe("prices.events"), Connect("prices.query")]
        if in_group(self.config, "drawdown"):
            specs += [Subscribe("drawdown.events"), Connect("drawdown.query")]
        if in_group(self.config, "reconciliation"):
            specs += [Subscribe("reconciliation.events"), Connect("reconciliation.query")]
        return (*specs, Serve("portfolio.query"))

    def clock(self) -> int:
        """Now, integer ns since the epoch (UTC)."""
        return time.time_ns()

    def started(self) -> None:
        self.context = decimal_context(self.config)
        self.cash = _Part("cash")
        self.positions = _Part("positions")
        self.drawdown: _Part | None = None
        self.parts = [self.cash, self.positions]
        if in_group(self.config, "drawdown"):
            self.drawdown = _Part("drawdown")
            self.parts.append(self.drawdown)
            self.drawdown_settings = settings_of(self.config)
            self.drawdown_limits = limits_of(self.config)
        self.follows_prices = in_group(self.config, "prices")
        self.follows_reconciliation = in_group(self.config, "reconciliation")
        self.reconciliation: ReconciliationStatus | None = None
        self.prices = PriceBook()
        self.price_views: dict[str, PriceView] = {}
        self.prices_version = 0
        self.newest_quote_ns = 0
        self._valued_key: tuple | None = None
        self._valued: dict[str, Any] = {}
        self._valued_until = 0
        self._max_age_ns = int(self.config.prices.max_age_seconds * NS_PER_SECOND)
        self._snapshot: PortfolioState | None = None
        self._snapshot_figures: DrawdownFigures | None = None
        self._snapshot_seq = -1
        self._snapshot_version = 0
        self._packed: dict[str, tuple[Any, Packed]] = {}
        self._snapshot_fields: dict[str, Any] = {}
        self._last_change_at = time.monotonic()
        self._confirmed_at_ns = self.clock()
        self.halts: dict[str, FoldHalted] = {}  # followed actor -> where it halted
        self.halted: tuple[FoldHalted, ...] = ()  # the same, as the answer carries it
        self.valuation_halt: FoldHalted | None = None
        self.valuation_halts = 0
        for part in self.parts:
            self._resync(part)
        self._ask_prices()
        self._ask_reconciliation()
        self.schedule(self.resync_interval_seconds, _Resync())

    # -- following ------------------------------------------------------------------------------
    @handles(CashChanged, on="cash.events")
    def on_cash_changed(self, change: CashChanged, inbound: Inbound | None) -> None:
        """Queue a cash change; advance every part in lockstep."""
        self._follow(self.cash, change.first_seq, change.seq, change.balances)

    @handles(PositionsChanged, on="positions.events")
    def on_positions_changed(self, change: PositionsChanged, inbound: Inbound | None) -> None:
        """Queue a positions change; advance every part in lockstep."""
        self._follow(self.positions, change.first_seq, change.seq, change.positions)

    @handles(DrawdownChanged, on="drawdown.events")
    def on_drawdown_changed(self, change: DrawdownChanged, inbound: Inbound | None) -> None:
        """Queue the drawdown figures of a journal range, or replace those at a seq (a mark
        between events)."""
        part = self.drawdown
        if part is None:
            return
        values = {"figures": change.figures}
        if change.first_seq <= change.seq:
            self._follow(part, change.first_seq, change.seq, values)
            return
        # A mark between events is not a journal change: it must not keep the resync tick,
        # which confirms the parts are current while the journal is quiet, from running.
        if change.seq > part.received:
            self._resync(part)  # a gap before this mark
        elif change.seq == part.received:
            if part.pending:
                first, last, _ = part.pending[-1]
                part.pending[-1] = (first, last, values)
            else:
                part.values = values
                self._snapshot_seq = -1  # same seq, new figures: rebuild the snapshot

    def counters(self) -> dict[str, int]:
        return {"halted_parts": len(self.halts), "valuation_halts": self.valuation_halts}

    # -- halts ----------------------------------------------------------------------------------
    @handles(FoldHalted, on=tuple(HALT_SOURCES))
    def on_fold_halted(self, halt: FoldHalted, inbound: Inbound | None) -> None:
        """A followed actor stopped folding at `halt.seq`: name it in every answer."""
        source = HALT_SOURCES.get(inbound.socket) if inbound is not None else None
        self._note_halt(source or halt.actor, halt)

    def _note_halt(self, source: str, halt: FoldHalted | None) -> None:
        """Record (or, with None, clear) the halt of the followed actor `source`."""
        if self.halts.get(source) == halt:
            return
        if halt is None:
            self.log.info("{} is folding again", source)
            del self.halts[source]
        else:
            if source not in self.halts:
                self.log.error(
                    "{} halted at seq {}: {}; orders are denied", halt.actor, halt.seq, halt.reason
                )
            self.halts[source] = halt
        self.halted = tuple(self.halts[name] for name in sorted(self.halts))

    def _follow(self, part: _Part, first_seq: int, seq: int, changed: dict[str, Any]) -> None:
        halt = self.halts.get(part.name)
        if halt is not None and seq >= halt.seq:
            self._note_halt(part.name, None)  # it folded the event it had halted at
        self._last_change_at = time.monotonic()
        if not part.queue(first_seq, seq, changed):
            part.pending.clear()
            self._resync(part)
            return
        self._advance()

    def _advance(self) -> None:
        target = min(part.received for part in self.parts)
        for part in self.parts:
            part.advance_to(target)
        self._confirmed_at_ns = self.clock()

    @handles(PricesUpdated, on="prices.events")
    def on_prices_updated(self, update: PricesUpdated, inbound: Inbound | None) -> None:
        """Take the quotes (latest wins)."""
        self._take_quotes(update.quotes)

    def _take_quotes(self, quotes: Any) -> None:
        try:
            prices, newest = with_quotes(self.prices, quotes)
        except ValueError as exc:
            self.failed += 1
            self.log.warning("refused quotes: {}", exc)
            return
        if prices is self.prices:
            return  # nothing newer
        views = dict(self.price_views)
        for pair, quote in prices.items():
            if self.prices.get(pair) is not quote:
                views[pair] = PriceView(
                    bid=quote.bid, ask=quote.ask, last=quote.last, observed_ns=quote.observed_ns
                )
        self.prices = prices
        self.price_views = views
        self.prices_version += 1
        self.newest_quote_ns = max(self.newest_quote_ns, newest)

    def _ask_prices(self) -> None:
        if not self.follows_prices:
            return
        self.request(
            "prices.query",
            GetPrices(correlation_id=self.next_correlation_id()),
            on_reply=lambda answer: (
                self._take_quotes(answer.quotes) if isinstance(answer, PricesState) else None
            ),
            on_failure=lambda failure: None,
        )

    @handles(ReconciliationReport, on="reconciliation.events")
    def on_reconciliation_report(
        self, report: ReconciliationReport, inbound: Inbound | None
    ) -> None:
        """The reconciliation actor's latest status (latest wins)."""
        self.reconciliation = report.status
        self._note_halt("reconciliation", report.halted)

    def _reconciliation_answered(self, answer: Any) -> None:
        if isinstance(answer, ReconciliationReport):
            self.reconciliation = answer.status
            self._note_halt("reconciliation", answer.halted)

    def _ask_reconciliation(self) -> None:
        if not self.follows_reconciliation:
            return
        self.request(
            "reconciliation.query",
            GetReconciliationState(correlation_id=self.next_correlation_id()),
            on_reply=self._reconciliation_answered,
            on_failure=lambda failure: None,
        )

    @handles(_Resync)
    def on_resync_tick(self, tick: _Resync, inbound: Inbound | None) -> None:
        """When the streams are quiet, make sure every part caught up with its actor."""
        if time.monotonic() - self._last_change_at >= self.resync_interval_seconds:
            for part in self.parts:
                self._resync(part)
            self._ask_prices()
            self._ask_reconciliation()
        self.schedule(self.resync_interval_seconds, _Resync())

    def _resync(self, part: _Part) -> None:
        if part.resyncing:
            return
        part.resyncing = True
        if part is self.cash:
            request: Any = GetCashState(correlation_id=self.next_correlation_id())
            endpoint = "cash.query"
        elif part is self.positions:
            request = GetPositionsState(correlation_id=self.next_correlation_id())
            endpoint = "positions.query"
        else:
            request = GetDrawdownState(correlation_id=self.next_correlation_id())
            endpoint = "drawdown.query"
        self.request(
            endpoint,
            request,
            on_reply=self._resynced(part),
            on_failure=self._resync_failed(part),
        )

    def _resynced(self, part: _Part) -> Callable[[Any], None]:
        def take(state: Any) -> None:
            part.resyncing = False
            if isinstance(state, CashState):
                values: dict[str, Any] = dict(state.balances)
            elif isinstance(state, PositionsState):
                values = dict(state.positions)
            elif isinstance(state, DrawdownReport):
                values = {"figures": state.figures}
            else:
                self.log.warning("{} resync answered with {}", part.name, type(state).__name__)
                return
            self._note_halt(part.name, state.halted)
            if state.seq >= part.received:
                part.reset(state.seq, values)
                self._snapshot_seq = -1
            part.synced = True
            self._advance()  # also stamps the confirmation time

        return take

    def _resync_failed(self, part: _Part) -> Callable[[RequestFailed], None]:
        def failed(failure: RequestFailed) -> None:
            part.resyncing = False

        return failed

    # -- serving --------------------------------------------------------------------------------
    def _at_one_seq(self) -> bool:
        return all(part.seq == self.cash.seq for part in self.parts)

    def _consistent_snapshot(self) -> PortfolioState | None:
        """The books (unvalued) at the last seq every part reached together."""
        if self._at_one_seq() and self.cash.seq != self._snapshot_seq:
            figures = self.drawdown.values.get("figures") if self.drawdown else None
            self._snapshot = PortfolioState(
                correlation_id="-",
                seq=self.cash.seq,
                as_of_ns=self._confirmed_at_ns,
                valuation_currency=self.config.accounting.valuation_currency,
                equity=None,
                cash=dict(self.cash.values),
                positions=dict(self.positions.values),
            )
            self._snapshot_fields = {n: getattr(self._snapshot, n) for n in _PORTFOLIO_FIELDS}
            self._snapshot_figures = figures
            self._snapshot_seq = self.cash.seq
            self._snapshot_version += 1
        elif self._snapshot is None and self.halts:
            # A part halted before the parts ever met at one seq (another has folded past
            # the halt): the one state every part agrees on is the start, seq 0, before any
            # event. It is answered, with the halts, rather than nothing, or a mix.
            self._snapshot = PortfolioState(
                correlation_id="-",
                seq=0,
                as_of_ns=self._confirmed_at_ns,
                valuation_currency=self.config.accounting.valuation_currency,
                equity=None,
                cash={},
                positions={},
            )
            self._snapshot_fields = {n: getattr(self._snapshot, n) for n in _PORTFOLIO_FIELDS}
            self._snapshot_figures = None
            self._snapshot_version += 1
        return self._snapshot

    def now(self) -> int:
        """The time the answer is valued at: the wall clock, or in replay the latest event."""
        if not self.event_clock:
            return self.clock()
        figures = self.drawdown.values.get("figures") if self.drawdown else None
        last_mark = figures.last_mark_ns if figures is not None else None
        return max(self.newest_quote_ns, last_mark or 0)

    def value(self, books: PortfolioState, now_ns: int) -> Valuation:
        """The snapshot's books valued with the quotes held, at `now_ns`."""
        prices = self.config.prices
        return value_portfolio(
            books.cash,
            {asset: position_book(p) for asset, p in books.positions.items()},
            self.prices,
            valuation_currency=books.valuation_currency,
            now_ns=now_ns,
            max_age_ns=self._max_age_ns,
            bridges=prices.bridges,
            mode=prices.mode,
            context=self.context,
        )

    @handles(GetPortfolioState, on="portfolio.query")
    def on_get_portfolio_state(
        self, request: GetPortfolioState, inbound: Inbound | None
    ) -> bytes | ErrorReply:
        """The latest snapshot whose every part is at one seq, valued now (`answer_fields`).

        The answer is encoded here: each field is packed once and kept while it stays the
        same object (the parts are immutable once built), so a query between two changes
        packs only its correlation id and time. No `PortfolioState` is built for it: its
        fields go to the codec as they are, validated as `encode` would.

        Should valuing or packing the answer fail, the valuation halts (`_halted_answer`).
        """
        if self.valuation_halt is not None:
            return self._halted_answer(request, None)
        try:
            return self._valued_answer(request)
        except Exception as exc:
            return self._halted_answer(request, exc)

    def _valued_answer(self, request: GetPortfolioState) -> bytes | ErrorReply:
        values = self.answer_fields(request)
        if isinstance(values, ErrorReply):
            return values
        fields: dict[str, Any] = {}
        for name in _PORTFOLIO_FIELDS:
            value = values[name]
            kept = self._packed.get(name)
            if kept is None or kept[0] is not value:
                kept = (value, pack_field(PortfolioState, name, value))
                self._packed[name] = kept
            fields[name] = kept[1]
        return encode_nesting(PortfolioState, fields)

    def _halted_answer(
        self, request: GetPortfolioState, cause: BaseException | None
    ) -> bytes | ErrorReply:
        """The books of the last consistent snapshot, unvalued, with the portfolio itself
        named in `halted`: valuing them failed (`cause`, the first time) and is not tried
        again until a restart."""
        books = self._snapshot
        if books is None:
            return ErrorReply(
                correlation_id=request.correlation_id,
                code=ErrorCode.UNAVAILABLE,
                detail=f"the portfolio cannot answer: {type(cause).__name__}: {cause}",
            )
        if self.valuation_halt is None:
            reason = f"{type(cause).__name__}: {cause}"[:500]
            self.valuation_halt = FoldHalted(actor=self.name, seq=max(books.seq, 1), reason=reason)
            self.valuation_halts += 1
            self.failed += 1
            self.log.opt(exception=cause).error(
                "halted valuing the books at seq {} ({}); answering them unvalued, and orders "
                "are denied",
                books.seq,
                reason,
            )
        values = dict(self._snapshot_fields)
        values.update(
            correlation_id=request.correlation_id,
            as_of_ns=self._confirmed_at_ns,
            equity=None,
            drawdown=None,
            prices=self.price_views,
            price_max_age_ns=self._max_age_ns,
            reconciliation=self.reconciliation,
            halted=(*self.halted, self.valuation_halt),
        )
        return encode(PortfolioState(**values))

    def answer_fields(self, request: GetPortfolioState) -> dict[str, Any] | ErrorReply:
        """Every field of the answer to `request`, by name: the latest snapshot whose every
        part is at one seq, with the request's correlation id, valued now.

        Until every part has been read in full once (just after a start), the answer is an
        `ErrorReply(unavailable)`: an empty portfolio would be a silently wrong one.
        """
        if not all(part.synced for part in self.parts):
            waiting = ", ".join(part.name for part in self.parts if not part.synced)
            return ErrorReply(
                correlation_id=request.correlation_id,
                code=ErrorCode.UNAVAILABLE,
                detail=f"the portfolio is catching up with the {waiting} actors",
            )
        books = self._consistent_snapshot()
        if books is None:
            return ErrorReply(
                correlation_id=request.correlation_id,
                code=ErrorCode.UNAVAILABLE,
                detail="the portfolio is catching up: its parts are not at one seq yet",
            )
        as_of = (
            self._confirmed_at_ns
            if books.seq == self.cash.seq and self._at_one_seq()
            else books.as_of_ns
        )
        now = self.now()
        if self.event_clock:
            as_of = now
        values = dict(self._snapshot_fields)
        values["correlation_id"] = request.correlation_id
        values["as_of_ns"] = as_of
        values["reconciliation"] = self.reconciliation
        values["halted"] = self.halted
        if not self.follows_prices:
            equity = None
            if not books.positions and set(books.cash) <= {books.valuation_currency}:
                equity = books.cash.get(books.valuation_currency, Decimal(0))
            values["equity"] = equity
            values["drawdown"] = self._drawdown_view(equity, now)
            return values
        values["prices"] = self.price_views
        values["price_max_age_ns"] = self._max_age_ns
        values.update(self._valued_parts(books, now))
        return values

    def _valued_parts(self, books: PortfolioState, now_ns: int) -> dict[str, Any]:
        """Equity, positions with market figures, drawdown, stale and unpriced, at `now_ns`.

        Computed again only when the books, the quotes or the drawdown figures changed, or
        time reached a moment that changes the answer: a quote turning stale, a window reset.
        In between, the same inputs give the same figures, so they are kept.
        """
        key = (books.seq, self._snapshot_version, self.prices_version)
        if key == self._valued_key and now_ns < self._valued_until:
            return self._valued
        valued = self.value(books, now_ns)
        positions = {}
        for asset, position in books.positions.items():
            figures = valued.positions[asset]
            oldest = figures.price.oldest_age_ns
            positions[asset] = replace(
                position,
                market_value=figures.market_value,
                unrealized_pnl=figures.unrealized_pnl,
                price_path=figures.price.path,
                price_observed_ns=None if oldest is None else now_ns - oldest,
            )
        self._valued = {
            "equity": valued.equity,
            "positions": positions,
            "drawdown": self._drawdown_view(valued.equity, now_ns),
            "stale": valued.stale,
            "unpriced": valued.unpriced,
        }
        self._valued_key = key
        self._valued_until = self._valid_until(now_ns)
        return self._valued

    def _valid_until(self, now_ns: int) -> int:
        """The first moment a valuation made at `now_ns` may differ with the same inputs."""
        until = min(
            (
                quote.observed_ns + self._max_age_ns + 1
                for quote in self.prices.values()
                if quote.observed_ns + self._max_age_ns >= now_ns
            ),
            default=now_ns + NS_PER_SECOND * 3600,
        )
        if self.drawdown is not None:
            settings = self.drawdown_settings
            this_window = settings.daily_window_start(now_ns)
            next_window = settings.daily_window_start(this_window + 26 * 3600 * NS_PER_SECOND)
            until = min(until, next_window)
        return until

    def _drawdown_view(self, equity: Decimal | None, now_ns: int) -> DrawdownView | None:
        """Each window's drawdown of `equity` at `now_ns`, from the peaks at the snapshot's seq.

        A mark of `equity` at `now_ns` on a copy of the drawdown actor's state: it moves into
        the windows that contain `now_ns` and raises a peak the equity passed (the actor's own
        state is only changed by the actor).
        """
        if self.drawdown is None:
            return None
        figures = self._snapshot_figures
        if figures is None:
            return None
        state = figures_state(figures)
        if equity is not None:
            at = max(now_ns, state.last_mark_ns or 0)
            state = mark(state, equity, at, self.drawdown_settings)
        pcts = drawdowns(state, self.context)
        limits = self.drawdown_limits
        breached = set(figures.breached)
        for window in Window:
            limit = limits.of(window)
            if limit is not None and pcts.of(window) >= limit:
                breached.add(window.value)
        return DrawdownView(
            total_pct=pcts.total_pct,
            daily_pct=pcts.daily_pct,
            weekly_pct=pcts.weekly_pct,
            peak_equity=state.peak_equity,
            daily_peak=state.daily_peak,
            weekly_peak=state.weekly_peak,
            daily_window_start_ns=state.daily_window_start,
            weekly_window_start_ns=state.weekly_window_start,
            max_total_pct=limits.max_total_drawdown_pct,
            max_daily_pct=limits.max_daily_drawdown_pct,
            max_weekly_pct=limits.max_weekly_drawdown_pct,
            breached=tuple(w.value for w in Window if w.value in breached),
            seq=figures.seq,
            marks=figures.marks,
        )
