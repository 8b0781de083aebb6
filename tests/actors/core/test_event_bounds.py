"""The bounds of what the folds can carry: each bound, and the field each refusal names."""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from actors.core.event_bounds import (
    EARLIEST_EVENT_NS,
    LARGEST_AMOUNT,
    MAX_AHEAD_NS,
    SMALLEST_AMOUNT,
    EventOutOfBounds,
    check_event_bounds,
)
from messages import OrderStatus
from tests.support import factories

NOW = 1_760_000_000_000_000_000
CONTEXT = decimal.Context(prec=34)
DATA = Path(__file__).resolve().parents[3] / "kraken" / "data"


AT_NOW = {"ts_event": NOW, "ts_init": NOW}
report = partial(
    factories.fill,
    exec_id="TBOUND-AAAAA-BBBBBB",
    order_id="OBOUND-AAAAA-BBBBBB",
    last_qty="0.5",
    last_price="60000.1",
    fee="78.0",
    cost="30000.05",
    **AT_NOW,
)
transfer = partial(
    factories.transfer,
    transfer_id="LBOUND-AAAAA-BBBBBB",
    asset="XBT",
    amount="1.5",
    unit_price="60000",
    **AT_NOW,
)
adjustment = partial(factories.balance_adjusted, **AT_NOW)


def refusal(event) -> EventOutOfBounds:
    with pytest.raises(EventOutOfBounds) as caught:
        check_event_bounds(event, context=CONTEXT, now_ns=NOW)
    return caught.value


def test_ordinary_events_are_within_the_bounds():
    for event in (
        report(),
        report(
            status=OrderStatus.CANCELED,
            last_qty=Decimal(0),
            last_price=Decimal(0),
            fee=Decimal(0),
            cost=None,
        ),
        report(
            pair="ETH/XBT",
            last_price=Decimal("0.05702"),
            fee=Decimal("0.0002223780"),
            fee_currency="XBT",
            cost=None,
            quote_rate=Decimal("68310.5"),
        ),
        report(fee=Decimal(0), fee_currency="KFEE"),
        transfer(),
        transfer(asset="USD", amount=Decimal("-20000"), unit_price=None),
        adjustment(),
    ):
        check_event_bounds(event, context=CONTEXT, now_ns=NOW)


@pytest.mark.parametrize("field", ["last_qty", "last_price", "cost", "fee", "quote_rate"])
@pytest.mark.parametrize("value", ["1E+999", "1E+18", "1E-19", "1E-999"])
def test_an_execution_report_amount_of_an_absurd_magnitude_is_refused(field, value):
    changes = {field: Decimal(value)}
    if field == "quote_rate":
        changes.update(pair="ETH/XBT", fee_currency="XBT")

    problem = refusal(report(**changes))

    assert problem.field == field
    assert str(problem).startswith(f"{field}: {Decimal(value)} is out of bounds")


def test_the_magnitude_bounds_are_inclusive_below_and_exclusive_above():
    largest = LARGEST_AMOUNT - 1  # 999999999999999999
    check_event_bounds(report(last_qty=largest, cost=None), context=CONTEXT, now_ns=NOW)
    check_event_bounds(report(last_qty=SMALLEST_AMOUNT, cost=None), context=CONTEXT, now_ns=NOW)
    assert refusal(report(last_qty=LARGEST_AMOUNT)).field == "last_qty"


def test_an_amount_with_more_digits_than_the_context_carries_is_refused():
    digits = Decimal("1." + "1" * 34)  # 35 significant digits; the context carries 34

    problem = refusal(report(last_qty=digits))

    assert problem.field == "last_qty"
    assert "35 significant digits" in problem.problem and "34" in problem.problem


def test_trailing_zeros_are_not_digits_the_context_must_carry():
    check_event_bounds(report(last_qty=Decimal("1." + "0" * 40)), context=CONTEXT, now_ns=NOW)


