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
import os
import sys
from pathlib import Path

from console.commands import replay_file, run_group, show_status, write_report_command
from service.config import ConfigError, load_config
from service.processes import EXIT_FAILED, EXIT_USAGE, PRIVATE_UMASK, serve_paper_exchange

RUNNER = Path(__file__).resolve()


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
        return serve_paper_exchange(
            config, args.port, standalone=args.parent is None, parent=args.parent
        )
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
