"""Prometheus metrics of the running group, served by the runner on loopback.

Every series comes from the monitor's latest snapshot (console/monitor.py), so one scrape
shows one consistent look at the group; the state query's latency is a histogram of the
monitor's round trips. Series (all prefixed `portfolio_`):

- `equity{currency}`, `journal_seq`, `state_age_seconds`;
- `drawdown_pct{window}`, `drawdown_limit_pct{window}`, `drawdown_breached{window}`;
- `fills_applied_total` (fills the positions actor folded), `events_rejected_total` (refused
  by the journal, or malformed, at any actor), `actor_messages_total{process,actor,outcome}`;
- `query_latency_seconds` (histogram);
- `reconciliation_last_success_age_seconds`, `reconciliation_consecutive_failures`,
  `reconciliation_open_discrepancies`, `reconciliation_recovered_fills_total`,
  `reconciliation_adjustments_total`;
- `process_up{process}`, `process_restarts_total{process}`;
- `risk_trading_allowed`, `price_age_seconds{pair}`, `price_stale{pair}`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server

from console.monitor import GroupSnapshot
from messages.units import ns_to_seconds

LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _SnapshotCollector:
    """Turns the latest snapshot into metric families at scrape time."""

    def __init__(self) -> None:
        self.snapshot: GroupSnapshot | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        if snapshot is None:
            return
        yield from _process_families(snapshot)
        state = snapshot.portfolio
        if state is not None and "error" not in state:
            yield from _state_families(state)
        if snapshot.risk is not None and "error" not in snapshot.risk:
            allowed = GaugeMetricFamily(
                "portfolio_risk_trading_allowed", "1 while the risk actor lets orders go out"
            )
            allowed.add_metric([], 1 if snapshot.risk["trading_allowed"] else 0)
            yield allowed


def _process_families(snapshot: GroupSnapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily("portfolio_process_up", "1 when the process answers", labels=["process"])
    restarts = CounterMetricFamily(
        "portfolio_process_restarts", "restarts of the process by the runner", labels=["process"]
    )
    messages = CounterMetricFamily(
        "portfolio_actor_messages",
        "messages per actor by outcome (handled, failed, malformed)",
        labels=["process", "actor", "outcome"],
    )
    fills = 0
    rejected = 0
    for process, health in snapshot.processes.items():
        up.add_metric([process], 0 if "error" in health else 1)
        if "restarts" in health:
            restarts.add_metric([process], health["restarts"])
        for actor in health.get("actors", ()):
            for outcome in ("handled", "failed", "malformed"):
                messages.add_metric([process, actor["actor"], outcome], actor[outcome])
            rejected += actor["malformed"]
            counters = actor.get("counters") or {}
            if actor["actor"] == "positions":
                fills += counters.get("fills_applied", 0)
            if actor["actor"] == "journal":
                rejected += counters.get("refused", 0)
    yield up
    yield restarts
    yield messages
    yield CounterMetricFamily(
        "portfolio_fills_applied", "fills folded into the positions", value=fills
    )
    yield CounterMetricFamily(
        "portfolio_events_rejected",
        "events the journal refused, and malformed frames",
        value=rejected,
    )


def _number(text: str | None) -> float | None:
    return None if text is None else float(Decimal(text))


def _state_families(state: dict[str, Any]) -> Iterator[Metric]:
    equity = GaugeMetricFamily(
        "portfolio_equity", "equity in the valuation currency", labels=["currency"]
    )
    value = _number(state["equity"])
    if value is not None:
        equity.add_metric([state["valuation_currency"]], value)
    yield equity
    yield GaugeMetricFamily(
        "portfolio_journal_seq", "the journal seq the state reflects", value=state["seq"]
    )
    yield GaugeMetricFamily(
        "portfolio_state_age_seconds",
        "time since the state was confirmed",
        value=max(0.0, ns_to_seconds(time.time_ns() - state["as_of_ns"])),
    )
    drawdown = state.get("drawdown") or {}
    if drawdown:
        pct = GaugeMetricFamily(
            "portfolio_drawdown_pct", "drawdown % per window", labels=["window"]
        )
        limit = GaugeMetricFamily(
            "portfolio_drawdown_limit_pct", "drawdown limit % per window", labels=["window"]
        )
        breached = GaugeMetricFamily(
            "portfolio_drawdown_breached", "1 while the window is at its limit", labels=["window"]
        )
        for window in ("total", "daily", "weekly"):
            pct.add_metric([window], float(Decimal(drawdown[f"{window}_pct"])))
            shown = drawdown["limits"][f"{window}_pct"]
            if shown is not None:
                limit.add_metric([window], float(Decimal(shown)))
            breached.add_metric([window], 1 if window in drawdown["breached"] else 0)
        yield pct
        yield limit
        yield breached
    prices = state.get("prices") or {}
    if prices:
        price_age = GaugeMetricFamily("portfolio_price_age_seconds", "quote age", labels=["pair"])
        stale = GaugeMetricFamily("portfolio_price_stale", "1 when stale", labels=["pair"])
        for pair, quote in prices.items():
            price_age.add_metric([pair], float(Decimal(quote["age_seconds"])))
            stale.add_metric([pair], 1 if quote["stale"] else 0)
        yield price_age
        yield stale
    recon = state.get("reconciliation") or {}
    if recon:
        since = GaugeMetricFamily(
            "portfolio_reconciliation_last_success_age_seconds",
            "seconds since the last successful reconciliation (absent: never)",
        )
        if recon["last_success"] is not None:
            last = datetime.fromisoformat(recon["last_success"]).timestamp()
            since.add_metric([], max(0.0, time.time() - last))
        yield since
        yield GaugeMetricFamily(
            "portfolio_reconciliation_consecutive_failures",
            "failed runs since the last success",
            value=recon["consecutive_failures"],
        )
        yield GaugeMetricFamily(
            "portfolio_reconciliation_open_discrepancies",
            "assets differing beyond the threshold",
            value=len(recon["open_discrepancies"]),
        )
        yield CounterMetricFamily(
            "portfolio_reconciliation_recovered_fills",
            "fills the journal lacked",
            value=recon["recovered_fills"],
        )
        yield CounterMetricFamily(
            "portfolio_reconciliation_adjustments",
            "corrections journaled",
            value=recon["adjustments"],
        )


class MetricsExporter:
    """Serves the metrics over HTTP on `host:port` (port 0: a free one) from its own thread."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = _SnapshotCollector()
        self.registry.register(self._collector)  # type: ignore[arg-type]
        self._latency = Histogram(
            "portfolio_query_latency_seconds",
            "GetPortfolioState round trips seen by the runner's monitor",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._server: Any = None

    def start(self) -> str:
        """Listen; the URL of the metrics page. Raises OSError naming nothing else."""
        self._server, _ = start_http_server(self.port, addr=self.host, registry=self.registry)
        self.port = self._server.server_port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def update(self, snapshot: GroupSnapshot) -> None:
        """Take a new snapshot (the monitor's listener)."""
        self._collector.snapshot = snapshot
        if snapshot.query_seconds is not None:
            self._latency.observe(snapshot.query_seconds)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
