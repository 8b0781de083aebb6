"""Injected faults: what a share of Kraken requests suffers for a while.

Kinds: ``unavailable`` (``EService:Unavailable``), ``rate_limit`` (``EAPI:Rate limit
exceeded``), ``internal`` (``EGeneral:Internal error``), ``http_502`` (HTTP 502 with an HTML
page), ``latency`` (the answer waits ``latency_ms``), ``drop`` (the connection closes with no
answer). A faulted request is not processed, except under ``latency``, which only delays it.
Draws use a seeded generator so runs repeat.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from messages.units import seconds_to_ns

FAULT_KINDS = ("unavailable", "rate_limit", "internal", "http_502", "latency", "drop")
ENVELOPE_ERRORS = {
    "unavailable": "EService:Unavailable",
    "rate_limit": "EAPI:Rate limit exceeded",
    "internal": "EGeneral:Internal error",
}
# Failures are checked in this order when several are active and hit the same request.
_FAILURE_ORDER = ("drop", "http_502", "unavailable", "rate_limit", "internal")
MAX_LATENCY_MS = 60_000
# A fault lasts at most a week: longer is a mistake, and ``inf`` would not fit a time.
MAX_FAULT_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One active fault: ``rate`` in [0, 1] is the share of requests hit, until ``until_ns``."""

    kind: str
    rate: float
    until_ns: int
    latency_ms: int = 0


@dataclass(frozen=True, kw_only=True)
class FaultDraw:
    """What happens to one request: a delay, then maybe a failure kind."""

    latency_ms: int = 0
    failure: str | None = None


class FaultInjector:
    """The active faults, one per kind; thread-safe."""

    def __init__(self, clock: Callable[[], int], seed: int) -> None:
        self._clock = clock
        self._rng = random.Random(seed * 31 + 5)
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}

    def set(self, kind: str, rate: float, seconds: float, latency_ms: int | None = None) -> Fault:
        """Activate (or replace) a fault; ValueError naming the bad field."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind: unknown fault {kind!r}, expected one of {list(FAULT_KINDS)}")
        if not 0 <= rate <= 1:
            raise ValueError(f"rate: must be within 0..1, got {rate}")
        if not (math.isfinite(seconds) and 0 < seconds <= MAX_FAULT_SECONDS):
            raise ValueError(f"seconds: must be within 0..{MAX_FAULT_SECONDS} (> 0), got {seconds}")
        if kind == "latency" and (latency_ms is None or not 0 < latency_ms <= MAX_LATENCY_MS):
            raise ValueError(f"latency_ms: required for latency, 1..{MAX_LATENCY_MS}")
        fault = Fault(
            kind=kind,
            rate=rate,
            until_ns=self._clock() + seconds_to_ns(seconds),
            latency_ms=latency_ms or 0,
        )
        with self._lock:
            self._faults[kind] = fault
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        """Faults still in force."""
        now = self._clock()
        with self._lock:
            return [f for f in self._faults.values() if f.until_ns > now]

    def draw(self) -> FaultDraw:
        """Decide the fate of one request."""
        now = self._clock()
        with self._lock:
            if not self._faults:
                return FaultDraw()
            for kind in [k for k, f in self._faults.items() if f.until_ns <= now]:
                del self._faults[kind]
            hits = {k for k, f in self._faults.items() if self._rng.random() < f.rate}
            latency = self._faults["latency"].latency_ms if "latency" in hits else 0
            failure = next((kind for kind in _FAILURE_ORDER if kind in hits), None)
            return FaultDraw(latency_ms=latency, failure=failure)
