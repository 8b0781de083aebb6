"""Messages of the portfolio query: the request and its snapshot."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from messages.base import Identifier, Message, NonNegative, TimestampNs, message

__all__ = ["GetPortfolioState", "PortfolioState", "PositionState"]


@message
class GetPortfolioState(Message):
    """Ask the portfolio for one consistent snapshot; answered with a `PortfolioState`."""

    correlation_id: Identifier


@message
class PositionState(Message):
    """One non-cash holding, money in the valuation currency.

    `quantity` is signed (negative: a short). `average_cost` is the average price paid per
    unit of the open quantity (>= 0). `realized_pnl` is the cumulative realized P&L net of
    fees (positive: a gain); `fees` the cumulative fees paid (>= 0). `market_value` =
    quantity × price and `unrealized_pnl` = quantity × (price − average_cost), both None when
    the asset could not be priced.
    """

    asset: Identifier
    quantity: Decimal
    average_cost: Annotated[Decimal, NonNegative]
    realized_pnl: Decimal
    fees: Annotated[Decimal, NonNegative]
    market_value: Decimal | None
    unrealized_pnl: Decimal | None


@message
class PortfolioState(Message):
    """The portfolio snapshot as of journal `seq` (every part reflects the log up to it).

    `equity` = Σ cash × rate + Σ market_value, in `valuation_currency`; None when some
    holding could not be valued. `cash` maps currency to balance (signed), `positions` maps
    asset to its `PositionState`.
    """

    correlation_id: Identifier
    seq: Annotated[int, NonNegative]
    as_of_ns: TimestampNs
    valuation_currency: Identifier
    equity: Decimal | None
    cash: dict[str, Decimal]
    positions: dict[str, PositionState]
