"""Kraken's per-key REST call counter (KRAKEN_REST.md §3.4).

Each private call adds its cost (1, or 2 for history calls); the counter decays continuously
at the tier's rate; a call that would take it above the tier's maximum is refused with
``EAPI:Rate limit exceeded`` and not charged. AddOrder, CancelOrder and CancelAll use
Kraken's separate trading limiter and cost nothing here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from kraken.paper.settings import RATE_LIMIT_OFF, RATE_LIMIT_TIERS
from messages.units import NS_PER_SECOND

HISTORY_METHODS = frozenset({"Ledgers", "QueryLedgers", "TradesHistory"})
TRADING_METHODS = frozenset({"AddOrder", "CancelOrder", "CancelAll"})


def call_cost(method: str) -> int:
    """What one private call adds to the counter."""
    if method in TRADING_METHODS:
        return 0
    return 2 if method in HISTORY_METHODS else 1


class RestRateCounter:
    """Call counters per API key for one tier (``off`` never refuses)."""

    def __init__(self, tier: str, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[float, int]] = {}
        self._tier = RATE_LIMIT_OFF
        self.set_tier(tier)

    @property
    def tier(self) -> str:
        """The tier in force."""
        return self._tier

    def set_tier(self, tier: str) -> None:
        """Switch tier (counters restart from zero); ValueError naming an unknown tier."""
        if tier != RATE_LIMIT_OFF and tier not in RATE_LIMIT_TIERS:
            raise ValueError(
                f"tier: unknown tier {tier!r}, expected off or {sorted(RATE_LIMIT_TIERS)}"
            )
        with self._lock:
            self._tier = tier
            self._counters.clear()

    def charge(self, key: str, method: str) -> bool:
        """Charge one call; False when it would exceed the tier's maximum."""
        cost = call_cost(method)
        if self._tier == RATE_LIMIT_OFF or cost == 0:
            return True
        maximum, decay_per_second = RATE_LIMIT_TIERS[self._tier]
        now = self._clock()
        with self._lock:
            counter, last = self._counters.get(key, (0.0, now))
            counter = max(0.0, counter - decay_per_second * (now - last) / NS_PER_SECOND)
            if counter + cost > maximum:
                self._counters[key] = (counter, now)
                return False
            self._counters[key] = (counter + cost, now)
            return True

    def level(self, key: str) -> float:
        """The key's counter now (after decay), for humans and tests."""
        if self._tier == RATE_LIMIT_OFF:
            return 0.0
        _, decay_per_second = RATE_LIMIT_TIERS[self._tier]
        now = self._clock()
        with self._lock:
            counter, last = self._counters.get(key, (0.0, now))
            return max(0.0, counter - decay_per_second * (now - last) / NS_PER_SECOND)
