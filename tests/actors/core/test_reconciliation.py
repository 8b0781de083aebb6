"""The pure reconciliation core: thresholds, books as of the exchange's point, confirmation."""

from __future__ import annotations

import decimal
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from actors.core.reconciliation import (
    Confirmations,
    Difference,
    Move,
    Thresholds,
    books_as_of,
    compare,
    exchange_as_of,
    in_flight,
    transfer_of,
)
from kraken.models import AssetBalanceEx, LedgerEntry

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


# -- both sides as of the newest ledger entry read -------------------------------------------


def line(raw: str, balance: str, asset: str | None = None, variant: bool = False):
    return AssetBalanceEx(
        asset=asset or raw,
        raw_asset=raw,
        balance=Decimal(balance),
        hold_trade=Decimal(0),
        credit=Decimal(0),
        credit_used=Decimal(0),
        is_variant=variant,
        suffix=None,
        bonded_days=None,
    )


def booked(n: int, raw: str, moved: str, balance: str, asset: str | None = None, variant=False):
    """Ledger entry `n` (time n) on `raw`: moved by `moved`, `balance` after it."""
    return LedgerEntry(
        ledger_id=f"L{n:04d}",
        refid=f"T{n:04d}",
        time_ns=n,
        type="trade",
        subtype=None,
        asset=asset or raw,
        raw_asset=raw,
        is_variant=variant,
        amount=Decimal(moved),
        fee=Decimal(0),
        balance=Decimal(balance),
    )


def test_an_asset_booked_after_the_first_read_takes_its_last_entrys_balance():
    balances = [line("ZUSD", "1000", "USD"), line("XXBT", "1", "XBT"), line("XETH", "2", "ETH")]
    later = [
        booked(5, "ZUSD", "-600", "400", "USD"),
        booked(5, "XXBT", "0.01", "1.01", "XBT"),
        booked(6, "ZUSD", "-300", "100", "USD"),
        booked(7, "SOL", "3", "3"),  # an asset the balances did not list yet
    ]
    side = exchange_as_of(balances, later)
    assert side.trading == {
        "USD": Decimal("100"),  # its last entry
        "XBT": Decimal("1.01"),
        "ETH": Decimal("2"),  # no entry in between: the balance read
        "SOL": Decimal("3"),
    }
    assert side.staking == {}


def test_variants_are_kept_apart_and_two_ids_of_one_asset_add_up():
    balances = [
        line("XXBT", "1", "XBT"),
        line("XBT", "0.5", "XBT"),  # a second id normalized to the same asset
        line("XBT.M", "0.2", "XBT.M", variant=True),
        line("DOT.S", "10", "DOT.S", variant=True),
    ]
    later = [
        booked(3, "XBT", "-0.5", "0", "XBT"),
        booked(4, "DOT.S", "1", "11", "DOT.S", variant=True),
    ]
    side = exchange_as_of(balances, later)
    assert side.trading == {"XBT": Decimal("1")}
    assert side.staking == {"XBT.M": Decimal("0.2"), "DOT.S": Decimal("11")}


def move(ts: int, **moved: str) -> Move:
    return Move(seq=ts, ts_event=ts, moved={a: Decimal(v) for a, v in moved.items()})


def test_only_moves_after_the_ledger_point_and_within_the_grace_are_left_out():
    grace = 60
    moves = [
        move(100, USD="-10", XBT="1"),  # on the exchange as of the point
        move(150, USD="-20", XBT="2"),  # at the point: on the exchange
        move(151, USD="-30", XBT="3"),  # after it, recent: in flight
        move(200, USD="-40", XBT="4"),
    ]
    assert in_flight(moves, point_ns=150, now_ns=200, grace_ns=grace) == moves[2:]
    # past the grace a move the exchange never showed counts again
    assert in_flight(moves, point_ns=150, now_ns=250, grace_ns=grace) == moves[3:]
    # an empty ledger includes nothing: every recent move is in flight
    assert in_flight(moves, point_ns=None, now_ns=200, grace_ns=grace) == moves[1:]
    # a trade the run read in the ledger is on the exchange, whatever its trade time says
    late_legs = Move(seq=5, ts_event=160, moved={"XBT": Decimal(1)}, key="TLATE")
    assert in_flight([late_legs], point_ns=150, now_ns=200, grace_ns=grace) == [late_legs]
    assert in_flight([late_legs], 150, 200, grace, read=frozenset({"TLATE"})) == []
    books = {"USD": Decimal(900), "XBT": Decimal(10)}
    left_out = in_flight(moves, point_ns=150, now_ns=200, grace_ns=grace)
    assert books_as_of(books, (m.moved for m in left_out)) == {
        "USD": Decimal(970),
        "XBT": Decimal(3),
    }


ASSETS = ("ZUSD", "XXBT", "XETH")


@st.composite
def trading(draw):
    """An account's history (one signed move per entry, times strictly increasing) and the
    points at which a run read the ledger, the balances and the ledger again."""
    count = draw(st.integers(min_value=0, max_value=30))
    moves = draw(
        st.lists(
            st.tuples(st.sampled_from(ASSETS), st.integers(min_value=-500, max_value=500)),
            min_size=count,
            max_size=count,
        )
    )
    first, balances, second = sorted(
        draw(st.lists(st.integers(min_value=0, max_value=count), min_size=3, max_size=3))
    )
    journaled = draw(st.integers(min_value=second, max_value=count))
    return moves, first, balances, second, journaled


@given(trading(), st.booleans())
def test_books_and_exchange_agree_as_of_the_ledger_point_however_the_account_moves(
    history, replayed
):
    """The ledger is read after `first` entries, the balances after `balances`, the ledger
    again after `second`; the journal holds the first `journaled` moves (some after the
    point). Both sides as of the point agree, whichever moves a fold remembers (a replay
    after a restart remembers moves another fold never saw live)."""
    moves, first, balances, second, journaled = history
    start = {"ZUSD": Decimal(10_000)}
    entries, running = [], dict(start)
    for n, (raw, amount) in enumerate(moves, start=1):
        running[raw] = running.get(raw, Decimal(0)) + amount
        entries.append(booked(n, raw, str(amount), str(running[raw])))

    def held_after(count):
        held = dict(start)
        for raw, amount in moves[:count]:
            held[raw] = held.get(raw, Decimal(0)) + amount
        return held

    read = [line(raw, str(amount)) for raw, amount in held_after(balances).items()]
    side = exchange_as_of(read, entries[first:second])
    point = second if second else None  # entry n has time n

    books = held_after(journaled)
    remembered = [
        Move(seq=n, ts_event=n, moved={raw: Decimal(amount)})
        for n, (raw, amount) in enumerate(moves[:journaled], start=1)
        if replayed or n > first  # a live fold may have folded the oldest before a restart
    ]
    left_out = in_flight(remembered, point, now_ns=journaled, grace_ns=10**9)
    as_of = books_as_of(books, (m.moved for m in left_out))
    truth = held_after(second)
    assert compare(as_of, side.trading, THRESHOLDS, lambda a, d: None, CONTEXT) == []
    assert {a: v for a, v in side.trading.items() if v} == {a: v for a, v in truth.items() if v}
