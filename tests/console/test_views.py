"""The state's JSON form: exposure as the risk actor judges it, in the service's context."""

from __future__ import annotations

import decimal
from decimal import Decimal

from console.views import portfolio_json
from messages import PortfolioState, PositionState

CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)  # the service's


def held(asset: str, quantity: str, cost: str, market_value: str | None) -> PositionState:
    return PositionState(
        asset=asset,
        quantity=Decimal(quantity),
        average_cost=Decimal(cost),
        realized_pnl=Decimal(0),
        fees=Decimal(0),
        market_value=None if market_value is None else Decimal(market_value),
        unrealized_pnl=None,
    )


def test_exposure_is_market_value_or_cost_basis_in_the_given_context():
    state = PortfolioState(
        correlation_id="c",
        seq=3,
        as_of_ns=1_700_000_000_000_000_000,
        valuation_currency="USD",
        equity=None,
        cash={"USD": Decimal("100")},
        positions={
            "XBT": held("XBT", "-0.12345", "61000", "-7406.1234567"),
            "ETH": held("ETH", "0.12345", "3000.1", None),
        },
    )
    with decimal.localcontext(decimal.Context(prec=3)):
        shown = portfolio_json(state, CONTEXT)["exposure"]
    assert shown == {
        "positions": {"ETH": "370.362345", "XBT": "7406.1234567"},
        "total": "7776.4858017",
        "basis": "cost (some positions are unpriced)",
    }
