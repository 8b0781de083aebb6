"""Start, watch and stop the portfolio service's process group; query it.

    python runner.py [--config PATH] [--duration SECONDS] [--no-view]
                                                            run the group until Ctrl-C
    python runner.py status [--json]                        the running group's state
    python runner.py replay FILE [--json] [--balance CUR=AMOUNT ...] [--report DIR]
                                                            a file through the books
    python runner.py report [--out DIR]                     equity curve, drawdown, P&L
    python runner.py paper-exchange [--port N]              the paper exchange alone

Every command takes --config (default: config.yaml beside this file). One group runs per run
directory: the runner holds a lock on it (`run/runner.lock`, with its pid) for the group's life,
and the run directory and every file in it are private to the user (0700 / 0600).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import zmq
from loguru import logger

from actors.runtime.actor import RequestFailed
from actors.runtime.client import RemoteError, RequestClient
from actors.runtime.logs import configure_logging
from actors.runtime.supervisor import ChildSpec, GroupFailed, Supervisor
from console.metrics import MetricsExporter
from console.monitor import GroupMonitor, MonitorThread
from console.views import portfolio_json, portfolio_text
from kraken.pid_lock import LockHeld, PidLock
from messages import GetProcessHealth, ProcessHealth
from service.config import ConfigError, ServiceConfig, load_config

RUNNER = Path(__file__).resolve()
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

PRIVATE_UMASK = 0o077
"""Everything the runner and its processes create is the user's only: 0700 / 0600."""
RUN_LOCK_NAME = "runner.lock"
_LOCK_POLL_SECONDS = 0.05
_LOCK_GRACE_SECONDS = 5.0


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _child_argv(config_path: Path, *command: str) -> list[str]:
    return [sys.executable, str(RUNNER), "--config", str(config_path), *command]


