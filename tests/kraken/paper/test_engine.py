"""The paper account and market without HTTP: fees, holds, expiry, prices, determinism."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from kraken.names import KrakenNames
from kraken.paper.engine import ExchangeError, OrderRequest, PaperExchange
from kraken.paper.records import CLOSED, EXPIRED
from kraken.paper.settings import PaperSettings
from kraken.paper.store import StateStore

NAMES = KrakenNames.bundled()
XBTUSD = NAMES.pair("XBT/USD")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000 * 1_000_000_000

    def __call__(self) -> int:
        return self.now


def make_exchange(clock: FakeClock | None = None, **overrides) -> PaperExchange:
    values = {"tick_interval_seconds": 0, "seed": 3}
    values.update(overrides)
    return PaperExchange(PaperSettings(**values), NAMES, clock=clock or FakeClock())


def buy_limit(price: str, volume: str, **extra) -> OrderRequest:
    return OrderRequest(
        pair=XBTUSD,
        side="buy",
        ordertype="limit",
        volume=Decimal(volume),
        limit_price=Decimal(price),
        **extra,
    )


def test_taker_fee_matches_kraken_example():
    exchange = make_exchange()
    # mid 59988.0 with a 4 bps spread puts the ask exactly on 60000.0.
    exchange.set_price("XBT/USD", Decimal("59988.0"))
    assert exchange.quote(XBTUSD.id).ask == Decimal("60000.0")
    order = exchange.external_trade("XBT/USD", "buy", Decimal("0.1"))
    (trade,) = [exchange.trade(txid) for txid in order.trade_txids]
    assert trade.price == Decimal("60000.0") and trade.cost == Decimal("6000")
    assert trade.fee == Decimal("24.0000") and trade.maker is False
    assert exchange.balances()["ZUSD"] == Decimal("100000") - Decimal("6024")
    assert exchange.balances()["XXBT"] == Decimal("0.1")


def test_maker_fee_is_the_maker_schedule():
    exchange = make_exchange()
    txid = exchange.add_order(buy_limit("59000.0", "0.1"))
    while exchange.order(txid).status != CLOSED:
        exchange.set_price("XBT/USD", Decimal("58000"))
    order = exchange.order(txid)
    assert order.cost == Decimal("5900")
    # 0.25 % of 5900 = 14.75, up to one rounding unit per fill.
    assert abs(order.fee - Decimal("14.75")) <= Decimal("0.0001") * len(order.trade_txids)
    assert all(exchange.trade(t).maker for t in order.trade_txids)


def test_funds_check_counts_the_fee_and_existing_holds():
    exchange = make_exchange()
    # 1 × 99600 × 1.004 = 99998.4 fits in 100000; 99700 × 1.004 = 100098.8 does not.
    with pytest.raises(ExchangeError, match="EOrder:Insufficient funds"):
        exchange.add_order(buy_limit("99700.0", "1", validate=True))
    exchange.add_order(buy_limit("50000.0", "1"))
    assert exchange.holds() == {"ZUSD": Decimal("50200.0000")}
    with pytest.raises(ExchangeError, match="EOrder:Insufficient funds"):
        exchange.add_order(buy_limit("50000.0", "1"))
    sell = OrderRequest(pair=XBTUSD, side="sell", ordertype="market", volume=Decimal("0.01"))
    with pytest.raises(ExchangeError, match="EOrder:Insufficient funds"):
        exchange.add_order(sell)


def test_gtd_order_expires_at_its_time():
    clock = FakeClock()
    exchange = make_exchange(clock)
    txid = exchange.add_order(
        buy_limit("50000.0", "0.01", expire_ns=clock.now + 5_000_000_000, time_in_force="gtd")
    )
    assert [o.txid for o in exchange.open_orders()] == [txid]
    clock.now += 6_000_000_000
    assert exchange.open_orders() == []
    expired = exchange.order(txid)
    assert expired.status == EXPIRED and expired.close_ns == clock.now - 1_000_000_000
    assert exchange.holds() == {}


def test_cross_pair_is_derived_from_its_usd_legs():
    exchange = make_exchange()
    for _ in range(20):
        exchange.step()
        market = exchange.market
        implied = market.mid("XETHZUSD") / market.mid("XXBTZUSD")
        assert abs(market.mid("XETHXXBT") - implied) <= Decimal("0.00001")
    exchange.set_price("ETH/XBT", Decimal("0.06"))
    assert exchange.market.mid("XETHXXBT") == Decimal("0.06000")


def test_seed_makes_prices_and_ids_repeat():
    first, second = make_exchange(), make_exchange()
    for exchange in (first, second):
        exchange.step(10)
    assert first.market.mid("XXBTZUSD") == second.market.mid("XXBTZUSD")
    assert first.add_order(buy_limit("50000.0", "0.01")) == second.add_order(
        buy_limit("50000.0", "0.01")
    )
    other = make_exchange(seed=4)
    other.step(10)
    assert other.market.mid("XXBTZUSD") != first.market.mid("XXBTZUSD")


def test_taker_fills_never_pass_the_limit():
    exchange = make_exchange()
    ask = exchange.quote(XBTUSD.id).ask
    txid = exchange.add_order(buy_limit(str(ask), "0.5"))
    order = exchange.order(txid)
    assert order.status == CLOSED and order.vol_exec == Decimal("0.5")
    assert all(exchange.trade(t).price <= ask for t in order.trade_txids)


def test_state_store_round_trip(tmp_path):
    clock = FakeClock()
    path = tmp_path / "state.sqlite"
    exchange = PaperExchange(
        PaperSettings(tick_interval_seconds=0, state_file=path),
        NAMES,
        clock=clock,
        store=StateStore(path),
    )
    txid = exchange.add_order(buy_limit("50000.0", "0.01", userref=5))
    exchange.external_trade("ETH/USD", "buy", Decimal("0.3"))
    assert exchange.accept_nonce("k", 10)
    exchange.close()
    again = PaperExchange(
        PaperSettings(tick_interval_seconds=0, state_file=path),
        NAMES,
        clock=clock,
        store=StateStore(path),
    )
    try:
        assert again.balances() == exchange.balances()
        assert again.order(txid) == exchange.order(txid)
        assert again.trades() == exchange.trades()
        assert again.ledger_entries() == exchange.ledger_entries()
        assert not again.accept_nonce("k", 10) and again.accept_nonce("k", 11)
    finally:
        again.close()


def test_settings_refuse_a_public_host_and_bad_values():
    with pytest.raises(ValueError, match="host"):
        PaperSettings(host="0.0.0.0")
    with pytest.raises(ValueError, match="rate_limit_tier"):
        PaperSettings(rate_limit_tier="gold")
    with pytest.raises(ValueError, match="volatility_bps"):
        PaperSettings(volatility_bps=Decimal("-1"))


def test_step_is_fast_enough_for_background_ticking():
    exchange = make_exchange()
    started = time.perf_counter()
    exchange.step(200)
    assert time.perf_counter() - started < 2.0
