"""End to end on the paper exchange: a price move shows as drawdown, past the limit risk denies.

The group runs as a user runs it (runner.py, every process): reconciliation brings the paper
account's opening deposit into the books, the execution actor a trade made on the exchange,
and the test moves the market through the paper exchange's `/admin/price`.
"""

from __future__ import annotations

import time
from decimal import Decimal

import zmq

from actors.runtime.client import RequestClient
from messages import CheckOrder, RiskDecision, Side
from service.config import load_config
from tests.support.group import RunningGroup, edit_config, group_pids, wait_for
from tests.support.shipped import (
    admin,
    shipped_config,
    status,
    still_prices,
    wait_portfolio,
)

MARK_INTERVAL_SECONDS = 0.5


def ask(config, endpoint: str, message):
    context = zmq.Context()
    try:
        address = config.endpoints[endpoint]
        with RequestClient(context, endpoint, address, config.transport) as client:
            return client.request(message, raise_on_error=False)
    finally:
        context.destroy(linger=0)


def check_buy(config) -> RiskDecision:
    return ask(
        config,
        "risk.query",
        CheckOrder(
            correlation_id=f"check-{time.monotonic_ns()}",
            pair="XBT/USD",
            side=Side.BUY,
            quantity=Decimal("0.01"),
            price=Decimal("60000"),
        ),
    )


def test_a_price_drop_shows_as_drawdown_in_status_and_past_the_limit_risk_denies(tmp_path):
    path = shipped_config(
        tmp_path,
        execution={"demo_orders": False, "poll_interval_seconds": 0.2},
        prices={"interval_seconds": 0.2},
        drawdown={"mark_interval_seconds": MARK_INTERVAL_SECONDS},
        risk={
            "max_total_drawdown_pct": "8",
            "max_daily_drawdown_pct": "8",
            "max_weekly_drawdown_pct": "50",
            "max_position_exposure": "100000",  # the 1 XBT held is not what denies
        },
    )
    edit_config(path, still_prices)  # prices move only when the test says
    group = RunningGroup(path)
    try:
        url = group.wait_ready()["exchange"]
        config = load_config(path)
        wait_portfolio(path, lambda s: Decimal(s["cash"].get("USD", "0")) == Decimal(100000))
        admin(url, "price", {"pair": "XBT/USD", "price": "60000"})
        admin(url, "trade", {"pair": "XBT/USD", "side": "buy", "volume": "1"})
        state = wait_portfolio(
            path, lambda s: "XBT" in s["positions"] and s["drawdown"].get("marks", 0) >= 2
        )
        # the deposit set every peak; buying cost the spread and the fee, a small drawdown
        peak = Decimal(state["drawdown"]["peak_equity"])
        assert peak == Decimal(100000)
        assert Decimal(0) < Decimal(state["drawdown"]["total_pct"]) < Decimal(1)
        # nothing is breached: approved once the risk actor polled a state with the price
        assert wait_for(lambda: check_buy(config).approved, timeout=10)

        # XBT from 60000 to 50000: equity falls by about 10000, 10% of the peak
        moved_at = time.monotonic()
        admin(url, "price", {"pair": "XBT/USD", "price": "50000"})
        state = wait_portfolio(
            path,
            lambda s: Decimal(s["drawdown"]["total_pct"]) > Decimal(9),
            timeout=10,
        )
        shown_after = time.monotonic() - moved_at
        drawdown = state["drawdown"]
        equity = Decimal(state["equity"])
        expected = (peak - equity) * 100 / peak
        assert abs(Decimal(drawdown["total_pct"]) - expected) < Decimal("0.000001")
        assert Decimal(drawdown["daily_pct"]) > Decimal(9)
        assert drawdown["breached"] == ["total", "daily"]
        assert state["prices"]["XBT/USD"]["stale"] is False
        # within the throttle: a price read, a mark interval, a status round trip
        assert shown_after < 0.2 + MARK_INTERVAL_SECONDS + 3.0

        deadline = time.monotonic() + 10
        decision = check_buy(config)
        while decision.approved and time.monotonic() < deadline:
            time.sleep(0.1)  # the risk actor polls the state every 200 ms
            decision = check_buy(config)
        assert not decision.approved
        assert "drawdown limit breached" in decision.reason and "total" in decision.reason

        # the drawdown actor persisted the peak it marked: it survives in status as is
        assert Decimal(status(path)["drawdown"]["peak_equity"]) == peak
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []
