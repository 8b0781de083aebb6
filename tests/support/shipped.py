"""The shipped config.yaml as a user runs it: its config written under a test's folder, the
runner's `status`, the paper exchange's admin interface, and a started group to talk to.

`write_config` (tests/support/group.py) writes a group of test actors; `shipped_config` here
writes the shipped layout, every process and actor of config.yaml, with sections changed.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
import zmq

from actors.runtime.actor import RequestFailed
from actors.runtime.client import RemoteError, RequestClient
from messages import (
    Acknowledgement,
    EventBatch,
    GetPortfolioState,
    GetProcessHealth,
    Pong,
    PortfolioState,
    ProcessHealth,
    ReplayEvents,
    Transfer,
    decode,
)
from messages.base import Message
from service.config import ServiceConfig, load_config
from tests.support.factories import transfer
from tests.support.group import ROOT, RunningGroup, group_pids, run_runner, wait_for

REPLY_TIMEOUT_MS = 5000


def shipped_config(
    directory: Path,
    processes: dict[str, list[str]] | None = None,
    *,
    log_level: str = "DEBUG",
    **changes: Any,
) -> Path:
    """The shipped config.yaml with its run directory under `directory`, sections changed
    (a section given as a dict updates the shipped one), optionally only some of its
    processes; returns its path."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["service"]["run_dir"] = str(directory / "run")
    if processes is not None:
        config["processes"] = {name: {"actors": actors} for name, actors in processes.items()}
    config["service"]["log_level"] = log_level
    config["metrics"]["port"] = 0  # a free port: groups of consecutive tests never collide
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section].update(values)
        else:
            config[section] = values
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def still_prices(config: dict[str, Any]) -> None:
    """`edit_config`'s edit for a paper exchange whose prices move only when a test says."""
    config["exchange"]["paper"]["volatility_bps"] = 0


def status(path) -> dict:
    return json.loads(run_runner(path, "status", "--json", timeout=30).stdout)


def admin(url: str, what: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/admin/{what}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def admin_state(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/admin/state", timeout=10) as answer:
        return json.loads(answer.read())


def wait_portfolio(path, predicate, timeout=30.0) -> dict:
    """`status --json` once `predicate` holds (polled, with a deadline)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = status(path)
        if last and "error" not in last and predicate(last):
            return last
        time.sleep(0.1)  # poll interval, bounded by the deadline
    raise AssertionError(f"portfolio never satisfied the condition; last: {last}")


_deposit_numbers = itertools.count(1)


def deposit(amount: str = "1000") -> Transfer:
    """A USD deposit with an id of its own (a journal takes each id once)."""
    n = next(_deposit_numbers)
    return transfer(n=n, transfer_id=f"L{n:05d}-MALFORMED-TEST", amount=amount)


@dataclass
class ShippedGroup:
    """A running group, its config, and the test's ZeroMQ context."""

    config: ServiceConfig
    context: zmq.Context

    def client(self, endpoint: str) -> RequestClient:
        return RequestClient(
            self.context,
            endpoint,
            self.config.endpoints[endpoint],
            self.config.transport,
            timeout_ms=REPLY_TIMEOUT_MS,
            retries=0,
        )

    def head(self) -> int:
        """The journal's head seq once the portfolio has caught up with it."""
        return self.portfolio_at(self.journal_head()).seq

    def send_raw(
        self, endpoint: str, frame: bytes, timeout_ms: int = REPLY_TIMEOUT_MS
    ) -> Message | None:
        """Send one frame as a request; the decoded answer, or None if none came in time."""
        sock = self.context.socket(zmq.DEALER)
        sock.linger = 0
        try:
            sock.connect(self.config.endpoints[endpoint])
            sock.send_multipart([b"", frame])
            if not sock.poll(timeout_ms, zmq.POLLIN):
                return None
            return decode(sock.recv_multipart()[-1])
        finally:
            sock.close(linger=0)

    def pong(self, process: str, actor: str) -> Pong:
        """The actor's counters, through its process's control endpoint."""
        with RequestClient(
            self.context,
            f"{process}.control",
            self.config.control_endpoint(process),
            self.config.transport,
            timeout_ms=REPLY_TIMEOUT_MS,
            retries=1,
        ) as control:
            health = control.request(GetProcessHealth(correlation_id="malformed-test-health"))
        assert isinstance(health, ProcessHealth) and health.ready
        return next(pong for pong in health.actors if pong.actor == actor)

    def portfolio(self) -> PortfolioState | None:
        with self.client("portfolio.query") as portfolio:
            try:
                state = portfolio.request(GetPortfolioState(correlation_id="malformed-test"))
            except (RequestFailed, RemoteError):
                return None  # still catching up
        assert isinstance(state, PortfolioState)
        return state

    def portfolio_at(self, seq: int) -> PortfolioState:
        def reached() -> PortfolioState | None:
            state = self.portfolio()
            return state if state is not None and state.seq >= seq else None

        return wait_for(reached, timeout=20, interval=0.05)

    def journal_head(self) -> int:
        """The journal's committed head seq (a replay of no events: to_seq 0)."""
        with self.client("journal.replay") as journal:
            batch = journal.request(
                ReplayEvents(
                    correlation_id="malformed-test-head", from_seq=1, to_seq=0, max_events=1
                )
            )
        assert isinstance(batch, EventBatch)
        return batch.head_seq

    def assert_books_keep_serving(self) -> None:
        """A deposit is journaled and shows in the portfolio, exactly once, at its seq."""
        before = self.portfolio_at(self.journal_head())
        money = deposit("1234.5")
        with self.client("journal.ingest") as journal:
            ack = journal.request(money)
        assert isinstance(ack, Acknowledgement) and not ack.duplicate
        assert ack.seq == before.seq + 1
        after = self.portfolio_at(ack.seq)
        assert after.seq == ack.seq
        assert after.cash["USD"] == before.cash.get("USD", Decimal(0)) + Decimal("1234.5")
        assert after.positions == before.positions


def started_group(path: Path) -> Iterator[ShippedGroup]:
    """Start the group of `path`, yield it once ready, then stop it and check that no process
    of it is left."""
    running = RunningGroup(path)
    started: ShippedGroup | None = None
    try:
        running.wait_ready(timeout=40)
        started = ShippedGroup(load_config(path), zmq.Context())
        yield started
    finally:
        if started is not None:
            started.context.destroy(linger=0)
        assert running.stop() == 0, "the group did not stop cleanly"
        assert group_pids(str(path)) == [], "a process of the group outlived the test"
