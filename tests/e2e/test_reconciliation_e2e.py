"""Reconciliation end to end on the paper exchange, driven through its admin interface.

Groups run as a user runs them (runner.py, every process). In the first group nothing
follows the exchange but reconciliation (no execution actor), so what reaches the books from
the exchange reaches them through reconciliation alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from functools import partial

import pytest

from tests.support.group import ROOT, RunningGroup, edit_config, group_pids, run_runner
from tests.support.shipped import (
    admin,
    admin_state,
    shipped_config,
    status,
    still_prices,
    wait_portfolio,
)

RUN_SECONDS = 0.3


def recon_config(tmp_path, *, auto_update: bool, with_execution: bool, **sections):
    path = shipped_config(
        tmp_path,
        prices={"interval_seconds": 0.2},
        reconciliation={
            "interval_seconds": RUN_SECONDS,
            "auto_update": auto_update,
            "retry_max_seconds": 1,
        },
        **sections,
    )
    if not with_execution:
        edit_config(path, lambda config: config["processes"].pop("feed"))
    return edit_config(path, still_prices)


def moving_prices(config: dict, *, interval_seconds: float) -> None:
    """A run every `interval_seconds`, on prices that cross resting orders often."""
    config["reconciliation"]["interval_seconds"] = interval_seconds
    config["exchange"]["paper"]["volatility_bps"] = 20


EXCHANGE_TIMEOUT_SECONDS = 1
"""The faulted group's timeout on exchange calls: a `latency` fault longer than it fails them."""


def quiet(tmp_path, **sections):
    """A group without an execution actor: the exchange reaches the books via reconciliation."""
    path = recon_config(tmp_path, auto_update=False, with_execution=False, **sections)
    group = RunningGroup(path)
    try:
        url = group.wait_ready()["exchange"]
        yield path, url
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []


@pytest.fixture
def quiet_group(tmp_path):
    yield from quiet(tmp_path)


@pytest.fixture(scope="module")
def faulted_group(tmp_path_factory):
    """One quiet group for every fault kind in turn (each test leaves it as it found it)."""
    yield from quiet(
        tmp_path_factory.mktemp("faults"), exchange={"timeout_seconds": EXCHANGE_TIMEOUT_SECONDS}
    )


def test_outside_trade_deposit_withdrawal_and_drift_through_reconciliation(quiet_group):
    path, url = quiet_group
    # the opening deposit of the paper account comes in as a transfer
    state = wait_portfolio(
        path,
        lambda s: (
            Decimal(s["cash"].get("USD", "0")) == Decimal(100000)
            and s["reconciliation"]["recovered_transfers"] >= 1
        ),
    )
    assert state["reconciliation"]["open_discrepancies"] == []
    peak = Decimal(state["drawdown"]["peak_equity"])

    # a trade made outside the service is recovered as a fill
    admin(url, "trade", {"pair": "ETHUSD", "side": "buy", "volume": "2"})
    state = wait_portfolio(
        path, lambda s: "ETH" in s["positions"] and s["reconciliation"]["recovered_fills"] >= 1
    )
    assert Decimal(state["positions"]["ETH"]["quantity"]) == Decimal(2)
    balances = admin_state(url)["balances"]
    assert Decimal(state["cash"]["USD"]) == Decimal(balances["ZUSD"])

    # a deposit and a withdrawal become transfers, and are no drawdown
    before = wait_portfolio(path, lambda s: s["drawdown"].get("marks", 0) > 0)
    total_before = Decimal(before["drawdown"]["total_pct"])
    admin(url, "deposit", {"asset": "USD", "amount": "50000"})
    admin(url, "withdraw", {"asset": "USD", "amount": "20000"})
    balances = admin_state(url)["balances"]
    state = wait_portfolio(
        path,
        lambda s: (
            Decimal(s["cash"]["USD"]) == Decimal(balances["ZUSD"])
            and s["reconciliation"]["recovered_transfers"] >= 3
        ),
    )
    assert abs(Decimal(state["drawdown"]["total_pct"]) - total_before) < Decimal("0.0001")
    assert Decimal(state["drawdown"]["peak_equity"]) > peak  # scaled by the net deposit

    # a staking balance is reported apart, not taken for a trading discrepancy
    admin(url, "deposit", {"asset": "XBT.M", "amount": "0.5"})
    state = wait_portfolio(path, lambda s: s["reconciliation"]["staking"].get("XBT.M") is not None)
    assert Decimal(state["reconciliation"]["staking"]["XBT.M"]) == Decimal("0.5")
    assert "XBT" not in state["positions"]
    assert state["reconciliation"]["open_discrepancies"] == []

    # a silent drift of a balance is a discrepancy, reported, not corrected
    held = Decimal(admin_state(url)["balances"]["XETH"])
    admin(url, "balance", {"asset": "ETH", "balance": str(held - Decimal("0.5"))})
    state = wait_portfolio(path, lambda s: s["reconciliation"]["open_discrepancies"] != [])
    (found,) = state["reconciliation"]["open_discrepancies"]
    assert found["asset"] == "ETH"
    assert Decimal(found["difference"]) == Decimal("-0.5")
    assert Decimal(found["books"]) == held and Decimal(found["exchange"]) == held - Decimal("0.5")
    assert Decimal(state["positions"]["ETH"]["quantity"]) == held, "no silent overwrite"
    assert state["reconciliation"]["adjustments"] == 0

    # status, as a person reads it, shows the case
    shown = run_runner(path, "status", timeout=30).stdout
    assert "DISCREPANCY ETH" in shown and "reconciliation: last success" in shown


