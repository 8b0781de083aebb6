"""Valuation of the books: market value, unrealized P&L, exposure, equity, stale and unpriced."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.core.accounting import PositionBook
from actors.core.conversion import PriceBook, Quote
from actors.core.valuation import (
    ValuationError,
    Valuer,
    exposure,
    total_exposure,
    value_portfolio,
)

CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)
NOW = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
MAX_AGE = 10 * SECOND


def quote(pair, bid, ask, last=None, *, age_s=1):
    return Quote(
        pair=pair,
        bid=Decimal(bid),
        ask=Decimal(ask),
        last=None if last is None else Decimal(last),
        exchange_ns=None,
        received_ns=NOW - age_s * SECOND,
    )


PRICES = PriceBook(
    [
        quote("XBT/USD", "60000", "60010", "60004"),
        quote("ETH/XBT", "0.05", "0.0501"),
        quote("EUR/USD", "1.08", "1.1"),
        quote("SOL/USD", "150", "151", age_s=30),
    ]
)


def position(quantity, average_cost, realized="0", fees="0"):
    return PositionBook(
        quantity=Decimal(quantity),
        average_cost=Decimal(average_cost),
        realized_pnl=Decimal(realized),
        fees=Decimal(fees),
    )


def value(cash=None, positions=None, prices=PRICES, mode="bid_ask", bridges=("XBT",)):
    return value_portfolio(
        {k: Decimal(v) for k, v in (cash or {}).items()},
        positions or {},
        prices,
        valuation_currency="USD",
        now_ns=NOW,
        max_age_ns=MAX_AGE,
        bridges=bridges,
        mode=mode,
        context=CONTEXT,
    )


def test_cash_in_the_valuation_currency_is_equity_as_it_is():
    result = value(cash={"USD": "1000.50"})
    assert result.equity == Decimal("1000.50")
    assert result.cash["USD"].value == Decimal("1000.50")
    assert result.cash["USD"].price.path == ()
    assert result.total_exposure == Decimal(0)
    assert result.stale == () and result.unpriced == ()
    assert result.valuation_currency == "USD" and result.as_of_ns == NOW
    with pytest.raises(TypeError):
        result.cash["EUR"] = result.cash["USD"]  # shared between actors: read-only


def test_a_long_is_valued_at_the_bid_with_its_unrealized_pnl_and_exposure():
    result = value(positions={"XBT": position("2", "50000", realized="-10", fees="10")})
    xbt = result.positions["XBT"]
    assert xbt.market_value == Decimal("120000")  # 2 × 60000
    assert xbt.unrealized_pnl == Decimal("20000")  # 2 × (60000 − 50000)
    assert xbt.exposure == Decimal("120000")
    assert (xbt.realized_pnl, xbt.fees) == (Decimal("-10"), Decimal("10"))
    assert xbt.price.path == ("XBT/USD",) and xbt.price.ages_ns == (SECOND,)
    assert result.equity == Decimal("120000")


def test_a_short_is_valued_at_the_ask_and_loses_when_the_price_is_above_its_cost():
    result = value(cash={"USD": "70000"}, positions={"XBT": position("-1", "59000")})
    xbt = result.positions["XBT"]
    assert xbt.market_value == Decimal("-60010")
    assert xbt.unrealized_pnl == Decimal("-1010")  # −1 × (60010 − 59000)
    assert xbt.exposure == Decimal("60010")
    assert result.equity == Decimal("9990")  # 70000 − 60010
    assert result.total_exposure == Decimal("60010")


def test_total_exposure_adds_the_absolute_market_values():
    result = value(positions={"XBT": position("1", "0"), "ETH": position("-10", "0")})
    # ETH short through XBT at the asks: −10 × 0.0501 × 60010.
    eth_value = Decimal("-10") * Decimal("0.0501") * Decimal("60010")
    assert result.positions["ETH"].market_value == eth_value
    assert result.positions["ETH"].price.path == ("ETH/XBT", "XBT/USD")
    assert result.total_exposure == Decimal("60000") + abs(eth_value)
    assert result.equity == Decimal("60000") + eth_value


def test_cash_in_another_currency_is_converted_by_side():
    long = value(cash={"USD": "0", "EUR": "100"})
    owed = value(cash={"USD": "0", "EUR": "-100"})
    assert long.cash["EUR"].value == Decimal("108.00")  # sold at the bid
    assert owed.cash["EUR"].value == Decimal("-110.0")  # bought back at the ask
    assert long.equity == Decimal("108.00")
    assert long.total_exposure == Decimal(0)  # cash is not position exposure


def test_an_unpriced_position_makes_equity_and_total_exposure_none():
    result = value(
        cash={"USD": "500"}, positions={"XBT": position("1", "1"), "DOT": position("3", "7")}
    )
    dot = result.positions["DOT"]
    assert dot.price.unpriced
    assert (dot.market_value, dot.unrealized_pnl, dot.exposure) == (None, None, None)
    assert result.positions["XBT"].market_value == Decimal("60000")  # the rest is still valued
    assert result.equity is None
    assert result.total_exposure is None
    assert result.unpriced == ("DOT",)


def test_unpriced_cash_makes_equity_none():
    result = value(cash={"USD": "500", "GBP": "10"})
    assert result.cash["GBP"].value is None
    assert result.equity is None
    assert result.unpriced == ("GBP",)


def test_a_stale_price_still_values_the_holding_but_is_listed():
    result = value(cash={"USD": "0"}, positions={"SOL": position("10", "100")})
    sol = result.positions["SOL"]
    assert sol.price.stale and sol.price.ages_ns == (30 * SECOND,)
    assert sol.market_value == Decimal("1500")
    assert result.equity == Decimal("1500")
    assert result.stale == ("SOL",)
    assert result.unpriced == ()


def test_a_flat_position_or_zero_balance_is_worth_zero_without_a_price():
    result = value(cash={"USD": "5", "GBP": "0"}, positions={"DOT": position("0", "0", "12")})
    dot = result.positions["DOT"]
    assert (dot.market_value, dot.unrealized_pnl, dot.exposure) == (0, 0, 0)
    assert dot.realized_pnl == Decimal("12")
    assert result.cash["GBP"].value == 0
    assert result.equity == Decimal("5")
    assert result.unpriced == () and result.stale == ()


def test_mid_and_last_modes_value_at_those_prices():
    positions = {"XBT": position("1", "60000")}
    assert value(positions=positions, mode="mid").positions["XBT"].market_value == Decimal("60005")
    last = value(positions=positions, mode="last").positions["XBT"]
    assert last.market_value == Decimal("60004")
    assert last.unrealized_pnl == Decimal("4")


def test_without_the_bridge_a_cross_asset_is_unpriced():
    result = value(positions={"ETH": position("1", "3000")}, bridges=())
    assert result.unpriced == ("ETH",)
    assert result.equity is None


def test_a_currency_held_both_as_cash_and_as_a_position_is_refused():
    with pytest.raises(ValuationError) as error:
        value(cash={"XBT": "1"}, positions={"XBT": position("1", "1")})
    assert error.value.field == "positions"


@pytest.mark.parametrize(
    ("cash", "positions", "field"),
    [
        ({"USD": Decimal("NaN")}, {}, "cash[USD]"),
        ({"USD": 1.5}, {}, "cash[USD]"),
        ({}, {"XBT": position("Infinity", "1")}, "positions[XBT].quantity"),
        ({}, {"XBT": (1, 2)}, "positions[XBT]"),
    ],
)
def test_a_malformed_holding_is_refused_naming_it(cash, positions, field):
    with pytest.raises(ValuationError) as error:
        value_portfolio(
            cash,
            positions,
            PRICES,
            valuation_currency="USD",
            now_ns=NOW,
            max_age_ns=MAX_AGE,
            context=CONTEXT,
        )
    assert error.value.field == field


amounts = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=8)
costs = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=2)


@given(usd=amounts, xbt=amounts, xbt_cost=costs, eth=amounts, eth_cost=costs, eur=amounts)
def test_equity_is_cash_plus_cost_basis_plus_unrealized(usd, xbt, xbt_cost, eth, eth_cost, eur):
    # market value = quantity × average_cost + unrealized, so equity splits the same way.
    result = value(
        cash={"USD": usd, "EUR": eur},
        positions={"XBT": position(xbt, xbt_cost), "ETH": position(eth, eth_cost)},
    )
    cash_total = sum(c.value for c in result.cash.values())
    cost_basis = xbt * xbt_cost + eth * eth_cost
    unrealized = sum(p.unrealized_pnl for p in result.positions.values())
    assert result.equity is not None
    assert abs(result.equity - (cash_total + cost_basis + unrealized)) < Decimal("1e-20")
    assert result.total_exposure == sum(abs(p.market_value) for p in result.positions.values())
    assert all(p.exposure >= 0 for p in result.positions.values())


# --- exposure, defined once ---------------------------------------------------------------


def test_exposure_is_the_absolute_market_value_when_priced():
    assert exposure(Decimal("-30000"), Decimal("-0.5"), Decimal("61000"), CONTEXT) == Decimal(
        "30000"
    )


def test_exposure_falls_back_to_the_cost_basis_when_unpriced():
    assert exposure(None, Decimal("-0.5"), Decimal("61000"), CONTEXT) == Decimal("30500")
    assert exposure(None, Decimal(0), Decimal("61000"), CONTEXT) == Decimal(0)


def test_exposure_is_computed_in_the_given_context_not_the_ambient_one():
    with decimal.localcontext(decimal.Context(prec=3)):
        basis = exposure(None, Decimal("0.12345"), Decimal("3000.1"), CONTEXT)
        total = total_exposure([basis, Decimal("0.0001")], CONTEXT)
    assert basis == Decimal("370.362345")
    assert total == Decimal("370.362445")
    assert total_exposure([], CONTEXT) == Decimal(0)


def test_a_valuation_uses_the_same_exposure_and_leaves_it_none_unpriced():
    result = value(positions={"XBT": position("-2", "61000"), "DOGE": position("5", "0.1")})
    assert result.positions["XBT"].exposure == exposure(
        result.positions["XBT"].market_value, Decimal("-2"), Decimal("61000"), CONTEXT
    )
    assert result.positions["DOGE"].exposure is None
    assert result.total_exposure is None


# --- the valuer, set up once ----------------------------------------------------------------


def test_a_valuer_values_as_value_portfolio_with_its_settings():
    valuer = Valuer(
        valuation_currency="USD", max_age_ns=MAX_AGE, context=CONTEXT, bridges=("XBT",), mode="mid"
    )
    cash = {"EUR": Decimal("100")}
    positions = {"ETH": position("2", "2500"), "SOL": position("1", "140")}
    assert valuer.value(cash, positions, PRICES, NOW) == value(
        cash={"EUR": "100"}, positions=positions, mode="mid"
    )
    assert valuer.value(cash, positions, PRICES, NOW).stale == ("SOL",)


@pytest.mark.parametrize("max_age_ns", [-1, 1.5, True])
def test_a_valuer_refuses_a_bad_max_age(max_age_ns):
    with pytest.raises(ValuationError) as caught:
        Valuer(valuation_currency="USD", max_age_ns=max_age_ns, context=CONTEXT)
    assert caught.value.field == "max_age_ns"
