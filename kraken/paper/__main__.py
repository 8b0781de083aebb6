"""``python -m kraken.paper``: run the paper exchange until SIGINT or SIGTERM.

Prints one JSON line ``{"url": ..., "key": ..., "secret": ...}`` on stdout once it serves, so
a parent process can read where and how to connect; logs go to stderr. A state file another
paper exchange has open is refused: one ``error:`` line on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from loguru import logger

from kraken.paper.server import PaperExchangeServer
from kraken.paper.settings import RATE_LIMIT_OFF, RATE_LIMIT_TIERS, PaperSettings
from kraken.paper.store import StateFileInUse

_WAIT_SECONDS = 0.5


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kraken.paper", description="Kraken-compatible paper exchange on loopback."
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    parser.add_argument("--state", type=Path, default=None, help="SQLite state file")
    parser.add_argument("--seed", type=int, default=7, help="seed of prices and fills")
    parser.add_argument(
        "--tick", type=float, default=0.25, help="seconds between price steps (0 = none)"
    )
    parser.add_argument(
        "--rate-limit",
        default=RATE_LIMIT_OFF,
        choices=[RATE_LIMIT_OFF, *RATE_LIMIT_TIERS],
        help="REST call counter tier",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the exchange, print its connection line, serve until SIGINT/SIGTERM; exit 0."""
    args = _parse(argv)
    settings = PaperSettings(
        port=args.port,
        state_file=args.state,
        seed=args.seed,
        tick_interval_seconds=args.tick,
        rate_limit_tier=args.rate_limit,
    )
    # The handler only writes a flag: it may interrupt the main thread anywhere (even inside a
    # lock, as threading.Event.set would take) and run again before it returns.
    stop_requested = [False]

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested[0] = True

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        server = PaperExchangeServer(settings)
    except StateFileInUse as exc:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        print(f"error: --state: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        server.start()
        line = json.dumps({"url": server.url, "key": server.key, "secret": server.secret})
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        while not stop_requested[0]:
            time.sleep(_WAIT_SECONDS)
        logger.info("paper exchange: stop requested")
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
