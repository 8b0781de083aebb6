"""Decimal arithmetic for the paper exchange: one local context, Kraken's fixed-point strings.

Every calculation in the exchange runs inside ``paper_decimal_context()`` so no global
decimal state is read or changed. Amounts are rounded half-even (banker's rounding) unless a
caller asks for a direction, e.g. holds round up so a reservation never falls short.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

PAPER_CONTEXT = decimal.Context(
    prec=40,
    rounding=ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

ZERO = Decimal(0)

#: Bounds of every number taken from a request (admin or Kraken API). They keep each value,
#: and what the exchange computes from it, exact in ``PAPER_CONTEXT`` (40 digits): an amount
#: has at most 15 integer digits and 18 decimals (an asset has at most 10), a balance at most
#: 18 integer digits, so sums and products of them never round or overflow.
MAX_SIGNIFICANT_DIGITS = 28
MAX_PLACES = 18
MAX_AMOUNT = Decimal(10) ** 15
MAX_BALANCE = Decimal(10) ** 18
# How much of a refused value an error message repeats.
_SHOWN_CHARACTERS = 40


class AmountError(ValueError):
    """A number refused; the message says why (the caller adds the field's name)."""


@contextmanager
def paper_decimal_context() -> Iterator[decimal.Context]:
    """Run the enclosed block with the exchange's decimal context as the thread's context."""
    with decimal.localcontext(PAPER_CONTEXT) as context:
        yield context


def quantize(value: Decimal, places: int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``value`` rounded to ``places`` decimals (``rounding`` is a decimal rounding mode)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=rounding, context=PAPER_CONTEXT)


def round_up(value: Decimal, places: int) -> Decimal:
    """``value`` rounded towards +infinity at ``places`` decimals."""
    return quantize(value, places, ROUND_CEILING)


def round_down(value: Decimal, places: int) -> Decimal:
    """``value`` rounded towards -infinity at ``places`` decimals."""
    return quantize(value, places, ROUND_FLOOR)


def fixed(value: Decimal, places: int) -> str:
    """Kraken's fixed-point string: ``fixed(Decimal("6000"), 5) == "6000.00000"``."""
    return format(quantize(value, places), "f")


def to_tick(value: Decimal, tick: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``value`` rounded to a whole multiple of ``tick`` (a positive price increment)."""
    steps = (value / tick).to_integral_value(rounding=rounding, context=PAPER_CONTEXT)
    return (steps * tick).normalize(PAPER_CONTEXT).quantize(tick, context=PAPER_CONTEXT)


def decimal_places(value: Decimal) -> int:
    """How many decimals a value is written with, ignoring trailing zeros (``"1.50"`` → 1)."""
    exponent = value.normalize(PAPER_CONTEXT).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def parse_decimal(text: object) -> Decimal | None:
    """A finite Decimal from a wire string, or None when the text is not one."""
    if isinstance(text, bool) or not isinstance(text, str | int | Decimal):
        return None
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def shown(raw: object) -> str:
    """``repr(raw)`` (a Decimal as its digits) cut to a readable length, for error messages."""
    if isinstance(raw, int) and raw.bit_length() > 4 * _SHOWN_CHARACTERS:
        return f"an integer of about {int(raw.bit_length() * 0.30103)} digits"
    text = str(raw) if isinstance(raw, Decimal) else repr(raw)
    if len(text) <= _SHOWN_CHARACTERS:
        return text
    return f"{text[:_SHOWN_CHARACTERS]}... ({len(text)} characters)"


def bounded_decimal(
    raw: object,
    *,
    places: int = MAX_PLACES,
    maximum: Decimal = MAX_AMOUNT,
    allow_zero: bool = False,
) -> Decimal:
    """``raw`` (a string, an int or a Decimal; never a float or a bool) as an exact Decimal
    with at most ``MAX_SIGNIFICANT_DIGITS`` significant digits and ``places`` decimals, and
    ``0 < value <= maximum`` (``0 <= value`` with ``allow_zero``). Trailing zeros do not
    count: ``"1.500"`` is ``1.5``. Raises AmountError saying what is wrong.

    Only the digits and the exponent are inspected before the bounds hold, so no value,
    however large or long, is ever rounded or computed with.
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise AmountError(f"not a decimal number: {shown(raw)}")
    if isinstance(raw, int) and raw.bit_length() > 4 * MAX_SIGNIFICANT_DIGITS:
        raise AmountError(f"more than {MAX_SIGNIFICANT_DIGITS} significant digits")
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise AmountError(f"not a decimal number: {shown(raw)}") from None
    if not value.is_finite():
        raise AmountError(f"not a finite number: {shown(raw)}")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    kept = len(digits)
    while kept > 1 and digits[kept - 1] == 0:
        kept -= 1
    if digits[:kept] == (0,):
        if not allow_zero:
            raise AmountError("must be positive, got 0")
        return ZERO
    if kept > MAX_SIGNIFICANT_DIGITS:
        raise AmountError(f"more than {MAX_SIGNIFICANT_DIGITS} significant digits")
    exact = Decimal((sign, digits[:kept], exponent + len(digits) - kept))
    if exact.adjusted() >= maximum.adjusted() + 1 or exact.copy_abs() > maximum:
        raise AmountError(f"must be at most {maximum:f}, got {shown(raw)}")
    if -exact.as_tuple().exponent > places:  # type: ignore[operator]
        raise AmountError(f"at most {places} decimals, got {shown(raw)}")
    if sign:
        raise AmountError(f"must be {'>= 0' if allow_zero else 'positive'}, got {shown(raw)}")
    return exact
