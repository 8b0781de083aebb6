"""The risk rules, pure: fail closed, exposure per position and in total."""

from __future__ import annotations

from decimal import Decimal

from actors.risk import decide
from messages import CheckOrder, PortfolioState, PositionState, Side

LIMITS = {
    "max_state_age_ms": 2000,
    "max_position_exposure": Decimal("50000"),
    "max_total_exposure": Decimal("80000"),
}


def order(pair="XBT/USD", side=Side.BUY, qty="0.5", price="60000"):
    return CheckOrder(
        correlation_id="c", pair=pair, side=side, quantity=Decimal(qty), price=Decimal(price)
    )


def state(**positions):
    return PortfolioState(
        correlation_id="s",
        seq=7,
        as_of_ns=0,
        valuation_currency="USD",
        equity=None,
        cash={"USD": Decimal("100000")},
        positions={
            asset: PositionState(
                asset=asset,
                quantity=Decimal(qty),
                average_cost=Decimal(cost),
                realized_pnl=Decimal(0),
                fees=Decimal(0),
                market_value=None,
                unrealized_pnl=None,
            )
            for asset, (qty, cost) in positions.items()
        },
    )


def test_no_state_or_a_stale_state_denies():
    assert decide(order(), None, 0, **LIMITS) == (False, "no portfolio state yet")
    approved, reason = decide(order(), state(), 2001, **LIMITS)
    assert not approved and "2001 ms old" in reason


def test_an_order_within_limits_is_approved():
    assert decide(order(), state(), 10, **LIMITS) == (True, "")


def test_position_exposure_after_the_order_is_limited():
    approved, reason = decide(order(qty="1"), state(XBT=("0.5", "60000")), 10, **LIMITS)
    assert not approved and "XBT exposure after the order 90000" in reason


def test_a_reducing_order_is_judged_by_what_remains():
    assert decide(order(side=Side.SELL, qty="0.5"), state(XBT=("1", "60000")), 10, **LIMITS)[0]


def test_total_exposure_counts_the_other_positions():
    approved, reason = decide(order(), state(ETH=("20", "3000")), 10, **LIMITS)
    assert not approved and "total exposure after the order 90000" in reason


def test_a_pair_it_cannot_value_is_denied():
    approved, reason = decide(order(pair="ETH/XBT", price="0.05"), state(), 10, **LIMITS)
    assert not approved and "cannot value ETH/XBT" in reason
