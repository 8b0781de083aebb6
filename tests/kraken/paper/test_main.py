"""``python -m kraken.paper`` as a process: its connection line, SIGTERM, and a SIGKILL."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kraken.paper.conftest import CALL_TIMEOUT, CountingKraken, private

ROOT = Path(__file__).resolve().parents[3]
START_SECONDS = 20.0


def start_process(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "kraken.paper", "--tick", "0", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def read_connection_line(process: subprocess.Popen) -> dict:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_SECONDS):
            raise AssertionError("the paper exchange printed nothing in time")
    return json.loads(process.stdout.readline())


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            process.stdout.close()


def client_for(line: dict) -> CountingKraken:
    client = CountingKraken(line["key"], line["secret"])
    client.uri = line["url"]
    return client


def test_main_prints_one_line_serves_and_exits_zero_on_sigterm(processes):
    process = start_process("--port", "0")
    processes.append(process)
    line = read_connection_line(process)
    assert set(line) == {"url", "key", "secret"} and line["url"].startswith("http://127.0.0.1:")
    client = client_for(line)
    assert private(client, "Balance") == {"ZUSD": "100000.0000"}
    client.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_sigkill_loses_no_acknowledged_change(processes, tmp_path):
    state = tmp_path / "paper.sqlite"
    first = start_process("--state", str(state))
    processes.append(first)
    line = read_connection_line(first)
    client = client_for(line)
    txid = private(
        client,
        "AddOrder",
        {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.01"},
    )["txid"][0]
    balances = private(client, "Balance")
    client.close()
    first.kill()
    first.wait(timeout=10)

    second = start_process("--state", str(state))
    processes.append(second)
    again = read_connection_line(second)
    assert (again["key"], again["secret"]) == (line["key"], line["secret"])
    client = client_for(again)
    started = time.monotonic()
    assert private(client, "Balance") == balances
    assert private(client, "QueryOrders", {"txid": txid})[txid]["status"] == "closed"
    assert time.monotonic() - started < CALL_TIMEOUT
    client.close()
    second.send_signal(signal.SIGINT)
    assert second.wait(timeout=10) == 0


def test_a_second_exchange_on_the_same_state_file_is_refused_naming_the_first(processes, tmp_path):
    state = tmp_path / "paper.sqlite"
    first = start_process("--state", str(state))
    processes.append(first)
    read_connection_line(first)
    second = subprocess.run(
        [sys.executable, "-m", "kraken.paper", "--tick", "0", "--state", str(state)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )
    assert second.returncode == 1 and second.stdout == ""
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"pid {first.pid}" in errors[0], second.stderr
    assert "Traceback" not in second.stderr
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    third = start_process("--state", str(state))  # freed when the first stopped
    processes.append(third)
    assert "url" in read_connection_line(third)
