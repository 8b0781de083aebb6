"""Builders of the messages tests send and fold: events, quotes, and their envelopes.

Every builder is keyword-only with defaults a valid message needs, so a test names only the
fields that matter to it. Amounts and prices take a str, int or Decimal (made Decimal here).
`n` numbers an event: it makes its id (`T00001-AAAAA-BBBBBB`, `L00001-CCCCC-DDDDDD`) and its
time (`T0 + n`) unless they are given.
"""

from __future__ import annotations

from decimal import Decimal

from messages import (
    BalanceAdjusted,
    ExecutionReport,
    OrderStatus,
    PriceQuote,
    PricesUpdated,
    SequencedEvent,
    Side,
    Transfer,
)
from messages.base import Message
from messages.journal import EventsCommitted

T0 = 1_700_000_000_000_000_000
"""The time events are stamped at by default (2023-11-14), in ns."""

Amount = str | int | Decimal


def _decimal(value: Amount | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def execution_report(
    *,
    n: int = 1,
    exec_id: str | None = None,
    order_id: str = "OABCDE-FGHIJ-KLMNOP",
    pair: str = "XBT/USD",
    side: Side | str = Side.BUY,
    status: OrderStatus = OrderStatus.PARTIALLY_FILLED,
    last_qty: Amount = "0.01",
    last_price: Amount = "60000.1",
    fee: Amount = "0.24",
    fee_currency: str | None = None,
    quote_rate: Amount | None = None,
    cost: Amount | None = None,
    reason: str = "",
    ts_event: int | None = None,
    ts_init: int | None = None,
) -> ExecutionReport:
    """A fill of `pair` (partial unless `status` says otherwise); the fee is in the pair's
    quote currency unless `fee_currency` says otherwise; `ts_init` is `ts_event`'s."""
    ts_event = T0 + n if ts_event is None else ts_event
    return ExecutionReport(
        exec_id=f"T{n:05d}-AAAAA-BBBBBB" if exec_id is None else exec_id,
        order_id=order_id,
        pair=pair,
        side=Side(side),
        status=status,
        last_qty=Decimal(last_qty),
        last_price=Decimal(last_price),
        fee=Decimal(fee),
        fee_currency=pair.split("/")[1] if fee_currency is None else fee_currency,
        quote_rate=_decimal(quote_rate),
        cost=_decimal(cost),
        reason=reason,
        ts_event=ts_event,
        ts_init=ts_event if ts_init is None else ts_init,
    )


def fill(*, status: OrderStatus = OrderStatus.FILLED, **fields) -> ExecutionReport:
    """`execution_report` of an order filled in full (FILLED)."""
    return execution_report(status=status, **fields)


def transfer(
    *,
    n: int = 1,
    transfer_id: str | None = None,
    asset: str = "USD",
    amount: Amount = "1000",
    unit_price: Amount | None = None,
    ts_event: int | None = None,
    ts_init: int | None = None,
) -> Transfer:
    """A deposit (a negative `amount`: a withdrawal) of `asset`."""
    ts_event = T0 + n if ts_event is None else ts_event
    return Transfer(
        transfer_id=f"L{n:05d}-CCCCC-DDDDDD" if transfer_id is None else transfer_id,
        asset=asset,
        amount=Decimal(amount),
        unit_price=_decimal(unit_price),
        ts_event=ts_event,
        ts_init=ts_event if ts_init is None else ts_init,
    )


def balance_adjusted(
    *,
    n: int = 1,
    adjustment_id: str | None = None,
    asset: str = "USD",
    before: Amount = "100000",
    after: Amount = "100000.0123",
    reason: str = "reconciliation",
    ts_event: int | None = None,
    ts_init: int | None = None,
) -> BalanceAdjusted:
    """A correction of the books' `asset` from `before` to `after`, as reconciliation makes."""
    ts_event = T0 + n if ts_event is None else ts_event
    return BalanceAdjusted(
        adjustment_id=f"recon-{n}-{asset}" if adjustment_id is None else adjustment_id,
        asset=asset,
        before=Decimal(before),
        after=Decimal(after),
        reason=reason,
        ts_event=ts_event,
        ts_init=ts_event if ts_init is None else ts_init,
    )


def quote(
    *,
    pair: str = "XBT/USD",
    bid: Amount | None = "60000",
    ask: Amount | None = "60010",
    last: Amount | None = None,
    exchange_ns: int | None = None,
    received_ns: int = T0,
) -> PriceQuote:
    """A quote of `pair` as the prices actor publishes it (no exchange time by default)."""
    return PriceQuote(
        pair=pair,
        bid=_decimal(bid),
        ask=_decimal(ask),
        last=_decimal(last),
        exchange_ns=exchange_ns,
        received_ns=received_ns,
    )


def prices_updated(*quotes: PriceQuote) -> PricesUpdated:
    """The prices actor's publication of `quotes` (one default `quote()` if none)."""
    return PricesUpdated(quotes=quotes or (quote(),))


def sequenced(
    event: Message | None = None, *, seq: int = 1, ts_journal: int | None = None
) -> SequencedEvent:
    """`event` (a default `transfer()` if None) as the journal sequenced it at `seq`."""
    return SequencedEvent(
        seq=seq,
        ts_journal=T0 + seq if ts_journal is None else ts_journal,
        event=transfer() if event is None else event,
    )


def events_committed(*events: SequencedEvent, journal_id: str = "") -> EventsCommitted:
    """One group commit of the journal: `events`, in order, as it publishes them."""
    return EventsCommitted(
        first_seq=events[0].seq, seq=events[-1].seq, events=events, journal_id=journal_id
    )
