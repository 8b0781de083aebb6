"""Accounting: how journal events move cash and positions. Pure: no clock, no I/O, no threads.

Both the cash and the positions actor fold the same journal with these functions, each
keeping its own part: legs in a cash currency (config `accounting.cash_currencies`) move cash,
legs in any other asset move a position. The same events in the same order give the same
books, to the digit, every time.

Conventions (all amounts `Decimal`, computed in the caller's `decimal.Context`):

- A fill of `q` units of BASE/QUOTE at price `p` moves two legs: BASE by +q (buy) or -q (sell),
  QUOTE by -c (buy) or +c (sell), where c is the cost the exchange reported, else q × p.
- Prices in the valuation currency: BASE at p × r and QUOTE at r, where r is the fill's
  `quote_rate` (QUOTE → valuation currency at fill time; 1 when QUOTE is the valuation
  currency).
- Average cost (per unit, valuation currency) excludes fees. A leg that increases a position
  re-weights it: avg' = (|q0|·avg + |dq|·p) / (|q0| + |dq|). A leg that reduces it realizes
  (p − avg) × closed for a long and (avg − p) × closed for a short; a leg that crosses zero
  closes at zero, then opens the rest at p. Flat positions keep their realized P&L.
- The fee leaves the currency it was charged in (quote by default, base with `fcib`, or any
  other currency such as KFEE). Its value in the valuation currency is realized as a loss on
  the traded (BASE) position when paid: realized −= fee value, fees += fee value. A fee paid
  in a non-cash asset also disposes of that many units at the fill-time price (so the units
  leave the position as if sold, and the proceeds pay the fee).
- Transfers (deposits > 0, withdrawals < 0) move cash or a position's quantity; a deposit of
  a non-cash asset comes in at its average cost (no P&L: it is a flow, not a trade).

With these rules, for cash in the valuation currency only:
    starting cash + transfers = cash + Σ quantity × average cost − Σ realized P&L
(transfers of non-cash assets counted at the average cost they came in at).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from messages import BalanceAdjusted, ExecutionReport, Side, Transfer
from messages.errors import ServiceFieldError

ZERO = Decimal(0)
ONE = Decimal(1)


class BookingError(ServiceFieldError, ValueError):
    """An event cannot be booked; `field` names what is wrong with it."""


@dataclass(frozen=True, slots=True)
class PositionBook:
    """One non-cash asset: quantity, average cost (valuation currency), realized P&L, fees."""

    quantity: Decimal = ZERO
    average_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Leg:
    """One asset's movement caused by one event, priced in the valuation currency."""

    asset: str
    quantity: Decimal
    unit_price: Decimal  # valuation currency per unit at the event's time


@dataclass(frozen=True, slots=True)
class Booking:
    """What one event does to the books: its legs, and the fee expense and whom it hits."""

    legs: tuple[Leg, ...]
    fee_asset: str | None = None  # the position the fee expense is realized on
    fee_value: Decimal = ZERO  # the fee in the valuation currency


def split_pair(pair: str) -> tuple[str, str]:
    """('XBT', 'USD') from 'XBT/USD'; BookingError for anything else."""
    base, slash, quote = pair.partition("/")
    if not slash or not base or not quote or "/" in quote:
        raise BookingError("pair", f"expected BASE/QUOTE such as 'XBT/USD', got {pair!r}")
    return base, quote


def book_fill(
    report: ExecutionReport, valuation_currency: str, context: decimal.Context
) -> Booking:
    """The legs and fee of an ExecutionReport (no legs for a report without a fill)."""
    if report.last_qty == ZERO:
        if report.fee != ZERO:
            raise BookingError("fee", "a report without a fill cannot carry a fee")
        return Booking(legs=())
    if report.last_price <= ZERO:
        raise BookingError("last_price", f"a fill needs a price > 0, got {report.last_price}")
    base, quote = split_pair(report.pair)
    if base == quote:
        raise BookingError("pair", f"base and quote are the same asset in {report.pair!r}")
    if quote == valuation_currency:
        rate = ONE
    elif report.quote_rate is None:
        raise BookingError(
            "quote_rate",
            f"required for {report.pair}: the rate {quote} → {valuation_currency} at fill time",
        )
    else:
        rate = report.quote_rate
    quantity = report.last_qty
    cost = report.cost if report.cost is not None else context.multiply(quantity, report.last_price)
    sign = ONE if report.side is Side.BUY else -ONE
    base_price = context.multiply(report.last_price, rate)
    legs = [
        Leg(base, context.multiply(sign, quantity), base_price),
        Leg(quote, context.multiply(-sign, cost), rate),
    ]
    fee_value = ZERO
    if report.fee != ZERO:
        if report.fee_currency == base:
            fee_price = base_price
        elif report.fee_currency == quote:
            fee_price = rate
        else:
            raise BookingError(
                "fee_currency",
                f"{report.fee_currency!r} is neither {base} nor {quote} of {report.pair}",
            )
        legs.append(Leg(report.fee_currency, -report.fee, fee_price))
        fee_value = context.multiply(report.fee, fee_price)
    return Booking(legs=tuple(legs), fee_asset=base, fee_value=fee_value)


