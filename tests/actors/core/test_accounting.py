"""The accounting fold: legs, average cost, realized P&L, fees, and its invariants."""

from __future__ import annotations

import decimal
from decimal import Decimal
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.accounting import (
    BookingError,
    CashLedger,
    PositionBook,
    PositionLedger,
    apply_leg,
)
from messages import OrderStatus, Transfer
from tests.support import factories
from tests.support.factories import transfer

CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)
CASH = ("USD",)


fill = partial(factories.fill, fee="0")
"""A fill (FILLED) that pays no fee unless it says so."""


def books(*events):
    cash = CashLedger(cash_currencies=CASH, valuation_currency="USD", context=CONTEXT)
    positions = PositionLedger(cash_currencies=CASH, valuation_currency="USD", context=CONTEXT)
    for seq, event in enumerate(events, 1):
        cash.apply(seq, event)
        positions.apply(seq, event)
    return cash, positions


def test_a_buy_moves_both_legs_and_the_fee_is_realized():
    cash, positions = books(
        transfer(amount="1000"), fill(last_qty="2", last_price="100", fee="0.8")
    )
    assert cash.balances == {"USD": Decimal("799.2")}
    xbt = positions.positions["XBT"]
    assert xbt == PositionBook(
        quantity=Decimal("2"),
        average_cost=Decimal("100"),
        realized_pnl=Decimal("-0.8"),
        fees=Decimal("0.8"),
    )


def test_a_reducing_sell_realizes_price_minus_average_cost():
    _, positions = books(
        fill(last_qty="2", last_price="100"),
        fill(side="sell", last_qty="0.5", last_price="120", n=2),
    )
    xbt = positions.positions["XBT"]
    assert xbt.quantity == Decimal("1.5") and xbt.average_cost == Decimal("100")
    assert xbt.realized_pnl == Decimal("10")


def test_a_fill_through_zero_closes_then_opens_at_the_fill_price():
    _, positions = books(
        fill(last_qty="1", last_price="100"), fill(side="sell", last_qty="3", last_price="90", n=2)
    )
    xbt = positions.positions["XBT"]
    assert xbt.quantity == Decimal("-2") and xbt.average_cost == Decimal("90")
    assert xbt.realized_pnl == Decimal("-10")
    _, positions = books(
        fill(last_qty="1", last_price="100"),
        fill(side="sell", last_qty="3", last_price="90", n=2),
        # the short closes at a gain of 2 × 10
        fill(side="buy", last_qty="2", last_price="80", n=3),
    )
    xbt = positions.positions["XBT"]
    assert xbt.quantity == 0 and xbt.average_cost == 0 and xbt.realized_pnl == Decimal("10")


def test_realized_pnl_survives_flat_and_reopening():
    _, positions = books(
        fill(last_qty="1", last_price="100"),
        fill(side="sell", last_qty="1", last_price="150", n=2),
        fill(last_qty="1", last_price="200", n=3),
    )
    xbt = positions.positions["XBT"]
    assert xbt.realized_pnl == Decimal("50") and xbt.average_cost == Decimal("200")


def test_a_fee_in_base_leaves_the_base_quantity():
    cash, positions = books(fill(last_qty="1", last_price="100", fee="0.01", fee_currency="XBT"))
    assert cash.balances == {"USD": Decimal("-100")}
    xbt = positions.positions["XBT"]
    assert xbt.quantity == Decimal("0.99") and xbt.average_cost == Decimal("100")
    assert xbt.realized_pnl == Decimal("-1") and xbt.fees == Decimal("1")


def test_a_cross_pair_fill_moves_the_quote_position_at_the_stamped_rate():
    _, positions = books(
        fill(last_qty="1", last_price="50000", n=1),  # 1 XBT at 50,000 USD
        fill(pair="ETH/XBT", last_qty="10", last_price="0.05", quote_rate="60000", n=2),
    )
    eth, xbt = positions.positions["ETH"], positions.positions["XBT"]
    assert eth.quantity == Decimal("10") and eth.average_cost == Decimal("3000")
    assert xbt.quantity == Decimal("0.50") and xbt.realized_pnl == Decimal("5000")


