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
