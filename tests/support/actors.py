"""Small real actors that exercise the runtime's three patterns in tests.

`ingest` takes ExecutionReports over the reliable channel (dedup by exec_id, next seq,
publish, acknowledge) and replays them; `follower` subscribes and counts; `feeder` forwards
what it is given to `ingest` reliably. Placement comes from the test's config.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from actors.runtime.actor import (
    Connect,
    Inbound,
    Publish,
    RequestFailed,
    Serve,
    ServiceActor,
    SocketSpec,
    Subscribe,
    handles,
)
from messages import (
    Acknowledgement,
    Acknowledgements,
    EventBatch,
    ExecutionReport,
    GetPortfolioState,
    PortfolioState,
    ReplayEvents,
    SequencedEvent,
)


def _state(correlation_id: str, seq: int) -> PortfolioState:
    return PortfolioState(
        correlation_id=correlation_id,
        seq=seq,
        as_of_ns=time.time_ns(),
        valuation_currency="USD",
        equity=None,
        cash={},
        positions={},
    )


class IngestActor(ServiceActor):
    """Sequences ExecutionReports: dedup, seq, publish, acknowledge; replays on request."""

    def sockets(self) -> Iterable[SocketSpec]:
        return (Serve("test.ingest"), Publish("test.events"))

    held_pair = "ETH/USD"
    """Reports on this pair are answered together, in one `Acknowledgements` frame, once
    `held_count` of them from one sender are held (as the journal answers a group commit)."""
    held_count = 3

    def started(self) -> None:
        self.events: list[SequencedEvent] = []
        self.seq_of: dict[str, int] = {}
        self.duplicates = 0
        self.held: list[Acknowledgement] = []

    def counters(self) -> dict[str, int]:
        return {"duplicates": self.duplicates}

    @handles(ExecutionReport, on="test.ingest")
    def on_report(self, report: ExecutionReport, inbound: Inbound | None) -> Acknowledgement | None:
        if report.pair == "BOOM/USD":
            raise ValueError("this pair makes the handler fail")
        known = self.seq_of.get(report.exec_id)
        if known is not None:
            self.duplicates += 1
            return Acknowledgement(key=report.exec_id, seq=known, duplicate=True)
        event = SequencedEvent(seq=len(self.events) + 1, ts_journal=time.time_ns(), event=report)
        self.events.append(event)
        self.seq_of[report.exec_id] = event.seq
        self.publish("test.events", event)
        ack = Acknowledgement(key=report.exec_id, seq=event.seq, duplicate=False)
        if report.pair != self.held_pair or inbound is None:
            return ack
        self.held.append(ack)
        if len(self.held) >= self.held_count:
            self.reply(inbound, Acknowledgements(acks=tuple(self.held)))
            self.held = []
        return None

    @handles(ReplayEvents, on="test.ingest")  # test.replay is its address too
    def on_replay(self, request: ReplayEvents, inbound: Inbound | None) -> EventBatch:
        first = request.from_seq - 1
        last = len(self.events) if request.to_seq is None else request.to_seq
        chosen = self.events[first : min(last, first + request.max_events)]
        return EventBatch(
            correlation_id=request.correlation_id,
            events=tuple(chosen),
            head_seq=len(self.events),
            complete=first + len(chosen) >= last,
        )

    @handles(GetPortfolioState, on="test.ingest")
    def on_state(self, request: GetPortfolioState, inbound: Inbound | None) -> PortfolioState:
        return _state(request.correlation_id, len(self.events))


class _CatchUp:
    """Timer: ask for what a slow-joining subscription may have missed."""


class FollowerActor(ServiceActor):
    """Counts published events; on a gap, and every 0.2 s, catches up by asking for a replay."""

    def sockets(self) -> Iterable[SocketSpec]:
        return (Subscribe("test.events"), Connect("test.replay"), Serve("follower.query"))

    def started(self) -> None:
        self.seq = 0
        self.replay_failures = 0
        self.replaying = False
        self.schedule(0.2, _CatchUp())

    @handles(_CatchUp)
    def on_catch_up(self, tick: _CatchUp, inbound: Inbound | None) -> None:
        self._ask_replay()
        self.schedule(0.2, _CatchUp())

    @handles(SequencedEvent, on="test.events")
    def on_event(self, event: SequencedEvent, inbound: Inbound | None) -> None:
        if event.seq == self.seq + 1:
            self.seq = event.seq
        elif event.seq > self.seq + 1:
            self._ask_replay()

    def _ask_replay(self) -> None:
        if self.replaying:
            return
        self.replaying = True
        self.request(
            "test.replay",
            ReplayEvents(
                correlation_id=self.next_correlation_id(),
                from_seq=self.seq + 1,
                to_seq=None,
                max_events=1000,
            ),
            on_reply=self._replayed,
            on_failure=self._replay_failed,
        )

    def _replayed(self, batch: EventBatch) -> None:
        self.replaying = False
        for event in batch.events:
            if event.seq == self.seq + 1:
                self.seq = event.seq

    def _replay_failed(self, failure: RequestFailed) -> None:
        self.replaying = False
        self.replay_failures += 1

    @handles(GetPortfolioState, on="follower.query")
    def on_state(self, request: GetPortfolioState, inbound: Inbound | None) -> PortfolioState:
        return _state(request.correlation_id, self.seq)

    @handles(ReplayEvents, on="follower.query")
    def on_forget(self, request: ReplayEvents, inbound: Inbound | None) -> PortfolioState:
        """Tests use this to make the follower lose events from `from_seq` on (a gap)."""
        self.seq = request.from_seq - 1
        return _state(request.correlation_id, self.seq)


class FeederActor(ServiceActor):
    """Forwards each ExecutionReport it is given to `test.ingest` over the reliable channel."""

    def sockets(self) -> Iterable[SocketSpec]:
        return (Connect("test.ingest"), Serve("feeder.control"))

    def started(self) -> None:
        self.acknowledged_count = 0

    @handles(ExecutionReport, on="feeder.control")
    def on_report(self, report: ExecutionReport, inbound: Inbound | None) -> Acknowledgement:
        self.send_reliable("test.ingest", report)
        return Acknowledgement(key=report.exec_id, seq=None, duplicate=False)

    def acknowledged(self, endpoint: str, ack: Acknowledgement, message: object) -> None:
        self.acknowledged_count += 1

    @handles(GetPortfolioState, on="feeder.control")
    def on_state(self, request: GetPortfolioState, inbound: Inbound | None) -> PortfolioState:
        # seq carries how many reliable sends are acknowledged; equity how many still wait
        state = _state(request.correlation_id, self.acknowledged_count)
        return state


class CrashOnStartActor(ServiceActor):
    """Ends its process as soon as it starts: a child that keeps crashing."""

    def started(self) -> None:
        os._exit(17)
