"""Start the real process group from a script: write a config.yaml for a placement, run
runner.py on it as a subprocess, wait for its ready line, and stop it with everything it
started. The tests (tests/support/group.py) and the benchmarks (bench/) both use it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "runner.py"


def write_config(
    directory: Path,
    *,
    processes: Mapping[str, list[str]],
    endpoints: Mapping[str, str],
    exchange_mode: str = "live",
    extra: Mapping[str, Any] | None = None,
    cpus: Mapping[str, list[int]] | None = None,
    actor_classes: Mapping[str, str] | None = None,
) -> Path:
    """A config.yaml in `directory` with the given placement (`cpus` pins processes by
    name, `actor_classes` adds actors by name); returns its path."""
    config: dict[str, Any] = {
        "service": {"run_dir": str(directory / "run"), "log_level": "DEBUG"},
        "transport": {"request_timeout_ms": 500, "request_retries": 2, "reliable_resend_ms": 300},
        "supervisor": {
            "ready_timeout_seconds": 20,
            "stop_timeout_seconds": 5,
            "restart_backoff_initial_seconds": 0.1,
            "restart_backoff_max_seconds": 0.5,
            "max_restarts": 3,
            "restart_window_seconds": 30,
        },
        "processes": {
            name: {"actors": actors} | ({"cpus": cpus[name]} if cpus and name in cpus else {})
            for name, actors in processes.items()
        },
        "endpoints": dict(endpoints),
        "actor_classes": dict(actor_classes or {}),
        "exchange": {"mode": exchange_mode},
        "metrics": {"port": 0},  # a free port: groups of consecutive tests never collide
    }
    for section, values in (extra or {}).items():
        if isinstance(values, Mapping) and isinstance(config.get(section), dict):
            config[section].update(values)
        else:
            config[section] = values
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def group_pids(marker: str) -> list[int]:
    """Pids of live processes whose command line contains `marker` (e.g. the config path)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker in cmdline and state != "Z" and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


class GroupNotReady(AssertionError):
    """The runner ended or overstayed without its ready line (an AssertionError, so that a
    test reports it as the failure it is)."""


def read_ready_line(process: subprocess.Popen, timeout: float) -> dict | None:
    """The JSON of the `ready {...}` line a runner.py started with a text stdout pipe prints,
    read within `timeout` seconds; None if it ended its output or the time ran out first."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            line = process.stdout.readline()
            if not line:
                return None
            if line.startswith("ready "):
                return json.loads(line[len("ready ") :])
    finally:
        selector.close()
    return None


class RunningGroup:
    """runner.py started as a subprocess; reads its ready line; always stopped in teardown."""

    def __init__(self, config_path: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.config_path = config_path
        # stderr goes to a file: a pipe nobody reads would fill up and block the runner
        self.stderr_path = Path(config_path).parent / f"runner-{time.monotonic_ns()}.stderr"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(RUNNER), "--config", str(config_path), *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=ROOT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.ready: dict | None = None

    def wait_ready(self, timeout: float = 30.0) -> dict:
        """Block until the ready line (with a deadline); return its JSON."""
        self.ready = read_ready_line(self.process, timeout)
        if self.ready is not None:
            return self.ready
        self.stop()
        raise GroupNotReady(f"runner did not say ready; stderr:\n{self.stderr_text()}")

    def stderr_text(self) -> str:
        """What the runner wrote on stderr so far."""
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the runner and wait for it; kill it if it overstays."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for pid in group_pids(str(self.config_path)):
            os.kill(pid, signal.SIGKILL)
        self._stderr.close()
        return self.process.returncode
