"""One process of the group: starts its configured actors, answers health, stops them.

`ActorHost` is usable in any process (tests host actors in their own process this way, with
inproc endpoints). `serve_process` is the main of a child started by runner.py: it starts the
host, tells the runner on stdout (one JSON line), answers `GetProcessHealth` on the process's
control endpoint, and on SIGTERM stops the actors in reverse order and exits 0. If an actor
dies, the process exits non-zero so that the runner restarts it.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping

import pykka
import zmq
from loguru import logger
from zmq.auth.thread import ThreadAuthenticator

from actors.runtime.actor import ServiceActor, StartRefused, StartupReport
from actors.runtime.logs import configure_logging
from actors.runtime.settings import HostConfig
from actors.runtime.sockets import CurveKeys, EndpointError, bind_socket
from actors.runtime.stop_flag import StopFlag
from messages import GetProcessHealth, Ping, Pong, ProcessHealth
from messages.codec import CodecError, decode, encode

EXIT_STARTUP_FAILED = 3
"""Exit code of a process that cannot start as configured, or cannot go on (an actor
refused to): the runner does not retry it."""

EXIT_ACTOR_DIED = 4
EXIT_STOP_OVERRAN = 5
_EXIT_GRACE_SECONDS = 5.0


class HostStartError(RuntimeError):
    """An actor of this process could not start; the message says which and why."""


def pin_to_cpus(key: str, cpus: tuple[int, ...]) -> None:
    """Run this process, every thread it has now and every thread it starts later, on `cpus`
    only; raise HostStartError naming `key` when the machine cannot (a CPU this process may
    not use, or no affinity call on this system)."""
    allowed = set(cpus)
    try:
        usable = os.sched_getaffinity(0)
    except AttributeError:
        raise HostStartError(f"{key}: CPU pinning needs Linux (sched_setaffinity)") from None
    missing = sorted(allowed - usable)
    if missing:
        raise HostStartError(
            f"{key}: CPU {', '.join(map(str, missing))} is not available here "
            f"(this process may use {', '.join(map(str, sorted(usable)))})"
        )
    try:
        set_affinity(allowed)
    except OSError as exc:
        raise HostStartError(f"{key}: cannot pin to CPUs {sorted(allowed)}: {exc}") from None


def set_affinity(cpus: set[int]) -> None:
    """Let every thread of this process run on `cpus` only (threads started later inherit
    it from the thread that starts them); raises OSError when the system refuses."""
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for thread in threads:
        try:
            os.sched_setaffinity(thread, cpus)
        except ProcessLookupError:
            continue  # the thread ended meanwhile


def resolve_actor_class(
    name: str, classes: Mapping[str, str], registry: Mapping[str, str]
) -> type[ServiceActor]:
    """The class for actor `name`: from config `actor_classes`, else `registry` (the
    service's built-in actors, service/registry.py)."""
    target = classes.get(name) or registry.get(name)
    if target is None:
        raise HostStartError(f"processes: unknown actor {name!r} (known: {sorted(registry)})")
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise HostStartError(f"actor_classes.{name}: cannot load {target!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, ServiceActor)):
        raise HostStartError(f"actor_classes.{name}: {target!r} is not a ServiceActor")
    return cls


class ActorHost:
    """Starts, pings and stops the actors of one process, in configured order."""

    def __init__(
        self,
        config: HostConfig,
        process: str,
        *,
        registry: Mapping[str, str],
        context: zmq.Context | None = None,
        actor_names: tuple[str, ...] | None = None,
    ) -> None:
        self.config = config
        self.process = process
        self.registry = registry
        self.context = context or zmq.Context.instance()
        self.actor_names = actor_names or config.processes[process].actors
        self.refs: dict[str, pykka.ActorRef] = {}
        self._startups: dict[str, StartupReport] = {}
        curve_file = config.transport.curve_secret_key_file
        self._curve = CurveKeys.load(curve_file) if curve_file else None
        self._authenticator: ThreadAuthenticator | None = None

    def _start_authenticator(self) -> None:
        """With CURVE on, only clients whose public certificates are listed may connect."""
        keys_dir = self.config.transport.curve_public_keys_dir
        if self._curve is None or keys_dir is None:
            return
        if not keys_dir.is_dir():
            raise HostStartError(f"transport.curve_public_keys_dir: no such folder {keys_dir}")
        self._authenticator = ThreadAuthenticator(self.context)
        self._authenticator.start()
        self._authenticator.configure_curve(domain="*", location=str(keys_dir))

    def start(self, timeout_seconds: float = 10.0) -> None:
        """Start every actor in order; on any failure stop those started and raise."""
        self._start_authenticator()
        for name in self.actor_names:
            cls = resolve_actor_class(name, self.config.actor_classes, self.registry)
            startup = StartupReport.new()
            ref = cls.start(
                name=name,
                config=self.config,
                context=self.context,
                process=self.process,
                startup=startup,
                curve=self._curve,
            )
            self.refs[name] = ref
            self._startups[name] = startup
            if not startup.done.wait(timeout_seconds):
                self.stop()
                raise HostStartError(f"actor {name} did not start within {timeout_seconds} s")
            if startup.error is not None:
                self.stop()
                error = startup.error
                if isinstance(error, EndpointError | StartRefused):
                    raise HostStartError(str(error)) from None
                raise HostStartError(f"actor {name} failed to start: {error!r}") from None

    def ping_all(self, timeout_seconds: float = 1.0) -> tuple[Pong, ...]:
        """Ask every actor for a Pong through its mailbox; raises if one does not answer."""
        pongs = []
        for name, ref in self.refs.items():
            ping = Ping(correlation_id=f"host-{name}", sent_ns=time.time_ns())
            answer = ref.ask(ping, timeout=timeout_seconds)
            if not isinstance(answer, Pong):
                raise HostStartError(f"actor {name} answered a ping with {answer!r}")
            pongs.append(answer)
        return tuple(pongs)

    def dead_actors(self) -> list[str]:
        """Names of actors that are no longer running."""
        return [name for name, ref in self.refs.items() if not ref.is_alive()]

    def refusals(self) -> list[str]:
        """Why actors stopped because they cannot go on (`ServiceActor.refuse`), if any did."""
        return [s.refused for s in self._startups.values() if s.refused is not None]

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Stop the actors in reverse start order, each within its share of the deadline."""
        deadline = time.monotonic() + timeout_seconds
        for name in reversed(list(self.refs)):
            ref = self.refs[name]
            left = max(0.1, deadline - time.monotonic())
            try:
                ref.stop(block=True, timeout=left)
            except pykka.Timeout:
                logger.warning("actor {} did not stop within {:.1f} s", name, left)
            except pykka.ActorDeadError:
                pass
        self.refs.clear()
        self._startups.clear()
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None


def follow_parent(parent_pid: int) -> bool:
    """Have Linux SIGTERM this process when the runner that started it dies.

    False if the runner is already gone (the request would then never fire).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    return os.getppid() == parent_pid


def parent_gone(parent_pid: int | None) -> bool:
    """True once the runner that started this process (`parent_pid`) has died: the process
    was handed to another parent. Checked on every turn of a process's main loop, so a
    process whose parent-death signal never came (it is not delivered in every case) still
    stops within a turn of its runner's death."""
    return parent_pid is not None and os.getppid() != parent_pid


def _exit_by(seconds: float) -> None:
    """Leave the process `seconds` from now whatever is still running: an actor thread that
    does not stop would otherwise keep it, its sockets and the run directory's lock alive
    after a runner that died (and so cannot kill stragglers)."""
    timer = threading.Timer(seconds, os._exit, (EXIT_STOP_OVERRAN,))
    timer.daemon = True
    timer.start()


def serve_process(
    config: HostConfig,
    process: str,
    parent_pid: int | None = None,
    *,
    registry: Mapping[str, str],
) -> int:
    """Main of a child process: host the actors, answer health on the control endpoint."""
    if parent_pid is not None and not follow_parent(parent_pid):
        return EXIT_STARTUP_FAILED  # the runner died before we could ask to follow it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner orders the stop
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.handler)
    configure_logging(
        process=process,
        level=config.service.log_level,
        log_dir=config.run_dir / "logs",
        rotation_bytes=config.service.log_rotation_bytes,
        retention_files=config.service.log_retention_files,
    )
    report = sys.stdout
    sys.stdout = sys.stderr  # stdout carries only the one startup line to the runner
    cpus = config.processes[process].cpus
    context: zmq.Context | None = None
    try:
        if cpus is not None:
            # Before the ZeroMQ context exists: its I/O thread inherits the affinity.
            pin_to_cpus(f"processes.{process}.cpus", cpus)
            logger.info("process {} runs on CPUs {}", process, ", ".join(map(str, cpus)))
        context = zmq.Context.instance()
        host = ActorHost(config, process, registry=registry, context=context)
        control = bind_socket(
            context,
            zmq.ROUTER,
            f"{process}.control",
            config.control_endpoint(process),
            config.transport,
        )
        host.start()
    except (HostStartError, EndpointError) as exc:
        logger.error("{}", exc)
        print(json.dumps({"error": str(exc)}), file=report, flush=True)
        if context is not None:
            context.destroy(linger=0)
        return EXIT_STARTUP_FAILED
    # What start-up built (modules, compiled codecs, configuration) lives as long as the
    # process: moved out of the collector's generations, it is no longer traversed by every
    # full collection, which the many short-lived objects of decoding keep triggering.
    gc.freeze()
    print(json.dumps({"ready": True, "pid": os.getpid()}), file=report, flush=True)
    logger.info("process {} ready with actors {}", process, ", ".join(host.actor_names))
    exit_code = 0
    try:
        while not stop.is_set():
            if control.poll(200, zmq.POLLIN):
                _answer_control(control, host, process, config)
            if parent_gone(parent_pid):
                logger.warning("the runner (pid {}) is gone; stopping", parent_pid)
                break
            dead = host.dead_actors()
            refusals = host.refusals()
            if refusals:
                # Not a crash: a restart would find the same; the runner stops the group.
                logger.error("stopping: {}", refusals[0])
                print(json.dumps({"error": refusals[0]}), file=report, flush=True)
                exit_code = EXIT_STARTUP_FAILED
                break
            if dead:
                logger.error("actor(s) {} died; exiting so the runner restarts us", dead)
                exit_code = EXIT_ACTOR_DIED
                break
    finally:
        logger.info("process {} stopping", process)
        _exit_by(config.supervisor.stop_timeout_seconds + _EXIT_GRACE_SECONDS)
        host.stop(config.supervisor.stop_timeout_seconds)
        control.close(linger=0)
        context.destroy(linger=0)
        logger.info("process {} stopped", process)
    return exit_code


def _answer_control(control: zmq.Socket, host: ActorHost, process: str, config: HostConfig) -> None:
    frames = control.recv_multipart()
    try:
        request = decode(frames[-1], max_bytes=config.transport.max_frame_bytes)
    except CodecError as exc:
        logger.warning("refused a malformed control frame: {}", exc)
        return
    if not isinstance(request, GetProcessHealth):
        logger.warning("control endpoint refused {}", type(request).__name__)
        return
    try:
        pongs = host.ping_all(timeout_seconds=1.0)
        ready = True
    except (HostStartError, pykka.Timeout, pykka.ActorDeadError) as exc:
        logger.warning("health check: {}", exc)
        pongs, ready = (), False
    answer = ProcessHealth(
        correlation_id=request.correlation_id,
        process=process,
        pid=os.getpid(),
        ready=ready,
        actors=pongs,
    )
    control.send_multipart([*frames[:-1], encode(answer)])
