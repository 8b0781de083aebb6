"""The operator's view of a running group, drawn with rich: the live view and `status`.

One function, `render(snapshot)`, draws everything a person watching the service needs: the
risk verdict first (may orders go out, and if not, why), equity and cash, positions with
P&L, drawdown against its limits, prices and their age, reconciliation health, and each
process with its actors and restarts. The live view redraws it a few times a second;
`status` prints it once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from console.monitor import GroupSnapshot


def _amount(text: str | None, places: int = 2) -> str:
    if text is None:
        return "-"
    value = Decimal(text).quantize(Decimal(1).scaleb(-places))
    return f"{value:,f}"


def _quantity(text: str | None) -> str:
    if text is None:
        return "-"
    return f"{Decimal(text).quantize(Decimal('1E-8')).normalize():f}"


def _signed(text: str | None) -> Text:
    if text is None:
        return Text("-")
    style = "green" if Decimal(text) > 0 else "red" if Decimal(text) < 0 else ""
    return Text(_amount(text), style=style)


def _verdict(snapshot: GroupSnapshot) -> Text:
    risk = snapshot.risk
    if risk is None:
        return Text("risk: no risk actor in this group", style="yellow")
    if "error" in risk:
        return Text(f"risk: NOT ANSWERING ({risk['error']})", style="bold red")
    counts = f"  (approved {risk['approved']}, denied {risk['denied']})"
    if risk["trading_allowed"]:
        return Text("risk: orders ALLOWED" + counts, style="bold green")
    return Text(f"risk: orders DENIED: {risk['reason']}" + counts, style="bold red")


def _header(state: dict[str, Any]) -> Text:
    currency = state["valuation_currency"]
    equity = state["equity"]
    line = Text()
    line.append("equity ", style="bold")
    line.append(
        f"{_amount(equity)} {currency}" if equity is not None else "UNPRICED",
        style="bold cyan" if equity is not None else "bold red",
    )
    line.append(f"   seq {state['seq']}   as of {state['as_of']}")
    return line


def _cash(state: dict[str, Any]) -> Table:
    table = Table(title="cash", title_justify="left", expand=False)
    table.add_column("currency")
    table.add_column("balance", justify="right")
    for currency, amount in state["cash"].items():
        table.add_row(currency, _amount(amount))
    return table


def _positions(state: dict[str, Any]) -> Table:
    table = Table(title="positions", title_justify="left")
    for name in ("asset", "quantity", "avg cost", "market value", "unrealized", "realized", "fees"):
        table.add_column(name, justify="left" if name == "asset" else "right")
    for asset, p in state["positions"].items():
        table.add_row(
            asset,
            _quantity(p["quantity"]),
            _amount(p["average_cost"]),
            _amount(p["market_value"]),
            _signed(p["unrealized_pnl"]),
            _signed(p["realized_pnl"]),
            _amount(p["fees"]),
        )
    exposure = state.get("exposure") or {}
    if exposure:
        table.caption = f"total exposure {_amount(exposure['total'])} ({exposure['basis']})"
    return table


def _drawdown(state: dict[str, Any]) -> Table | Text:
    drawdown = state.get("drawdown") or {}
    if not drawdown:
        return Text("drawdown: no drawdown actor in this group", style="yellow")
    table = Table(title="drawdown (% below the window's peak)", title_justify="left")
    for name in ("window", "drawdown %", "limit %", "peak", "window start", ""):
        table.add_column(name, justify="right" if name.endswith("%") or name == "peak" else "left")
    peaks = {
        "total": drawdown["peak_equity"],
        "daily": drawdown["daily_peak"],
        "weekly": drawdown["weekly_peak"],
    }
    starts = {
        "total": "inception",
        "daily": drawdown["daily_window_start"] or "-",
        "weekly": drawdown["weekly_window_start"] or "-",
    }
    for window in ("total", "daily", "weekly"):
        breached = window in drawdown["breached"]
        table.add_row(
            window,
            Text(_amount(drawdown[f"{window}_pct"]), style="bold red" if breached else ""),
            drawdown["limits"][f"{window}_pct"] or "-",
            _amount(peaks[window]),
            starts[window],
            Text("BREACHED", style="bold red") if breached else Text("ok", style="green"),
        )
    return table


def _prices(state: dict[str, Any]) -> Table | Text:
    prices = state.get("prices") or {}
    if not prices:
        return Text("prices: none yet", style="yellow")
    table = Table(title="prices", title_justify="left")
    for name in ("pair", "bid", "ask", "age s", ""):
        table.add_column(name, justify="left" if name == "pair" else "right")
    for pair, quote in prices.items():
        table.add_row(
            pair,
            _quantity(quote["bid"]),
            _quantity(quote["ask"]),
            _amount(quote["age_seconds"], 1),
            Text("STALE", style="bold red") if quote["stale"] else Text("fresh", style="green"),
        )
    if state.get("unpriced"):
        table.caption = f"unpriced holdings: {', '.join(state['unpriced'])}"
    return table


def _reconciliation(state: dict[str, Any]) -> RenderableType:
    recon = state.get("reconciliation") or {}
    if not recon:
        return Text("reconciliation: no reconciliation actor in this group", style="yellow")
    healthy = recon["consecutive_failures"] == 0 and not recon["open_discrepancies"]
    lines = [
        Text(
            f"reconciliation: last success {recon['last_success'] or 'never'}, "
            f"{recon['consecutive_failures']} failures in a row, "
            f"{recon['recovered_fills']} fills and {recon['recovered_transfers']} transfers "
            f"recovered, {recon['adjustments']} adjustments "
            f"(auto_update {'on' if recon['auto_update'] else 'off'})",
            style="green" if healthy else "bold red",
        )
    ]
    if recon["last_error"]:
        lines.append(Text(f"  last error: {recon['last_error']}", style="red"))
    for d in recon["open_discrepancies"]:
        lines.append(
            Text(
                f"  DISCREPANCY {d['asset']}: books {d['books']}, exchange {d['exchange']}, "
                f"difference {d['difference']}",
                style="bold red",
            )
        )
    for name, amount in recon["staking"].items():
        lines.append(Text(f"  staking {name}: {amount} (reported apart, not compared)"))
    return Group(*lines)


def _processes(snapshot: GroupSnapshot) -> Table:
    table = Table(title="processes", title_justify="left")
    for name in ("process", "pid", "state", "restarts", "actors (handled / failed / malformed)"):
        table.add_column(name)
    for process, health in snapshot.processes.items():
        restarts = str(health.get("restarts", "-"))
        if "error" in health:
            table.add_row(process, "-", Text("DOWN", style="bold red"), restarts, health["error"])
            continue
        actors = ", ".join(
            f"{a['actor']} {a['handled']}/{a['failed']}/{a['malformed']}" for a in health["actors"]
        )
        state = Text("ready", style="green") if health["ready"] else Text("NOT READY", style="red")
        table.add_row(process, str(health["pid"]), state, restarts, actors)
    return table


def render(snapshot: GroupSnapshot) -> RenderableType:
    """Everything about the group in one renderable (see the module docstring)."""
    parts: list[RenderableType] = [_verdict(snapshot)]
    state = snapshot.portfolio
    if state is None or "error" in state:
        reason = "no portfolio in this group" if state is None else state["error"]
        parts.append(Text(f"portfolio: NOT ANSWERING ({reason})", style="bold red"))
    else:
        parts += [
            _header(state),
            _cash(state),
            _positions(state),
            _drawdown(state),
            _prices(state),
            _reconciliation(state),
        ]
    parts.append(_processes(snapshot))
    return Group(*parts)