@pytest.mark.parametrize(
    "kind", ["unavailable", "rate_limit", "internal", "http_502", "drop", "latency"]
)
def test_a_fault_during_a_run_changes_nothing_and_the_next_run_succeeds(faulted_group, kind):
    path, url = faulted_group
    state = wait_portfolio(path, lambda s: s["reconciliation"].get("last_success") is not None)
    seq_before = state["seq"]
    body = {"kind": kind, "rate": "1", "seconds": "2"}
    if kind == "latency":  # answers come after the client gave up on them
        body["latency_ms"] = 2 * EXCHANGE_TIMEOUT_SECONDS * 1000
    admin(url, "fault", body)
    failed = wait_portfolio(path, lambda s: s["reconciliation"]["consecutive_failures"] >= 1)
    assert failed["reconciliation"]["last_error"]
    assert failed["seq"] == seq_before, "a failed run journaled something"
    assert failed["reconciliation"]["open_discrepancies"] == []
    admin(url, "fault/clear", {})
    state = wait_portfolio(path, lambda s: s["reconciliation"]["consecutive_failures"] == 0)
    assert state["seq"] == seq_before
    assert state["reconciliation"]["open_discrepancies"] == []


def test_with_auto_update_a_drift_becomes_an_adjustment_in_the_journal(tmp_path):
    path = recon_config(tmp_path, auto_update=True, with_execution=False)
    group = RunningGroup(path)
    try:
        url = group.wait_ready()["exchange"]
        wait_portfolio(path, lambda s: Decimal(s["cash"].get("USD", "0")) == Decimal(100000))
        admin(url, "balance", {"asset": "USD", "balance": "99000"})
        state = wait_portfolio(path, lambda s: s["reconciliation"]["adjustments"] >= 1)
        state = wait_portfolio(path, lambda s: Decimal(s["cash"]["USD"]) == Decimal(99000))
        state = wait_portfolio(path, lambda s: s["reconciliation"]["open_discrepancies"] == [])
        assert state["reconciliation"]["adjustments"] == 1
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []
    # the correction is in the log, for ever: asset, before, after, reason
    journal = tmp_path / "run" / "journal.sqlite"
    replayed = subprocess.run(
        [sys.executable, "-c", _DUMP_ADJUSTMENTS, str(journal)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert replayed.returncode == 0, replayed.stderr
    (line,) = replayed.stdout.splitlines()
    asset, before, after, reason = line.split("|")
    assert (asset, Decimal(before), Decimal(after)) == ("USD", Decimal(100000), Decimal(99000))
    assert "reconciliation" in reason


_DUMP_ADJUSTMENTS = """
import sys
from pathlib import Path
from actors.journal_store import JournalStore
from messages import BalanceAdjusted, decode
store = JournalStore(Path(sys.argv[1]), synchronous="NORMAL")
for stored in store.read(1, 10**9, max_events=10**6, max_bytes=1 << 30):
    e = decode(stored.frame, max_bytes=1 << 30)
    if isinstance(e, BalanceAdjusted):
        print(f"{e.asset}|{e.before}|{e.after}|{e.reason}")
"""


def successful_runs(path, count, *, timeout, check, until=lambda state: True) -> dict:
    """Poll `status` until it has shown `count` distinct successful reconciliation runs and
    `until(state)` holds, calling `check(reconciliation state)` on every state it reads (it
    asserts); fails past `timeout` seconds. The last state."""
    successes = set()
    deadline = time.monotonic() + timeout
    state = None
    while state is None or len(successes) < count or not until(state):
        assert time.monotonic() < deadline, f"{len(successes)} successful runs of {count}: {state}"
        state = status(path)
        recon_state = state["reconciliation"]
        check(recon_state)
        if recon_state["last_success"] is not None:
            successes.add(recon_state["last_success"])
        time.sleep(0.2)  # poll interval, bounded by the deadline
    return state


def nothing_open(recon_state) -> None:
    assert recon_state["open_discrepancies"] == [], recon_state


def nothing_open_or_failed_or_adjusted(recon_state) -> None:
    nothing_open(recon_state)
    assert recon_state["consecutive_failures"] == 0, recon_state
    assert recon_state["adjustments"] == 0, recon_state


def test_hard_trading_while_reconciling_every_second_raises_no_false_alarm(tmp_path):
    path = recon_config(
        tmp_path,
        auto_update=False,
        with_execution=True,
        execution={"order_interval_seconds": 0.1, "poll_interval_seconds": 0.2},
    )
    edit_config(path, partial(moving_prices, interval_seconds=1))
    group = RunningGroup(path)
    try:
        group.wait_ready()
        first = wait_portfolio(path, lambda s: s["reconciliation"].get("last_success") is not None)
        # Reconciliation keeps succeeding while trading: 8 runs, none with a discrepancy.
        state = successful_runs(path, 8, timeout=60, check=nothing_open)
        assert state["seq"] > first["seq"] + 20, "the demo flow traded hard"
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []


def _adjustments_in(journal) -> list[str]:
    replayed = subprocess.run(
        [sys.executable, "-c", _DUMP_ADJUSTMENTS, str(journal)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert replayed.returncode == 0, replayed.stderr
    return replayed.stdout.splitlines()


def test_a_killed_reconcile_process_under_nonstop_trading_finds_no_false_difference(tmp_path):
    """Orders every 0.3 s, a run every 2 s with auto_update: runs keep reaching a verdict
    while the account trades, and after a SIGKILL of the reconcile process the restarted
    one (its fold replayed from the journal) finds nothing to correct."""
    path = recon_config(
        tmp_path,
        auto_update=True,
        with_execution=True,
        execution={"order_interval_seconds": 0.3, "poll_interval_seconds": 0.2},
    )
    edit_config(path, partial(moving_prices, interval_seconds=2))
    group = RunningGroup(path)
    try:
        group.wait_ready()
        first = wait_portfolio(path, lambda s: s["reconciliation"].get("last_success") is not None)

        # while orders flow, every run reaches a verdict: no failure, nothing differs. Each
        # call to the exchange takes a while, as live Kraken's do, so fills land between the
        # reads of one run.
        url = group.ready["exchange"]
        admin(url, "fault", {"kind": "latency", "rate": "1", "seconds": "60", "latency_ms": 100})
        state = successful_runs(
            path,
            4,
            timeout=30,
            check=nothing_open_or_failed_or_adjusted,
            until=lambda s: s["seq"] >= first["seq"] + 30,
        )

        admin(url, "fault/clear", {})

        # SIGKILL the reconcile process: its fold restarts from a snapshot and replays
        killed = state["processes"]["reconcile"]["pid"]
        os.kill(killed, signal.SIGKILL)

        def back(s):
            shown = s["processes"].get("reconcile", {})
            return shown.get("pid") not in (None, killed) and shown.get("ready")

        wait_portfolio(path, back)
        successful_runs(path, 3, timeout=30, check=nothing_open_or_failed_or_adjusted)
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []
    assert _adjustments_in(tmp_path / "run" / "journal.sqlite") == []
