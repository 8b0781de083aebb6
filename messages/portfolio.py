"""Messages of the portfolio query: the request and its snapshot."""

from __future__ import annotations

from dataclasses import field
from decimal import Decimal
from typing import Annotated

from messages.base import Identifier, Message, NonNegative, Positive, TimestampNs, message

__all__ = [
    "Discrepancy",
    "DrawdownView",
    "FoldHalted",
    "GetPortfolioState",
    "PortfolioState",
    "PositionState",
    "PriceView",
    "ReconciliationStatus",
]


@message
class GetPortfolioState(Message):
    """Ask the portfolio for one consistent snapshot; answered with a `PortfolioState`."""

    correlation_id: Identifier


@message
class FoldHalted(Message):
    """`actor` stopped folding the journal at event `seq`: it could not fold that event or
    carry the state it gives (the drawdown actor: or mark the equity it gives; the
    portfolio: or value the books at that seq), for `reason`. What it serves stays as it
    was before, it keeps answering (saying it is halted), and the risk actor denies every
    order while any part of the books is halted. A restart halts again at the same seq: the
    event is in the log for good, so the cause has to be dealt with (the log or the code)."""

    actor: Identifier
    seq: Annotated[int, Positive]
    reason: str


@message
class PositionState(Message):
    """One non-cash holding, money in the valuation currency.

    `quantity` is signed (negative: a short). `average_cost` is the average price paid per
    unit of the open quantity (>= 0). `realized_pnl` is the cumulative realized P&L net of
    fees (positive: a gain); `fees` the cumulative fees paid (>= 0). `market_value` =
    quantity × price and `unrealized_pnl` = quantity × (price − average_cost), both None when
    the asset could not be priced. `price_path` lists the pairs the price was converted over
    (`ETH/XBT`, `XBT/USD`), `price_observed_ns` when the oldest of them was last true.
    """

    asset: Identifier
    quantity: Decimal
    average_cost: Annotated[Decimal, NonNegative]
    realized_pnl: Decimal
    fees: Annotated[Decimal, NonNegative]
    market_value: Decimal | None
    unrealized_pnl: Decimal | None
    price_path: tuple[str, ...] = ()
    price_observed_ns: Annotated[int, NonNegative] | None = None


@message
class DrawdownView(Message):
    """Drawdown as the state query shows it: each % against the snapshot's own equity.

    pct = (peak − equity) / peak × 100 (never negative), with each peak the drawdown actor's
    peak of the window that contains `as_of` raised to the equity when higher. Limits are
    the risk settings (None: no limit); `breached` the windows at or over their limit.
    """

    total_pct: Decimal
    daily_pct: Decimal
    weekly_pct: Decimal
    peak_equity: Decimal | None
    daily_peak: Decimal | None
    weekly_peak: Decimal | None
    daily_window_start_ns: Annotated[int, NonNegative] | None
    weekly_window_start_ns: Annotated[int, NonNegative] | None
    max_total_pct: Decimal | None
    max_daily_pct: Decimal | None
    max_weekly_pct: Decimal | None
    breached: tuple[str, ...]
    seq: Annotated[int, NonNegative]
    marks: Annotated[int, NonNegative]


@message
class PriceView(Message):
    """A pair's price as the state query shows it. `observed_ns` is when the price was last
    true (the older of exchange and receive time): its age at the snapshot's `as_of_ns` is
    as_of − observed, stale beyond the state's `price_max_age_ns`."""

    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    observed_ns: Annotated[int, NonNegative]


@message
class Discrepancy(Message):
    """An asset whose books and exchange balances differ beyond the threshold.

    `difference` = exchange − books (positive: the exchange holds more). `value` is the
    difference in the valuation currency when it could be priced. `since_ns`: first seen.
    """

    asset: Identifier
    books: Decimal
    exchange: Decimal
    difference: Decimal
    value: Decimal | None
    since_ns: TimestampNs


@message
class ReconciliationStatus(Message):
    """How the books agree with the exchange: the reconciliation actor's health and findings.

    `last_success_ns` / `last_attempt_ns`: the last run that completed / started (None:
    never). `consecutive_failures` counts failed runs since the last success, `last_error`
    says why the last failed. `open_discrepancies` are the assets still differing beyond the
    threshold after the last run. `recovered_fills` and `recovered_transfers` count what the
    exchange had and the journal lacked, `adjustments` the corrections journaled
    (`auto_update`). `staking` holds staking and earn balances (Kraken's `.S .M .F .B .P`
    variants, by variant name), reported apart from trading balances. `checked_seq` is the
    journal seq the last comparison was made at.
    """

    last_success_ns: Annotated[int, NonNegative] | None
    last_attempt_ns: Annotated[int, NonNegative] | None
    consecutive_failures: Annotated[int, NonNegative]
    last_error: str
    open_discrepancies: tuple[Discrepancy, ...]
    recovered_fills: Annotated[int, NonNegative]
    recovered_transfers: Annotated[int, NonNegative]
    adjustments: Annotated[int, NonNegative]
    staking: dict[str, Decimal]
    checked_seq: Annotated[int, NonNegative]
    auto_update: bool


@message
class PortfolioState(Message):
    """The portfolio snapshot as of journal `seq` (every part reflects the log up to it).

    `equity` = Σ cash × rate + Σ market_value, in `valuation_currency`; None when some
    holding could not be valued. `cash` maps currency to balance (signed), `positions` maps
    asset to its `PositionState`. `drawdown` is None when the group has no drawdown actor;
    `prices` maps each pair to its quote and age at `as_of_ns`; `stale` and `unpriced` name
    the holdings valued with a price older than `prices.max_age_seconds`, or with none.
    `reconciliation` is the last status of the reconciliation actor (None: not in the group).
    `halted` names every actor of the books that stopped folding, and where (`FoldHalted`):
    then the snapshot is the last one every part could reach, and no order may go out.
    """

    correlation_id: Identifier
    seq: Annotated[int, NonNegative]
    as_of_ns: TimestampNs
    valuation_currency: Identifier
    equity: Decimal | None
    cash: dict[str, Decimal]
    positions: dict[str, PositionState]
    drawdown: DrawdownView | None = None
    prices: dict[str, PriceView] = field(default_factory=dict)
    stale: tuple[str, ...] = ()
    unpriced: tuple[str, ...] = ()
    price_max_age_ns: Annotated[int, NonNegative] = 0
    reconciliation: ReconciliationStatus | None = None
    halted: tuple[FoldHalted, ...] = ()
