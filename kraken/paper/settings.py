"""Settings of the paper exchange: where it listens, what it trades, how prices move."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

#: Kraken's REST call counter per tier: (maximum, decay per second). See KRAKEN_REST §3.4.
RATE_LIMIT_TIERS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"starter": (15.0, 0.33), "intermediate": (20.0, 0.5), "pro": (20.0, 1.0)}
)
RATE_LIMIT_OFF = "off"

#: Traded pairs and their start mid prices; None means derived from the two USD-quoted legs.
DEFAULT_PAIRS: Mapping[str, Decimal | None] = MappingProxyType(
    {
        "XBT/USD": Decimal("60000"),
        "ETH/USD": Decimal("3000"),
        "SOL/USD": Decimal("150"),
        "USDT/USD": Decimal("1"),
        "XDG/USD": Decimal("0.15"),
        "ETH/XBT": None,
    }
)

DEFAULT_STARTING_BALANCES: Mapping[str, Decimal] = MappingProxyType({"USD": Decimal("100000")})


@dataclass(frozen=True, kw_only=True)
class PaperSettings:
    """How the paper exchange runs.

    ``port`` 0 picks any free port. ``state_file`` None keeps everything in memory.
    ``tick_interval_seconds`` is the period of background price steps (0 = none; tests step
    by hand). ``volatility_bps`` bounds one random-walk step (a step moves the mid by a
    uniform share of ±volatility), ``spread_bps`` is the full bid/ask spread around the mid.
    ``pairs`` maps any pair name (``XBT/USD``, ``XXBTZUSD``) to its start mid, or None for a
    cross pair derived from its two USD-quoted legs. ``starting_balances`` are deposited
    once, when a new account is created. At most ``max_connections`` HTTP connections are
    served at once (one more waits briefly, then gets 503); a connection idle for
    ``idle_timeout_seconds`` is closed.
    """

    host: str = "127.0.0.1"
    port: int = 0
    state_file: Path | None = None
    seed: int = 7
    tick_interval_seconds: float = 0.25
    volatility_bps: Decimal = Decimal("5")
    spread_bps: Decimal = Decimal("4")
    rate_limit_tier: str = RATE_LIMIT_OFF
    pairs: Mapping[str, Decimal | None] = field(default_factory=lambda: dict(DEFAULT_PAIRS))
    starting_balances: Mapping[str, Decimal] = field(
        default_factory=lambda: dict(DEFAULT_STARTING_BALANCES)
    )
    max_connections: int = 64
    idle_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not is_loopback_host(self.host):
            raise ValueError(f"host: the paper exchange serves loopback only, got {self.host!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: out of range: {self.port}")
        if self.tick_interval_seconds < 0:
            raise ValueError("tick_interval_seconds: must be >= 0")
        if not 1 <= self.max_connections <= 1024:
            raise ValueError(f"max_connections: must be 1..1024, got {self.max_connections}")
        if not 0 < self.idle_timeout_seconds <= 3600:
            raise ValueError(
                f"idle_timeout_seconds: must be > 0 and <= 3600, got {self.idle_timeout_seconds}"
            )
        for name in ("volatility_bps", "spread_bps"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"{name}: must be a non-negative Decimal, got {value!r}")
        if self.rate_limit_tier != RATE_LIMIT_OFF and self.rate_limit_tier not in RATE_LIMIT_TIERS:
            raise ValueError(f"rate_limit_tier: unknown tier {self.rate_limit_tier!r}")
        if not self.pairs:
            raise ValueError("pairs: at least one traded pair is needed")
        for pair, price in self.pairs.items():
            if price is not None and (not isinstance(price, Decimal) or not price > 0):
                raise ValueError(f"pairs[{pair!r}]: start price must be a positive Decimal")
        for asset, amount in self.starting_balances.items():
            if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
                raise ValueError(f"starting_balances[{asset!r}]: must be a Decimal >= 0")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for anything
    else, the wildcards ``''``, ``0.0.0.0`` and ``::`` included. The one check of every
    address that must stay on this machine (the paper exchange, the metrics page, tcp
    endpoints without CURVE, the paper exchange's admin clients)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
