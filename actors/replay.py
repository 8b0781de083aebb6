"""`runner.py replay FILE`: a file's events through the service's own actors, in one process.

The journal, cash, positions and portfolio actors run together on inproc endpoints, with
their databases in a temporary folder. Opening balances (`--balance USD=10000`) go in first
as transfers, then every event of the file in order; the answer is the portfolio state once
it reflects the last event. Prices in the file (`PriceMark`) are read but not yet used for
valuation.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import zmq

from actors.config import ProcessSettings, ServiceConfig
from actors.runtime.client import RemoteError, RequestClient
from actors.runtime.host import ActorHost
from messages import (
    DeliveryRefused,
    ErrorReply,
    ExecutionReport,
    GetPortfolioState,
    PortfolioState,
    Transfer,
)
from messages.base import Message

REPLAY_ACTORS = ("journal", "cash", "positions", "portfolio")
REPLAY_ENDPOINTS = (
    "journal.ingest",
    "journal.events",
    "journal.replay",
    "cash.events",
    "cash.query",
    "positions.events",
    "positions.query",
    "portfolio.query",
)


class ReplayFailed(RuntimeError):
    """The replay could not complete; the message says which event and why."""


def replay_config(config: ServiceConfig, folder: Path) -> ServiceConfig:
    """`config` with the books actors in one process, on inproc endpoints, under `folder`."""
    return replace(
        config,
        service=replace(config.service, run_dir=folder),
        processes={"replay": ProcessSettings(actors=REPLAY_ACTORS)},
        endpoints={name: f"inproc://replay-{name}" for name in REPLAY_ENDPOINTS},
        journal=replace(config.journal, database=folder / "journal.sqlite", synchronous="NORMAL"),
    )


def opening_transfers(balances: list[tuple[str, Decimal]], ts_ns: int) -> list[Transfer]:
    """One deposit per `--balance` option, stamped before the file's first event."""
    return [
        Transfer(
            transfer_id=f"opening-balance-{asset}",
            asset=asset,
            amount=amount,
            ts_event=ts_ns,
            ts_init=ts_ns,
        )
        for asset, amount in balances
        if amount != 0
    ]


def run_replay(
    config: ServiceConfig,
    messages: list[Message],
    balances: list[tuple[str, Decimal]],
    *,
    timeout_seconds: float = 120.0,
) -> PortfolioState:
    """Feed the events through the actors; the portfolio state after the last one."""
    events = [m for m in messages if isinstance(m, ExecutionReport | Transfer)]
    first_ts = min((e.ts_event for e in events), default=0)
    events = [*opening_transfers(balances, max(0, first_ts - 1)), *events]
    with tempfile.TemporaryDirectory(prefix="replay-") as folder:
        settings = replay_config(config, Path(folder))
        context = zmq.Context()
        host = ActorHost(settings, "replay", context=context)
        host.start()
        try:
            head = _ingest(context, settings, events)
            return _state_at(context, settings, head, time.monotonic() + timeout_seconds)
        finally:
            host.stop()
            context.destroy(linger=0)


def _ingest(context: zmq.Context, config: ServiceConfig, events: list[Message]) -> int:
    head = 0
    address = config.endpoints["journal.ingest"]
    with RequestClient(context, "journal.ingest", address, config.transport) as journal:
        for number, event in enumerate(events, 1):
            answer = journal.request(event, raise_on_error=False)
            if isinstance(answer, DeliveryRefused | ErrorReply):
                detail = answer.reason if isinstance(answer, DeliveryRefused) else answer.detail
                raise ReplayFailed(f"event {number} ({type(event).__name__}) refused: {detail}")
            head = max(head, answer.seq or 0)
    return head


def _state_at(
    context: zmq.Context, config: ServiceConfig, head: int, deadline: float
) -> PortfolioState:
    address = config.endpoints["portfolio.query"]
    with RequestClient(context, "portfolio.query", address, config.transport) as portfolio:
        while True:
            try:
                state = portfolio.request(GetPortfolioState(correlation_id="replay"))
            except RemoteError:
                state = None  # still catching up
            if isinstance(state, PortfolioState) and state.seq >= head:
                return state
            if time.monotonic() > deadline:
                raise ReplayFailed(f"the books did not reach seq {head} in time")
            time.sleep(0.01)  # poll interval, bounded by the deadline