def test_a_cross_pair_without_its_rate_is_refused_naming_the_field():
    with pytest.raises(BookingError) as error:
        books(fill(pair="ETH/XBT", last_qty="1", last_price="0.05"))
    assert error.value.field == "quote_rate"


def test_cancels_rejects_and_expiries_move_nothing():
    cash, positions = books(
        transfer(amount="100"),
        fill(last_qty="0", last_price="0", status=OrderStatus.CANCELED, n=2),
        fill(last_qty="0", last_price="0", status=OrderStatus.REJECTED, n=3),
    )
    assert cash.balances == {"USD": Decimal("100")} and positions.positions == {}


def test_a_withdrawal_of_a_position_realizes_nothing():
    _, positions = books(
        fill(last_qty="2", last_price="100"), transfer(amount="-1", asset="XBT", n=2)
    )
    xbt = positions.positions["XBT"]
    assert xbt.quantity == 1 and xbt.realized_pnl == 0 and xbt.average_cost == 100


def test_events_must_come_in_seq_order():
    cash, _ = books()
    with pytest.raises(BookingError, match="expected seq 1"):
        cash.apply(2, transfer(amount="1"))


def test_apply_leg_reweights_an_increasing_short():
    short = apply_leg(PositionBook(), Decimal("-1"), Decimal("100"), CONTEXT)
    short = apply_leg(short, Decimal("-3"), Decimal("80"), CONTEXT)
    assert short.quantity == -4 and short.average_cost == Decimal("85")


# -- properties over any valid sequence -------------------------------------------------------

money = st.decimals(min_value="0.01", max_value="100000", places=2)
quantity = st.decimals(min_value="0.0001", max_value="50", places=4)


@st.composite
def fills(draw):
    pair = draw(st.sampled_from(["XBT/USD", "ETH/USD", "ETH/XBT", "SOL/USD"]))
    base, quote = pair.split("/")
    qty = draw(quantity)
    price = draw(money) if quote == "USD" else draw(st.decimals("0.01", "0.2", places=4))
    fee_currency = draw(st.sampled_from([base, quote]))
    fee = draw(st.decimals("0", "5", places=4))
    rate = None if quote == "USD" else draw(money)
    return (
        "fill",
        pair,
        draw(st.sampled_from(["buy", "sell"])),
        qty,
        price,
        fee,
        fee_currency,
        rate,
    )


@st.composite
def journals(draw):
    steps = draw(st.lists(st.one_of(fills(), st.tuples(st.just("transfer"), money)), max_size=40))
    events = [transfer(amount="100000", n=0)]
    for n, step in enumerate(steps, 1):
        if step[0] == "transfer":
            events.append(transfer(amount=str(step[1]), n=n))
            continue
        _, pair, side, qty, price, fee, fee_currency, rate = step
        events.append(
            fill(
                pair=pair,
                side=side,
                last_qty=str(qty),
                last_price=str(price),
                fee=str(fee),
                fee_currency=fee_currency,
                quote_rate=rate and str(rate),
                n=n,
            )
        )
    return events


@settings(max_examples=300, deadline=None)
@given(journals())
def test_cash_and_positions_conserve_value(events):
    """starting cash + transfers = cash + Σ quantity × average cost − Σ realized P&L."""
    cash, positions = books(*events)
    transfers = sum((e.amount for e in events if isinstance(e, Transfer)), Decimal(0))
    held = sum(
        (p.quantity * p.average_cost - p.realized_pnl for p in positions.positions.values()),
        Decimal(0),
    )
    total = cash.balances.get("USD", Decimal(0)) + held
    assert abs(total - transfers) <= Decimal("1e-20"), (total, transfers)


@settings(max_examples=100, deadline=None)
@given(journals())
def test_replaying_the_same_journal_gives_identical_books(events):
    first_cash, first_positions = books(*events)
    second_cash, second_positions = books(*events)
    assert first_cash.balances == second_cash.balances
    assert first_positions.positions == second_positions.positions
