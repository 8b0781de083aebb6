"""The admin interface: external events and fault switches, JSON in and out.

Every answer is ``{"ok": true, ...}`` or, for bad input, HTTP 400 with ``{"error": "..."}``
naming the field. Numbers may be JSON strings or numbers; numbers are read as Decimal, never
float, so ``0.1`` stays ``0.1``. Every number is checked against ``bounded_decimal``'s bounds
(finite, at most 28 significant digits, positive where it must be) before the exchange sees
it; amounts must also fit the asset's decimals, which the exchange checks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from loguru import logger

from kraken.paper.amounts import MAX_AMOUNT, MAX_PLACES, AmountError, bounded_decimal, fixed, shown
from kraken.paper.bodies import BodyError, load_json_object
from kraken.paper.engine import ExchangeError, PaperExchange
from kraken.paper.faults import MAX_FAULT_SECONDS, MAX_LATENCY_MS, FaultInjector
from kraken.paper.rate_limit import RestRateCounter

AdminAnswer = tuple[int, dict[str, Any]]

_MAX_STEPS = 100_000
_MAX_TEXT = 64
# A fault's duration is kept in nanoseconds: no finer than that.
_SECONDS_PLACES = 9


class RefusalCounts:
    """How many requests were refused, per reason (thread-safe); shown by ``/admin/state``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, reason: str) -> None:
        """Count one refusal."""
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def snapshot(self) -> dict[str, int]:
        """The counts so far."""
        with self._lock:
            return dict(self._counts)


class AdminInputError(ValueError):
    """Bad admin input; the message names the field."""


def _field(body: dict[str, Any], name: str) -> Any:
    if name not in body or body[name] is None:
        raise AdminInputError(f"{name}: missing field")
    return body[name]


def _decimal(
    body: dict[str, Any],
    name: str,
    *,
    maximum: Decimal = MAX_AMOUNT,
    allow_zero: bool = False,
    places: int = MAX_PLACES,
) -> Decimal:
    """A bounded Decimal field (see ``bounded_decimal``), positive unless ``allow_zero``."""
    raw = _field(body, name)
    try:
        return bounded_decimal(raw, maximum=maximum, allow_zero=allow_zero, places=places)
    except AmountError as error:
        raise AdminInputError(f"{name}: {error}") from None


def _integer(body: dict[str, Any], name: str, lower: int, upper: int, default: int | None) -> int:
    raw = body.get(name)
    if raw is None and default is not None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int) or not lower <= raw <= upper:
        raise AdminInputError(f"{name}: an integer within {lower}..{upper}, got {shown(raw)}")
    return raw


def _text(body: dict[str, Any], name: str) -> str:
    raw = _field(body, name)
    if not isinstance(raw, str) or not raw.strip():
        raise AdminInputError(f"{name}: must be a non-empty string")
    if len(raw) > _MAX_TEXT:
        raise AdminInputError(f"{name}: longer than {_MAX_TEXT} characters")
    return raw.strip()


