"""Messages of the event log: execution reports, the journal's envelope, replay."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from messages.base import Identifier, Message, NonNegative, Positive, TimestampNs, message

__all__ = [
    "EventBatch",
    "EventsCommitted",
    "ExecutionReport",
    "GetJournalStatus",
    "JournalStatus",
    "OrderStatus",
    "PriceMark",
    "ReplayEvents",
    "SequencedEvent",
    "Side",
    "Transfer",
]


class Side(StrEnum):
    """The side of an order or fill, as Kraken spells it."""

    BUY = "buy"
    SELL = "sell"


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle; CANCELED may follow partial fills."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


@message
class ExecutionReport(Message):
    """An order event from the exchange: a fill, or a status change that moves no money.

    `pair` is normalized ("XBT/USD"). `last_qty` is the base quantity filled by this report
    (0 when it carries no fill) at `last_price` (quote per base); `fee` is charged in
    `fee_currency`. All are unsigned: `side` gives the direction (a buy adds base and spends
    quote). `quote_rate` converts the quote currency into the valuation currency at fill
    time (value_in_valuation = amount_in_quote × quote_rate), set for cross pairs so the
    fold of the log never depends on a later price. `exec_id` is unique per trade: the
    journal deduplicates on it and the reliable channel acknowledges by it. `cost` is the
    quote amount the exchange reported for the fill (Kraken rounds it to the pair's cost
    decimals); None means last_qty × last_price.
    """

    delivery_key: ClassVar[str] = "exec_id"

    exec_id: Identifier
    order_id: Identifier
    pair: Identifier
    side: Side
    status: OrderStatus
    last_qty: Annotated[Decimal, NonNegative]
    last_price: Annotated[Decimal, NonNegative]
    fee: Annotated[Decimal, NonNegative]
    fee_currency: str
    quote_rate: Annotated[Decimal, Positive] | None
    cost: Annotated[Decimal, NonNegative] | None = None
    reason: str = ""
    ts_event: TimestampNs
    ts_init: TimestampNs


@message
class Transfer(Message):
    """A deposit (`amount` > 0) or withdrawal (`amount` < 0) of `asset`: a flow, not a trade.

    `transfer_id` is unique (Kraken's ledger id, or the importer's): the journal deduplicates
    on it. `unit_price` is the asset's value in the valuation currency at the transfer's time,
    stamped by the producer for non-cash assets (the cost basis a deposit comes in at).
    """

    delivery_key: ClassVar[str] = "transfer_id"

    transfer_id: Identifier
    asset: Identifier
    amount: Decimal
    unit_price: Annotated[Decimal, Positive] | None = None
    ts_event: TimestampNs
    ts_init: TimestampNs


@message
class BalanceAdjusted(Message):
    """Reconciliation's correction of the books: `asset` was `before` in the books and the
    exchange says `after`; the books move by after − before. Visible in the log forever.

    `adjustment_id` is unique per correction (the journal deduplicates on it); `reason` says
    what was found (the run, the exchange balance, the difference).
    """

    delivery_key: ClassVar[str] = "adjustment_id"

    adjustment_id: Identifier
    asset: Identifier
    before: Decimal
    after: Decimal
    reason: str
    ts_event: TimestampNs
    ts_init: TimestampNs


@message
class PriceMark(Message):
    """A quote for `pair` at `ts_event`: best bid and ask (quote currency per base unit)."""

    pair: Identifier
    bid: Annotated[Decimal, Positive]
    ask: Annotated[Decimal, Positive]
    ts_event: TimestampNs


@message
class SequencedEvent(Message):
    """The journal's envelope of one accepted event: its `seq` (1, 2, ...) and journal time.

    Published inside `EventsCommitted`, replayed inside `EventBatch`.
    """

    seq: Annotated[int, Positive]
    ts_journal: TimestampNs
    event: Message


@message
class EventsCommitted(Message):
    """Events `first_seq`..`seq` the journal committed together, in seq order: one message
    on `journal.events` per group commit (or per part of one, when the events would not fit
    in one frame), so a follower folds a whole commit and tells its readers once.

    `events` holds every seq from `first_seq` to `seq`, each exactly once; a follower that
    finds anything else (or a gap before `first_seq`) catches up by replay. `journal_id` is
    the id of the journal that committed them (empty: a journal that has none).
    """

    first_seq: Annotated[int, Positive]
    seq: Annotated[int, Positive]
    events: tuple[SequencedEvent, ...]
    journal_id: str = ""


@message
class ReplayEvents(Message):
    """Ask the journal for the events with `from_seq` <= seq <= `to_seq` (None: up to head).

    At most `max_events` come back in one `EventBatch`; ask again from the next seq for more.
    """

    correlation_id: Identifier
    from_seq: Annotated[int, Positive]
    to_seq: int | None
    max_events: Annotated[int, Positive]


@message
class EventBatch(Message):
    """The answer to `ReplayEvents`: events in seq order and the journal's `head_seq`.

    `complete` is true when the batch reaches the requested end (or the head). `journal_id`
    is the id of the journal answering (empty: a journal that has none): a follower compares
    it, and `head_seq`, with the journal its snapshot was folded from.
    """

    correlation_id: Identifier
    events: tuple[SequencedEvent, ...]
    head_seq: Annotated[int, NonNegative]
    complete: bool
    journal_id: str = ""


@message
class GetJournalStatus(Message):
    """Ask the journal (on `journal.replay`) whether it can commit; answered by
    `JournalStatus`."""

    correlation_id: Identifier


@message
class JournalStatus(Message):
    """Whether the journal can take events now.

    `commit_failures` counts the commits that failed in a row (0: the last one succeeded),
    `failing_since_ns` is when the first of them failed, `last_error` says why. `committed_seq`
    is the head of the log; `journal_id` its id.
    """

    correlation_id: Identifier
    journal_id: str
    committed_seq: Annotated[int, NonNegative]
    commit_failures: Annotated[int, NonNegative]
    failing_since_ns: TimestampNs | None
    last_error: str