def apply_leg(
    position: PositionBook, quantity: Decimal, unit_price: Decimal, context: decimal.Context
) -> PositionBook:
    """The position after trading `quantity` units (signed) at `unit_price` (average cost)."""
    held = position.quantity
    if quantity == ZERO:
        return position
    if held == ZERO or (held > ZERO) == (quantity > ZERO):
        new_quantity = context.add(held, quantity)
        weighted = context.add(
            context.multiply(abs(held), position.average_cost),
            context.multiply(abs(quantity), unit_price),
        )
        return replace(
            position,
            quantity=new_quantity,
            average_cost=context.divide(weighted, abs(new_quantity)),
        )
    closed = min(abs(quantity), abs(held))
    direction = ONE if held > ZERO else -ONE
    gain = context.multiply(context.subtract(unit_price, position.average_cost), closed)
    realized = context.add(position.realized_pnl, context.multiply(gain, direction))
    remaining = context.subtract(abs(quantity), closed)
    if remaining > ZERO:  # crossed zero: closed at zero, the rest opens at this price
        new_quantity = remaining if quantity > ZERO else -remaining
        return replace(
            position, quantity=new_quantity, average_cost=unit_price, realized_pnl=realized
        )
    new_quantity = context.add(held, quantity)
    average = position.average_cost if new_quantity != ZERO else ZERO
    return replace(position, quantity=new_quantity, average_cost=average, realized_pnl=realized)


def charge_fee(
    position: PositionBook, fee_value: Decimal, context: decimal.Context
) -> PositionBook:
    """Realize a fee paid for trading this position: realized −= fee value, fees += it."""
    return replace(
        position,
        realized_pnl=context.subtract(position.realized_pnl, fee_value),
        fees=context.add(position.fees, fee_value),
    )


def book_transfer(transfer: Transfer, held: PositionBook | None) -> Booking:
    """A deposit (+) or withdrawal (−) as one leg; flows realize nothing.

    A withdrawal from a long leaves at the average cost, so it realizes no P&L. A deposit of
    a non-cash asset comes in at its `unit_price` when the producer stamped one, else at the
    position's average cost (into a flat position without a price: at zero cost, so
    producers should stamp the price).
    """
    if transfer.amount == ZERO:
        raise BookingError("amount", "a transfer of zero moves nothing")
    if transfer.amount < ZERO and held is not None and held.quantity > ZERO:
        price = held.average_cost  # taking units out of a long realizes nothing
    elif transfer.unit_price is not None:
        price = transfer.unit_price
    elif held is not None and held.quantity != ZERO:
        price = held.average_cost
    else:
        price = ZERO
    return Booking(legs=(Leg(transfer.asset, transfer.amount, price),))


class CashLedger:
    """The cash actor's fold: balance per cash currency, at journal `seq`."""

    def __init__(
        self,
        *,
        cash_currencies: tuple[str, ...],
        valuation_currency: str,
        context: decimal.Context,
        balances: dict[str, Decimal] | None = None,
        seq: int = 0,
    ) -> None:
        self.cash_currencies = frozenset(cash_currencies)
        self.valuation_currency = valuation_currency
        self.context = context
        self.balances: dict[str, Decimal] = dict(balances or {})
        self.seq = seq

    def apply(self, seq: int, event: object) -> dict[str, Decimal]:
        """Fold the event with journal number `seq`; return the balances it changed."""
        if seq != self.seq + 1:
            raise BookingError("seq", f"expected seq {self.seq + 1}, got {seq}")
        booking = booking_for(event, self.valuation_currency, self.context, lambda _: None)
        changed: dict[str, Decimal] = {}
        for leg in booking.legs:
            if leg.asset in self.cash_currencies:
                balance = self.context.add(self.balances.get(leg.asset, ZERO), leg.quantity)
                self.balances[leg.asset] = balance
                changed[leg.asset] = balance
        self.seq = seq
        return changed


