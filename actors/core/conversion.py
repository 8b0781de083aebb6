"""Prices and currency conversion. Pure: no clock, no I/O, no threads.

A `Quote` is the latest bid / ask / last of one pair "BASE/QUOTE" (QUOTE units per BASE unit)
with the exchange's time and the time it was received. A `PriceBook` is an immutable set of
quotes, one per pair, and converts any currency into another through the known pairs:

- directly, over a pair CUR/TO, or inverted, over a pair TO/CUR;
- or over a path through bridge currencies (e.g. ETH → XBT → USD over ETH/XBT and XBT/USD),
  the shortest by number of hops. Only currencies listed as bridges may sit in the middle of
  a path, so a thin or untrusted market never silently becomes a route.

Which price a hop uses depends on what the holding would have to do to close:

- A long holding (amount >= 0) is valued at what selling it would fetch. Over a pair
  CUR/TO that is the bid (rate = bid); over a pair TO/CUR it means buying TO with CUR at the
  ask (rate = 1 / ask).
- A short holding (amount < 0) is valued at what buying it back would cost. Over CUR/TO that
  is the ask (rate = ask); over TO/CUR it means selling TO at the bid (rate = 1 / bid).
- Mode "mid" uses (bid + ask) / 2 and mode "last" the last trade price, whatever the side
  (rate = price directly, 1 / price inverted).

A multi-hop rate is the product of its hop rates. With bid <= ask on every quote, a long
holding's rate never exceeds a short holding's rate over the same path.

Every conversion says which pairs it used and how old each price was. The age of a price is
`now_ns` minus the older of its exchange time and its receive time: a price is never treated
as younger than the exchange says it is, nor than when it arrived. A price older than
`max_age_ns` makes the conversion `stale`: the rate is still given (callers decide what to do
with it) but is flagged, never passed off as fresh. A fresh path is preferred to a shorter
stale one. No path at all makes it `unpriced` (rate None): a missing price is never zero.
"""

from __future__ import annotations

import decimal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Literal, get_args

from messages.errors import ServiceFieldError

ZERO = Decimal(0)
ONE = Decimal(1)
TWO = Decimal(2)

PricingMode = Literal["bid_ask", "mid", "last"]
PRICING_MODES: tuple[str, ...] = get_args(PricingMode)


class PriceError(ServiceFieldError, ValueError):
    """A quote or a conversion request is malformed; `field` names what is wrong with it."""


class Holding(StrEnum):
    """Which way a holding faces: it decides whether closing it sells (bid) or buys (ask)."""

    LONG = "long"
    SHORT = "short"

    @classmethod
    def of(cls, amount: Decimal) -> Holding:
        """LONG for an amount >= 0, SHORT for an amount < 0."""
        return cls.SHORT if amount < ZERO else cls.LONG


def _split_pair(pair: object) -> tuple[str, str]:
    if not isinstance(pair, str):
        raise PriceError("pair", f"expected a string 'BASE/QUOTE', got {type(pair).__name__}")
    base, slash, quote = pair.partition("/")
    if not slash or not base or not quote or "/" in quote or base == quote:
        raise PriceError("pair", f"expected BASE/QUOTE such as 'XBT/USD', got {pair!r}")
    return base, quote


def _check_price(field: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal):
        raise PriceError(field, f"expected a Decimal or None, got {type(value).__name__}")
    if not value.is_finite() or value <= ZERO:
        raise PriceError(field, f"must be a finite price > 0, got {value}")


