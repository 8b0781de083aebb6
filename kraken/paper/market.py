"""Simulated prices: a seeded random walk per independent pair, cross pairs derived.

Pure: no clock, no threads. A pair quoted in USD walks on its own; a cross pair whose base
and quote both have USD-quoted pairs in the market (ETH/XBT from ETH/USD and XBT/USD) is
derived as ``mid = base_usd_mid / quote_usd_mid`` so the triangle stays consistent. Bid and
ask sit around the mid by half the spread each, snapped to the pair's tick outwards.
Session statistics (open, high, low, volume, VWAP, trade count, last trade) feed the Ticker.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from kraken.names import PairInfo
from kraken.paper.amounts import ZERO, paper_decimal_context, to_tick

#: The quote currency whose pairs walk and bridge cross pairs.
BRIDGE_QUOTE = "USD"

_STEP_RESOLUTION = 1000


@dataclass(frozen=True, kw_only=True)
class Quote:
    """The touch of one pair: best ``bid`` < best ``ask``, and the ``mid`` they surround."""

    bid: Decimal
    ask: Decimal
    mid: Decimal


@dataclass(kw_only=True)
class SessionStats:
    """Ticker statistics since the session opened: prices in quote, volume in base."""

    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal = ZERO
    notional: Decimal = ZERO
    trades: int = 0
    last_price: Decimal = ZERO
    last_volume: Decimal = ZERO

    @property
    def vwap(self) -> Decimal:
        """Volume-weighted average price: Σ price × volume / Σ volume (the open if no volume)."""
        return self.notional / self.volume if self.volume else self.open


class Market:
    """Mid prices, quotes and session statistics of the traded pairs."""

    def __init__(
        self,
        pairs: Mapping[str, PairInfo],
        start_prices: Mapping[str, Decimal | None],
        *,
        seed: int,
        volatility_bps: Decimal,
        spread_bps: Decimal,
    ) -> None:
        """``pairs`` and ``start_prices`` are keyed by pair id; a None price marks a pair to
        derive from its USD legs. Raises ValueError naming a pair that can be neither."""
        self._pairs = dict(pairs)
        self._volatility = volatility_bps / Decimal(10000)
        self._half_spread = spread_bps / Decimal(20000)
        self._rng = random.Random(seed)
        self._mids: dict[str, Decimal] = {}
        self._legs: dict[str, tuple[str, str]] = {}
        by_legs = {(pair.base, pair.quote): pair_id for pair_id, pair in self._pairs.items()}
        for pair_id, price in start_prices.items():
            pair = self._pairs[pair_id]
            base_leg = by_legs.get((pair.base, BRIDGE_QUOTE))
            quote_leg = by_legs.get((pair.quote, BRIDGE_QUOTE))
            derivable = (
                pair.quote != BRIDGE_QUOTE
                and base_leg is not None
                and quote_leg is not None
                and start_prices.get(base_leg) is not None
                and start_prices.get(quote_leg) is not None
            )
            if derivable:
                self._legs[pair_id] = (base_leg, quote_leg)
            elif price is None:
                raise ValueError(
                    f"pairs[{pair.symbol!r}]: no start price and no USD legs to derive it from"
                )
            else:
                self._mids[pair_id] = to_tick(price, pair.tick_size)
        self._stats: dict[str, SessionStats] = {}
        self._session_day: int | None = None

    # ------------------------------------------------------------------ prices

    def pair_ids(self) -> tuple[str, ...]:
        """Every priced pair id, walking ones first, in a stable order."""
        return tuple(self._mids) + tuple(self._legs)

    def is_derived(self, pair_id: str) -> bool:
        """True for a cross pair whose mid follows its USD legs."""
        return pair_id in self._legs

    def mid(self, pair_id: str) -> Decimal:
        """The current mid of a pair, on its tick."""
        with paper_decimal_context():
            legs = self._legs.get(pair_id)
            if legs is None:
                return self._mids[pair_id]
            base_mid = self._mids[legs[0]]
            quote_mid = self._mids[legs[1]]
            return to_tick(base_mid / quote_mid, self._pairs[pair_id].tick_size)

    def quote(self, pair_id: str) -> Quote:
        """Bid and ask around the mid: ``bid = floor(mid × (1 − s/2))``,
        ``ask = ceil(mid × (1 + s/2))`` on the tick, with at least one tick between them."""
        pair = self._pairs[pair_id]
        tick = pair.tick_size
        mid = self.mid(pair_id)
        with paper_decimal_context():
            bid = to_tick(mid * (1 - self._half_spread), tick, ROUND_FLOOR)
            ask = to_tick(mid * (1 + self._half_spread), tick, ROUND_CEILING)
            if bid <= 0:
                bid = tick
            if ask <= bid:
                ask = bid + tick
        return Quote(bid=bid, ask=ask, mid=mid)

    def step(self) -> None:
        """One random-walk step of every walking pair: ``mid × (1 + u × volatility)`` with
        ``u`` uniform in [−1, 1] from the seeded generator; a mid never goes below one tick."""
        with paper_decimal_context():
            for pair_id in self._mids:
                pair = self._pairs[pair_id]
                move = Decimal(self._rng.randint(-_STEP_RESOLUTION, _STEP_RESOLUTION))
                factor = 1 + move / _STEP_RESOLUTION * self._volatility
                new_mid = to_tick(self._mids[pair_id] * factor, pair.tick_size)
                self._mids[pair_id] = max(new_mid, pair.tick_size)
                # The rest of the market trades too: a few lots at the mid per step.
                lots = self._rng.randint(1, 20)
                self._record(pair_id, new_mid, pair.ordermin * lots)
            for pair_id in self._legs:
                self._record(
                    pair_id,
                    self.mid(pair_id),
                    self._pairs[pair_id].ordermin * self._rng.randint(1, 5),
                )

    def set_mid(self, pair_id: str, price: Decimal) -> None:
        """Set a pair's mid. For a derived pair the base leg moves so the cross lands on
        ``price`` (to the tick): ``base_usd = price × quote_usd``."""
        if price <= 0:
            raise ValueError(f"price: must be positive, got {price}")
        with paper_decimal_context():
            legs = self._legs.get(pair_id)
            if legs is None:
                self._mids[pair_id] = max(
                    to_tick(price, self._pairs[pair_id].tick_size), self._pairs[pair_id].tick_size
                )
                return
            base_leg, quote_leg = legs
            base_pair = self._pairs[base_leg]
            self._mids[base_leg] = max(
                to_tick(price * self._mids[quote_leg], base_pair.tick_size), base_pair.tick_size
            )

    # ------------------------------------------------------------------ statistics

    def open_session(self, day: int) -> None:
        """Start the day's statistics (``day`` = days since the epoch, UTC) when it changes."""
        if self._session_day == day and self._stats:
            return
        self._session_day = day
        for pair_id in self.pair_ids():
            mid = self.mid(pair_id)
            self._stats[pair_id] = SessionStats(open=mid, high=mid, low=mid, last_price=mid)

    def record_trade(self, pair_id: str, price: Decimal, volume: Decimal) -> None:
        """Count an account fill in the pair's session statistics."""
        self._record(pair_id, price, volume)

    def stats(self, pair_id: str) -> SessionStats:
        """The pair's session statistics (opened on first use)."""
        if pair_id not in self._stats:
            mid = self.mid(pair_id)
            self._stats[pair_id] = SessionStats(open=mid, high=mid, low=mid, last_price=mid)
        return self._stats[pair_id]

    def _record(self, pair_id: str, price: Decimal, volume: Decimal) -> None:
        with paper_decimal_context():
            stats = self.stats(pair_id)
            stats.high = max(stats.high, price)
            stats.low = min(stats.low, price)
            stats.volume += volume
            stats.notional += price * volume
            stats.trades += 1
            stats.last_price = price
            stats.last_volume = volume

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: mids, statistics, session day and the generator's position."""
        version, internal, gauss = self._rng.getstate()
        return {
            "mids": {pair_id: str(mid) for pair_id, mid in self._mids.items()},
            "session_day": self._session_day,
            "stats": {
                pair_id: {
                    "open": str(s.open),
                    "high": str(s.high),
                    "low": str(s.low),
                    "volume": str(s.volume),
                    "notional": str(s.notional),
                    "trades": s.trades,
                    "last_price": str(s.last_price),
                    "last_volume": str(s.last_volume),
                }
                for pair_id, s in self._stats.items()
            },
            "rng": [version, list(internal), gauss],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from ``snapshot()``; pairs no longer traded are ignored, new ones keep their
        start prices."""
        for pair_id, mid in state.get("mids", {}).items():
            if pair_id in self._mids:
                self._mids[pair_id] = Decimal(mid)
        self._session_day = state.get("session_day")
        for pair_id, s in state.get("stats", {}).items():
            if pair_id in self._pairs:
                self._stats[pair_id] = SessionStats(
                    open=Decimal(s["open"]),
                    high=Decimal(s["high"]),
                    low=Decimal(s["low"]),
                    volume=Decimal(s["volume"]),
                    notional=Decimal(s["notional"]),
                    trades=int(s["trades"]),
                    last_price=Decimal(s["last_price"]),
                    last_volume=Decimal(s["last_volume"]),
                )
        rng = state.get("rng")
        if rng:
            self._rng.setstate((rng[0], tuple(rng[1]), rng[2]))
