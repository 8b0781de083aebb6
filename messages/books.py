"""Messages between the folds of the journal: cash and positions changes, their states."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from messages.base import Identifier, Message, NonNegative, Positive, message
from messages.portfolio import FoldHalted, PositionState

__all__ = [
    "CashChanged",
    "CashState",
    "GetCashState",
    "GetPositionsState",
    "PositionsChanged",
    "PositionsState",
]


@message
class CashChanged(Message):
    """The cash actor applied journal events `first_seq`..`seq`: the balances they changed.

    Live, one is published per group commit of the journal (`EventsCommitted`); while
    catching up, one per replayed batch. Consecutive messages cover consecutive ranges, so a
    reader can keep cash in lockstep with the journal and see every gap. A balance changed by
    several events of the range appears once, with its value after `seq`.
    """

    first_seq: Annotated[int, Positive]
    seq: Annotated[int, Positive]
    balances: dict[str, Decimal]


@message
class PositionsChanged(Message):
    """The positions actor applied journal events `first_seq`..`seq`: the positions changed.

    Published like `CashChanged`. Market value and unrealized P&L are None here: the
    positions actor does not price.
    """

    first_seq: Annotated[int, Positive]
    seq: Annotated[int, Positive]
    positions: dict[str, PositionState]


@message
class GetCashState(Message):
    """Ask the cash actor for every balance at its current seq (a reader resyncs with it)."""

    correlation_id: Identifier


@message
class CashState(Message):
    """Every cash balance after journal event `seq`; `halted` when the cash actor stopped
    folding at `seq` + 1."""

    correlation_id: Identifier
    seq: Annotated[int, NonNegative]
    balances: dict[str, Decimal]
    halted: FoldHalted | None = None


@message
class GetPositionsState(Message):
    """Ask the positions actor for every position at its current seq."""

    correlation_id: Identifier


@message
class PositionsState(Message):
    """Every position after journal event `seq`; `halted` when the positions actor stopped
    folding at `seq` + 1."""

    correlation_id: Identifier
    seq: Annotated[int, NonNegative]
    positions: dict[str, PositionState]
    halted: FoldHalted | None = None
