"""The runner's supervisor: starts the group's processes, watches them, stops them.

Each child is started with its stdout as a pipe and says one JSON line when it is up
(`{"ready": ...}` or `{"error": "..."}`). A child that exits on its own is restarted after a
backoff that doubles up to a cap, and starts again from the first delay once the child has run
`restart_backoff_reset_seconds` without crashing; more than `max_restarts` exits within
`restart_window_seconds` stop the whole group with a clear message. A child that cannot start
as configured (exit code 3, or an `error` line) stops the group at once: retrying a port in
use or a bad setting does not help. So does a running child that says a later `error` line
(an actor that cannot go on, e.g. its journal's file is gone): restarting it would not help.
Stopping goes in reverse start order, SIGTERM first, SIGKILL for stragglers past the deadline.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loguru import logger

from actors.runtime.settings import SupervisorSettings
from actors.runtime.stop_flag import StopFlag

EXIT_STARTUP_FAILED = 3


class GroupFailed(RuntimeError):
    """The group cannot run: a process cannot start, or keeps crashing."""


@dataclass
class ChildSpec:
    """How to start one process of the group."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    """Send the child's stderr nowhere (its log file has everything): the live view owns the
    terminal."""
    pass_fds: tuple[int, ...] = ()
    """Descriptors the child keeps open (the run directory's lock)."""


class RestartBackoff:
    """The restart delays of one process, on an injected clock (monotonic seconds).

    `started()` when the process starts; `crashed()` when it exits unexpectedly, for the
    delay before the next start: the first delay for a first crash and for a crash after a
    stable run (`restart_backoff_reset_seconds` or longer since `started()`), else twice the
    previous delay, up to `restart_backoff_max_seconds`.
    """

    def __init__(self, settings: SupervisorSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._started_at = clock()
        self.delay = 0.0
        """The last delay given (0 before the first crash)."""
        self.ran_seconds = 0.0
        """How long the process ran before its last crash."""

    def started(self) -> None:
        """The process has just been started."""
        self._started_at = self._clock()

    def crashed(self) -> float:
        """The process exited unexpectedly: the delay before starting it again."""
        settings = self._settings
        self.ran_seconds = self._clock() - self._started_at
        if self.delay <= 0 or self.ran_seconds >= settings.restart_backoff_reset_seconds:
            self.delay = settings.restart_backoff_initial_seconds
        else:
            self.delay = min(self.delay * 2, settings.restart_backoff_max_seconds)
        return self.delay


def describe_exit(returncode: int) -> str:
    """'exit code 1' or 'killed by SIGKILL'."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class _Child:
    def __init__(self, spec: ChildSpec, backoff: RestartBackoff) -> None:
        self.spec = spec
        self.process: subprocess.Popen | None = None
        self.ready_line: dict | None = None
        self.refusal: str | None = None
        self.exits: deque[float] = deque()
        self.restart_at: float | None = None
        self.backoff = backoff
        self.restarts = 0
        self._buffer = b""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        env = dict(os.environ)
        env.update(self.spec.env)
        self.ready_line = None
        self.refusal = None
        self._buffer = b""
        self.process = subprocess.Popen(
            list(self.spec.argv),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if self.spec.quiet else None,
            env=env,
            pass_fds=self.spec.pass_fds,
        )
        self.backoff.started()
        logger.info("started process {} (pid {})", self.spec.name, self.process.pid)

    def read_ready_line(self) -> None:
        """Consume what the child wrote to stdout; parse its first line, and the `error` of
        a later one (the child cannot go on: `refusal`)."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while True:
            readable, _, _ = select.select([fd], [], [], 0)
            if not readable:
                return
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            self._buffer = (self._buffer + chunk)[-65536:]  # lines are short; keep it bounded
            while b"\n" in self._buffer:
                line, _, self._buffer = self._buffer.partition(b"\n")
                try:
                    parsed = json.loads(line)
                except ValueError:
                    parsed = {"error": f"unexpected startup line {line[:200]!r}"}
                if not isinstance(parsed, dict):
                    parsed = {"error": repr(parsed)}
                if self.ready_line is None:
                    self.ready_line = parsed
                elif "error" in parsed and self.refusal is None:
                    self.refusal = str(parsed["error"])

    def stdout_fd(self) -> int | None:
        if self.process is None or self.process.stdout is None or self.process.stdout.closed:
            return None
        return self.process.stdout.fileno()

    def close_pipe(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


class Supervisor:
    """Starts children in order, restarts crashed ones, stops all in reverse order."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        settings: SupervisorSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._children = [_Child(spec, RestartBackoff(settings, clock)) for spec in specs]
        self._settings = settings
        self._clock = clock
        self._stop = StopFlag()  # set from signal handlers: no lock
        self.failure: str | None = None

    @property
    def children(self) -> list[_Child]:
        return self._children

    def request_stop(self) -> None:
        """Ask `run` to return (safe from a signal handler)."""
        self._stop.set()

    def child(self, name: str) -> _Child:
        return next(c for c in self._children if c.spec.name == name)

    def start_one(self, name: str, deadline_seconds: float) -> dict:
        """Start `name` and wait for its startup line; raise GroupFailed if it cannot start.

        A child that crashes before it is ready is restarted with backoff like any crash.
        """
        child = self.child(name)
        deadline = self._clock() + deadline_seconds
        while True:
            child.spawn()
            while child.ready_line is None:
                fd = child.stdout_fd()
                if fd is None:
                    break
                select.select([fd], [], [], max(0.0, min(0.1, deadline - self._clock())))
                child.read_ready_line()
                if child.ready_line is None and child.process.poll() is not None:
                    child.read_ready_line()
                    break
                if self._stop.is_set():
                    raise GroupFailed("stopped while starting")
                if self._clock() > deadline:
                    raise GroupFailed(f"process {name} did not start within {deadline_seconds} s")
            line = child.ready_line
            if line is not None:
                if "error" in line:
                    raise GroupFailed(f"process {name} could not start: {line['error']}")
                return line
            code = child.process.wait()
            child.close_pipe()
            if code == EXIT_STARTUP_FAILED:
                raise GroupFailed(f"process {name} could not start ({describe_exit(code)})")
            backoff = self._record_crash(child, describe_exit(code))
            if self._stop.wait(backoff):
                raise GroupFailed("stopped while starting")
            if self._clock() > deadline:
                raise GroupFailed(f"process {name} did not start within {deadline_seconds} s")

    def _record_crash(self, child: _Child, reason: str) -> float:
        """Count an unexpected exit; raise GroupFailed past the limit; return the backoff."""
        now = self._clock()
        window = self._settings.restart_window_seconds
        child.exits.append(now)
        while child.exits and now - child.exits[0] > window:
            child.exits.popleft()
        if len(child.exits) > self._settings.max_restarts:
            raise GroupFailed(
                f"process {child.spec.name} crashed {len(child.exits)} times within "
                f"{window:g} s (last: {reason}); stopping the group"
            )
        delay = child.backoff.crashed()
        logger.warning(
            "process {} stopped unexpectedly ({}) after {:.1f} s; restarting in {:.1f} s",
            child.spec.name,
            reason,
            child.backoff.ran_seconds,
            delay,
        )
        return delay

    def watch(self, until: float | None, on_tick: Callable[[], None] | None = None) -> None:
        """Supervise until stop is requested, `until` (monotonic) passes, or the group fails."""
        while not self._stop.is_set():
            now = self._clock()
            if until is not None and now >= until:
                return
            fds = [fd for c in self._children if (fd := c.stdout_fd()) is not None and c.running]
            if fds:
                select.select(fds, [], [], 0.1)
            else:
                self._stop.wait(0.1)
            for child in self._children:
                self._check(child)
            if on_tick is not None:
                on_tick()

    def _check(self, child: _Child) -> None:
        now = self._clock()
        if child.process is None:
            return
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                child.spawn()
            return
        child.read_ready_line()
        code = child.process.poll()
        if child.refusal is not None:
            raise GroupFailed(f"process {child.spec.name} stopped: {child.refusal}")
        if code is None:
            if child.ready_line and "error" in child.ready_line:
                raise GroupFailed(f"process {child.spec.name}: {child.ready_line['error']}")
            return
        child.read_ready_line()  # what it said just before it exited
        child.close_pipe()
        if child.refusal is not None:
            raise GroupFailed(f"process {child.spec.name} stopped: {child.refusal}")
        reason = describe_exit(code)
        if code == EXIT_STARTUP_FAILED or (child.ready_line and "error" in child.ready_line):
            detail = (child.ready_line or {}).get("error", reason)
            raise GroupFailed(f"process {child.spec.name} could not start: {detail}")
        child.restart_at = now + self._record_crash(child, reason)

    def stop_all(self) -> None:
        """SIGTERM each running child in reverse order within the deadline; SIGKILL the rest."""
        deadline = self._clock() + self._settings.stop_timeout_seconds
        for child in reversed(self._children):
            process = child.process
            child.restart_at = None
            if process is None or process.poll() is not None:
                continue
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                continue
            left = max(0.05, deadline - self._clock())
            try:
                process.wait(timeout=left)
                logger.info(
                    "process {} stopped ({})", child.spec.name, describe_exit(process.returncode)
                )
            except subprocess.TimeoutExpired:
                logger.warning("process {} did not stop in time; killing it", child.spec.name)
                process.kill()
                process.wait(timeout=5)
        for child in self._children:
            if child.process is not None and child.process.poll() is None:
                child.process.kill()
                child.process.wait(timeout=5)
            child.close_pipe()
