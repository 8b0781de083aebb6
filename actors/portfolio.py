"""The portfolio actor: the read model that answers `GetPortfolioState`.

It owns nothing of its own: it is a read-only facade over the pure pieces that do the work.
It follows the cash and positions actors' change streams (and the drawdown actor's, when the
group has one) into a `LockstepJoin` (`actors.core.lockstep`): a part's changes up to
journal event `seq` are applied only when every other part can reach that same `seq` too,
so every snapshot it serves has every part at exactly one `seq`. Changes come per event live
and per replayed range while catching up; a range applies whole; a drawdown mark between
events (`DrawdownMarked`) replaces the figures at its seq. A gap in a stream (a lost
message, a restarted actor) is repaired by asking that actor for its full state (the join
says when); until the parts meet again at one seq, queries get the last consistent
snapshot, never a mix.

When the group has a prices actor, the portfolio follows its quotes (latest wins) and values
the snapshot at the moment it answers, with the `Valuer` of `actors.core.valuation` (the
one the drawdown actor marks with): market value and unrealized P&L per position, equity, the age of
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
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from actors.core.conversion import PriceBook
from actors.core.drawdown import view_at
from actors.core.lockstep import LockstepJoin
from actors.core.valuation import Valuation
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
from actors.translate import (
    drawdown_view,
    figures_state,
    limits_of,
    position_book,
    settings_of,
    valuer_of,
    with_quotes,
)
from messages import (
    CashChanged,
    CashState,
    DrawdownChanged,
    DrawdownFigures,
    DrawdownMarked,
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
from messages.codec import FieldPacker, encode
from messages.units import NS_PER_SECOND


class _Resync:
    """Timer message: check every part is following, resync a silent one."""


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
        self.valuer = valuer_of(self.config)
        self.context = self.valuer.context
        self.has_drawdown = in_group(self.config, "drawdown")
        parts = ["cash", "positions"] + (["drawdown"] if self.has_drawdown else [])
        self.join = LockstepJoin(parts)
        self._resyncing: set[str] = set()
        if self.has_drawdown:
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
        self._max_age_ns = self.valuer.max_age_ns
        self._snapshot: PortfolioState | None = None
        self._snapshot_figures: DrawdownFigures | None = None
        self._snapshot_join_version = -1
        self._snapshot_version = 0
        self._packer = FieldPacker(PortfolioState)
        self._snapshot_fields: dict[str, Any] = {}
        self._last_change_at = time.monotonic()
        self._confirmed_at_ns = self.clock()
        self.halts: dict[str, FoldHalted] = {}  # followed actor -> where it halted
        self.halted: tuple[FoldHalted, ...] = ()  # the same, as the answer carries it
        self.valuation_halt: FoldHalted | None = None
        self.valuation_halts = 0
        for part in self.join.names:
            self._resync(part)
        self._ask_prices()
        self._ask_reconciliation()
        self.schedule(self.resync_interval_seconds, _Resync())

    # -- following ------------------------------------------------------------------------------
    @handles(CashChanged, on="cash.events")
    def on_cash_changed(self, change: CashChanged, inbound: Inbound | None) -> None:
        """Queue a cash change; advance every part in lockstep."""
        self._follow("cash", change.first_seq, change.seq, change.balances)

    @handles(PositionsChanged, on="positions.events")
    def on_positions_changed(self, change: PositionsChanged, inbound: Inbound | None) -> None:
        """Queue a positions change; advance every part in lockstep."""
        self._follow("positions", change.first_seq, change.seq, change.positions)

    @handles(DrawdownChanged, on="drawdown.events")
    def on_drawdown_changed(self, change: DrawdownChanged, inbound: Inbound | None) -> None:
        """Queue the drawdown figures of a journal range; advance every part in lockstep."""
        if self.has_drawdown:
            self._follow("drawdown", change.first_seq, change.seq, {"figures": change.figures})

    @handles(DrawdownMarked, on="drawdown.events")
    def on_drawdown_marked(self, marked: DrawdownMarked, inbound: Inbound | None) -> None:
        """Replace the drawdown figures at `marked.seq` (a mark between journal events)."""
        if not self.has_drawdown:
            return
        # A mark between events is not a journal change: it must not keep the resync tick,
        # which confirms the parts are current while the journal is quiet, from running.
        if not self.join.mark("drawdown", marked.seq, {"figures": marked.figures}):
            self._resync("drawdown")  # a gap before this mark

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

    def _follow(self, part: str, first_seq: int, seq: int, changed: dict[str, Any]) -> None:
        halt = self.halts.get(part)
        if halt is not None and seq >= halt.seq:
            self._note_halt(part, None)  # it folded the event it had halted at
        self._last_change_at = time.monotonic()
        if not self.join.change(part, first_seq, seq, changed):
            self._resync(part)
            return
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
            for part in self.join.names:
                self._resync(part)
            self._ask_prices()
            self._ask_reconciliation()
        self.schedule(self.resync_interval_seconds, _Resync())

    def _resync(self, part: str) -> None:
        if part in self._resyncing:
            return
        self._resyncing.add(part)
        if part == "cash":
            request: Any = GetCashState(correlation_id=self.next_correlation_id())
            endpoint = "cash.query"
        elif part == "positions":
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

    def _resynced(self, part: str) -> Callable[[Any], None]:
        def take(state: Any) -> None:
            self._resyncing.discard(part)
            if isinstance(state, CashState):
                values: dict[str, Any] = dict(state.balances)
            elif isinstance(state, PositionsState):
                values = dict(state.positions)
            elif isinstance(state, DrawdownReport):
                values = {"figures": state.figures}
            else:
                self.log.warning("{} resync answered with {}", part, type(state).__name__)
                return
            self._note_halt(part, state.halted)
            self.join.reset(part, state.seq, values)
            self._confirmed_at_ns = self.clock()

        return take

    def _resync_failed(self, part: str) -> Callable[[RequestFailed], None]:
        def failed(failure: RequestFailed) -> None:
            self._resyncing.discard(part)

        return failed

    # -- serving --------------------------------------------------------------------------------
    def _figures(self) -> DrawdownFigures | None:
        """The drawdown figures where the join holds that part now."""
        return self.join.values("drawdown").get("figures") if self.has_drawdown else None

    def _consistent_snapshot(self) -> PortfolioState | None:
        """The books (unvalued) at the last seq every part reached together."""
        join = self.join
        if join.at_one_seq and join.version != self._snapshot_join_version:
            self._snapshot = PortfolioState(
                correlation_id="-",
                seq=join.seq,
                as_of_ns=self._confirmed_at_ns,
                valuation_currency=self.config.accounting.valuation_currency,
                equity=None,
                cash=dict(join.values("cash")),
                positions=dict(join.values("positions")),
            )
            self._snapshot_fields = {n: getattr(self._snapshot, n) for n in _PORTFOLIO_FIELDS}
            self._snapshot_figures = self._figures()
            self._snapshot_join_version = join.version
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
        figures = self._figures()
        last_mark = figures.last_mark_ns if figures is not None else None
        return max(self.newest_quote_ns, last_mark or 0)

    def value(self, books: PortfolioState, now_ns: int) -> Valuation:
        """The snapshot's books valued with the quotes held, at `now_ns`."""
        return self.valuer.value(
            books.cash,
            {asset: position_book(p) for asset, p in books.positions.items()},
            self.prices,
            now_ns,
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
        return self._packer.encode(values)

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
        if not self.join.synced:
            waiting = ", ".join(self.join.waiting())
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
            if books.seq == self.join.seq and self.join.at_one_seq
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
        if self.has_drawdown:
            settings = self.drawdown_settings
            this_window = settings.daily_window_start(now_ns)
            next_window = settings.daily_window_start(this_window + 26 * 3600 * NS_PER_SECOND)
            until = min(until, next_window)
        return until

    def _drawdown_view(self, equity: Decimal | None, now_ns: int) -> DrawdownView | None:
        """Each window's drawdown of `equity` at `now_ns`, from the peaks at the snapshot's
        seq (`actors.core.drawdown.view_at`, on a copy: the drawdown actor's own state is
        only changed by that actor)."""
        figures = self._snapshot_figures if self.has_drawdown else None
        if figures is None:
            return None
        view = view_at(
            figures_state(figures),
            equity,
            now_ns,
            self.drawdown_settings,
            self.drawdown_limits,
            self.context,
            breached=figures.breached,
        )
        return drawdown_view(figures, view, self.drawdown_limits)
