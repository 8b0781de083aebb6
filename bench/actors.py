"""Actors used only by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Iterable

from actors.runtime.actor import Inbound, Serve, ServiceActor, SocketSpec, handles
from messages import ExecutionReport, GetPortfolioState, PortfolioState


class SinkActor(ServiceActor):
    """Answers Ping (built in), counts ExecutionReports told one way, reports the count."""

    def sockets(self) -> Iterable[SocketSpec]:
        return (Serve("bench.sink"),)

    def started(self) -> None:
        self.received = 0

    @handles(ExecutionReport, on="bench.sink")
    def on_report(self, report: ExecutionReport, inbound: Inbound | None) -> None:
        self.received += 1

    @handles(GetPortfolioState, on="bench.sink")
    def on_count(self, request: GetPortfolioState, inbound: Inbound | None) -> PortfolioState:
        return PortfolioState(
            correlation_id=request.correlation_id,
            seq=self.received,
            as_of_ns=time.time_ns(),
            valuation_currency="USD",
            equity=None,
            cash={},
            positions={},
        )