def test_the_digit_bound_follows_the_configured_precision():
    narrow = decimal.Context(prec=8)
    check_event_bounds(
        report(
            last_qty=Decimal("0.12345678"),
            fee=Decimal("7.8"),
            cost=Decimal("7407.4"),
            last_price=Decimal("60000"),
        ),
        context=narrow,
        now_ns=NOW,
    )
    with pytest.raises(EventOutOfBounds) as caught:
        check_event_bounds(report(last_qty=Decimal("0.123456789")), context=narrow, now_ns=NOW)
    assert caught.value.field == "last_qty"


@pytest.mark.parametrize("field", ["ts_event", "ts_init"])
@pytest.mark.parametrize(
    ("ts", "problem"),
    [
        (1, "before 2009"),
        (EARLIEST_EVENT_NS - 1, "before 2009"),
        (NOW + MAX_AHEAD_NS + 1, "more than a day after the journal's clock"),
        (2**63, "more than a day after the journal's clock"),
    ],
    ids=["1970", "just-before-2009", "a-day-ahead", "far-future"],
)
def test_a_time_far_from_now_is_refused(field, ts, problem):
    for event in (report(**{field: ts}), transfer(**{field: ts}), adjustment(**{field: ts})):
        refused = refusal(event)
        assert refused.field == field
        assert problem in refused.problem


def test_the_time_window_reaches_from_2009_to_a_day_ahead():
    for ts in (EARLIEST_EVENT_NS, NOW - 15 * 365 * 86_400 * 10**9, NOW + MAX_AHEAD_NS):
        check_event_bounds(report(ts_event=ts, ts_init=ts), context=CONTEXT, now_ns=NOW)


@pytest.mark.parametrize("fee", ["0", "1.5"])
def test_a_fee_currency_foreign_to_the_pair_is_refused_whatever_the_fee(fee):
    problem = refusal(report(fee=Decimal(fee), fee_currency="DOGE"))

    assert problem.field == "fee_currency"
    assert "'DOGE' is foreign to XBT/USD" in problem.problem


@pytest.mark.parametrize("fee_currency", ["XBT", "USD", "KFEE"])
def test_the_base_the_quote_and_fee_credits_are_fee_currencies(fee_currency):
    check_event_bounds(
        report(fee=Decimal(0), fee_currency=fee_currency), context=CONTEXT, now_ns=NOW
    )


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (transfer(amount=Decimal("1E+999")), "amount"),
        (transfer(amount=Decimal("-1E+30")), "amount"),
        (transfer(amount=Decimal("1E-30")), "amount"),
        (transfer(unit_price=Decimal("1E+500")), "unit_price"),
        (adjustment(before=Decimal("-1E+999")), "before"),
        (adjustment(after=Decimal("1E+999")), "after"),
        (adjustment(after=Decimal("1." + "7" * 40)), "after"),
    ],
    ids=["huge", "huge-withdrawal", "tiny", "unit-price", "before", "after", "digits"],
)
def test_transfer_and_adjustment_amounts_are_bounded_too(event, field):
    assert refusal(event).field == field


def test_every_amount_of_the_bundled_kraken_tables_fits():
    """The smallest unit of every asset, pair tick and minimum order is within the bounds."""
    assets = json.loads((DATA / "assets.json").read_text())
    pairs = json.loads((DATA / "asset_pairs.json").read_text())
    amounts = [Decimal(1).scaleb(-info["decimals"]) for info in assets.values()]
    for info in pairs.values():
        amounts += [
            Decimal(1).scaleb(-info["pair_decimals"]),
            Decimal(1).scaleb(-info["lot_decimals"]),
            Decimal(1).scaleb(-info["cost_decimals"]),
            Decimal(info["ordermin"]),
            Decimal(info.get("costmin") or "1"),
            Decimal(info.get("tick_size") or "1"),
        ]
    for amount in amounts:
        check_event_bounds(transfer(amount=amount), context=CONTEXT, now_ns=NOW)
