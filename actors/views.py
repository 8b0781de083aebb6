"""What people and scripts see: messages as plain JSON-ready values, and the state's JSON form.

Decimals become strings (never floats), enums their values, times stay integer ns except
`as_of`, which is also given as ISO-8601 UTC.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from actors.risk import position_exposure
from messages import PortfolioState
from messages.base import Message


def plain(value: Any) -> Any:
    """A message (or any value inside one) as JSON-ready dicts, lists, strings and ints."""
    if isinstance(value, Message):
        out: dict[str, Any] = {"type": type(value).__name__}
        for field in dataclasses.fields(value):  # type: ignore[arg-type]
            out[field.name] = plain(getattr(value, field.name))
        return out
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def iso_utc(ts_ns: int) -> str:
    """ISO-8601 UTC with microseconds, from integer nanoseconds."""
    return datetime.fromtimestamp(ts_ns / 1_000_000_000, tz=UTC).isoformat()


def portfolio_json(state: PortfolioState) -> dict[str, Any]:
    """The JSON form of the portfolio state (`status --json`, `replay --json`).

    Exposure is what the risk actor judges by: |market value| of each position, or its cost
    basis (|quantity| × average cost) where it is unpriced; `basis` says which.
    """
    positions = {}
    exposure_total = Decimal(0)
    exposure: dict[str, str] = {}
    priced = all(p.market_value is not None for p in state.positions.values())
    for asset, position in sorted(state.positions.items()):
        positions[asset] = {
            "quantity": str(position.quantity),
            "average_cost": str(position.average_cost),
            "realized_pnl": str(position.realized_pnl),
            "unrealized_pnl": None
            if position.unrealized_pnl is None
            else str(position.unrealized_pnl),
            "fees": str(position.fees),
            "market_value": None if position.market_value is None else str(position.market_value),
        }
        amount = position_exposure(position)
        exposure[asset] = str(amount)
        exposure_total += amount
    return {
        "seq": state.seq,
        "as_of": iso_utc(state.as_of_ns),
        "as_of_ns": state.as_of_ns,
        "valuation_currency": state.valuation_currency,
        "equity": None if state.equity is None else str(state.equity),
        "cash": {currency: str(amount) for currency, amount in sorted(state.cash.items())},
        "positions": positions,
        "exposure": {
            "positions": exposure,
            "total": str(exposure_total),
            "basis": "market value" if priced else "cost (some positions are unpriced)",
        },
        "drawdown": {},
        "prices": {},
        "reconciliation": {},
    }


def _short(text: str | None, places: int = 8) -> str:
    if text is None:
        return "-"
    value = Decimal(text)
    return f"{value.quantize(Decimal(1).scaleb(-places)).normalize():f}"


def portfolio_text(state: dict[str, Any]) -> str:
    """The JSON form as a readable table (amounts shown to 8 decimals; JSON keeps them all)."""
    lines = [
        f"portfolio at seq {state['seq']}, as of {state['as_of']} "
        f"(valuation currency {state['valuation_currency']})",
        f"  equity: {_short(state['equity'], 2) if state['equity'] is not None else 'unpriced'}",
        "  cash:",
    ]
    for currency, amount in state["cash"].items():
        lines.append(f"    {currency:<6} {_short(amount):>20}")
    lines.append("  positions:")
    header = ("asset", "quantity", "average cost", "realized P&L", "fees", "market value")
    lines.append("    {:<6} {:>18} {:>16} {:>16} {:>12} {:>14}".format(*header))
    for asset, p in state["positions"].items():
        lines.append(
            "    {:<6} {:>18} {:>16} {:>16} {:>12} {:>14}".format(
                asset,
                _short(p["quantity"]),
                _short(p["average_cost"], 2),
                _short(p["realized_pnl"], 2),
                _short(p["fees"], 2),
                _short(p["market_value"], 2),
            )
        )
    return "\n".join(lines)
