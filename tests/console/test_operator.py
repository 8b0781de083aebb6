"""The operator's view: the live terminal view, status as a table, the metrics endpoint."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.request
import zlib
from decimal import Decimal

import pytest

from tests.support.group import (
    ROOT,
    RUNNER,
    RunningGroup,
    edit_config,
    group_pids,
    run_runner,
    wait_for,
)
from tests.support.shipped import shipped_config, status, still_prices

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def quiet_config(tmp_path):
    """The shipped group, without demo orders and with still prices: equity stays put."""
    path = shipped_config(tmp_path, execution={"demo_orders": False})
    return edit_config(path, still_prices)


class Terminal:
    """runner.py on a pseudo-terminal of 140 x 60, its screen output collected."""

    def __init__(self, path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 140, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, str(RUNNER), "--config", str(path)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.screen = ""

    def read_until(self, pattern: str, timeout: float) -> str:
        """Collect output until `pattern` (a regex) shows in it; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.master, 1 << 16)
                except OSError:
                    break
                self.screen += ANSI.sub("", chunk.decode(errors="replace"))
                match = re.search(pattern, self.screen)
                if match:
                    return match.group(0)
        raise AssertionError(f"{pattern!r} never showed; last screen:\n{self.screen[-3000:]}")

    def read_for(self, seconds: float) -> None:
        """Collect whatever the view draws during `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 1 << 16)
                except OSError:
                    return
                self.screen += ANSI.sub("", chunk.decode(errors="replace"))

    def close(self) -> int:
        """Ctrl-C, as a person stops it; keep reading the screen meanwhile (a full terminal
        would block the view), and kill it all if it overstays."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    os.read(self.master, 1 << 16)
                except OSError:
                    pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        code = self.process.wait(timeout=5)
        os.close(self.master)
        return code


def test_the_live_view_shows_the_running_group_in_a_pseudo_terminal(tmp_path):
    path = quiet_config(tmp_path)
    terminal = Terminal(path)
    try:
        # the paper account's 100000 USD, brought in by reconciliation, valued in USD
        terminal.read_until(r"equity 100,000\.00 USD", timeout=60)
        for part in ("cash", "positions", "drawdown", "prices", "reconciliation", "processes"):
            assert part in terminal.screen
        assert Decimal(status(path)["equity"]) == Decimal(100000)
        # quiet for longer than the risk actor's state age limit, the state stays fresh
        terminal.read_for(3.0)
        terminal.screen = ""
        terminal.read_for(2.0)
        assert "risk: orders ALLOWED" in terminal.screen
        assert "orders DENIED" not in terminal.screen
    finally:
        assert terminal.close() == 0
    assert group_pids(str(path)) == []


def test_status_prints_the_group_as_readable_tables(tmp_path):
    path = quiet_config(tmp_path)
    group = RunningGroup(path)
    try:
        group.wait_ready()
        wait_for(
            lambda: Decimal(status(path).get("equity") or 0) == Decimal(100000),
            timeout=30,
        )
        shown = run_runner(path, "status", timeout=30)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout
        assert "equity 100,000.00 USD" in text
        for title in ("cash", "positions", "drawdown", "prices", "processes", "risk: orders"):
            assert title in text
        for process in ("journal", "positions", "books", "market", "risk", "feed", "reconcile"):
            assert re.search(rf"{process}\s+│\s+\d+\s+│\s+ready", text), process

        # --json: the state's JSON form (the keys `replay --json` prints), processes beside
        as_json = status(path)
        for key in ("seq", "as_of", "valuation_currency", "equity", "cash", "positions"):
            assert key in as_json, key
        for key in ("exposure", "drawdown", "prices", "reconciliation"):
            assert key in as_json, key
        assert as_json["processes"]["books"]["ready"] is True
        assert as_json["risk"]

        # the report, from what the running group recorded
        wait_for(lambda: status(path)["drawdown"].get("marks", 0) >= 1, timeout=30)
        out = tmp_path / "report"
        made = run_runner(path, "report", "--out", str(out), timeout=60)
        assert made.returncode == 0, made.stderr
        assert_a_picture((out / "report.png").read_bytes())
        page = (out / "report.html").read_text()
        assert "data:image/png;base64," in page and "http" not in page
        assert "100000" in page  # the equity the group recorded
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []


def assert_a_picture(png: bytes) -> None:
    """A valid PNG whose pixels are not all one colour."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind = png[at + 4 : at + 8]
        chunks.setdefault(kind, b"")
        chunks[kind] += png[at + 8 : at + 8 + length]
        at += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    assert (width, height) >= (400, 300)
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + 3 * width
    colours = {
        raw[row * stride + 1 + 3 * x : row * stride + 4 + 3 * x]
        for row in range(0, height, 7)
        for x in range(0, width, 7)
    }
    assert len(colours) > 3


SERIES = (
    'portfolio_equity{currency="USD"} 100000.0',
    'portfolio_drawdown_pct{window="daily"}',
    "portfolio_fills_applied_total",
    "portfolio_events_rejected_total",
    "portfolio_query_latency_seconds_bucket",
    "portfolio_reconciliation_consecutive_failures",
    "portfolio_reconciliation_last_success_age_seconds",
    'portfolio_process_restarts_total{process="books"} 0.0',
    'portfolio_process_up{process="books"} 1.0',
    'portfolio_process_up{process="journal"} 1.0',
    "portfolio_risk_trading_allowed",
    'portfolio_price_age_seconds{pair="XBT/USD"}',
)


def test_the_metrics_endpoint_answers_with_the_named_series(tmp_path):
    path = quiet_config(tmp_path)
    group = RunningGroup(path)
    try:
        url = group.wait_ready()["metrics"]
        assert url.startswith("http://127.0.0.1:")

        def scrape() -> str:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.read().decode()

        def missing() -> list[str]:
            page = scrape()
            return [series for series in SERIES if series not in page]

        wait_for(lambda: missing() == [], timeout=30)
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []


def test_metrics_on_a_port_in_use_stop_the_group_with_one_line_naming_it(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = edit_config(
            quiet_config(tmp_path), lambda config: config["metrics"].update(port=port)
        )
        result = run_runner(path, "--no-view")
    assert result.returncode != 0
    assert f"metrics.port {port}" in result.stderr
    assert group_pids(str(path)) == []


pytestmark = pytest.mark.timeout(120)
