"""What people and scripts see: messages as plain JSON-ready values, and the state's JSON form.

Decimals become strings (never floats), enums their values, times stay integer ns except
`as_of`, which is also given as ISO-8601 UTC.
"""

from __future__ import annotations

import dataclasses
import decimal
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from actors.core.valuation import total_exposure
from actors.translate import position_exposure
from messages import PortfolioState
from messages.base import Message
from messages.units import NS_PER_SECOND


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
    return datetime.fromtimestamp(ts_ns / NS_PER_SECOND, tz=UTC).isoformat()


def portfolio_json(state: PortfolioState, context: decimal.Context) -> dict[str, Any]:
    """The JSON form of the portfolio state (`status --json`, `replay --json`).

    Exposure is what the risk actor judges by (`actors.core.valuation.exposure`, computed in
    `context`, the service's decimal context): |market value| of each position, or its cost
    basis (|quantity| × average cost) where it is unpriced; `basis` says which.
    """
    positions = {}
    amounts: list[Decimal] = []
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
            "price": _price_of(position, state),
        }
        amount = position_exposure(position, context)
        exposure[asset] = str(amount)
        amounts.append(amount)
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
            "total": str(total_exposure(amounts, context)),
            "basis": "market value" if priced else "cost (some positions are unpriced)",
        },
        "drawdown": drawdown_json(state),
        "prices": prices_json(state),
        "unpriced": list(state.unpriced),
        "stale": list(state.stale),
        "reconciliation": reconciliation_json(state),
        "halted": [
            {"actor": halt.actor, "seq": halt.seq, "reason": halt.reason} for halt in state.halted
        ],
    }


def reconciliation_json(state: PortfolioState) -> dict[str, Any]:
    """The reconciliation part of the state's JSON form (empty when the group has none)."""
    status = state.reconciliation
    if status is None:
        return {}
    return {
        "last_success": None if status.last_success_ns is None else iso_utc(status.last_success_ns),
        "last_attempt": None if status.last_attempt_ns is None else iso_utc(status.last_attempt_ns),
        "consecutive_failures": status.consecutive_failures,
        "last_error": status.last_error,
        "open_discrepancies": [
            {
                "asset": d.asset,
                "books": str(d.books),
                "exchange": str(d.exchange),
                "difference": str(d.difference),
                "value": _text(d.value),
                "since": iso_utc(d.since_ns),
            }
            for d in status.open_discrepancies
        ],
        "recovered_fills": status.recovered_fills,
        "recovered_transfers": status.recovered_transfers,
        "adjustments": status.adjustments,
        "staking": {name: str(amount) for name, amount in sorted(status.staking.items())},
        "checked_seq": status.checked_seq,
        "auto_update": status.auto_update,
    }


def _price_of(position: Any, state: PortfolioState) -> dict[str, Any] | None:
    """How a position was priced: the pairs converted over and the oldest price's age."""
    if position.price_observed_ns is None:
        return None
    age = max(0, state.as_of_ns - position.price_observed_ns)
    return {
        "path": list(position.price_path),
        "age_seconds": str(Decimal(age).scaleb(-9)),
        "stale": age > state.price_max_age_ns,
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def drawdown_json(state: PortfolioState) -> dict[str, Any]:
    """The drawdown part of the state's JSON form (empty when the group has no drawdown)."""
    view = state.drawdown
    if view is None:
        return {}
    return {
        "total_pct": str(view.total_pct),
        "daily_pct": str(view.daily_pct),
        "weekly_pct": str(view.weekly_pct),
        "peak_equity": _text(view.peak_equity),
        "daily_peak": _text(view.daily_peak),
        "weekly_peak": _text(view.weekly_peak),
        "daily_window_start": None
        if view.daily_window_start_ns is None
        else iso_utc(view.daily_window_start_ns),
        "weekly_window_start": None
        if view.weekly_window_start_ns is None
        else iso_utc(view.weekly_window_start_ns),
        "limits": {
            "total_pct": _text(view.max_total_pct),
            "daily_pct": _text(view.max_daily_pct),
            "weekly_pct": _text(view.max_weekly_pct),
        },
        "breached": list(view.breached),
        "seq": view.seq,
        "marks": view.marks,
    }


def prices_json(state: PortfolioState) -> dict[str, Any]:
    """Each pair's quote with its age in seconds at `as_of`, and whether it is stale."""
    shown = {}
    for pair, price in sorted(state.prices.items()):
        age = max(0, state.as_of_ns - price.observed_ns)
        shown[pair] = {
            "bid": _text(price.bid),
            "ask": _text(price.ask),
            "last": _text(price.last),
            "age_seconds": str(Decimal(age).scaleb(-9)),
            "stale": age > state.price_max_age_ns,
        }
    return shown


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
    ]
    for halt in state.get("halted") or ():
        lines.append(f"  HALTED {halt['actor']} at seq {halt['seq']}: {halt['reason']}")
    lines.append("  cash:")
    for currency, amount in state["cash"].items():
        lines.append(f"    {currency:<6} {_short(amount):>20}")
    lines.append("  positions:")
    header = (
        "asset",
        "quantity",
        "average cost",
        "realized P&L",
        "unrealized P&L",
        "fees",
        "market value",
    )
    row = "    {:<6} {:>18} {:>14} {:>14} {:>14} {:>10} {:>14}"
    lines.append(row.format(*header))
    for asset, p in state["positions"].items():
        lines.append(
            row.format(
                asset,
                _short(p["quantity"]),
                _short(p["average_cost"], 2),
                _short(p["realized_pnl"], 2),
                _short(p["unrealized_pnl"], 2),
                _short(p["fees"], 2),
                _short(p["market_value"], 2),
            )
        )
    drawdown = state.get("drawdown") or {}
    if drawdown:
        limits = drawdown["limits"]
        lines.append("  drawdown (% below the peak; limit):")
        for window in ("total", "daily", "weekly"):
            peak = drawdown["peak_equity"] if window == "total" else drawdown[f"{window}_peak"]
            flag = "  BREACHED" if window in drawdown["breached"] else ""
            lines.append(
                f"    {window:<7} {_short(drawdown[f'{window}_pct'], 2):>8}%"
                f"  limit {limits[f'{window}_pct'] or '-':>5}%  peak {_short(peak, 2)}{flag}"
            )
    if state.get("prices"):
        lines.append("  prices:")
        for pair, quote in state["prices"].items():
            stale = "  STALE" if quote["stale"] else ""
            lines.append(
                f"    {pair:<9} bid {_short(quote['bid']):>16} ask {_short(quote['ask']):>16}"
                f"  age {_short(quote['age_seconds'], 1):>6}s{stale}"
            )
    if state.get("unpriced"):
        lines.append(f"  unpriced: {', '.join(state['unpriced'])}")
    recon = state.get("reconciliation") or {}
    if recon:
        lines.append(
            f"  reconciliation: last success {recon['last_success'] or 'never'}, "
            f"{recon['consecutive_failures']} failures in a row, "
            f"{recon['recovered_fills']} fills and {recon['recovered_transfers']} transfers "
            f"recovered, {recon['adjustments']} adjustments"
        )
        if recon["last_error"]:
            lines.append(f"    last error: {recon['last_error']}")
        for d in recon["open_discrepancies"]:
            lines.append(
                f"    DISCREPANCY {d['asset']}: books {d['books']}, exchange {d['exchange']}, "
                f"difference {d['difference']}"
            )
        for name, amount in recon["staking"].items():
            lines.append(f"    staking {name}: {amount} (not compared)")
    return "\n".join(lines)
