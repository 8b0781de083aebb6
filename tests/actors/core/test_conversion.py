"""Currency conversion over a PriceBook: paths, sides, modes, staleness and ages."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.core.conversion import Conversion, Holding, PriceBook, PriceError, Quote

CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)
NOW = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
MAX_AGE = 10 * SECOND
LONG = Decimal("1")
SHORT = Decimal("-1")


def quote(pair, bid, ask, last=None, *, age_s=0, exchange_age_s=None):
    return Quote(
        pair=pair,
        bid=None if bid is None else Decimal(bid),
        ask=None if ask is None else Decimal(ask),
        last=None if last is None else Decimal(last),
        exchange_ns=None if exchange_age_s is None else NOW - exchange_age_s * SECOND,
        received_ns=NOW - age_s * SECOND,
    )


def convert(book, currency, held=LONG, *, to="USD", bridges=(), mode="bid_ask", now=NOW):
    return book.convert(
        currency,
        held,
        to=to,
        now_ns=now,
        max_age_ns=MAX_AGE,
        bridges=bridges,
        mode=mode,
        context=CONTEXT,
    )


XBT_USD = quote("XBT/USD", "60000", "60010", "60005", age_s=2)
ETH_XBT = quote("ETH/XBT", "0.05", "0.0501", "0.05005", age_s=3)
EUR_USD = quote("EUR/USD", "1.08", "1.1", "1.09", age_s=1)


def test_a_long_holding_is_valued_at_the_bid_of_the_direct_pair():
    result = convert(PriceBook([XBT_USD]), "XBT", Decimal("2"))
    assert result == Conversion(
        rate=Decimal("60000"),
        path=("XBT/USD",),
        ages_ns=(2 * SECOND,),
        stale=False,
        unpriced=False,
    )


def test_a_short_holding_is_valued_at_the_ask_that_buys_it_back():
    result = convert(PriceBook([XBT_USD]), "XBT", Decimal("-0.5"))
    assert result.rate == Decimal("60010")
    assert result.path == ("XBT/USD",)


def test_a_holding_side_can_be_given_instead_of_an_amount():
    book = PriceBook([XBT_USD])
    assert convert(book, "XBT", Holding.LONG).rate == Decimal("60000")
    assert convert(book, "XBT", Holding.SHORT).rate == Decimal("60010")


def test_an_inverse_pair_gives_one_over_the_ask_for_a_long_and_over_the_bid_for_a_short():
    book = PriceBook([EUR_USD])
    # Holding USD valued in EUR: selling USD buys EUR at its ask, buying USD back sells EUR
    # at its bid.
    long = convert(book, "USD", LONG, to="EUR")
    short = convert(book, "USD", SHORT, to="EUR")
    assert long.rate == CONTEXT.divide(Decimal(1), Decimal("1.1"))
    assert short.rate == CONTEXT.divide(Decimal(1), Decimal("1.08"))
    assert long.path == short.path == ("EUR/USD",)
    assert long.rate < short.rate


def test_two_hops_through_an_allowed_bridge_multiply_the_same_side():
    book = PriceBook([XBT_USD, ETH_XBT])
    long = convert(book, "ETH", LONG, bridges=("XBT",))
    short = convert(book, "ETH", SHORT, bridges=("XBT",))
    assert long.rate == Decimal("0.05") * Decimal("60000")
    assert short.rate == Decimal("0.0501") * Decimal("60010")
    assert long.path == ("ETH/XBT", "XBT/USD")
    assert long.ages_ns == (3 * SECOND, 2 * SECOND)
    assert not long.stale and not long.unpriced


def test_a_path_can_mix_direct_and_inverted_hops():
    book = PriceBook([quote("SOL/USD", "150", "151"), EUR_USD])
    long = convert(book, "SOL", LONG, to="EUR", bridges=("USD",))
    short = convert(book, "SOL", SHORT, to="EUR", bridges=("USD",))
    assert long.path == ("SOL/USD", "EUR/USD")
    assert long.rate == CONTEXT.divide(Decimal("150"), Decimal("1.1"))
    assert short.rate == CONTEXT.divide(Decimal("151"), Decimal("1.08"))


def test_without_a_path_the_currency_is_unpriced_never_zero():
    result = convert(PriceBook([XBT_USD]), "DOT")
    assert result.unpriced
    assert result.rate is None
    assert result.path == () and result.ages_ns == ()
    assert result.oldest_age_ns is None


def test_an_intermediate_currency_must_be_an_allowed_bridge():
    book = PriceBook([XBT_USD, ETH_XBT])
    assert convert(book, "ETH").unpriced  # no bridges: direct or inverse only
    assert convert(book, "ETH", bridges=("USDT",)).unpriced
    assert not convert(book, "ETH", bridges=("USDT", "XBT")).unpriced


def test_the_shortest_path_wins_over_a_longer_one():
    book = PriceBook([XBT_USD, ETH_XBT, quote("ETH/USD", "3001", "3002")])
    result = convert(book, "ETH", bridges=("XBT",))
    assert result.path == ("ETH/USD",)
    assert result.rate == Decimal("3001")


def test_between_equally_short_paths_the_bridge_listed_first_wins():
    book = PriceBook(
        [
            quote("ADA/XBT", "0.00001", "0.00002"),
            quote("ADA/USDT", "0.5", "0.51"),
            XBT_USD,
            quote("USDT/USD", "0.999", "1.001"),
        ]
    )
    assert convert(book, "ADA", bridges=("USDT", "XBT")).path == ("ADA/USDT", "USDT/USD")
    assert convert(book, "ADA", bridges=("XBT", "USDT")).path == ("ADA/XBT", "XBT/USD")


def test_three_hops_through_two_bridges():
    book = PriceBook([quote("DOT/ETH", "0.002", "0.0021"), ETH_XBT, XBT_USD])
    result = convert(book, "DOT", bridges=("XBT", "ETH"))
    assert result.path == ("DOT/ETH", "ETH/XBT", "XBT/USD")
    assert result.rate == Decimal("0.002") * Decimal("0.05") * Decimal("60000")


def test_mid_mode_uses_the_middle_of_bid_and_ask_whatever_the_side():
    book = PriceBook([XBT_USD, EUR_USD])
    assert convert(book, "XBT", LONG, mode="mid").rate == Decimal("60005")
    assert convert(book, "XBT", SHORT, mode="mid").rate == Decimal("60005")
    assert convert(book, "USD", LONG, to="EUR", mode="mid").rate == CONTEXT.divide(
        Decimal(1), Decimal("1.09")
    )


def test_last_mode_uses_the_last_trade_price():
    book = PriceBook([quote("XBT/USD", "60000", "60010", "59990")])
    assert convert(book, "XBT", SHORT, mode="last").rate == Decimal("59990")


def test_a_missing_price_makes_the_pair_unusable_for_that_side_and_mode():
    book = PriceBook([quote("XBT/USD", "60000", None, None)])
    assert convert(book, "XBT", LONG).rate == Decimal("60000")
    assert convert(book, "XBT", SHORT).unpriced
    assert convert(book, "XBT", LONG, mode="mid").unpriced
    assert convert(book, "XBT", LONG, mode="last").unpriced


def test_a_missing_price_on_the_short_path_falls_back_to_a_longer_priced_one():
    book = PriceBook([quote("ETH/USD", "3000", None), ETH_XBT, XBT_USD])
    assert convert(book, "ETH", SHORT, bridges=("XBT",)).path == ("ETH/XBT", "XBT/USD")


def test_the_same_currency_converts_at_one_with_no_prices():
    result = convert(PriceBook(), "USD")
    assert result.rate == Decimal(1)
    assert result.path == ()
    assert not result.stale and not result.unpriced


def test_a_price_exactly_max_age_old_is_fresh_and_one_ns_older_is_stale():
    at_limit = Quote(
        pair="XBT/USD",
        bid=Decimal("60000"),
        ask=Decimal("60010"),
        last=None,
        exchange_ns=None,
        received_ns=NOW - MAX_AGE,
    )
    book = PriceBook([at_limit])
    fresh = convert(book, "XBT")
    stale = convert(book, "XBT", now=NOW + 1)
    assert not fresh.stale and fresh.ages_ns == (MAX_AGE,)
    assert stale.stale and stale.ages_ns == (MAX_AGE + 1,)
    assert stale.rate == Decimal("60000")  # still given, but flagged
    assert not stale.unpriced


def test_one_stale_hop_makes_the_whole_conversion_stale():
    book = PriceBook([quote("ETH/XBT", "0.05", "0.0501", age_s=11), XBT_USD])
    result = convert(book, "ETH", bridges=("XBT",))
    assert result.stale
    assert result.ages_ns == (11 * SECOND, 2 * SECOND)
    assert result.oldest_age_ns == 11 * SECOND


def test_a_fresh_longer_path_is_preferred_to_a_stale_direct_pair():
    book = PriceBook([quote("ETH/USD", "3000", "3001", age_s=60), ETH_XBT, XBT_USD])
    result = convert(book, "ETH", bridges=("XBT",))
    assert result.path == ("ETH/XBT", "XBT/USD")
    assert not result.stale


def test_age_counts_from_the_older_of_exchange_and_receive_time():
    exchange_older = quote("XBT/USD", "1", "2", age_s=1, exchange_age_s=30)
    assert convert(PriceBook([exchange_older]), "XBT").ages_ns == (30 * SECOND,)
    assert convert(PriceBook([exchange_older]), "XBT").stale
    # An exchange clock ahead of ours does not make the price younger than its arrival.
    exchange_ahead = quote("XBT/USD", "1", "2", age_s=5, exchange_age_s=-3)
    assert convert(PriceBook([exchange_ahead]), "XBT").ages_ns == (5 * SECOND,)


def test_a_price_received_after_now_has_age_zero():
    book = PriceBook([quote("XBT/USD", "1", "2", age_s=-4)])
    assert convert(book, "XBT").ages_ns == (0,)


def test_a_book_is_a_mapping_and_updates_make_a_new_book():
    book = PriceBook([XBT_USD])
    newer = quote("XBT/USD", "61000", "61010")
    updated = book.with_quote(newer).with_quote(ETH_XBT)
    assert book["XBT/USD"] is XBT_USD and len(book) == 1
    assert updated["XBT/USD"] is newer
    assert set(updated) == {"XBT/USD", "ETH/XBT"}
    assert updated.currencies() == {"XBT", "USD", "ETH"}
    assert convert(book, "XBT").rate == Decimal("60000")
    assert convert(updated, "XBT").rate == Decimal("61000")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pair": "XBTUSD"}, "pair"),
        ({"pair": "XBT/XBT"}, "pair"),
        ({"pair": "/USD"}, "pair"),
        ({"bid": Decimal("0")}, "bid"),
        ({"ask": Decimal("-1")}, "ask"),
        ({"last": Decimal("NaN")}, "last"),
        ({"bid": 60000.0}, "bid"),
        ({"ask": Decimal("Infinity")}, "ask"),
        ({"exchange_ns": 1.5}, "exchange_ns"),
        ({"received_ns": -1}, "received_ns"),
        ({"received_ns": True}, "received_ns"),
        ({"bid": Decimal("3")}, "ask"),
    ],
)
def test_a_malformed_quote_is_refused_naming_the_field(changes, field):
    fields = {
        "pair": "XBT/USD",
        "bid": Decimal("1"),
        "ask": Decimal("2"),
        "last": None,
        "exchange_ns": None,
        "received_ns": NOW,
    }
    with pytest.raises(PriceError) as error:
        Quote(**(fields | changes))
    assert error.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "best"}, "mode"),
        ({"held": Decimal("NaN")}, "held"),
        ({"held": 1.0}, "held"),
        ({"now": -5}, "now_ns"),
        ({"to": ""}, "to"),
    ],
)
def test_a_malformed_conversion_request_is_refused_naming_the_field(kwargs, field):
    book = PriceBook([XBT_USD])
    held = kwargs.pop("held", LONG)
    with pytest.raises(PriceError) as error:
        convert(book, "XBT", held, **kwargs)
    assert error.value.field == field


def test_a_book_refuses_anything_but_quotes():
    with pytest.raises(PriceError) as error:
        PriceBook([("XBT/USD", 1)])
    assert error.value.field == "quotes"


prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)
spreads = st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=4)


@given(bid_1=prices, spread_1=spreads, bid_2=prices, spread_2=spreads, inverted=st.booleans())
def test_a_long_is_never_valued_above_a_short_over_the_same_path(
    bid_1, spread_1, bid_2, spread_2, inverted
):
    # ETH → XBT over ETH/XBT, then XBT → USD over XBT/USD or, inverted, over USD/XBT.
    second = "USD/XBT" if inverted else "XBT/USD"
    book = PriceBook(
        [
            quote("ETH/XBT", bid_1, bid_1 + spread_1),
            quote(second, bid_2, bid_2 + spread_2),
        ]
    )
    long = convert(book, "ETH", LONG, bridges=("XBT",))
    short = convert(book, "ETH", SHORT, bridges=("XBT",))
    mid = convert(book, "ETH", LONG, bridges=("XBT",), mode="mid")
    assert long.path == short.path == ("ETH/XBT", second)
    assert long.rate <= mid.rate <= short.rate


@given(bid=prices, spread=spreads)
def test_converting_there_and_back_at_mid_returns_one(bid, spread):
    book = PriceBook([quote("XBT/USD", bid, bid + spread)])
    there = convert(book, "XBT", to="USD", mode="mid").rate
    back = convert(book, "USD", to="XBT", mode="mid").rate
    assert abs(CONTEXT.multiply(there, back) - 1) < Decimal("1e-30")


D = Decimal


def test_a_book_updated_with_quotes_converts_exactly_as_one_built_from_scratch():
    context = decimal.Context(prec=34)
    first = [
        Quote(
            pair="XBT/USD",
            bid=D("60000"),
            ask=D("60010"),
            last=None,
            exchange_ns=None,
            received_ns=1,
        ),
        Quote(
            pair="ETH/XBT",
            bid=D("0.05"),
            ask=D("0.0501"),
            last=None,
            exchange_ns=None,
            received_ns=1,
        ),
        Quote(
            pair="ETH/USD", bid=D("3000"), ask=D("3001"), last=None, exchange_ns=None, received_ns=1
        ),
    ]
    moved = [
        Quote(
            pair="XBT/USD",
            bid=D("50000"),
            ask=D("50010"),
            last=None,
            exchange_ns=None,
            received_ns=2,
        ),
        Quote(
            pair="SOL/USD", bid=D("150"), ask=D("151"), last=None, exchange_ns=None, received_ns=2
        ),
    ]
    updated = PriceBook(first).with_quotes(moved[:1]).with_quotes(moved[1:])
    fresh = PriceBook([*first[1:], *moved])
    assert dict(updated) == dict(fresh)
    for currency in ("XBT", "ETH", "SOL"):
        for held in (D(1), D(-1)):
            args = dict(to="USD", now_ns=3, max_age_ns=10, bridges=("XBT",), context=context)
            assert updated.convert(currency, held, **args) == fresh.convert(currency, held, **args)
