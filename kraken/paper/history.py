"""Kraken's history paging: ``start`` exclusive, ``end`` inclusive, ``ofs``, 50 per page.

A bound is either a Unix time (seconds, compared at Kraken's 100 µs grain) or a record id
(compared by position in the account's history, which is exact even within one instant).
Records are given newest first and stay that way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import TypeVar

from kraken.paper.amounts import PAPER_CONTEXT, AmountError, bounded_decimal, parse_decimal

PAGE_SIZE = 50
# A time bound is a Unix time in seconds: at most this (the year 5138).
_MAX_BOUND_SECONDS = Decimal(10) ** 11

Record = TypeVar("Record")


class BoundError(ValueError):
    """A ``start``/``end`` that is neither a time nor a known id; names the parameter."""

    def __init__(self, param: str) -> None:
        super().__init__(param)
        self.param = param


@dataclass(frozen=True, kw_only=True)
class Bound:
    """A time in 100 µs units, or the history position (``seq``) of a record."""

    units: int | None = None
    seq: int | None = None


def parse_bound(
    text: str | None, param: str, seq_of_id: Callable[[str], int | None]
) -> Bound | None:
    """``text`` as a time or an id; None when absent or empty. Raises BoundError(param)."""
    if text is None or not text.strip():
        return None
    if parse_decimal(text) is not None:
        try:
            value = bounded_decimal(text, maximum=_MAX_BOUND_SECONDS, allow_zero=True)
        except AmountError as error:
            raise BoundError(param) from error
        units = (value * 10_000).to_integral_value(rounding=ROUND_FLOOR, context=PAPER_CONTEXT)
        return Bound(units=int(units))
    seq = seq_of_id(text.strip())
    if seq is None:
        raise BoundError(param)
    return Bound(seq=seq)


def within(units: int, seq: int, start: Bound | None, end: Bound | None) -> bool:
    """True when a record at ``units`` / ``seq`` is after ``start`` and not after ``end``."""
    if start is not None:
        if start.seq is not None and not seq > start.seq:
            return False
        if start.units is not None and not units > start.units:
            return False
    if end is not None:
        if end.seq is not None and not seq <= end.seq:
            return False
        if end.units is not None and not units <= end.units:
            return False
    return True


def page(records: Sequence[Record], offset: int) -> list[Record]:
    """The page of at most 50 records starting at ``offset``."""
    return list(records[offset : offset + PAGE_SIZE])
