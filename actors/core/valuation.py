"""Valuation: what the books are worth in the valuation currency. Pure: no clock, no I/O.

The portfolio and the drawdown actors both value the books with one `Valuer`, set up once
from the config (valuation currency, bridges, price mode, max price age, decimal context),
so the equity one reports is the equity the other measures drawdown on.

Formulas (all in the valuation currency, computed in the caller's `decimal.Context`; `rate`
is the `Conversion` rate of the holding's currency, see `actors.core.conversion`):

- cash value = balance × rate (balance signed: a negative balance is owed);
- market_value = quantity × rate (quantity signed: a short has a negative market value);
- unrealized P&L = quantity × (rate − average_cost): positive is a gain, for a long when the
  price rose above its average cost, for a short when it fell below it;
- exposure = |market_value| per position; total exposure = Σ exposure over the positions
  (cash is not exposure). Where a position is unpriced, a valuation leaves its exposure None;
  the risk limits and the views judge it by its cost basis instead, |quantity| × average_cost
  (`exposure`, the one definition of both);
- equity = Σ cash values + Σ market values. Every holding counts once.

A long holding is valued at the bid and a short one at the ask (mode "bid_ask"), or at the
mid or last price when configured. A holding that cannot be priced makes its values None and
the equity None (a missing price is never zero); a holding priced with a stale price is
valued and listed in `stale`, so the caller decides whether to trust it. A zero balance or
a flat position is worth exactly zero and needs no price.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from actors.core.accounting import PositionBook
from actors.core.conversion import Conversion, PriceBook, PricingMode
from messages.errors import ServiceFieldError

ZERO = Decimal(0)


class ValuationError(ServiceFieldError, ValueError):
    """The books cannot be valued as given; `field` names what is wrong."""


@dataclass(frozen=True, slots=True)
class CashValuation:
    """One cash balance and its value: value = balance × price.rate (None when unpriced)."""

    currency: str
    balance: Decimal
    value: Decimal | None
    price: Conversion


@dataclass(frozen=True, slots=True)
class PositionValuation:
    """One position valued at `price`: the PositionBook's figures plus its market figures.

    market_value = quantity × rate; unrealized_pnl = quantity × (rate − average_cost);
    exposure = |market_value|. All three are None when the position could not be priced.
    """

    asset: str
    quantity: Decimal
    average_cost: Decimal
    realized_pnl: Decimal
    fees: Decimal
    market_value: Decimal | None
    unrealized_pnl: Decimal | None
    exposure: Decimal | None
    price: Conversion


@dataclass(frozen=True, slots=True)
class Valuation:
    """The books valued in `valuation_currency` at `as_of_ns`.

    `equity` = Σ cash values + Σ market values, None when any holding is unpriced.
    `total_exposure` = Σ |market value| over positions, None when any position is unpriced.
    `stale` and `unpriced` name the holdings (cash currencies and assets, sorted) whose
    price was too old or could not be found. `cash` and `positions` are read-only mappings:
    a valuation is shared between actors as is.
    """

    valuation_currency: str
    as_of_ns: int
    equity: Decimal | None
    cash: Mapping[str, CashValuation]
    positions: Mapping[str, PositionValuation]
    total_exposure: Decimal | None
    stale: tuple[str, ...]
    unpriced: tuple[str, ...]


def _check_amount(field: str, value: object) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValuationError(field, f"expected a finite Decimal, got {value!r}")
    return value


def _sum(values: Iterable[Decimal | None], context: decimal.Context) -> Decimal | None:
    total = ZERO
    for value in values:
        if value is None:
            return None
        total = context.add(total, value)
    return total


def exposure(
    market_value: Decimal | None,
    quantity: Decimal,
    average_cost: Decimal,
    context: decimal.Context,
) -> Decimal:
    """A position's exposure in the valuation currency: |market_value| when priced, else its
    cost basis |quantity| × average_cost."""
    if market_value is not None:
        return context.abs(market_value)
    return context.multiply(context.abs(quantity), average_cost)


def total_exposure(exposures: Iterable[Decimal], context: decimal.Context) -> Decimal:
    """Σ exposure over positions (zero with none)."""
    total = ZERO
    for amount in exposures:
        total = context.add(total, amount)
    return total


def value_portfolio(
    cash: Mapping[str, Decimal],
    positions: Mapping[str, PositionBook],
    prices: PriceBook,
    *,
    valuation_currency: str,
    now_ns: int,
    max_age_ns: int,
    bridges: Iterable[str] = (),
    mode: PricingMode = "bid_ask",
    context: decimal.Context,
) -> Valuation:
    """Value cash balances and positions in `valuation_currency` with `prices` at `now_ns`.

    Each holding is converted with `prices.convert` (long at the bid, short at the ask, or
    `mode`), through `bridges` when no direct pair exists. See the module docstring for the
    formulas and their signs. A currency present both as cash and as a position is refused:
    it would be counted twice.
    """
    both = sorted(set(cash) & set(positions))
    if both:
        raise ValuationError("positions", f"{both} are both cash and positions")
    bridge_order = tuple(bridges)
    stale: list[str] = []
    unpriced: list[str] = []

    def price_of(currency: str, amount: Decimal) -> Conversion:
        conversion = prices.convert(
            currency,
            amount,
            to=valuation_currency,
            now_ns=now_ns,
            max_age_ns=max_age_ns,
            bridges=bridge_order,
            mode=mode,
            context=context,
        )
        if amount != ZERO:  # a zero holding is worth zero whatever its price
            if conversion.unpriced:
                unpriced.append(currency)
            elif conversion.stale:
                stale.append(currency)
        return conversion

    cash_values: dict[str, CashValuation] = {}
    for currency in sorted(cash):
        balance = _check_amount(f"cash[{currency}]", cash[currency])
        price = price_of(currency, balance)
        if balance == ZERO:
            value: Decimal | None = ZERO
        elif price.rate is None:
            value = None
        else:
            value = context.multiply(balance, price.rate)
        cash_values[currency] = CashValuation(currency, balance, value, price)

    position_values: dict[str, PositionValuation] = {}
    for asset in sorted(positions):
        book = positions[asset]
        if not isinstance(book, PositionBook):
            raise ValuationError(
                f"positions[{asset}]", f"expected a PositionBook, got {type(book).__name__}"
            )
        quantity = _check_amount(f"positions[{asset}].quantity", book.quantity)
        average_cost = _check_amount(f"positions[{asset}].average_cost", book.average_cost)
        price = price_of(asset, quantity)
        market_value: Decimal | None
        unrealized: Decimal | None
        if quantity == ZERO:
            market_value = unrealized = ZERO
        elif price.rate is None:
            market_value = unrealized = None
        else:
            market_value = context.multiply(quantity, price.rate)
            unrealized = context.multiply(quantity, context.subtract(price.rate, average_cost))
        position_values[asset] = PositionValuation(
            asset=asset,
            quantity=quantity,
            average_cost=average_cost,
            realized_pnl=book.realized_pnl,
            fees=book.fees,
            market_value=market_value,
            unrealized_pnl=unrealized,
            exposure=None
            if market_value is None
            else exposure(market_value, quantity, average_cost, context),
            price=price,
        )

    cash_total = _sum((c.value for c in cash_values.values()), context)
    market_total = _sum((p.market_value for p in position_values.values()), context)
    equity = (
        None
        if cash_total is None or market_total is None
        else context.add(cash_total, market_total)
    )
    return Valuation(
        valuation_currency=valuation_currency,
        as_of_ns=now_ns,
        equity=equity,
        cash=MappingProxyType(cash_values),
        positions=MappingProxyType(position_values),
        total_exposure=_sum((p.exposure for p in position_values.values()), context),
        stale=tuple(sorted(stale)),
        unpriced=tuple(sorted(unpriced)),
    )


@dataclass(frozen=True, slots=True)
class Valuer:
    """The valuation set up once (from the config): what every holding is valued in, over
    which bridge currencies, at which price (`mode`), how old a price may be before it is
    stale (`max_age_ns`), and the decimal context of the arithmetic. The portfolio, the
    drawdown actor and the replay value the books with one of these, so they agree."""

    valuation_currency: str
    max_age_ns: int
    context: decimal.Context
    bridges: tuple[str, ...] = ()
    mode: PricingMode = "bid_ask"

    def __post_init__(self) -> None:
        if isinstance(self.max_age_ns, bool) or not isinstance(self.max_age_ns, int):
            raise ValuationError("max_age_ns", f"expected an int, got {self.max_age_ns!r}")
        if self.max_age_ns < 0:
            raise ValuationError("max_age_ns", f"must be >= 0, got {self.max_age_ns}")

    def value(
        self,
        cash: Mapping[str, Decimal],
        positions: Mapping[str, PositionBook],
        prices: PriceBook,
        now_ns: int,
    ) -> Valuation:
        """The books valued with `prices` at `now_ns` (`value_portfolio`)."""
        return value_portfolio(
            cash,
            positions,
            prices,
            valuation_currency=self.valuation_currency,
            now_ns=now_ns,
            max_age_ns=self.max_age_ns,
            bridges=self.bridges,
            mode=self.mode,
            context=self.context,
        )
