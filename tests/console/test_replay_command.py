"""`runner.py replay`: a file through the books actors, as a user runs it."""

from __future__ import annotations

import decimal
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from actors.core.accounting import CashLedger, PositionLedger
from kraken.exports import read_replay_file
from kraken.names import KrakenNames
from messages import ExecutionReport, Transfer
from tests.support.group import ROOT, RUNNER

DATA = Path(__file__).resolve().parents[1] / "kraken" / "data"


def replay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUNNER), "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def folded(path: Path, opening: dict[str, Decimal]):
    """The books the pure fold gives for the same file: what the actors must agree with."""
    context = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)
    cash = CashLedger(cash_currencies=("USD",), valuation_currency="USD", context=context)
    positions = PositionLedger(cash_currencies=("USD",), valuation_currency="USD", context=context)
    cash.balances.update(opening)
    events = [
        m
        for m in read_replay_file(path, names=KrakenNames.bundled())
        if isinstance(m, ExecutionReport | Transfer)
    ]
    for seq, event in enumerate(events, 1):
        cash.apply(seq, event)
        positions.apply(seq, event)
    return cash, positions


def test_a_kraken_trades_export_gives_the_books_of_the_pure_fold():
    path = DATA / "kraken_trades_export.csv"
    result = replay(str(path), "--json", "--balance", "USD=100000")
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    cash, positions = folded(path, {"USD": Decimal("100000")})
    assert {k: Decimal(v) for k, v in state["cash"].items()} == cash.balances
    for asset, book in positions.positions.items():
        shown = state["positions"][asset]
        assert Decimal(shown["quantity"]) == book.quantity
        assert Decimal(shown["average_cost"]) == book.average_cost
        assert Decimal(shown["realized_pnl"]) == book.realized_pnl
        assert Decimal(shown["fees"]) == book.fees
    assert state["valuation_currency"] == "USD" and state["seq"] >= len(positions.positions)


def test_a_jsonl_file_replays_and_prints_a_readable_table():
    result = replay(str(DATA / "replay_events.jsonl"))
    assert result.returncode == 0, result.stderr
    assert "positions:" in result.stdout and "XBT" in result.stdout


def test_a_bad_line_stops_the_run_naming_the_line_and_the_field(tmp_path):
    lines = (DATA / "replay_events.jsonl").read_text().splitlines()
    good = [line for line in lines if line.strip()][:2]
    bad = json.loads(good[0])
    bad["type"] = "ExecutionReport"
    bad.update(
        exec_id="T-BAD",
        order_id="O-BAD",
        pair="XBT/USD",
        side="buy",
        status="FILLED",
        last_qty="-1",
        last_price="100",
        fee="0",
        fee_currency="USD",
        ts="2024-05-27T08:53:20Z",
    )
    for key in ("bid", "ask", "transfer_id", "asset", "amount"):
        bad.pop(key, None)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([*good, json.dumps(bad)]) + "\n")
    result = replay(str(path))
    assert result.returncode != 0
    assert f"{path}:3" in result.stderr and "last_qty" in result.stderr