def _check_ns(field: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise PriceError(field, f"expected integer nanoseconds, got {type(value).__name__}")
    if value < 0:
        raise PriceError(field, f"must be >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class Quote:
    """The latest prices of one pair, in QUOTE units per BASE unit.

    `bid`, `ask` and `last` are each a price > 0 or None when the feed did not give it (a
    conversion that needs a missing price cannot use this pair); a crossed quote (bid > ask)
    is refused. `exchange_ns` is the
    exchange's time of the quote when it gave one; `received_ns` when it reached us.
    """

    pair: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    exchange_ns: int | None
    received_ns: int

    def __post_init__(self) -> None:
        _split_pair(self.pair)
        _check_price("bid", self.bid)
        _check_price("ask", self.ask)
        _check_price("last", self.last)
        _check_ns("exchange_ns", self.exchange_ns, optional=True)
        _check_ns("received_ns", self.received_ns)
        if self.bid is not None and self.ask is not None and self.bid > self.ask:
            raise PriceError("ask", f"{self.ask} is below the bid {self.bid} (a crossed quote)")

    @property
    def base(self) -> str:
        """The currency this pair prices ('XBT' of 'XBT/USD')."""
        return self.pair.partition("/")[0]

    @property
    def quote(self) -> str:
        """The currency the prices are in ('USD' of 'XBT/USD')."""
        return self.pair.partition("/")[2]

    @property
    def observed_ns(self) -> int:
        """When the price was last true: the older of the exchange and receive times."""
        if self.exchange_ns is None:
            return self.received_ns
        return min(self.exchange_ns, self.received_ns)

    def age_ns(self, now_ns: int) -> int:
        """How old the price is at `now_ns`: now − observed_ns, and 0 for a price from later."""
        return max(0, now_ns - self.observed_ns)


@dataclass(frozen=True, slots=True)
class Conversion:
    """How one currency was converted: the rate, the pairs used and the age of each price.

    value_in_target = amount × rate. `path` lists the pairs in the order they were used, from
    the source currency to the target (empty when the two are the same currency, or when
    unpriced); `ages_ns[i]` is the age of the price of `path[i]`. `stale`: some price used was
    older than the allowed age (the rate is still given). `unpriced`: no path (rate None).
    """

    rate: Decimal | None
    path: tuple[str, ...]
    ages_ns: tuple[int, ...]
    stale: bool
    unpriced: bool

    @property
    def oldest_age_ns(self) -> int | None:
        """The age of the oldest price used; None when no price was used."""
        return max(self.ages_ns) if self.ages_ns else None


IDENTITY = Conversion(rate=ONE, path=(), ages_ns=(), stale=False, unpriced=False)
UNPRICED = Conversion(rate=None, path=(), ages_ns=(), stale=False, unpriced=True)


@dataclass(frozen=True, slots=True)
class _Hop:
    """One step of a path: from `source` to `target` over `quote`, inverted or not."""

    source: str
    target: str
    quote: Quote
    inverted: bool  # True when the pair is target/source


def _hop_price(hop: _Hop, holding: Holding, mode: str, context: decimal.Context) -> Decimal | None:
    """The pair's price this hop reads (quote per base of its pair), None if missing."""
    quote = hop.quote
    if mode == "last":
        return quote.last
    if mode == "mid":
        if quote.bid is None or quote.ask is None:
            return None
        return context.divide(context.add(quote.bid, quote.ask), TWO)
    # Selling the source: bid over source/target, ask over target/source; buying it back: the
    # other way round.
    sells = holding is Holding.LONG
    return quote.bid if sells != hop.inverted else quote.ask


class PriceBook(Mapping[str, Quote]):
    """An immutable mapping pair → Quote that converts currencies over its pairs.

    Updating makes a new book (`with_quote`), so a book handed to another actor or kept in a
    snapshot never changes under its reader.
    """

    __slots__ = ("_neighbours", "_quotes")

    def __init__(self, quotes: Iterable[Quote] = ()) -> None:
        by_pair: dict[str, Quote] = {}
        for quote in quotes:
            if not isinstance(quote, Quote):
                raise PriceError("quotes", f"expected Quote items, got {type(quote).__name__}")
            by_pair[quote.pair] = quote  # a later quote of the same pair wins
        self._quotes = by_pair
        neighbours: dict[str, list[_Hop]] = {}
        for pair in sorted(by_pair):
            quote = by_pair[pair]
            neighbours.setdefault(quote.base, []).append(
                _Hop(quote.base, quote.quote, quote, inverted=False)
            )
            neighbours.setdefault(quote.quote, []).append(
                _Hop(quote.quote, quote.base, quote, inverted=True)
            )
        self._neighbours = neighbours

    def __getitem__(self, pair: str) -> Quote:
        return self._quotes[pair]

    def __iter__(self) -> Iterator[str]:
        return iter(self._quotes)

    def __len__(self) -> int:
        return len(self._quotes)

    def __repr__(self) -> str:
        return f"PriceBook({list(self._quotes.values())!r})"

    def with_quotes(self, quotes: Iterable[Quote]) -> PriceBook:
        """A new book with each quote replacing its pair's (this one unchanged).

        Quotes of pairs the book has already only replace their two hops; a new pair builds
        the book again.
        """
        quotes = list(quotes)
        if any(quote.pair not in self._quotes for quote in quotes):
            return PriceBook([*self._quotes.values(), *quotes])
        book = object.__new__(PriceBook)
        book._quotes = dict(self._quotes)
        neighbours = dict(self._neighbours)
        copied: set[str] = set()
        for quote in quotes:
            if not isinstance(quote, Quote):
                raise PriceError("quotes", f"expected Quote items, got {type(quote).__name__}")
            book._quotes[quote.pair] = quote
            for hop in (
                _Hop(quote.base, quote.quote, quote, inverted=False),
                _Hop(quote.quote, quote.base, quote, inverted=True),
            ):
                if hop.source not in copied:
                    neighbours[hop.source] = list(neighbours[hop.source])
                    copied.add(hop.source)
                hops = neighbours[hop.source]
                for index, held in enumerate(hops):
                    if held.quote.pair == quote.pair:
                        hops[index] = hop
                        break
        book._neighbours = neighbours
        return book

    def with_quote(self, quote: Quote) -> PriceBook:
        """A new book with `quote` replacing the pair's previous quote (this one unchanged)."""
        return PriceBook([*self._quotes.values(), quote])

    def currencies(self) -> frozenset[str]:
        """Every currency that appears in some pair of the book."""
        return frozenset(self._neighbours)

    def convert(
        self,
        currency: str,
        held: Decimal | Holding,
        *,
        to: str,
        now_ns: int,
        max_age_ns: int,
        bridges: Iterable[str] = (),
        mode: PricingMode = "bid_ask",
        context: decimal.Context,
    ) -> Conversion:
        """The rate that values `currency` in `to`, with the path and price ages behind it.

        `held` is the amount held (its sign decides: >= 0 long, < 0 short) or a `Holding`.
        Long holdings read the side that sells them, short ones the side that buys them
        back (see the module docstring); mode "mid" or "last" reads that price instead.
        value_in_to = amount × rate. `bridges` are the currencies allowed in the middle of a
        path, in order of preference when two paths are equally short. The shortest path
        whose every price is at most `max_age_ns` old wins; without one, the shortest path
        at all, flagged `stale`; without any, `unpriced`.
        """
        holding = self._holding(held)
        for field, name in (("currency", currency), ("to", to)):
            if not isinstance(name, str) or not name:
                raise PriceError(field, f"expected a currency code, got {name!r}")
        _check_ns("now_ns", now_ns)
        _check_ns("max_age_ns", max_age_ns)
        if mode not in PRICING_MODES:
            raise PriceError("mode", f"expected one of {PRICING_MODES}, got {mode!r}")
        if currency == to:
            return IDENTITY
        bridge_rank = {bridge: rank for rank, bridge in enumerate(dict.fromkeys(bridges))}

        def usable(fresh_only: bool, hop: _Hop) -> bool:
            if _hop_price(hop, holding, mode, context) is None:
                return False
            return not fresh_only or hop.quote.age_ns(now_ns) <= max_age_ns

        for fresh_only in (True, False):
            path = self._shortest_path(currency, to, bridge_rank, partial(usable, fresh_only))
            if path is not None:
                return self._conversion(path, holding, mode, now_ns, max_age_ns, context)
        return UNPRICED

    @staticmethod
    def _holding(held: Decimal | Holding) -> Holding:
        if isinstance(held, Holding):
            return held
        if isinstance(held, Decimal) and not held.is_nan():
            return Holding.of(held)
        raise PriceError("held", f"expected a Decimal amount or a Holding, got {held!r}")

    def _shortest_path(
        self,
        source: str,
        target: str,
        bridge_rank: Mapping[str, int],
        usable: Callable[[_Hop], bool],
    ) -> list[_Hop] | None:
        """Breadth-first search: the fewest hops, intermediates only among the bridges."""
        came_by: dict[str, _Hop | None] = {source: None}
        frontier: deque[str] = deque([source])

        def preference(hop: _Hop) -> tuple[int, int, str]:
            if hop.target == target:
                return (0, 0, hop.quote.pair)
            return (1, bridge_rank.get(hop.target, len(bridge_rank)), hop.quote.pair)

        while frontier:
            currency = frontier.popleft()
            for hop in sorted(self._neighbours.get(currency, ()), key=preference):
                if hop.target in came_by or not usable(hop):
                    continue
                if hop.target == target:
                    path = [hop]
                    while (previous := came_by[path[-1].source]) is not None:
                        path.append(previous)
                    return path[::-1]
                if hop.target in bridge_rank:
                    came_by[hop.target] = hop
                    frontier.append(hop.target)
        return None

    @staticmethod
    def _conversion(
        path: list[_Hop],
        holding: Holding,
        mode: str,
        now_ns: int,
        max_age_ns: int,
        context: decimal.Context,
    ) -> Conversion:
        # One division at the end rounds once instead of once per inverted hop.
        numerator = ONE
        denominator = ONE
        for hop in path:
            price = _hop_price(hop, holding, mode, context)
            assert price is not None  # the search only walks hops with a price
            if hop.inverted:
                denominator = context.multiply(denominator, price)
            else:
                numerator = context.multiply(numerator, price)
        ages = tuple(hop.quote.age_ns(now_ns) for hop in path)
        return Conversion(
            rate=context.divide(numerator, denominator),
            path=tuple(hop.quote.pair for hop in path),
            ages_ns=ages,
            stale=any(age > max_age_ns for age in ages),
            unpriced=False,
        )
