"""What the folds can carry: the bounds an event's amounts, times and currencies must keep.

Pure: no clock (the journal passes its own "now"), no I/O. The codec takes any decimal up to
1E±999 with 64 characters, and any 64-bit timestamp, because it only checks that a value can
travel. The folds need more: a fill of 1E+999 units is a valid message, but the cash it moves
(quantity × price) no longer fits the wire, and every fold of it fails, forever. So the
journal refuses, before anything is stored, what no real Kraken event can be:

- every amount (quantity, price, cost, fee, rate, transfer amount, balance) that is not zero
  lies within 1E-18 <= |x| < 1E+18. Kraken's tables (kraken/data) give assets at most 10
  decimals, pairs at most 7 price and 10 cost decimals, and no asset is divisible beyond
  1E-18 (ether's wei); the largest token supplies listed (SHIB, PEPE) stay below 1E+15
  units and no price comes near that. The bound
  is on the order of magnitude, not on decimal places: computed values (a cross rate, a
  unit price, the books' balance in an adjustment) carry as many places as the decimal
  context gives them, and a USD cost already has 5 places against USD's 4 asset decimals.
  Within these bounds, products of three amounts and sums of billions of them stay far
  inside the codec's range;
- an amount has at most as many significant digits as the configured decimal context
  (`service.decimal_precision`) carries: more could not be computed with exactly;
- `ts_event` and `ts_init` lie between 2009-01-01 (before any bitcoin trade, let alone
  Kraken's) and one day after the journal's clock: a history replayed from any era is
  accepted, a timestamp of 1970 or of next year is not;
- an execution report's `fee_currency` is the pair's base, its quote, or KFEE (Kraken's fee
  credits), whatever the fee: a fee "in DOGE" on XBT/USD is no Kraken fee even when zero.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from decimal import Decimal

from actors.core.accounting import BookingError, split_pair
from messages import BalanceAdjusted, ExecutionReport, Transfer
from messages.units import NS_PER_DAY, NS_PER_SECOND

__all__ = [
    "EARLIEST_EVENT_NS",
    "FEE_CREDIT",
    "LARGEST_AMOUNT",
    "MAX_AHEAD_NS",
    "SMALLEST_AMOUNT",
    "EventOutOfBounds",
    "check_event_bounds",
]

LARGEST_AMOUNT = Decimal("1E+18")
"""Every amount is smaller than this in magnitude."""

SMALLEST_AMOUNT = Decimal("1E-18")
"""Every amount that is not zero is at least this in magnitude."""

EARLIEST_EVENT_NS = 1_230_768_000 * NS_PER_SECOND
"""2009-01-01T00:00:00Z: no event of a Kraken account is older."""

MAX_AHEAD_NS = NS_PER_DAY
"""An event time may be at most one day after the journal's clock (clocks drift, a little)."""

FEE_CREDIT = "KFEE"
"""Kraken's fee credits: a fee currency besides the pair's own two."""

_LARGEST_ADJUSTED = LARGEST_AMOUNT.adjusted() - 1
_SMALLEST_ADJUSTED = SMALLEST_AMOUNT.adjusted()


class EventOutOfBounds(BookingError):
    """An event carries a value the folds cannot carry; `field` names it, `problem` says why."""


def check_amount(field: str, value: Decimal, context: decimal.Context) -> None:
    """Raise `EventOutOfBounds` naming `field` unless `value` is zero or within the amount
    bounds, with at most `context.prec` significant digits."""
    if not value:
        return
    if not _SMALLEST_ADJUSTED <= value.adjusted() <= _LARGEST_ADJUSTED:
        raise EventOutOfBounds(
            field,
            f"{value} is out of bounds: an amount is zero or "
            f"{SMALLEST_AMOUNT} <= |amount| < {LARGEST_AMOUNT}",
        )
    digits = value.as_tuple().digits
    significant = len(digits)
    if significant <= context.prec:
        return
    while significant > 1 and digits[significant - 1] == 0:
        significant -= 1  # trailing zeros are carried exactly at any precision
    if significant > context.prec:
        raise EventOutOfBounds(
            field,
            f"{value} has {significant} significant digits; the decimal context carries "
            f"{context.prec} (service.decimal_precision)",
        )


def check_time(field: str, ts_ns: int, now_ns: int) -> None:
    """Raise `EventOutOfBounds` naming `field` unless `ts_ns` lies between 2009 and one day
    after `now_ns`."""
    if ts_ns < EARLIEST_EVENT_NS:
        raise EventOutOfBounds(
            field,
            f"{ts_ns} ns is before 2009-01-01 ({EARLIEST_EVENT_NS} ns): "
            "no event of a Kraken account is that old",
        )
    if ts_ns > now_ns + MAX_AHEAD_NS:
        raise EventOutOfBounds(
            field,
            f"{ts_ns} ns is more than a day after the journal's clock ({now_ns} ns)",
        )


def check_event_bounds(
    event: ExecutionReport | Transfer | BalanceAdjusted, *, context: decimal.Context, now_ns: int
) -> None:
    """Raise `EventOutOfBounds` naming the first field of `event` beyond the bounds above.

    An execution report's `pair` is expected in its normalized BASE/QUOTE form (the journal
    checks that first).
    """
    amounts: Iterable[tuple[str, Decimal | None]]
    if isinstance(event, ExecutionReport):
        base, quote = split_pair(event.pair)
        if event.fee_currency not in (base, quote, FEE_CREDIT):
            raise EventOutOfBounds(
                "fee_currency",
                f"{event.fee_currency!r} is foreign to {event.pair}: "
                f"a fee is charged in {base}, {quote} or {FEE_CREDIT}",
            )
        amounts = (
            ("last_qty", event.last_qty),
            ("last_price", event.last_price),
            ("cost", event.cost),
            ("fee", event.fee),
            ("quote_rate", event.quote_rate),
        )
    elif isinstance(event, Transfer):
        amounts = (("amount", event.amount), ("unit_price", event.unit_price))
    else:
        amounts = (("before", event.before), ("after", event.after))
    for field, value in amounts:
        if value is not None:
            check_amount(field, value, context)
    check_time("ts_event", event.ts_event, now_ns)
    check_time("ts_init", event.ts_init, now_ns)
