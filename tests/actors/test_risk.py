"""The risk rules, pure: fail closed, exposure per position and in total."""

from __future__ import annotations

import decimal
from dataclasses import replace
from decimal import Decimal

from actors.risk import decide
from messages import (
    CheckOrder,
    Discrepancy,
    DrawdownView,
    PortfolioState,
    PositionState,
    ReconciliationStatus,
    Side,
)

LIMITS = {
    "max_state_age_ms": 2000,
    "max_position_exposure": Decimal("50000"),
    "max_total_exposure": Decimal("80000"),
    "context": decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN),  # the service's
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


def drawdown_view(total="1", daily="6", weekly="2", breached=("daily",)):
    return DrawdownView(
        total_pct=Decimal(total),
        daily_pct=Decimal(daily),
        weekly_pct=Decimal(weekly),
        peak_equity=Decimal(100000),
        daily_peak=Decimal(100000),
        weekly_peak=Decimal(100000),
        daily_window_start_ns=0,
        weekly_window_start_ns=0,
        max_total_pct=Decimal(20),
        max_daily_pct=Decimal(5),
        max_weekly_pct=Decimal(10),
        breached=breached,
        seq=7,
        marks=3,
    )


def recon_status(last_success_ns=None, discrepancies=()):
    return ReconciliationStatus(
        last_success_ns=last_success_ns,
        last_attempt_ns=last_success_ns,
        consecutive_failures=0,
        last_error="",
        open_discrepancies=discrepancies,
        recovered_fills=0,
        recovered_transfers=0,
        adjustments=0,
        staking={},
        checked_seq=7,
        auto_update=False,
    )


def test_a_breached_drawdown_window_denies_naming_it():
    breached = replace(state(), drawdown=drawdown_view())
    approved, reason = decide(order(), breached, 10, **LIMITS)
    assert not approved
    assert reason == "drawdown limit breached: daily 6.00% (limit 5%)"
    calm = replace(state(), drawdown=drawdown_view(daily="1", breached=()))
    assert decide(order(), calm, 10, **LIMITS) == (True, "")


def test_stale_or_unpriced_holdings_deny_unless_configured_otherwise():
    stale = replace(state(), stale=("ETH",), unpriced=("DOT",))
    approved, reason = decide(order(), stale, 10, **LIMITS)
    assert not approved and "unpriced: DOT" in reason and "stale prices: ETH" in reason
    assert decide(order(), stale, 10, **LIMITS, deny_on_stale_prices=False) == (True, "")


def test_reconciliation_too_old_or_never_done_or_with_discrepancies_denies():
    now = 1_000_000_000_000
    rules = {**LIMITS, "max_reconciliation_age_ms": 60_000, "now_ns": now}
    never = replace(state(), reconciliation=recon_status())
    assert decide(order(), never, 10, **rules)[1] == (
        "the books have not been reconciled with the exchange yet"
    )
    old = replace(state(), reconciliation=recon_status(now - 61 * 10**9))
    approved, reason = decide(order(), old, 10, **rules)
    assert not approved and "61 s old (limit 60 s)" in reason
    fresh = replace(state(), reconciliation=recon_status(now - 10**9))
    assert decide(order(), fresh, 10, **rules) == (True, "")
    drift = Discrepancy(
        asset="ETH",
        books=Decimal(2),
        exchange=Decimal("1.5"),
        difference=Decimal("-0.5"),
        value=None,
        since_ns=now,
    )
    open_one = replace(state(), reconciliation=recon_status(now, (drift,)))
    approved, reason = decide(order(), open_one, 10, **rules)
    assert not approved and "ETH (books 2, exchange 1.5)" in reason
    assert decide(order(), open_one, 10, **rules, deny_on_discrepancy=False) == (True, "")


def test_exposure_is_judged_in_the_service_context_not_the_ambient_one():
    with decimal.localcontext(decimal.Context(prec=3)):
        approved, reason = decide(
            order(qty="0.33333", price="60000.7"), state(ETH=("20.12345", "3000.1")), 10, **LIMITS
        )
    assert not approved
    assert reason == "total exposure after the order 80372.395676 > limit 80000"
