"""Wire ⇄ core: the pure core's values from the messages the actors exchange, and back.

Shared by the actors (and the console) so that no actor imports another for them.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from actors.core.accounting import PositionBook
from actors.core.conversion import PriceBook, Quote
from actors.core.drawdown import DrawdownLimits, DrawdownSettings, DrawdownState, WindowsView
from actors.core.valuation import Valuer, exposure
from messages import DrawdownFigures, DrawdownView, PositionState, PriceQuote
from messages.units import seconds_to_ns
from service.config import decimal_context


def position_state(asset: str, book: PositionBook) -> PositionState:
    """The wire form of one position (unpriced: market value and unrealized P&L None)."""
    return PositionState(
        asset=asset,
        quantity=book.quantity,
        average_cost=book.average_cost,
        realized_pnl=book.realized_pnl,
        fees=book.fees,
        market_value=None,
        unrealized_pnl=None,
    )


def position_book(position: PositionState) -> PositionBook:
    """The book of one position from its wire form (what a snapshot restores)."""
    return PositionBook(
        quantity=position.quantity,
        average_cost=position.average_cost,
        realized_pnl=position.realized_pnl,
        fees=position.fees,
    )


def settings_of(config: Any) -> DrawdownSettings:
    """The window settings of the drawdown section of config.yaml."""
    section = config.drawdown
    return DrawdownSettings(
        daily_reset_hour=section.daily_reset_hour,
        timezone=section.timezone,
        weekly_reset_weekday=section.weekly_reset_weekday,
    )


def limits_of(config: Any) -> DrawdownLimits:
    """The drawdown limits of the risk section of config.yaml."""
    risk = config.risk
    return DrawdownLimits(
        max_total_drawdown_pct=risk.max_total_drawdown_pct,
        max_daily_drawdown_pct=risk.max_daily_drawdown_pct,
        max_weekly_drawdown_pct=risk.max_weekly_drawdown_pct,
    )


def quote_of(quote: PriceQuote) -> Quote:
    """The pure core's quote from its wire form."""
    return Quote(
        pair=quote.pair,
        bid=quote.bid,
        ask=quote.ask,
        last=quote.last,
        exchange_ns=quote.exchange_ns,
        received_ns=quote.received_ns,
    )


def with_quotes(book: PriceBook, quotes: Iterable[PriceQuote]) -> tuple[PriceBook, int]:
    """`book` with each quote newer than the one held (latest wins); the newest receive time
    (0 when nothing was newer)."""
    taken: dict[str, Quote] = {}
    newest = 0
    for wire in quotes:
        known = taken.get(wire.pair) or book.get(wire.pair)
        if known is not None and known.received_ns > wire.received_ns:
            continue
        taken[wire.pair] = quote_of(wire)
        newest = max(newest, wire.received_ns)
    if not taken:
        return book, 0
    return book.with_quotes(taken.values()), newest


def figures_state(figures: DrawdownFigures) -> DrawdownState:
    """The pure core's state from its wire form."""
    return DrawdownState(
        peak_equity=figures.peak_equity,
        daily_peak=figures.daily_peak,
        weekly_peak=figures.weekly_peak,
        daily_window_start=figures.daily_window_start_ns,
        weekly_window_start=figures.weekly_window_start_ns,
        last_equity=figures.last_equity,
        last_mark_ns=figures.last_mark_ns,
    )


def drawdown_view(
    figures: DrawdownFigures, view: WindowsView, limits: DrawdownLimits
) -> DrawdownView:
    """The state query's drawdown: the core's view of the windows at the figures' seq."""
    state, pcts = view.state, view.pcts
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
        breached=tuple(window.value for window in view.breached),
        seq=figures.seq,
        marks=figures.marks,
    )


def position_exposure(position: PositionState, context: decimal.Context) -> Decimal:
    """A position's exposure as the portfolio shows it (`actors.core.valuation.exposure`):
    |market value| when priced, else |quantity| × average cost (valuation currency)."""
    return exposure(position.market_value, position.quantity, position.average_cost, context)


def valuer_of(config: Any) -> Valuer:
    """The valuation of the accounting and prices sections of config.yaml, in the service's
    decimal context."""
    prices = config.prices
    return Valuer(
        valuation_currency=config.accounting.valuation_currency,
        max_age_ns=seconds_to_ns(prices.max_age_seconds),
        context=decimal_context(config),
        bridges=tuple(prices.bridges),
        mode=prices.mode,
    )
