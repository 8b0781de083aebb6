"""The admin interface: external events and fault switches, JSON in and out.

Every answer is ``{"ok": true, ...}`` or, for bad input, HTTP 400 with ``{"error": "..."}``
naming the field. Numbers may be JSON strings or numbers; numbers are read as Decimal, never
float, so ``0.1`` stays ``0.1``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kraken.paper.amounts import fixed, parse_decimal
from kraken.paper.engine import ExchangeError, PaperExchange
from kraken.paper.faults import FaultInjector
from kraken.paper.rate_limit import RestRateCounter

AdminAnswer = tuple[int, dict[str, Any]]

_MAX_STEPS = 100_000


class AdminInputError(ValueError):
    """Bad admin input; the message names the field."""


def _field(body: dict[str, Any], name: str) -> Any:
    if name not in body or body[name] is None:
        raise AdminInputError(f"{name}: missing field")
    return body[name]


def _decimal(body: dict[str, Any], name: str) -> Decimal:
    raw = _field(body, name)
    value = raw if isinstance(raw, Decimal) else parse_decimal(raw)
    if value is None or not value.is_finite():
        raise AdminInputError(f"{name}: not a decimal number: {raw!r}")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    raw = _field(body, name)
    if not isinstance(raw, str) or not raw.strip():
        raise AdminInputError(f"{name}: must be a non-empty string")
    return raw.strip()


class AdminApi:
    """Routes ``/admin/*`` requests to the exchange, the fault injector and the rate counter."""

    def __init__(
        self, exchange: PaperExchange, faults: FaultInjector, rate_counter: RestRateCounter
    ) -> None:
        self.exchange = exchange
        self.faults = faults
        self.rate_counter = rate_counter
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
            document = json.loads(body.decode("utf-8") or "{}", parse_float=Decimal) if body else {}
        except (UnicodeDecodeError, ValueError):
            return 400, {"error": "body: not a JSON object"}
        if not isinstance(document, dict):
            return 400, {"error": "body: not a JSON object"}
        try:
            return 200, {"ok": True, **route(document)}
        except (AdminInputError, ValueError) as error:
            return 400, {"error": str(error)}
        except ExchangeError as error:
            return 400, {"error": error.code}

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
        balance = self.exchange.set_balance(asset, _decimal(body, "balance"))
        return {"asset": self.exchange.names.asset_id(asset), "balance": str(balance)}

    def _price(self, body: dict[str, Any]) -> dict[str, Any]:
        pair_text = _text(body, "pair")
        try:
            mid = self.exchange.set_price(pair_text, _decimal(body, "price"))
        except ExchangeError as error:
            raise AdminInputError(f"pair: {error.code}: {pair_text!r}") from error
        return {"pair": self.exchange.traded_pair(pair_text).id, "mid": str(mid)}

    def _tick(self, body: dict[str, Any]) -> dict[str, Any]:
        steps = body.get("steps", 1)
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= _MAX_STEPS:
            raise AdminInputError(f"steps: an integer within 0..{_MAX_STEPS}, got {steps!r}")
        self.exchange.step(steps)
        return {"steps": steps}

    def _fault(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = _text(body, "kind")
        rate = _decimal(body, "rate")
        seconds = _decimal(body, "seconds")
        latency = body.get("latency_ms")
        if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int)):
            raise AdminInputError(f"latency_ms: must be an integer, got {latency!r}")
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
        return state