class AdminApi:
    """Routes ``/admin/*`` requests to the exchange, the fault injector and the rate counter."""

    def __init__(
        self,
        exchange: PaperExchange,
        faults: FaultInjector,
        rate_counter: RestRateCounter,
        refusals: RefusalCounts | None = None,
    ) -> None:
        self.exchange = exchange
        self.faults = faults
        self.rate_counter = rate_counter
        self.refusals = refusals if refusals is not None else RefusalCounts()
        self._routes: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = {
            ("POST", "/admin/deposit"): self._deposit,
            ("POST", "/admin/withdraw"): self._withdraw,
            ("POST", "/admin/trade"): self._trade,
            ("POST", "/admin/balance"): self._balance,
            ("POST", "/admin/price"): self._price,
            ("POST", "/admin/tick"): self._tick,
            ("POST", "/admin/fault"): self._fault,
            ("POST", "/admin/fault/clear"): self._fault_clear,
            ("POST", "/admin/rate_limit"): self._rate_limit,
            ("GET", "/admin/state"): self._state,
        }

    def handle(self, verb: str, path: str, body: bytes) -> AdminAnswer:
        """Answer one admin request: (HTTP status, JSON document)."""
        route = self._routes.get((verb, path.rstrip("/")))
        if route is None:
            return 404, {"error": f"unknown admin route: {verb} {path}"}
        try:
            return 200, {"ok": True, **route(load_json_object(body))}
        except (BodyError, AdminInputError, ValueError) as error:
            return self._refuse(verb, path, str(error))
        except ExchangeError as error:
            return self._refuse(verb, path, error.code)

    def _refuse(self, verb: str, path: str, message: str) -> AdminAnswer:
        self.refusals.add("admin_input")
        logger.info("paper admin: {} {} refused: {}", verb, path, message)
        return 400, {"error": message}

    def _deposit(self, body: dict[str, Any]) -> dict[str, Any]:
        entry = self.exchange.deposit(_text(body, "asset"), _decimal(body, "amount"))
        return self._entry_answer(entry)

    def _withdraw(self, body: dict[str, Any]) -> dict[str, Any]:
        entry = self.exchange.withdraw(_text(body, "asset"), _decimal(body, "amount"))
        return self._entry_answer(entry)

    def _entry_answer(self, entry: Any) -> dict[str, Any]:
        places = self.exchange.asset_decimals(entry.asset_id)
        return {
            "ledger_id": entry.id,
            "refid": entry.refid,
            "asset": entry.asset_id,
            "balance": fixed(entry.balance, places),
        }

    def _trade(self, body: dict[str, Any]) -> dict[str, Any]:
        side = _text(body, "side").lower()
        if side not in ("buy", "sell"):
            raise AdminInputError(f"side: must be 'buy' or 'sell', got {side!r}")
        try:
            order = self.exchange.external_trade(
                _text(body, "pair"), side, _decimal(body, "volume")
            )
        except ExchangeError as error:
            if error.code.startswith("EQuery"):
                raise AdminInputError(f"pair: {error.code}") from error
            raise AdminInputError(f"volume: {error.code}") from error
        return {"txid": order.txid, "trades": order.trade_txids, "pair": order.pair_id}

    def _balance(self, body: dict[str, Any]) -> dict[str, Any]:
        asset = _text(body, "asset")
        balance = self.exchange.set_balance(asset, _decimal(body, "balance", allow_zero=True))
        return {"asset": self.exchange.names.asset_id(asset), "balance": str(balance)}

    def _price(self, body: dict[str, Any]) -> dict[str, Any]:
        pair_text = _text(body, "pair")
        try:
            mid = self.exchange.set_price(pair_text, _decimal(body, "price"))
        except ExchangeError as error:
            raise AdminInputError(f"pair: {error.code}: {pair_text!r}") from error
        return {"pair": self.exchange.traded_pair(pair_text).id, "mid": str(mid)}

    def _tick(self, body: dict[str, Any]) -> dict[str, Any]:
        steps = _integer(body, "steps", 0, _MAX_STEPS, default=1)
        self.exchange.step(steps)
        return {"steps": steps}

    def _fault(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = _text(body, "kind")
        rate = _decimal(body, "rate", maximum=Decimal(1), allow_zero=True)
        seconds = _decimal(
            body, "seconds", maximum=Decimal(MAX_FAULT_SECONDS), places=_SECONDS_PLACES
        )
        latency = None
        if body.get("latency_ms") is not None:
            latency = _integer(body, "latency_ms", 0, MAX_LATENCY_MS, default=None)
        fault = self.faults.set(kind, float(rate), float(seconds), latency)
        return {"kind": fault.kind, "rate": fault.rate, "until_ns": fault.until_ns}

    def _fault_clear(self, body: dict[str, Any]) -> dict[str, Any]:
        self.faults.clear()
        return {}

    def _rate_limit(self, body: dict[str, Any]) -> dict[str, Any]:
        tier = _text(body, "tier")
        self.rate_counter.set_tier(tier)
        return {"tier": tier}

    def _state(self, body: dict[str, Any]) -> dict[str, Any]:
        state = self.exchange.state_summary()
        state["faults"] = [fault.kind for fault in self.faults.active()]
        state["rate_limit_tier"] = self.rate_counter.tier
        state["refused"] = self.refusals.snapshot()
        return state
