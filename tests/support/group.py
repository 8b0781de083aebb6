"""Helpers to write a test config and to run runner.py as a real process group.

Starting the group is service/group.py's (the benchmarks use it too); this adds the test
actors to every config and the helpers only tests need.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from service import group
from service.group import ROOT, RUNNER, GroupNotReady, RunningGroup, group_pids

__all__ = [
    "ROOT",
    "RUNNER",
    "TEST_ACTOR_CLASSES",
    "GroupNotReady",
    "RunningGroup",
    "group_pids",
    "one_error_line",
    "run_runner",
    "wait_for",
    "write_config",
]

TEST_ACTOR_CLASSES = {
    "ingest": "tests.support.actors:IngestActor",
    "follower": "tests.support.actors:FollowerActor",
    "feeder": "tests.support.actors:FeederActor",
    "crasher": "tests.support.actors:CrashOnStartActor",
}


def write_config(
    directory: Path,
    *,
    processes: Mapping[str, list[str]],
    endpoints: Mapping[str, str],
    exchange_mode: str = "live",
    extra: Mapping[str, Any] | None = None,
    cpus: Mapping[str, list[int]] | None = None,
) -> Path:
    """`service.group.write_config` with the test actors (TEST_ACTOR_CLASSES) known."""
    return group.write_config(
        directory,
        processes=processes,
        endpoints=endpoints,
        exchange_mode=exchange_mode,
        extra=extra,
        cpus=cpus,
        actor_classes=TEST_ACTOR_CLASSES,
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


def run_runner(config_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`runner.py --config config_path ARGS` to its end (at most `timeout` s), output captured."""
    return subprocess.run(
        [sys.executable, str(RUNNER), "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single `error:` line a runner that could not start printed (asserts it is one)."""
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]
