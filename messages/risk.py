"""Messages of the risk check: may this order go out?"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from messages.base import Identifier, Message, NonNegative, Positive, message
from messages.journal import Side

__all__ = ["CheckOrder", "GetRiskVerdict", "RiskDecision", "RiskVerdict"]


@message
class CheckOrder(Message):
    """Ask the risk actor whether an order of `quantity` `pair` at about `price` may go out.

    The asker says how far the books lag behind what it has seen: `unacknowledged_reports`
    of its execution reports wait for the journal's acknowledgement, the oldest of them for
    `oldest_unacknowledged_ms` (0 and 0: none waits).
    """

    correlation_id: Identifier
    pair: Identifier
    side: Side
    quantity: Annotated[Decimal, Positive]
    price: Annotated[Decimal, Positive]
    unacknowledged_reports: Annotated[int, NonNegative] = 0
    oldest_unacknowledged_ms: Annotated[int, NonNegative] = 0


@message
class RiskDecision(Message):
    """The answer to `CheckOrder`: `approved`, and the reason when not.

    `state_seq` and `state_age_ms` say which portfolio snapshot the decision rests on.
    """

    correlation_id: Identifier
    approved: bool
    reason: str
    state_seq: Annotated[int, NonNegative]
    state_age_ms: Annotated[int, NonNegative]


@message
class GetRiskVerdict(Message):
    """Ask the risk actor whether orders may go out now at all; answered by `RiskVerdict`."""

    correlation_id: Identifier


@message
class RiskVerdict(Message):
    """The order-independent verdict: `trading_allowed`, else the `reason` (the first rule
    that denies: state age, drawdown limit, reconciliation, stale prices). `approved` and
    `denied` count the risk actor's decisions so far."""

    correlation_id: Identifier
    trading_allowed: bool
    reason: str
    state_seq: Annotated[int, NonNegative]
    state_age_ms: Annotated[int, NonNegative]
    approved: Annotated[int, NonNegative]
    denied: Annotated[int, NonNegative]
