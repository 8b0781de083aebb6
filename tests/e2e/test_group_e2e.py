"""The whole group as a user runs it, against the paper exchange, through real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from decimal import Decimal

from tests.support.group import ROOT, RUNNER, RunningGroup, group_pids
from tests.support.shipped import admin, admin_state, shipped_config, status, wait_portfolio


def test_a_live_mode_group_pointed_at_the_paper_exchange_books_an_outside_trade(tmp_path):
    (tmp_path / "exchange").mkdir()
    exchange_config = shipped_config(tmp_path / "exchange")
    exchange = subprocess.Popen(
        [sys.executable, str(RUNNER), "--config", str(exchange_config), "paper-exchange"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        line = json.loads(exchange.stdout.readline())
        path = shipped_config(
            tmp_path,
            exchange={"mode": "live", "url": line["url"]},
            execution={"poll_interval_seconds": 0.2},
        )
        env = {"KRAKEN_API_KEY": line["key"], "KRAKEN_API_SECRET": line["secret"]}
        group = RunningGroup(path, env=env)
        try:
            ready = group.wait_ready()
            assert ready["exchange"] == line["url"]
            admin(line["url"], "trade", {"pair": "XXBTZUSD", "side": "buy", "volume": "0.25"})
            balances = admin_state(line["url"])["balances"]
            # the opening deposit comes in through reconciliation, the trade through execution
            state = wait_portfolio(
                path,
                lambda s: (
                    "XBT" in s["positions"]
                    and Decimal(s["cash"].get("USD", "0")) == Decimal(balances["ZUSD"])
                ),
            )
            assert Decimal(state["positions"]["XBT"]["quantity"]) == Decimal("0.25")
        finally:
            assert group.stop() == 0
        assert group_pids(str(path)) == []
    finally:
        exchange.send_signal(signal.SIGTERM)
        assert exchange.wait(timeout=20) == 0


def books_match_exchange(state: dict, balances: dict) -> bool:
    """Every asset to the digit (the opening deposit comes in through reconciliation)."""
    exchange = {asset: Decimal(amount) for asset, amount in balances.items()}
    usd = exchange.pop("ZUSD", Decimal(0))
    if Decimal(state["cash"].get("USD", "0")) != usd:
        return False
    names = {"XXBT": "XBT", "XETH": "ETH", "SOL": "SOL"}
    for raw, amount in exchange.items():
        position = state["positions"].get(names.get(raw, raw))
        held = Decimal(position["quantity"]) if position else Decimal(0)
        if held != amount:
            return False
    return True


def test_the_group_trades_on_paper_and_its_books_equal_the_exchange(tmp_path):
    path = shipped_config(
        tmp_path,
        execution={"order_interval_seconds": 0.5, "poll_interval_seconds": 0.2},
    )
    group = RunningGroup(path)
    try:
        ready = group.wait_ready()
        url = ready["exchange"]
        wait_portfolio(path, lambda s: s["seq"] >= 12, timeout=60)
        deadline = time.monotonic() + 60
        matched = None
        while time.monotonic() < deadline and matched is None:
            before = admin_state(url)["balances"]
            state = status(path)
            after = admin_state(url)["balances"]
            if before == after and books_match_exchange(state, after):
                matched = (state, after)
            time.sleep(0.1)
        assert matched is not None, "the books never equalled the exchange at a quiet moment"
        state, balances = matched
        assert len(state["positions"]) >= 1 and state["seq"] >= 12
        assert set(balances) - {"ZUSD"}, "the demo flow bought something"
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []
