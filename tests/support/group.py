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

import yaml
import zmq

from actors.runtime.client import RequestClient
from messages import GetProcessHealth
from service import group
from service.config import load_config
from service.group import ROOT, RUNNER, GroupNotReady, RunningGroup, group_pids

__all__ = [
    "ROOT",
    "RUNNER",
    "TEST_ACTOR_CLASSES",
    "GroupNotReady",
    "RunningGroup",
    "edit_config",
    "group_pids",
    "health",
    "ipc_endpoints",
    "one_error_line",
    "run_runner",
    "two_process_config",
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


def edit_config(path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Change the config file at `path` in place: `edit` changes its parsed content."""
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def ipc_endpoints(tmp_path) -> dict[str, str]:
    """The test actors' endpoints, on ipc sockets in the run directory under `tmp_path`."""
    run = tmp_path / "run"
    names = ("test.ingest", "test.events", "follower.query", "feeder.control")
    return {name: f"ipc://{run}/{name}.sock" for name in names} | {
        "test.replay": f"ipc://{run}/test.ingest.sock"
    }


def two_process_config(tmp_path, **kwargs) -> Path:
    """`write_config` of the test actors in two processes: books (ingest), edge (the others)."""
    return write_config(
        tmp_path,
        processes={"books": ["ingest"], "edge": ["follower", "feeder"]},
        endpoints=ipc_endpoints(tmp_path),
        **kwargs,
    )


def health(config_path, process: str):
    """The `ProcessHealth` the running `process` of the group at `config_path` answers."""
    config = load_config(config_path)
    context = zmq.Context()
    try:
        with RequestClient(
            context, "control", config.control_endpoint(process), config.transport, retries=0
        ) as client:
            return client.request(GetProcessHealth(correlation_id=client.new_correlation_id()))
    finally:
        context.destroy(linger=0)


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
