"""The operator's commands behind runner.py: run the group (with the live view and the
metrics), its status, the report, a replay of a file."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from pathlib import Path

import zmq
from loguru import logger

from actors.runtime.logs import configure_logging
from actors.runtime.supervisor import ChildSpec, GroupFailed, Supervisor
from console.metrics import MetricsExporter
from console.monitor import GroupMonitor, MonitorThread
from console.views import portfolio_json, portfolio_text
from kraken.pid_lock import PidLock
from service.config import ServiceConfig, decimal_context
from service.processes import (
    EXIT_FAILED,
    EXIT_OK,
    LOCK_GRACE_SECONDS,
    RunDirError,
    child_argv,
    free_port,
    lock_run_dir,
    prepare_run_dir,
    wait_until_every_actor_answers,
)


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
            config.run_dir, config.supervisor.stop_timeout_seconds + LOCK_GRACE_SECONDS
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
        port = config.exchange.paper.port or free_port()
        specs.append(
            ChildSpec(
                "paper-exchange",
                child_argv(config_path, "paper-exchange", "--port", str(port), *parent),
            )
        )
    for process in config.processes:
        specs.append(ChildSpec(process, child_argv(config_path, "host", process, *parent)))
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
        wait_until_every_actor_answers(context, config, supervisor, deadline)
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
    report = portfolio_json(state, decimal_context(config))
    print(json.dumps(report, indent=2, sort_keys=True) if as_json else portfolio_text(report))
    return EXIT_OK
