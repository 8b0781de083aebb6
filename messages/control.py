"""Control messages every actor and process understands: liveness, errors, acknowledgements."""

from __future__ import annotations

from dataclasses import field
from enum import StrEnum
from typing import Annotated

from messages.base import Identifier, Message, NonNegative, TimestampNs, message

__all__ = [
    "Acknowledgement",
    "DeliveryRefused",
    "ErrorCode",
    "ErrorReply",
    "GetProcessHealth",
    "Ping",
    "Pong",
    "ProcessHealth",
]

Count = Annotated[int, NonNegative]


@message
class Ping(Message):
    """A liveness request; answered with a `Pong` carrying the same `correlation_id`.

    `sent_ns` is the sender's clock when it asked, so the round trip can be measured.
    """

    correlation_id: Identifier
    sent_ns: TimestampNs


@message
class Pong(Message):
    """The answer to a `Ping`: who answered, and that actor's message counters.

    `handled` counts messages handled, `failed` handler failures, `malformed` frames refused
    by the codec; `sent_ns` echoes the ping's. `counters` are the actor's own named counts
    (the journal's journaled and refused events, a fold's fills applied...).
    """

    correlation_id: Identifier
    actor: Identifier
    process: str
    pid: Count
    handled: Count
    failed: Count
    malformed: Count
    sent_ns: TimestampNs
    counters: dict[str, Count] = field(default_factory=dict)


class ErrorCode(StrEnum):
    """Why a request got an `ErrorReply` instead of its answer."""

    MALFORMED = "malformed"
    """The frame could not be decoded."""
    UNKNOWN_TYPE = "unknown_type"
    """The receiver does not know the message type."""
    REFUSED = "refused"
    """The receiver knows the type but does not serve it, or refused its content."""
    HANDLER_FAILED = "handler_failed"
    """The handler raised."""
    TIMEOUT = "timeout"
    """The answer did not come in time."""
    UNAVAILABLE = "unavailable"
    """The service that would answer is not running or not ready."""


@message
class ErrorReply(Message):
    """A request could not be answered; `correlation_id` is None when it could not be read."""

    correlation_id: str | None
    code: ErrorCode
    detail: str


@message
class Acknowledgement(Message):
    """The reliable channel's receipt for the message whose delivery key is `key`.

    For an `ExecutionReport` the key is its `exec_id`. `seq` is the journal seq given to the
    message (the seq of the original when `duplicate` is true), None when it was not journaled.
    """

    key: Identifier
    seq: int | None
    duplicate: bool


@message
class Acknowledgements(Message):
    """Several receipts to one sender in one frame, in the order its messages were taken.

    The journal answers everything one sender had in a group commit this way: one frame and
    one send instead of one per event. A reliable sender treats each entry exactly as an
    `Acknowledgement` of its own.
    """

    acks: tuple[Acknowledgement, ...]


@message
class DeliveryRefused(Message):
    """The reliable channel's final answer for a message the receiver will never accept.

    `key` is the message's delivery key; `reason` names what was wrong with it. The sender
    stops resending it.
    """

    key: Identifier
    reason: str


@message
class GetProcessHealth(Message):
    """Ask a process whether it is ready and every actor in it answers a ping."""

    correlation_id: Identifier


@message
class ProcessHealth(Message):
    """The answer to `GetProcessHealth`: the process, whether it is ready, its actors' pongs."""

    correlation_id: Identifier
    process: Identifier
    pid: Count
    ready: bool
    actors: tuple[Pong, ...]
