"""Pure parts of the client: amount formatting, Decimal and time parsing, result models,
request parameters, history bounds and the backoff schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kraken.client import RetryPolicy, _bound_text, _request_data, format_amount
from kraken.errors import OrderRequestError
from kraken.models import (
    AssetBalance,
    AssetBalanceEx,
    CancelResult,
    FieldError,
    LedgerEntry,
    Order,
    SystemStatus,
    Trade,
    parse_decimal,
    parse_time_ns,
)
from kraken.names import KrakenNames

NAMES = KrakenNames.bundled()


# ---------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Decimal("0.00001"), 8, "0.00001"),
        (Decimal("1E-5"), 8, "0.00001"),
        (Decimal("1E+2"), 8, "100"),
        (Decimal("60000.0"), 1, "60000"),
        (Decimal("0.12345678"), 8, "0.12345678"),
        (Decimal("1.50000000000"), 2, "1.5"),
    ],
)
def test_amounts_are_fixed_point_strings(value, places, expected):
    assert format_amount(value, places, "volume", "XBTUSD") == expected


def test_too_many_decimals_is_refused_not_rounded():
    with pytest.raises(OrderRequestError) as raised:
        format_amount(Decimal("0.123456789"), 8, "volume", "XBTUSD")
    assert raised.value.field == "volume"
    assert "9 decimals" in str(raised.value) and "XBTUSD allows 8" in str(raised.value)


@pytest.mark.parametrize(
    "value", [0.1, 1, Decimal("NaN"), Decimal("Infinity"), Decimal("0"), Decimal("-1")]
)
def test_floats_and_non_positive_amounts_are_refused(value):
    with pytest.raises(OrderRequestError) as raised:
        format_amount(value, 8, "price", "XBTUSD")
    assert raised.value.field == "price"


def test_request_data_drops_none_and_joins_lists():
    data = _request_data(
        {"userref": None, "txid": ["A", "B"], "trades": True, "validate": False, "ofs": 50}
    )
    assert dict(data) == {"txid": "A,B", "trades": "true", "validate": "false", "ofs": "50"}
    # A rendered traceback shows the parameters' count, never their values.
    assert "A,B" not in repr(data) and "A,B" not in str(data)


def test_request_data_refuses_floats():
    with pytest.raises(TypeError, match="volume"):
        _request_data({"volume": 0.1})


def test_history_bounds_are_exact_seconds_or_ids():
    assert _bound_text(1_716_800_050_041_200_000, "start") == "1716800050.0412"
    assert _bound_text(0, "start") == "0"
    moment = datetime(2024, 5, 27, 8, 53, 20, 123456, tzinfo=UTC)
    assert _bound_text(moment, "end") == "1716800000.123456"
    assert _bound_text("TCWJEG-FL4SZ-3FKGH6", "start") == "TCWJEG-FL4SZ-3FKGH6"
    assert _bound_text(None, "start") is None
    with pytest.raises(ValueError, match="end"):
        _bound_text(datetime(2024, 1, 1), "end")
    with pytest.raises(ValueError, match="start"):
        _bound_text(-1, "start")


# ---------------------------------------------------------------------------- parsing


def test_decimals_parse_exactly_and_floats_are_refused():
    assert parse_decimal("0.1000000000", "x") == Decimal("0.1")
    assert str(parse_decimal("25435.2100", "x")) == "25435.2100"
    assert parse_decimal(Decimal("1.5"), "x") == Decimal("1.5")
    assert parse_decimal(3, "x") == 3
    for bad in (0.1, True, None, "abc", "NaN", [1]):
        with pytest.raises(FieldError) as raised:
            parse_decimal(bad, "result.balance")
        assert raised.value.field == "result.balance"


def test_times_become_exact_integer_nanoseconds():
    # 1688666559.8974 is not exact as a float: through float it would be ...897399902.
    assert parse_time_ns(Decimal("1688666559.8974"), "t") == 1_688_666_559_897_400_000
    assert parse_time_ns("1716800100.5123", "t") == 1_716_800_100_512_300_000
    assert parse_time_ns(1716800000, "t") == 1_716_800_000_000_000_000
    with pytest.raises(FieldError):
        parse_time_ns(-1, "t")


def test_balance_lines_normalize_names_and_flag_variants():
    plain = AssetBalance.from_kraken("XXBT", "0.5000000000", NAMES)
    assert (plain.asset, plain.raw_asset, plain.balance, plain.is_variant) == (
        "XBT",
        "XXBT",
        Decimal("0.5"),
        False,
    )
    bonded = AssetBalance.from_kraken("DOT28.S", "100.0000000000", NAMES)
    assert (bonded.asset, bonded.is_variant, bonded.suffix, bonded.bonded_days) == (
        "DOT",
        True,
        ".S",
        28,
    )
    staked = AssetBalance.from_kraken("ETH2.S", "1", NAMES)
    assert (staked.asset, staked.is_variant) == ("ETH", True)
    hold = AssetBalance.from_kraken("USD.HOLD", "5", NAMES)
    assert (hold.asset, hold.is_variant, hold.suffix) == ("USD", True, ".HOLD")


def test_available_balance_formula():
    line = AssetBalanceEx.from_kraken(
        "ZUSD",
        {"balance": "100.0000", "hold_trade": "30.0000", "credit": "10", "credit_used": "5"},
        NAMES,
    )
    # available = balance + credit − credit_used − hold_trade
    assert line.available == Decimal("75.0000")
    without_credit = AssetBalanceEx.from_kraken("ZUSD", {"balance": "1", "hold_trade": "1"}, NAMES)
    assert without_credit.available == 0


TRADE = {
    "ordertxid": "OQCLML-BW3P3-BUCMWZ",
    "postxid": "TKH2SE-M7IF5-CFI7LT",
    "pair": "XXBTZUSD",
    "aclass": "forex",
    "time": Decimal("1716800100.5123"),
    "type": "buy",
    "ordertype": "limit",
    "price": "60000.00000",
    "cost": "6000.00000",
    "fee": "15.00000",
    "vol": "0.10000000",
    "margin": "0.00000",
    "leverage": "0",
    "misc": "",
    "trade_id": 40274859,
    "maker": True,
    "ledgers": ["LZWWII-S4VAD-FTRBPE", "LTKOJ5-JWDZ4-3EQOER"],
}


def test_trade_model():
    trade = Trade.from_kraken("THVRQM-33VKH-UCI7BS", TRADE, NAMES, "result.trades")
    assert trade.symbol == "XBT/USD" and trade.pair_id == "XXBTZUSD"
    assert (trade.base, trade.quote, trade.fee_asset) == ("XBT", "USD", "USD")
    assert trade.price == Decimal("60000") and trade.volume == Decimal("0.1")
    assert trade.cost == Decimal("6000") and trade.fee == Decimal("15")
    assert trade.time_ns == 1_716_800_100_512_300_000
    assert trade.maker is True and trade.trade_id == 40274859
    assert trade.ledger_ids == ("LZWWII-S4VAD-FTRBPE", "LTKOJ5-JWDZ4-3EQOER")


def test_malformed_trade_names_the_field():
    broken = dict(TRADE, price=0.1)
    with pytest.raises(FieldError) as raised:
        Trade.from_kraken("THVRQM", broken, NAMES, "result.trades")
    assert raised.value.field == "result.trades[THVRQM].price"
    missing = {k: v for k, v in TRADE.items() if k != "vol"}
    with pytest.raises(FieldError) as raised:
        Trade.from_kraken("THVRQM", missing, NAMES, "result.trades")
    assert raised.value.field == "result.trades[THVRQM].vol"
    unknown_pair = dict(TRADE, pair="NOPENOPE")
    with pytest.raises(FieldError, match="unknown pair"):
        Trade.from_kraken("THVRQM", unknown_pair, NAMES, "result.trades")


def test_partially_filled_canceled_order_model():
    entry = {
        "refid": None,
        "userref": 0,
        "status": "canceled",
        "reason": "User requested",
        "opentm": Decimal("1716800000.1000"),
        "closetm": Decimal("1716803600.2000"),
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": "XBTUSD",
            "aclass": "forex",
            "type": "buy",
            "ordertype": "limit",
            "price": "60000.0",
            "price2": "0",
            "leverage": "none",
            "order": "buy 1.00000000 XBTUSD @ limit 60000.0",
            "close": "",
        },
        "vol": "1.00000000",
        "vol_exec": "0.37500000",
        "cost": "22500.00000",
        "fee": "56.25000",
        "price": "60000.00000",
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "partial",
        "oflags": "fciq",
        "trades": ["TCCCTY-WE2O6-P3NB37"],
    }
    order = Order.from_kraken("OAUHYR-YCVK6-P22G6P", entry, NAMES, "result")
    assert order.status == "canceled" and not order.is_open
    assert order.is_partially_filled and order.remaining == Decimal("0.625")
    assert order.limit_price == Decimal("60000") and order.average_price == Decimal("60000")
    assert order.price2 is None and order.stop_price is None
    assert order.open_ns == 1_716_800_000_100_000_000
    assert order.close_ns == 1_716_803_600_200_000_000
    assert order.start_ns is None and order.expire_ns is None
    assert order.symbol == "XBT/USD" and order.pair_altname == "XBTUSD"
    assert order.misc == ("partial",) and order.oflags == ("fciq",)
    assert order.trade_txids == ("TCCCTY-WE2O6-P3NB37",)


def test_ledger_entry_model():
    entry = LedgerEntry.from_kraken(
        "L4UESK-KG3EQ-BJM7HJ",
        {
            "refid": "TCWJEG",
            "time": Decimal("1716800050.0412"),
            "type": "trade",
            "subtype": "",
            "aclass": "currency",
            "asset": "ZEUR",
            "amount": "68.4269",
            "fee": "0.1642",
            "balance": "1000.0000",
        },
        NAMES,
    )
    assert (entry.asset, entry.raw_asset, entry.subtype) == ("EUR", "ZEUR", None)
    assert entry.amount == Decimal("68.4269") and entry.fee == Decimal("0.1642")


def test_cancel_result_accepts_a_string_count():
    assert CancelResult.from_kraken({"count": "1"}).count == 1
    assert CancelResult.from_kraken({"count": 2, "pending": True}).pending is True
    with pytest.raises(FieldError):
        CancelResult.from_kraken({"pending": True})


def test_system_status_time():
    status = SystemStatus.from_kraken({"status": "online", "timestamp": "2024-05-27T08:53:20Z"})
    assert status.is_online
    assert status.timestamp_ns == 1_716_800_000_000_000_000


# ---------------------------------------------------------------------------- backoff


def test_backoff_grows_exponentially_with_bounded_jitter():
    policy = RetryPolicy(
        base_delay_seconds=1, max_delay_seconds=8, jitter=0.5, rng=random.Random(1)
    )
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (9, 8)]:
        for _ in range(50):
            delay = policy.delay_seconds(attempt)
            assert ceiling * 0.5 <= delay <= ceiling


def test_backoff_jitter_comes_from_the_injected_random():
    first = RetryPolicy(rng=random.Random(42))
    second = RetryPolicy(rng=random.Random(42))
    assert [first.delay_seconds(n) for n in range(1, 6)] == [
        second.delay_seconds(n) for n in range(1, 6)
    ]
    no_jitter = RetryPolicy(base_delay_seconds=0.5, jitter=0)
    assert no_jitter.delay_seconds(3) == 2.0


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"jitter": 1.5}, {"deadline_seconds": -1}])
def test_retry_policy_refuses_nonsense(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        RetryPolicy(**bad)