class PositionLedger:
    """The positions actor's fold: one PositionBook per non-cash asset, at journal `seq`."""

    def __init__(
        self,
        *,
        cash_currencies: tuple[str, ...],
        valuation_currency: str,
        context: decimal.Context,
        positions: dict[str, PositionBook] | None = None,
        seq: int = 0,
    ) -> None:
        self.cash_currencies = frozenset(cash_currencies)
        self.valuation_currency = valuation_currency
        self.context = context
        self.positions: dict[str, PositionBook] = dict(positions or {})
        self.seq = seq

    def apply(self, seq: int, event: object) -> dict[str, PositionBook]:
        """Fold the event with journal number `seq`; return the positions it changed."""
        if seq != self.seq + 1:
            raise BookingError("seq", f"expected seq {self.seq + 1}, got {seq}")
        booking = booking_for(event, self.valuation_currency, self.context, self.positions.get)
        changed: dict[str, PositionBook] = {}
        for leg in booking.legs:
            if leg.asset in self.cash_currencies:
                continue
            held = changed.get(leg.asset) or self.positions.get(leg.asset) or PositionBook()
            changed[leg.asset] = apply_leg(held, leg.quantity, leg.unit_price, self.context)
        if booking.fee_asset is not None and booking.fee_value != ZERO:
            asset = booking.fee_asset
            held = changed.get(asset) or self.positions.get(asset) or PositionBook()
            changed[asset] = charge_fee(held, booking.fee_value, self.context)
        self.positions.update(changed)
        self.seq = seq
        return changed


def book_adjustment(adjustment: BalanceAdjusted, held: PositionBook | None) -> Booking:
    """A reconciliation correction as one leg of after − before; it realizes nothing.

    Units added to or taken from a position move at its average cost (a correction is not a
    trade); into a flat position, at zero cost.
    """
    change = adjustment.after - adjustment.before
    if change == ZERO:
        raise BookingError("after", "an adjustment that changes nothing")
    price = held.average_cost if held is not None and held.quantity != ZERO else ZERO
    return Booking(legs=(Leg(adjustment.asset, change, price),))


def booking_for(
    event: object,
    valuation_currency: str,
    context: decimal.Context,
    position_of: Callable[[str], PositionBook | None],
) -> Booking:
    """The booking of any journal event; events that move nothing book no legs."""
    if isinstance(event, ExecutionReport):
        return book_fill(event, valuation_currency, context)
    if isinstance(event, Transfer):
        return book_transfer(event, position_of(event.asset))
    if isinstance(event, BalanceAdjusted):
        return book_adjustment(event, position_of(event.asset))
    return Booking(legs=())


class BooksLedger:
    """Cash and positions folded together, at one journal `seq` (what equity is computed from).

    The drawdown actor owns one: it needs the whole of the books, event by event, to know the
    equity just before and just after each flow.
    """

    def __init__(
        self,
        *,
        cash_currencies: tuple[str, ...],
        valuation_currency: str,
        context: decimal.Context,
    ) -> None:
        self.cash = CashLedger(
            cash_currencies=cash_currencies, valuation_currency=valuation_currency, context=context
        )
        self.positions = PositionLedger(
            cash_currencies=cash_currencies, valuation_currency=valuation_currency, context=context
        )

    @property
    def seq(self) -> int:
        """The seq of the last event folded."""
        return self.cash.seq

    @seq.setter
    def seq(self, value: int) -> None:
        self.cash.seq = value
        self.positions.seq = value

    def apply(self, seq: int, event: object) -> tuple[dict[str, Decimal], dict[str, PositionBook]]:
        """Fold the event with journal number `seq` into both ledgers; the balances and the
        positions it changed."""
        return self.cash.apply(seq, event), self.positions.apply(seq, event)
