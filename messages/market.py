"""Messages of prices and drawdown: quotes, the feed's state, peaks and limit crossings."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from messages.base import Identifier, Message, NonNegative, Positive, TimestampNs, message
from messages.portfolio import FoldHalted, PositionState, ReconciliationStatus

__all__ = [
    "DrawdownChanged",
    "DrawdownFigures",
    "DrawdownLimitBreached",
    "DrawdownMarked",
    "DrawdownRecovered",
    "DrawdownReport",
    "DrawdownSnapshot",
    "GetDrawdownState",
    "GetPrices",
    "GetReconciliationState",
    "PriceQuote",
    "PricesState",
    "PricesUpdated",
    "ReconciliationReport",
]


@message
class PriceQuote(Message):
    """The latest prices of `pair` (`XBT/USD`), quote currency per base unit.

    `bid`, `ask`, `last`: > 0, or None when the feed did not give one. `exchange_ns` is the
    exchange's time of the quote when it gives one (Kraken's REST ticker does not);
    `received_ns` when the feed received it (in replay: the event time).
    """

    pair: Identifier
    bid: Annotated[Decimal, Positive] | None
    ask: Annotated[Decimal, Positive] | None
    last: Annotated[Decimal, Positive] | None
    exchange_ns: Annotated[int, NonNegative] | None
    received_ns: TimestampNs


@message
class PricesUpdated(Message):
    """Quotes that changed (published on `prices.events`; for a pair, the latest wins)."""

    quotes: tuple[PriceQuote, ...]


@message
class GetPrices(Message):
    """Ask the prices actor for every latest quote and the feed's health."""

    correlation_id: Identifier


@message
class PricesState(Message):
    """Every latest quote, and how the feed is doing.

    `last_success_ns` is when a ticker read last succeeded (None: never);
    `consecutive_failures` counts reads failed since; `last_error` says why the last failed.
    """

    correlation_id: Identifier
    quotes: tuple[PriceQuote, ...]
    polls_ok: Annotated[int, NonNegative]
    polls_failed: Annotated[int, NonNegative]
    consecutive_failures: Annotated[int, NonNegative]
    last_success_ns: Annotated[int, NonNegative] | None
    last_error: str


@message
class DrawdownFigures(Message):
    """The drawdown actor's peaks and windows after journal event `seq` (see
    actors/core/drawdown.py). All None before the first mark. `breached` names the windows
    (`total`, `daily`, `weekly`) over their limits at the last mark; `marks` counts marks."""

    seq: Annotated[int, NonNegative]
    peak_equity: Decimal | None
    daily_peak: Decimal | None
    weekly_peak: Decimal | None
    daily_window_start_ns: Annotated[int, NonNegative] | None
    weekly_window_start_ns: Annotated[int, NonNegative] | None
    last_equity: Decimal | None
    last_mark_ns: Annotated[int, NonNegative] | None
    breached: tuple[str, ...]
    marks: Annotated[int, NonNegative]


@message
class DrawdownChanged(Message):
    """Published on `drawdown.events` after the drawdown actor applied journal events
    `first_seq`..`seq` (a range, like `CashChanged`); a mark between events is a
    `DrawdownMarked`."""

    first_seq: Annotated[int, Positive]
    seq: Annotated[int, NonNegative]
    figures: DrawdownFigures


@message
class DrawdownMarked(Message):
    """Published on `drawdown.events` when the drawdown actor marked equity without a new
    journal event (a price move, the end of a mark interval): `figures` replace those at
    `seq`, the journal event the actor is at."""

    seq: Annotated[int, NonNegative]
    figures: DrawdownFigures


@message
class GetDrawdownState(Message):
    """Ask the drawdown actor for its figures; answered with a `DrawdownReport`."""

    correlation_id: Identifier


@message
class DrawdownReport(Message):
    """The drawdown actor's figures after journal event `seq`; `halted` when it stopped
    folding (or marking) there."""

    correlation_id: Identifier
    seq: Annotated[int, NonNegative]
    figures: DrawdownFigures
    halted: FoldHalted | None = None


@message
class DrawdownLimitBreached(Message):
    """A window's drawdown reached its limit (once per crossing), at the mark `ts_ns`."""

    window: Identifier
    pct: Decimal
    limit: Annotated[Decimal, Positive]
    equity: Decimal
    ts_ns: TimestampNs


@message
class DrawdownRecovered(Message):
    """A breached window is back under its limit (None: the limit was removed)."""

    window: Identifier
    pct: Decimal
    limit: Annotated[Decimal, Positive] | None
    equity: Decimal
    ts_ns: TimestampNs


@message
class DrawdownSnapshot(Message):
    """What the drawdown actor saves, all at journal event `seq`: the books it values, its
    figures and the last quotes it marked with."""

    seq: Annotated[int, NonNegative]
    cash: dict[str, Decimal]
    positions: dict[str, PositionState]
    figures: DrawdownFigures


@message
class GetReconciliationState(Message):
    """Ask the reconciliation actor for its status; answered with a `ReconciliationReport`."""

    correlation_id: Identifier


@message
class ReconciliationReport(Message):
    """The reconciliation actor's status (also published on `reconciliation.events`);
    `halted` when its fold of the journal stopped (it then compares nothing)."""

    correlation_id: Identifier
    status: ReconciliationStatus
    halted: FoldHalted | None = None
