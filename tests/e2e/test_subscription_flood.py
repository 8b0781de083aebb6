"""A flood of subscriptions on a publishing endpoint, through the real group on paper.

Each distinct subscription topic used to be kept by the publisher's socket for as long as
the subscriber stayed (and its memory was never given back): 20,000 random topics took the
journal process from about 50 MB to over 300 MB. The memory a subscriber can cost is now
bounded, and the group's folds keep following the journal through and after the flood.
"""

from __future__ import annotations

import os
from pathlib import Path

import zmq

from actors.runtime.client import RequestClient
from messages import EventBatch, GetProcessHealth, Pong, ReplayEvents
from service.config import load_config
from tests.support.group import RunningGroup, group_pids, wait_for
from tests.support.shipped import shipped_config, status

FLOOD = 20_000
TOPIC_BYTES = 200
GROWTH_BOUND_KB = 30 * 1024  # generous: the unbounded growth was about 270 MB


def rss_kb(pid: int) -> int:
    """The resident memory of process `pid`, from /proc/PID/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def process_pid(config_path: Path, process: str) -> int:
    """The pid of the group's child that hosts `process`."""
    for pid in group_pids(str(config_path)):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"host" in argv and process.encode() in argv:
            return pid
    raise AssertionError(f"no process {process} in the group")


def journal_pong(config_path: Path) -> Pong | None:
    """The journal actor's Pong, through its process's control endpoint (None: no answer)."""
    config = load_config(config_path)
    context = zmq.Context()
    try:
        with RequestClient(
            context, "control", config.control_endpoint("journal"), config.transport, retries=0
        ) as client:
            health = client.request(GetProcessHealth(correlation_id=client.new_correlation_id()))
    except Exception:
        return None
    finally:
        context.destroy(linger=0)
    return next((pong for pong in health.actors if pong.actor == "journal"), None)


def books_at(path: Path, seq: int) -> dict | None:
    """`status --json` once the books have folded the journal up to `seq` (else None)."""
    state = status(path)
    return state if "error" not in state and state.get("seq", 0) >= seq else None


def journal_head(config_path: Path) -> int:
    """The journal's last seq, asked on journal.replay."""
    config = load_config(config_path)
    context = zmq.Context()
    try:
        with RequestClient(
            context, "journal.replay", config.endpoints["journal.replay"], config.transport
        ) as client:
            batch = client.request(
                ReplayEvents(
                    correlation_id=client.new_correlation_id(), from_seq=1, to_seq=1, max_events=1
                )
            )
    finally:
        context.destroy(linger=0)
    assert isinstance(batch, EventBatch)
    return batch.head_seq


def test_a_subscription_flood_on_journal_events_costs_the_journal_bounded_memory(tmp_path):
    path = shipped_config(
        tmp_path,
        execution={"order_interval_seconds": 0.5, "poll_interval_seconds": 0.2},
    )
    group = RunningGroup(path)
    context = zmq.Context()
    try:
        group.wait_ready()
        first = wait_for(lambda: books_at(path, 1), timeout=60, interval=0.2)
        journal = process_pid(path, "journal")
        before = rss_kb(journal)

        address = load_config(path).endpoints["journal.events"]
        flooders: list[zmq.Socket] = []

        def flooded() -> bool:
            """Send another thousand distinct subscriptions, from a new peer, until the
            journal has read as many as the flood (or has grown past the bound)."""
            if rss_kb(journal) - before > GROWTH_BOUND_KB:
                return True
            pong = journal_pong(path)
            if pong is not None and pong.counters.get("subscriptions", 0) >= FLOOD:
                return True
            flood = context.socket(zmq.XSUB)
            flood.setsockopt(zmq.LINGER, 0)
            flood.setsockopt(zmq.SNDHWM, 0)  # nothing of the flood is dropped on this side
            flood.connect(address)
            for _ in range(1000):
                flood.send(b"\x01" + os.urandom(TOPIC_BYTES))
            flooders.append(flood)
            if len(flooders) > 2:
                flooders.pop(0).close(0)
            return False

        wait_for(flooded, timeout=120, interval=0.05)
        during = rss_kb(journal)
        for flood in flooders:
            flood.close(0)

        # The group's subscribers kept following the journal: the books fold every event
        # it journaled, those of the flood's time included.
        head = journal_head(path)
        assert head > first["seq"]
        wait_for(lambda: books_at(path, head), timeout=90, interval=0.2)
        after = rss_kb(journal)
        assert process_pid(path, "journal") == journal, "the journal process was restarted"
        assert during - before < GROWTH_BOUND_KB, (before, during)
        assert after - before < GROWTH_BOUND_KB, (before, after)
        pong = journal_pong(path)
        assert pong is not None and pong.counters["subscription_resets"] >= 1
    finally:
        context.destroy(linger=0)
        assert group.stop() == 0
    assert group_pids(str(path)) == []
