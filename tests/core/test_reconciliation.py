"""The pure reconciliation core: thresholds, books as of the exchange's point, confirmation."""

from __future__ import annotations

import decimal
from decimal import Decimal

from actors.core.reconciliation import (
    Confirmations,
    Difference,
    Thresholds,
    books_as_of,
    compare,
    transfer_of,
)
from kraken.models import LedgerEntry

CONTEXT = decimal.Context(prec=34)
THRESHOLDS = Thresholds(
    default=Decimal("0.00000001"), per_asset={"USD": Decimal("0.01")}, value=Decimal("1")
)
PRICES = {"XBT": Decimal(60000), "USD": Decimal(1)}


def value_of(asset: str, amount: Decimal) -> Decimal | None:
    price = PRICES.get(asset)
    return None if price is None else amount * price


def test_equal_books_and_exchange_have_no_difference():
    books = {"USD": Decimal("100.00"), "XBT": Decimal("0.5")}
    assert compare(books, dict(books), THRESHOLDS, value_of, CONTEXT) == []


def test_a_difference_must_pass_both_the_unit_and_the_value_threshold():
    books = {"USD": Decimal("100"), "XBT": Decimal("0.5")}
    # a cent is within USD's threshold; 1e-6 XBT is over its unit threshold but worth 0.06
    exchange = {"USD": Decimal("100.01"), "XBT": Decimal("0.500001")}
    assert compare(books, exchange, THRESHOLDS, value_of, CONTEXT) == []
    exchange = {"USD": Decimal("102"), "XBT": Decimal("0.5001")}
    found = compare(books, exchange, THRESHOLDS, value_of, CONTEXT)
    assert [(d.asset, d.difference, d.value) for d in found] == [
        ("USD", Decimal("2"), Decimal("2")),
        ("XBT", Decimal("0.0001"), Decimal("6.0000")),
    ]


def test_an_unpriced_asset_is_judged_by_its_unit_threshold_alone():
    found = compare({}, {"DOT": Decimal("0.001")}, THRESHOLDS, value_of, CONTEXT)
    assert found == [Difference("DOT", Decimal(0), Decimal("0.001"), Decimal("0.001"), None)]


def test_an_asset_missing_on_one_side_holds_zero_there():
    found = compare({"ETH": Decimal(2)}, {}, THRESHOLDS, value_of, CONTEXT)
    assert [(d.asset, d.books, d.exchange, d.difference) for d in found] == [
        ("ETH", Decimal(2), Decimal(0), Decimal(-2))
    ]


def test_books_as_of_take_back_what_the_exchange_does_not_show_yet():
    books = {"USD": Decimal("40000"), "XBT": Decimal("1")}
    in_flight = [{"USD": Decimal("-60000"), "XBT": Decimal("1")}]
    assert books_as_of(books, in_flight) == {"USD": Decimal("100000"), "XBT": Decimal("0")}


def test_a_difference_is_confirmed_only_when_seen_unchanged_in_consecutive_runs():
    confirmations = Confirmations(runs=2)
    drift = Difference("USD", Decimal(100), Decimal(99), Decimal(-1), Decimal(-1))
    assert confirmations.observe([drift], now_ns=1) == []
    assert confirmations.observe([drift], now_ns=2) == [(drift, 1)]
    moved = Difference("USD", Decimal(100), Decimal(98), Decimal(-2), Decimal(-2))
    assert confirmations.observe([moved], now_ns=3) == []  # a race moves on: start again
    assert confirmations.observe([], now_ns=4) == []
    assert confirmations.observe([drift], now_ns=5) == []


def entry(kind: str, asset: str, amount: str, fee: str = "0", variant: bool = False):
    return LedgerEntry(
        ledger_id=f"L-{kind}-{asset}",
        refid="R1",
        time_ns=10,
        type=kind,
        subtype=None,
        asset=asset,
        raw_asset=asset,
        is_variant=variant,
        amount=Decimal(amount),
        fee=Decimal(fee),
        balance=Decimal(0),
    )


def test_ledger_movements_that_are_not_trades_become_transfers_net_of_their_fee():
    withdrawal = transfer_of(entry("withdrawal", "USD", "-20000", fee="5"), ts_init=11)
    assert withdrawal is not None
    assert (withdrawal.transfer_id, withdrawal.amount) == ("L-withdrawal-USD", Decimal(-20005))
    deposit = transfer_of(entry("deposit", "XBT", "1"), ts_init=11, unit_price=Decimal(60000))
    assert deposit is not None and deposit.unit_price == Decimal(60000)
    staking_move = transfer_of(entry("transfer", "XBT", "-0.5"), ts_init=11)
    assert staking_move is not None and staking_move.amount == Decimal("-0.5")
    assert transfer_of(entry("trade", "XBT", "1"), ts_init=11) is None
    assert transfer_of(entry("staking", "XBT.M", "0.5", variant=True), ts_init=11) is None
