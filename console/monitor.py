"""Reading a running group from the outside: process health, the state, the risk verdict.

`GroupMonitor.poll()` asks every process's control endpoint for its health, the portfolio
for its state (timing the round trip) and the risk actor for its verdict, each with a short
deadline and no retry: a part that does not answer shows as an error, never as a stale
value. `status`, the terminal view and the metrics all read the group this one way.
`MonitorThread` polls in the background and hands each snapshot to its listeners.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import zmq
from loguru import logger

from actors.runtime.actor import RequestFailed
from actors.runtime.client import RemoteError, RequestClient
from console.views import plain, portfolio_json
from messages import (
    GetPortfolioState,
    GetProcessHealth,
    GetRiskVerdict,
    PortfolioState,
    ProcessHealth,
    RiskVerdict,
)
from service.config import ServiceConfig, decimal_context


@dataclass(frozen=True)
class GroupSnapshot:
    """The group as one poll saw it.

    `processes` maps each process to its health (`plain(ProcessHealth)` plus `restarts` when
    the supervisor is known) or `{"error": ...}`; `portfolio` is the state's JSON form or
    `{"error": ...}`; `state` the state itself (None when it did not come); `risk` the
    verdict's JSON form or `{"error": ...}` (None: no risk actor); `query_seconds` the
    portfolio round trip.
    """

    taken_ns: int
    processes: dict[str, dict[str, Any]]
    portfolio: dict[str, Any] | None
    state: PortfolioState | None
    risk: dict[str, Any] | None
    query_seconds: float | None

    def as_json(self) -> dict[str, Any]:
        """What `status --json` prints: the state's JSON form (as `replay --json` prints it),
        or `{"error": ...}` when the portfolio did not answer, with `processes` and `risk`
        beside its keys."""
        report: dict[str, Any] = dict(self.portfolio or {"error": "no answer"})
        report["processes"] = self.processes
        if self.risk is not None:
            report["risk"] = self.risk
        return report


class GroupMonitor:
    """Polls the group (see the module docstring); owns its sockets, one thread at a time."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        restarts: Callable[[], Mapping[str, int]] | None = None,
        timeout_ms: int = 1000,
    ) -> None:
        self.config = config
        self._restarts = restarts
        self._timeout_ms = timeout_ms
        self._context = zmq.Context()
        self._clients: dict[str, RequestClient] = {}

    def close(self) -> None:
        """Close every socket."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._context.destroy(linger=0)

    def _client(self, name: str, address: str) -> RequestClient:
        client = self._clients.get(name)
        if client is None:
            client = RequestClient(
                self._context,
                name,
                address,
                self.config.transport,
                timeout_ms=self._timeout_ms,
                retries=0,
            )
            self._clients[name] = client
        return client

    def _ask(self, name: str, address: str, message: Any) -> Any:
        try:
            return self._client(name, address).request(message)
        except (RequestFailed, RemoteError):
            # Lazy Pirate: a socket that lost its answer is closed and made again next time.
            client = self._clients.pop(name, None)
            if client is not None:
                client.close()
            raise

    def poll(self) -> GroupSnapshot:
        """One look at the whole group."""
        restarts = dict(self._restarts()) if self._restarts is not None else {}
        processes: dict[str, dict[str, Any]] = {}
        for process in self.config.processes:
            try:
                answer = self._ask(
                    f"{process}.control",
                    self.config.control_endpoint(process),
                    GetProcessHealth(correlation_id=f"monitor-{time.monotonic_ns()}"),
                )
                health = plain(answer) if isinstance(answer, ProcessHealth) else None
                processes[process] = health or {"error": f"answered {type(answer).__name__}"}
            except (RequestFailed, RemoteError) as exc:
                processes[process] = {"error": str(exc)}
            if process in restarts:
                processes[process]["restarts"] = restarts[process]
        state: PortfolioState | None = None
        portfolio: dict[str, Any] | None = None
        query_seconds = None
        address = self.config.endpoints.get("portfolio.query")
        if address is not None:
            started = time.perf_counter()
            try:
                answer = self._ask(
                    "portfolio.query",
                    address,
                    GetPortfolioState(correlation_id=f"monitor-{time.monotonic_ns()}"),
                )
                query_seconds = time.perf_counter() - started
                if isinstance(answer, PortfolioState):
                    state = answer
                    portfolio = portfolio_json(answer, decimal_context(self.config))
                else:
                    portfolio = {"error": f"answered {type(answer).__name__}"}
            except (RequestFailed, RemoteError) as exc:
                portfolio = {"error": str(exc)}
        risk = None
        if any("risk" in p.actors for p in self.config.processes.values()):
            try:
                verdict = self._ask(
                    "risk.query",
                    self.config.endpoints["risk.query"],
                    GetRiskVerdict(correlation_id=f"monitor-{time.monotonic_ns()}"),
                )
                risk = (
                    _verdict_json(verdict)
                    if isinstance(verdict, RiskVerdict)
                    else {"error": f"answered {type(verdict).__name__}"}
                )
            except (RequestFailed, RemoteError) as exc:
                risk = {"error": str(exc)}
        return GroupSnapshot(
            taken_ns=time.time_ns(),
            processes=processes,
            portfolio=portfolio,
            state=state,
            risk=risk,
            query_seconds=query_seconds,
        )


def _verdict_json(verdict: RiskVerdict) -> dict[str, Any]:
    return {
        "trading_allowed": verdict.trading_allowed,
        "reason": verdict.reason,
        "state_seq": verdict.state_seq,
        "state_age_ms": verdict.state_age_ms,
        "approved": verdict.approved,
        "denied": verdict.denied,
    }


class MonitorThread:
    """Polls the group every `interval_seconds` in its own thread; keeps the latest snapshot
    and hands each one to every listener (the terminal view, the metrics)."""

    def __init__(
        self,
        config: ServiceConfig,
        interval_seconds: float,
        *,
        restarts: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._config = config
        self._interval = interval_seconds
        self._restarts = restarts
        self._listeners: list[Callable[[GroupSnapshot], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self.latest: GroupSnapshot | None = None

    def add_listener(self, listener: Callable[[GroupSnapshot], None]) -> None:
        """Call `listener` with every new snapshot (from the monitor's thread)."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self, timeout_seconds: float = 5.0) -> None:
        """Stop polling within `timeout_seconds`."""
        self._stop.set()
        self._thread.join(timeout_seconds)

    def _run(self) -> None:
        monitor = GroupMonitor(self._config, restarts=self._restarts, timeout_ms=500)
        try:
            while not self._stop.is_set():
                snapshot = monitor.poll()
                self.latest = snapshot
                for listener in self._listeners:
                    try:
                        listener(snapshot)
                    except Exception:
                        logger.exception("a monitor listener failed")
                self._stop.wait(self._interval)
        finally:
            monitor.close()