def _process_health(
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


def _wait_until_every_actor_answers(
    context: zmq.Context, config: ServiceConfig, supervisor: Supervisor, deadline: float
) -> None:
    for process in config.processes:
        while True:
            try:
                health = _process_health(context, config, process, timeout_ms=1000)
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


def run_group(
    config: ServiceConfig, config_path: Path, duration: float | None, view: bool = False
) -> int:
    """Run the configured group until Ctrl-C / SIGTERM or `duration` seconds; exit code.

    With `view`, the terminal shows the live view instead of the logs (they stay in files).
    Refused (one `error:` line, nothing started) while another group holds the run directory.
    """
    try:
        prepare_run_dir(config.run_dir)
        run_lock = lock_run_dir(
            config.run_dir, config.supervisor.stop_timeout_seconds + _LOCK_GRACE_SECONDS
        )
    except RunDirError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    try:
        return _run_locked_group(config, config_path, duration, view, run_lock)
    finally:
        run_lock.release()


def _run_locked_group(
    config: ServiceConfig,
    config_path: Path,
    duration: float | None,
    view: bool,
    run_lock: PidLock,
) -> int:
    configure_logging(
        process="runner",
        level=config.service.log_level,
        log_dir=config.run_dir / "logs",
        rotation_bytes=config.service.log_rotation_bytes,
        retention_files=config.service.log_retention_files,
        console=not view,
    )
    parent = ["--parent", str(os.getpid())]
    specs: list[ChildSpec] = []
    paper = config.exchange.mode == "paper"
    if paper:
        port = config.exchange.paper.port or _free_port()
        specs.append(
            ChildSpec(
                "paper-exchange",
                _child_argv(config_path, "paper-exchange", "--port", str(port), *parent),
            )
        )
    for process in config.processes:
        specs.append(ChildSpec(process, _child_argv(config_path, "host", process, *parent)))
    for spec in specs:
        spec.quiet = view
        # Each process keeps the run directory locked until it exits, so that a group whose
        # runner died is not joined by a new one while its processes are still stopping.
        spec.pass_fds = (run_lock.fd,)
    supervisor = Supervisor(specs, config.supervisor)
    monitor: MonitorThread | None = None
    exporter: MetricsExporter | None = None
    previous = {
        sig: signal.signal(sig, lambda *_: supervisor.request_stop())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    context = zmq.Context()
    try:
        deadline = time.monotonic() + config.supervisor.ready_timeout_seconds
        exchange_url = config.exchange.url
        if paper:
            line = supervisor.start_one("paper-exchange", config.supervisor.ready_timeout_seconds)
            exchange_url = line["url"]
            secrets = {"KRAKEN_API_KEY": line["key"], "KRAKEN_API_SECRET": line["secret"]}
            for spec in specs[1:]:
                spec.env.update(secrets)
        for spec in specs:
            spec.env["PORTFOLIO_EXCHANGE_URL"] = exchange_url
        for process in config.processes:
            supervisor.start_one(process, max(1.0, deadline - time.monotonic()))
        _wait_until_every_actor_answers(context, config, supervisor, deadline)
        ready = {
            "exchange": exchange_url,
            "processes": {p: list(s.actors) for p, s in config.processes.items()},
            "endpoints": dict(config.endpoints),
        }
        if config.metrics.enabled or view:
            monitor = MonitorThread(
                config,
                config.view.refresh_seconds,
                restarts=lambda: {c.spec.name: c.restarts for c in supervisor.children},
            )
        if config.metrics.enabled and monitor is not None:
            exporter = MetricsExporter(config.metrics.host, config.metrics.port)
            try:
                ready["metrics"] = exporter.start()
            except OSError as exc:
                exporter = None
                raise GroupFailed(
                    f"metrics.port {config.metrics.port} on {config.metrics.host}: "
                    f"{exc.strerror or exc}"
                ) from None
            monitor.add_listener(exporter.update)
            logger.info("metrics at {}", ready["metrics"])
        if monitor is not None:
            monitor.start()
        print("ready " + json.dumps(ready), flush=True)
        until = None if duration is None else time.monotonic() + duration
        if view and monitor is not None:
            _watch_with_view(supervisor, monitor, until)
        else:
            supervisor.watch(until)
        logger.info("stopping the group")
        return EXIT_OK
    except GroupFailed as exc:
        logger.error("{}", exc)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    finally:
        if monitor is not None:
            monitor.stop()
        if exporter is not None:
            exporter.stop()
        supervisor.stop_all()
        context.destroy(linger=0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _watch_with_view(supervisor: Supervisor, monitor: MonitorThread, until: float | None) -> None:
    """Supervise while the terminal shows the live view, redrawn with each snapshot."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from console.dashboard import render

    console = Console()
    shown: list[object] = [None]
    with Live(
        Text("reading the group..."), console=console, refresh_per_second=4, screen=False
    ) as live:

        def redraw() -> None:
            latest = monitor.latest
            if latest is not None and latest is not shown[0]:
                shown[0] = latest
                live.update(render(latest))

        supervisor.watch(until, on_tick=redraw)


def show_status(config: ServiceConfig, as_json: bool) -> int:
    """Print the running group's health, risk verdict and state (a table, or JSON)."""
    monitor = GroupMonitor(config)
    try:
        snapshot = monitor.poll()
    finally:
        monitor.close()
    if as_json:
        print(json.dumps(snapshot.as_json(), indent=2, sort_keys=True))
    else:
        from rich.console import Console

        from console.dashboard import render

        Console(width=max(100, Console().width)).print(render(snapshot))
    down = any("error" in health for health in snapshot.processes.values())
    return EXIT_FAILED if down else EXIT_OK


def write_report_command(config: ServiceConfig, out: Path | None) -> int:
    """Write report.png and report.html from what the drawdown actor recorded."""
    from console.report import ReportError, report_limits, write_report

    configure_logging(process="report", level="WARNING", console=True)
    out_dir = out or config.run_dir / "report"
    try:
        files = write_report(
            config.drawdown.database,
            out_dir,
            valuation_currency=config.accounting.valuation_currency,
            limits=report_limits(config),
        )
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"error: cannot write the report into {out_dir}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {files.png} and {files.html}")
    return EXIT_OK


def replay_file(
    config: ServiceConfig,
    path: Path,
    as_json: bool,
    balances: list[str],
    report_dir: Path | None = None,
) -> int:
    """Run a trades export or a JSONL file through the books actors; print the final state."""
    from console.replay import ReplayFailed, run_replay
    from console.report import ReportError
    from kraken.exports import ReplayInputError, parse_balance_option, read_replay_file
    from kraken.names import KrakenNames

    names = KrakenNames.bundled()
    configure_logging(process="replay", level="WARNING", console=True)
    try:
        opening = [parse_balance_option(text, names=names) for text in balances]
        messages = read_replay_file(
            path, names=names, valuation_currency=config.accounting.valuation_currency
        )
        # As in each process of the group: what is built by now lives until the end, so the
        # collector need not traverse it again and again while the events are folded.
        gc.freeze()
        state = run_replay(config, messages, opening, report_dir=report_dir)
    except (ReplayInputError, ReplayFailed, ReportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    report = portfolio_json(state)
    print(json.dumps(report, indent=2, sort_keys=True) if as_json else portfolio_text(report))
    return EXIT_OK


def serve_paper_exchange(config: ServiceConfig, port: int | None, standalone: bool = True) -> int:
    """Run the paper exchange alone; print one JSON line with its url, key and secret.

    Refused (one line) while another paper exchange has the state file open. Started by the
    runner (not `standalone`), the JSON line alone says why: the runner reports it."""
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
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
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
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runner.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help="config file (config.yaml)")
    parser.add_argument("--duration", type=float, default=None, help="run this many seconds")
    parser.add_argument(
        "--no-view", action="store_true", help="plain logs instead of the live terminal view"
    )
    commands = parser.add_subparsers(dest="command")
    status = commands.add_parser("status", help="the running group's state")
    status.add_argument("--json", action="store_true", help="as JSON")
    replay = commands.add_parser("replay", help="the state a trades export or JSONL produces")
    replay.add_argument("file", type=Path)
    replay.add_argument("--json", action="store_true", help="as JSON")
    replay.add_argument(
        "--balance",
        action="append",
        default=[],
        metavar="CUR=AMOUNT",
        help="an opening balance (repeatable), e.g. USD=10000",
    )
    replay.add_argument(
        "--report", type=Path, default=None, metavar="DIR", help="also write the report here"
    )
    report = commands.add_parser("report", help="equity curve, drawdown, P&L: PNG and HTML")
    report.add_argument("--out", type=Path, default=None, help="folder (default run/report)")
    paper = commands.add_parser("paper-exchange", help="run the paper exchange alone")
    paper.add_argument("--port", type=int, default=None)
    paper.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    host = commands.add_parser("host", help=argparse.SUPPRESS)
    host.add_argument("process")
    host.add_argument("--parent", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command; returns the exit code."""
    os.umask(PRIVATE_UMASK)  # inherited by every process the runner starts
    args = _parser().parse_args(argv)
    config_path = (args.config or RUNNER.parent / "config.yaml").resolve()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"error: config {config_path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "host":
        from actors.runtime.host import serve_process
        from service.registry import ACTOR_CLASSES

        if args.process not in config.processes:
            print(f"error: processes.{args.process}: no such process", file=sys.stderr)
            return EXIT_USAGE
        return serve_process(config, args.process, parent_pid=args.parent, registry=ACTOR_CLASSES)
    if args.command == "paper-exchange":
        from actors.runtime.host import follow_parent

        if args.parent is not None and not follow_parent(args.parent):
            return EXIT_FAILED
        return serve_paper_exchange(config, args.port, standalone=args.parent is None)
    if args.command == "status":
        return show_status(config, args.json)
    if args.command == "replay":
        return replay_file(config, args.file, args.json, args.balance, args.report)
    if args.command == "report":
        return write_report_command(config, args.out)
    view = config.view.enabled and not args.no_view and sys.stdout.isatty()
    return run_group(config, config_path, args.duration, view=view)


if __name__ == "__main__":
    sys.exit(main())
