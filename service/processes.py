"""The group's processes: the run directory they share (private, locked by one runner), the
command line of each child, the wait until every actor answers, and the paper exchange's own
process. runner.py and the console's commands start the group with these.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path

import zmq
from loguru import logger

from actors.runtime.actor import RequestFailed
from actors.runtime.client import RemoteError, RequestClient
from actors.runtime.logs import configure_logging
from actors.runtime.stop_flag import StopFlag
from actors.runtime.supervisor import GroupFailed, Supervisor
from kraken.pid_lock import LockHeld, PidLock
from messages import GetProcessHealth, ProcessHealth
from service.config import ServiceConfig

RUNNER = Path(__file__).resolve().parents[1] / "runner.py"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
PRIVATE_UMASK = 0o077
"""Everything the runner and its processes create is the user's only: 0700 / 0600."""
RUN_LOCK_NAME = "runner.lock"
_LOCK_POLL_SECONDS = 0.05
LOCK_GRACE_SECONDS = 5.0


class RunDirError(RuntimeError):
    """The run directory cannot be made private, or another group holds it."""


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run directory 0700, or make an existing one 0700."""
    try:
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(run_dir, 0o700)
    except OSError as exc:
        raise RunDirError(
            f"service.run_dir {run_dir}: cannot make it private (0700): {exc.strerror or exc}"
        ) from None


def _is_running(pid: int) -> bool:
    """True while `pid` is a live process (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def lock_run_dir(run_dir: Path, wait_seconds: float) -> PidLock:
    """Hold the run directory's lock for one group; raise RunDirError if another has it.

    A live runner holding it is refused at once. A lock whose runner is gone is still held by
    that group's processes while they stop (they keep it until they exit, and exit when their
    runner dies): it is waited for, up to `wait_seconds`.
    """
    path = run_dir / RUN_LOCK_NAME
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return PidLock.acquire(path)
        except LockHeld as held:
            if held.pid is not None and _is_running(held.pid):
                raise RunDirError(
                    f"service.run_dir {run_dir}: another group runs there (runner pid "
                    f"{held.pid}); stop it, or give this group its own run_dir"
                ) from None
            if time.monotonic() > deadline:
                raise RunDirError(
                    f"service.run_dir {run_dir}: still locked by the processes of a group whose "
                    f"runner (pid {held.pid}) is gone; they did not exit within {wait_seconds:g} s"
                ) from None
        except OSError as exc:
            raise RunDirError(f"service.run_dir {run_dir}: cannot lock {path}: {exc}") from None
        time.sleep(_LOCK_POLL_SECONDS)  # flock has no timed wait; bounded by `deadline`


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_argv(config_path: Path, *command: str) -> list[str]:
    return [sys.executable, str(RUNNER), "--config", str(config_path), *command]


def process_health(
    context: zmq.Context, config: ServiceConfig, process: str, timeout_ms: int
) -> ProcessHealth:
    with RequestClient(
        context,
        f"{process}.control",
        config.control_endpoint(process),
        config.transport,
        timeout_ms=timeout_ms,
        retries=0,
    ) as client:
        answer = client.request(GetProcessHealth(correlation_id=client.new_correlation_id()))
    if not isinstance(answer, ProcessHealth):
        raise RequestFailed(f"{process}.control", GetProcessHealth(correlation_id="?"), 1, 0)
    return answer


def wait_until_every_actor_answers(
    context: zmq.Context, config: ServiceConfig, supervisor: Supervisor, deadline: float
) -> None:
    for process in config.processes:
        while True:
            try:
                health = process_health(context, config, process, timeout_ms=1000)
                if health.ready and len(health.actors) == len(config.processes[process].actors):
                    break
            except (RequestFailed, RemoteError):
                pass
            child = supervisor.child(process)
            if child.process is not None and child.process.poll() is not None:
                raise GroupFailed(f"process {process} exited while the group was starting")
            if time.monotonic() > deadline:
                raise GroupFailed(f"process {process}: not every actor answered a ping in time")
            time.sleep(0.05)  # poll interval of a readiness loop bounded by `deadline`


def serve_paper_exchange(
    config: ServiceConfig, port: int | None, standalone: bool = True, parent: int | None = None
) -> int:
    """Run the paper exchange alone; print one JSON line with its url, key and secret.

    Refused (one line) while another paper exchange has the state file open. Started by the
    runner (not `standalone`), the JSON line alone says why: the runner reports it."""
    from actors.runtime.host import parent_gone
    from kraken.paper.server import PaperExchangeServer
    from kraken.paper.store import StateFileInUse

    settings = config.exchange.paper
    if port is not None:
        settings = replace(settings, port=port)

    def refuse(message: str) -> int:
        print(json.dumps({"error": message}), flush=True)
        if standalone:
            print(f"error: {message}", file=sys.stderr, flush=True)
        return EXIT_FAILED

    try:
        prepare_run_dir(config.run_dir)
    except RunDirError as exc:
        return refuse(str(exc))
    configure_logging(
        process="paper-exchange",
        level=config.service.log_level,
        log_dir=config.run_dir / "logs",
        rotation_bytes=config.service.log_rotation_bytes,
        retention_files=config.service.log_retention_files,
    )
    stop = StopFlag()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop.handler)
    try:
        server = PaperExchangeServer(settings)
    except StateFileInUse as exc:
        return refuse(f"exchange.paper.state_file: {exc}")
    try:
        server.start()
    except OSError as exc:
        server.stop()
        return refuse(
            f"paper exchange cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        )
    try:
        line = {"url": server.url, "key": server.key, "secret": server.secret}
        print(json.dumps(line), flush=True)
        while not stop.wait(0.2):
            if parent_gone(parent):
                logger.warning("the runner (pid {}) is gone; stopping", parent)
                break
    finally:
        server.stop()
    return EXIT_OK
