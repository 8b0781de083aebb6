"""Replay of a file spanning days and weeks: equity marked in event time, windows reset right.

The file's numbers are chosen so each figure can be worked out by hand (see each step).
Windows: daily at 00:00 UTC, weekly on Monday. 2026-01-05 is a Monday.
"""

from __future__ import annotations

import decimal
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from console.replay import run_replay
from console.views import portfolio_json
from kraken.exports import read_replay_file
from kraken.names import KrakenNames
from service.config import decimal_context, load_config

HUNDRED = Decimal(100)


def mark(pair: str, bid: str, ts: str) -> dict:
    return {"type": "PriceMark", "pair": pair, "bid": bid, "ask": bid, "ts": ts}


def deposit(transfer_id: str, amount: str, ts: str) -> dict:
    return {
        "type": "Transfer",
        "transfer_id": transfer_id,
        "asset": "USD",
        "amount": amount,
        "ts": ts,
    }


def buy(exec_id: str, qty: str, price: str, ts: str) -> dict:
    return {
        "type": "ExecutionReport",
        "exec_id": exec_id,
        "order_id": "O1",
        "pair": "XBT/USD",
        "side": "buy",
        "status": "FILLED",
        "last_qty": qty,
        "last_price": price,
        "fee": "0",
        "fee_currency": "USD",
        "ts": ts,
    }


EVENTS = [
    deposit("D1", "100000", "2026-01-05T10:00:00Z"),  # equity 100000
    mark("XBT/USD", "50000", "2026-01-05T10:01:00Z"),
    buy("T1", "1", "50000", "2026-01-05T10:02:00Z"),  # 50000 cash + 1 XBT at 50000
    mark("XBT/USD", "60000", "2026-01-05T12:00:00Z"),  # 110000: every peak
    mark("XBT/USD", "55000", "2026-01-06T09:00:00Z"),  # Tuesday: 105000, daily opens at 110000
    deposit("D2", "10500", "2026-01-06T10:00:00Z"),  # 115500 = 105000 × 1.1: peaks × 1.1
    mark("XBT/USD", "54000", "2026-01-13T09:00:00Z"),  # a week later: 114500
]


def replayed(tmp_path: Path, **risk: Decimal | None):
    path = tmp_path / "days.jsonl"
    path.write_text("\n".join(json.dumps(event) for event in EVENTS) + "\n")
    config = load_config()
    config = replace(config, risk=replace(config.risk, **risk))
    messages = read_replay_file(path, names=KrakenNames.bundled())
    return portfolio_json(run_replay(config, messages, []), decimal_context(config))


CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)  # the service's


def pct(peak: str, equity: str) -> Decimal:
    drop = CONTEXT.multiply(CONTEXT.subtract(Decimal(peak), Decimal(equity)), HUNDRED)
    return CONTEXT.divide(drop, Decimal(peak))


def test_daily_and_weekly_windows_reset_across_a_gap_and_a_deposit_is_not_a_loss(tmp_path):
    state = replayed(tmp_path)
    assert Decimal(state["equity"]) == Decimal("114500")
    assert state["as_of"].startswith("2026-01-13T09:00:00")
    xbt = state["positions"]["XBT"]
    assert Decimal(xbt["market_value"]) == Decimal("54000")
    assert Decimal(xbt["unrealized_pnl"]) == Decimal("4000")
    assert xbt["price"]["path"] == ["XBT/USD"]

    drawdown = state["drawdown"]
    # all-time peak 110000 scaled by the deposit's 1.1
    assert Decimal(drawdown["peak_equity"]) == Decimal("121000")
    assert Decimal(drawdown["total_pct"]) == pct("121000", "114500")
    # the week and the day after the gap open at the last equity before them, 115500
    assert Decimal(drawdown["daily_peak"]) == Decimal("115500")
    assert Decimal(drawdown["weekly_peak"]) == Decimal("115500")
    assert Decimal(drawdown["daily_pct"]) == pct("115500", "114500")
    assert Decimal(drawdown["weekly_pct"]) == pct("115500", "114500")
    assert drawdown["daily_window_start"].startswith("2026-01-13T00:00:00")
    assert drawdown["weekly_window_start"].startswith("2026-01-12T00:00:00")
    assert drawdown["breached"] == []
    assert state["prices"]["XBT/USD"]["stale"] is False
    assert state["unpriced"] == []


def test_the_deposit_leaves_every_drawdown_unchanged(tmp_path):
    """Cut the file right after the deposit: the drawdown is the one just before it."""
    global EVENTS
    kept = EVENTS
    try:
        EVENTS = kept[:6]
        state = replayed(tmp_path)
    finally:
        EVENTS = kept
    drawdown = state["drawdown"]
    before = pct("110000", "105000")  # Tuesday 09:00, just before the deposit
    assert Decimal(drawdown["total_pct"]) == pytest.approx(before, abs=Decimal("1E-25"))
    assert Decimal(drawdown["daily_pct"]) == pytest.approx(before, abs=Decimal("1E-25"))
    assert Decimal(drawdown["peak_equity"]) == Decimal("121000")
    assert Decimal(state["equity"]) == Decimal("115500")


def test_a_window_over_its_limit_is_breached_and_recovers_in_a_new_window(tmp_path):
    state = replayed(
        tmp_path,
        max_total_drawdown_pct=Decimal("5"),
        max_daily_drawdown_pct=Decimal("4"),
        max_weekly_drawdown_pct=None,
    )
    drawdown = state["drawdown"]
    # daily reached 4.55% on the 6th and reset on the 13th; total is 5.37% now
    assert drawdown["breached"] == ["total"]
    assert drawdown["limits"] == {"total_pct": "5", "daily_pct": "4", "weekly_pct": None}


def test_a_holding_without_a_direct_pair_is_valued_over_a_bridge_and_says_so(tmp_path):
    global EVENTS
    kept = EVENTS
    try:
        EVENTS = [
            deposit("D1", "1000", "2026-01-05T10:00:00Z"),
            {
                "type": "Transfer",
                "transfer_id": "E1",
                "asset": "ETH",
                "amount": "2",
                "unit_price": "3000",
                "ts": "2026-01-05T10:00:01Z",
            },
            mark("ETH/XBT", "0.05", "2026-01-05T10:00:02Z"),
            mark("XBT/USD", "60000", "2026-01-05T10:00:03Z"),
        ]
        state = replayed(tmp_path)
    finally:
        EVENTS = kept
    eth = state["positions"]["ETH"]
    assert eth["price"]["path"] == ["ETH/XBT", "XBT/USD"]
    assert eth["price"]["stale"] is False
    assert Decimal(eth["market_value"]) == Decimal("6000.00")  # 2 × 0.05 × 60000
    assert Decimal(state["equity"]) == Decimal("7000.00")


def test_a_replayed_file_gives_its_report(tmp_path):
    path = tmp_path / "days.jsonl"
    path.write_text("\n".join(json.dumps(event) for event in EVENTS) + "\n")
    messages = read_replay_file(path, names=KrakenNames.bundled())
    run_replay(load_config(), messages, [], report_dir=tmp_path / "report")
    png = (tmp_path / "report" / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    page = (tmp_path / "report" / "report.html").read_text()
    assert "121000" in page  # the all-time peak after the deposit scaled it
