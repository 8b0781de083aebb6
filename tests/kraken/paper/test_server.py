"""The paper exchange as krakenex sees it: real HTTP, real signatures, no mocks."""

from __future__ import annotations

import base64
import time
from decimal import Decimal

import krakenex
import pytest
import requests

from kraken.paper import PaperExchangeServer
from tests.kraken.paper.conftest import (
    CALL_TIMEOUT,
    CountingKraken,
    admin,
    balances_from_ledgers,
    make_client,
    private,
    settings,
)

# ---------------------------------------------------------------------------- public


def test_time_and_system_status(kraken):
    answer = kraken.query_public("Time", timeout=CALL_TIMEOUT)
    assert answer["error"] == []
    assert abs(answer["result"]["unixtime"] - time.time()) < 60
    # Kraken's "rfc1123": day padded, two-digit year.
    assert answer["result"]["rfc1123"].endswith("+0000")
    status = kraken.query_public("SystemStatus", timeout=CALL_TIMEOUT)["result"]
    assert status["status"] == "online"


def test_assets_all_and_filtered(kraken):
    everything = kraken.query_public("Assets", timeout=CALL_TIMEOUT)["result"]
    assert everything["XXBT"]["altname"] == "XBT"
    assert everything["XXBT"]["decimals"] == 10
    some = kraken.query_public("Assets", {"asset": "XBT,ETH"}, timeout=CALL_TIMEOUT)["result"]
    assert set(some) == {"XXBT", "XETH"}
    unknown = kraken.query_public("Assets", {"asset": "NOPE"}, timeout=CALL_TIMEOUT)
    assert unknown == {"error": ["EQuery:Unknown asset"]}


def test_asset_pairs_lists_traded_pairs_keyed_by_id(kraken):
    result = kraken.query_public("AssetPairs", timeout=CALL_TIMEOUT)["result"]
    assert set(result) == {"XXBTZUSD", "XETHZUSD", "SOLUSD", "USDTZUSD", "XDGUSD", "XETHXXBT"}
    row = result["XXBTZUSD"]
    assert row["altname"] == "XBTUSD" and row["wsname"] == "XBT/USD"
    assert row["base"] == "XXBT" and row["quote"] == "ZUSD"
    assert row["fees"][0] == [0, 0.4] and row["fees_maker"][0] == [0, 0.25]
    assert row["ordermin"] == "0.00005" and row["tick_size"] == "0.1"
    one = kraken.query_public("AssetPairs", {"pair": "XBTUSD"}, timeout=CALL_TIMEOUT)["result"]
    assert list(one) == ["XXBTZUSD"]
    unknown = kraken.query_public("AssetPairs", {"pair": "FOOBAR"}, timeout=CALL_TIMEOUT)
    assert unknown == {"error": ["EQuery:Unknown asset pair"]}
    # A pair Kraken lists but this exchange does not trade is unknown here.
    not_traded = kraken.query_public("AssetPairs", {"pair": "XBTEUR"}, timeout=CALL_TIMEOUT)
    assert not_traded == {"error": ["EQuery:Unknown asset pair"]}


def test_ticker_shapes(kraken):
    result = kraken.query_public("Ticker", {"pair": "BTC/USD,ETHXBT"}, timeout=CALL_TIMEOUT)[
        "result"
    ]
    assert set(result) == {"XXBTZUSD", "XETHXXBT"}
    entry = result["XXBTZUSD"]
    assert len(entry["a"]) == 3 and len(entry["b"]) == 3 and len(entry["c"]) == 2
    for key in "vplh":
        assert len(entry[key]) == 2 and all(isinstance(v, str) for v in entry[key])
    assert all(isinstance(count, int) for count in entry["t"])
    assert isinstance(entry["o"], str)
    bid, ask = Decimal(entry["b"][0]), Decimal(entry["a"][0])
    assert bid < Decimal(60000) < ask
    # The cross is the ratio of its USD legs.
    eth_usd = Decimal(
        kraken.query_public("Ticker", {"pair": "ETHUSD"}, timeout=CALL_TIMEOUT)["result"][
            "XETHZUSD"
        ]["o"]
    )
    cross_mid = (Decimal(result["XETHXXBT"]["a"][0]) + Decimal(result["XETHXXBT"]["b"][0])) / 2
    assert abs(cross_mid - eth_usd / Decimal(60000)) < Decimal("0.0001")


# ---------------------------------------------------------------------------- auth


def test_bad_signature_unknown_key_and_unknown_method(server):
    wrong = CountingKraken(server.key, base64.b64encode(b"x" * 64).decode())
    wrong.uri = server.url
    assert wrong.query_private("Balance", timeout=CALL_TIMEOUT) == {
        "error": ["EAPI:Invalid signature"]
    }
    stranger = CountingKraken("not-a-key", server.secret)
    stranger.uri = server.url
    assert stranger.query_private("Balance", timeout=CALL_TIMEOUT) == {
        "error": ["EAPI:Invalid key"]
    }
    client = make_client(server)
    assert client.query_private("NoSuchThing", timeout=CALL_TIMEOUT) == {
        "error": ["EGeneral:Unknown method"]
    }
    assert client.query_public("NoSuchThing", timeout=CALL_TIMEOUT) == {
        "error": ["EGeneral:Unknown method"]
    }
    for c in (wrong, stranger, client):
        c.close()


def test_replayed_nonce_is_refused(server):
    class FixedNonce(krakenex.API):
        def _nonce(self) -> int:
            return 1_000_000

    client = FixedNonce(server.key, server.secret)
    client.uri = server.url
    assert client.query_private("Balance", timeout=CALL_TIMEOUT)["error"] == []
    assert client.query_private("Balance", timeout=CALL_TIMEOUT) == {
        "error": ["EAPI:Invalid nonce"]
    }
    client.close()


# ---------------------------------------------------------------------------- balances


def test_balance_balance_ex_and_trade_balance(kraken):
    assert private(kraken, "Balance") == {"ZUSD": "100000.0000"}
    txid = private(
        kraken,
        "AddOrder",
        {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "50000.0", "volume": "1"},
    )["txid"][0]
    assert txid[0] == "O" and [len(part) for part in txid.split("-")] == [6, 5, 6]
    extended = private(kraken, "BalanceEx")
    # Held: 1 × 50000 × (1 + 0.40 %) = 50200.
    assert extended["ZUSD"] == {"balance": "100000.0000", "hold_trade": "50200.0000"}
    trade_balance = private(kraken, "TradeBalance")
    assert trade_balance["eb"] == "100000.0000" and trade_balance["e"] == "100000.0000"


# ---------------------------------------------------------------------------- AddOrder checks


@pytest.mark.parametrize(
    ("order", "error"),
    [
        ({"pair": "FOOBAR"}, "EQuery:Unknown asset pair"),
        ({"type": "hold"}, "EGeneral:Invalid arguments:type"),
        ({"ordertype": "stop-loss"}, "EGeneral:Invalid arguments:ordertype"),
        ({"volume": "abc"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "0.000000001"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "0.00001"}, "EOrder:Order minimum not met"),
        (
            {"price": "60000.05"},
            "EOrder:Invalid price:XBT/USD price can only be specified up to 1 decimals.",
        ),
        ({"oflags": "fcib,fciq"}, "EGeneral:Invalid arguments:oflags"),
        ({"volume": "10"}, "EOrder:Insufficient funds"),
        ({"userref": "x"}, "EGeneral:Invalid arguments:userref"),
    ],
)
def test_add_order_refusals(kraken, order, error):
    request = {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "price": "50000.0",
        "volume": "0.01",
    }
    request.update(order)
    assert kraken.query_private("AddOrder", request, timeout=CALL_TIMEOUT) == {"error": [error]}
    assert private(kraken, "OpenOrders") == {"open": {}}


def test_cost_minimum_and_tick_size(kraken):
    assert kraken.query_private(
        "AddOrder",
        {"pair": "XDGUSD", "type": "buy", "ordertype": "limit", "price": "0.01", "volume": "30"},
        timeout=CALL_TIMEOUT,
    ) == {"error": ["EOrder:Cost minimum not met"]}
    assert kraken.query_private(
        "AddOrder",
        {"pair": "USDTUSD", "type": "buy", "ordertype": "market", "volume": "1"},
        timeout=CALL_TIMEOUT,
    ) == {"error": ["EOrder:Order minimum not met"]}


def test_validate_places_nothing(kraken):
    result = private(
        kraken,
        "AddOrder",
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "market",
            "volume": "0.01",
            "validate": True,
        },
    )
    assert result == {"descr": {"order": "buy 0.01000000 XBTUSD @ market"}}
    assert private(kraken, "ClosedOrders")["count"] == 0


# ---------------------------------------------------------------------------- fills


def test_limit_partial_fill_then_cancel_keeps_fills_and_books_agree(server, kraken):
    txid = private(
        kraken,
        "AddOrder",
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "59990.0",
            "volume": "0.5",
            "userref": 42,
        },
    )["txid"][0]
    assert private(kraken, "OpenOrders")["open"][txid]["vol_exec"] == "0.00000000"
    server.exchange.set_price("XBT/USD", Decimal("59900"))
    open_order = private(kraken, "OpenOrders", {"trades": True})["open"][txid]
    executed = Decimal(open_order["vol_exec"])
    assert Decimal(0) < executed < Decimal("0.5")
    assert open_order["status"] == "open" and len(open_order["trades"]) == 1

    assert private(kraken, "CancelOrder", {"txid": txid}) == {"count": 1}
    closed = private(kraken, "ClosedOrders", {"trades": True})
    assert closed["count"] == 1
    order = closed["closed"][txid]
    assert order["status"] == "canceled" and order["reason"] == "User requested"
    assert Decimal(order["vol_exec"]) == executed and order["misc"] == "partial"
    assert order["price"] == "59990.00000"
    assert order["userref"] == 42

    trades = private(kraken, "TradesHistory", {"ledgers": True})
    assert trades["count"] == 1
    ((trade_txid, trade),) = trades["trades"].items()
    assert trade["ordertxid"] == txid and trade["pair"] == "XXBTZUSD" and trade["maker"] is True
    assert Decimal(trade["vol"]) == executed
    cost = Decimal(trade["cost"])
    assert cost == executed * Decimal("59990")
    # Maker fee: 0.25 % of cost, in quote.
    assert Decimal(trade["fee"]) == (cost * Decimal("0.0025")).quantize(Decimal("0.0001"))
    ledger = private(kraken, "Ledgers")["ledger"]
    legs = {e["asset"]: e for e in ledger.values() if e["refid"] == trade_txid}
    assert set(legs) == {"XXBT", "ZUSD"} and set(trade["ledgers"]) == set(ledger) & set(
        trade["ledgers"]
    )
    assert Decimal(legs["XXBT"]["amount"]) == executed
    assert Decimal(legs["ZUSD"]["amount"]) == -cost
    assert Decimal(legs["ZUSD"]["fee"]) == Decimal(trade["fee"])

    balances = {k: Decimal(v) for k, v in private(kraken, "Balance").items()}
    assert balances == balances_from_ledgers(kraken)
    assert private(kraken, "BalanceEx")["ZUSD"]["hold_trade"] == "0.0000"
    assert private(kraken, "QueryOrders", {"txid": txid})[txid]["status"] == "canceled"
    assert list(private(kraken, "QueryTrades", {"txid": trade_txid})) == [trade_txid]


def test_resting_order_fills_in_several_maker_fills_until_closed(server, kraken):
    server.exchange.deposit("ETH", Decimal("1"))
    txid = private(
        kraken,
        "AddOrder",
        {"pair": "ETHUSD", "type": "sell", "ordertype": "limit", "price": "3010.00", "volume": "1"},
    )["txid"][0]
    assert private(kraken, "BalanceEx")["XETH"]["hold_trade"] == "1.0000000000"
    passes = 0
    while private(kraken, "QueryOrders", {"txid": txid})[txid]["status"] == "open":
        assert passes < 50, "the crossed order never completed"
        server.exchange.set_price("ETH/USD", Decimal("3020"))  # bid above 3010: crossed
        passes += 1
    order = private(kraken, "QueryOrders", {"txid": txid, "trades": True})[txid]
    assert order["status"] == "closed" and order["reason"] is None
    assert order["vol_exec"] == "1.00000000" and len(order["trades"]) >= 2
    trades = private(kraken, "QueryTrades", {"txid": ",".join(order["trades"])}).values()
    assert all(t["maker"] and t["price"] == "3010.00000" and t["type"] == "sell" for t in trades)
    assert sum(Decimal(t["vol"]) for t in trades) == 1
    assert private(kraken, "BalanceEx")["XETH"] == {
        "balance": "0.0000000000",
        "hold_trade": "0.0000000000",
    }
    balances = {k: Decimal(v) for k, v in private(kraken, "Balance").items()}
    assert balances == balances_from_ledgers(kraken)


def test_fee_in_base_with_fcib(kraken):
    txid = private(
        kraken,
        "AddOrder",
        {"pair": "ETHUSD", "type": "buy", "ordertype": "market", "volume": "1", "oflags": "fcib"},
    )["txid"][0]
    order = private(kraken, "QueryOrders", {"txid": txid, "trades": True})[txid]
    assert order["status"] == "closed" and order["oflags"] == "fcib"
    assert order["vol_exec"] == "1.00000000"
    trades = private(kraken, "QueryTrades", {"txid": ",".join(order["trades"])})
    ledger = private(kraken, "Ledgers")["ledger"]
    for trade_txid, trade in trades.items():
        assert trade["maker"] is False
        legs = {e["asset"]: e for e in ledger.values() if e["refid"] == trade_txid}
        # The fee left the base leg: 0.40 % of the volume, in ETH; the quote leg paid none.
        assert Decimal(legs["XETH"]["fee"]) == Decimal(trade["vol"]) * Decimal("0.004")
        assert Decimal(legs["ZUSD"]["fee"]) == 0
        # TradesHistory still states the fee in quote.
        assert Decimal(trade["fee"]) > 0
    balances = private(kraken, "Balance")
    assert Decimal(balances["XETH"]) == Decimal("0.996")


def test_post_only_that_would_cross_is_accepted_then_canceled(kraken):
    result = private(
        kraken,
        "AddOrder",
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "61000.0",
            "volume": "0.01",
            "oflags": "post",
        },
    )
    txid = result["txid"][0]
    order = private(kraken, "QueryOrders", {"txid": txid})[txid]
    assert order["status"] == "canceled" and order["reason"] == "Post only order"
    assert order["vol_exec"] == "0.00000000" and order["oflags"] == "post,fciq"
    assert private(kraken, "TradesHistory")["count"] == 0


def test_marketable_limit_fills_as_taker_at_the_touch(kraken):
    txid = private(
        kraken,
        "AddOrder",
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "61000.0",
            "volume": "0.1",
        },
    )["txid"][0]
    order = private(kraken, "QueryOrders", {"txid": txid})[txid]
    assert order["status"] == "closed" and order["vol_exec"] == "0.10000000"
    assert Decimal(order["price"]) < Decimal("61000")
    trades = private(kraken, "TradesHistory")["trades"].values()
    assert all(t["maker"] is False for t in trades)
    cost = sum(Decimal(t["cost"]) for t in trades)
    assert Decimal(order["cost"]) == cost
    # Taker: 0.40 % of cost per trade.
    assert Decimal(order["fee"]) == sum(
        (Decimal(t["cost"]) * Decimal("0.004")).quantize(Decimal("0.0001")) for t in trades
    )


def test_cancel_by_userref_cl_ord_id_and_cancel_all(kraken):
    def limit(**extra):
        request = {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "50000.0",
            "volume": "0.01",
        }
        request.update(extra)
        return private(kraken, "AddOrder", request)["txid"][0]

    limit(userref=7)
    limit(userref=7)
    tagged = limit(cl_ord_id="my-order-1")
    limit()
    assert private(kraken, "OpenOrders", {"userref": 7})["open"].keys().__len__() == 2
    assert list(private(kraken, "OpenOrders", {"cl_ord_id": "my-order-1"})["open"]) == [tagged]
    assert private(kraken, "CancelOrder", {"txid": "7"}) == {"count": 2}
    assert private(kraken, "CancelOrder", {"cl_ord_id": "my-order-1"}) == {"count": 1}
    assert kraken.query_private("CancelOrder", {"txid": tagged}, timeout=CALL_TIMEOUT) == {
        "error": ["EOrder:Unknown order"]
    }
    assert private(kraken, "CancelAll") == {"count": 1}
    assert private(kraken, "OpenOrders") == {"open": {}}
    assert private(kraken, "ClosedOrders")["count"] == 4
    assert private(kraken, "OpenPositions") == {}


# ---------------------------------------------------------------------------- paging


def test_history_pages_newest_first_with_count_and_bounds(server, kraken):
    for _ in range(55):
        server.exchange.external_trade("XBT/USD", "buy", Decimal("0.001"))
    first = private(kraken, "TradesHistory")
    assert first["count"] == 55 and len(first["trades"]) == 50
    second = private(kraken, "TradesHistory", {"ofs": 50})
    assert second["count"] == 55 and len(second["trades"]) == 5
    ids = list(first["trades"]) + list(second["trades"])
    assert len(set(ids)) == 55
    expected = [t.txid for t in server.exchange.trades()]
    assert ids == expected  # newest first, no gap, no repeat
    # start is exclusive, end inclusive, both accept ids.
    after = private(kraken, "TradesHistory", {"start": ids[10]})
    assert list(after["trades"]) == ids[:10] and after["count"] == 10
    until = private(kraken, "TradesHistory", {"end": ids[50]})
    assert list(until["trades"]) == ids[50:] and until["count"] == 5
    times = [t["time"] for t in first["trades"].values()]
    assert times == sorted(times, reverse=True)
    later = private(kraken, "TradesHistory", {"start": str(time.time() + 60)})
    assert later == {"trades": {}, "count": 0}
    ledger = private(kraken, "Ledgers", {"asset": "XBT"})
    assert ledger["count"] == 55 and all(e["asset"] == "XXBT" for e in ledger["ledger"].values())
    deposits = private(kraken, "Ledgers", {"type": "deposit"})
    assert deposits["count"] == 1
    closed = private(kraken, "ClosedOrders", {"ofs": 50})
    assert closed["count"] == 55 and len(closed["closed"]) == 5
    without = private(kraken, "TradesHistory", {"without_count": True})
    assert "count" not in without


# ---------------------------------------------------------------------------- admin


def test_admin_deposit_withdraw_and_drift(server, kraken):
    status, answer = admin(server, "/admin/deposit", {"asset": "XBT", "amount": "0.5"})
    assert status == 200 and answer["ok"] is True and answer["asset"] == "XXBT"
    status, answer = admin(server, "/admin/withdraw", {"asset": "ZUSD", "amount": 250.5})
    assert status == 200 and answer["balance"] == "99749.5000"
    ledger = private(kraken, "Ledgers")["ledger"].values()
    kinds = sorted((e["type"], e["asset"], e["amount"]) for e in ledger)
    assert ("deposit", "XXBT", "0.5000000000") in kinds
    assert ("withdrawal", "ZUSD", "-250.5000") in kinds
    balances = {k: Decimal(v) for k, v in private(kraken, "Balance").items()}
    assert balances == balances_from_ledgers(kraken)

    status, _ = admin(server, "/admin/balance", {"asset": "BTC", "balance": "0.4"})
    assert status == 200
    assert private(kraken, "Balance")["XXBT"] == "0.4000000000"
    assert private(kraken, "Ledgers")["count"] == 3  # the drift left no entry


def test_admin_refusals_name_the_field(server):
    assert admin(server, "/admin/deposit", {"asset": "XBT"}) == (
        400,
        {"error": "amount: missing field"},
    )
    status, answer = admin(server, "/admin/deposit", {"asset": "NOPE", "amount": "1"})
    assert status == 400 and answer["error"].startswith("asset:")
    status, answer = admin(server, "/admin/withdraw", {"asset": "USD", "amount": "1000000"})
    assert status == 400 and answer["error"].startswith("amount:")
    status, answer = admin(server, "/admin/price", {"pair": "FOO/BAR", "price": "1"})
    assert status == 400 and answer["error"].startswith("pair:")
    status, answer = admin(server, "/admin/fault", {"kind": "meteor", "rate": 1, "seconds": 1})
    assert status == 400 and answer["error"].startswith("kind:")
    status, answer = admin(server, "/admin/rate_limit", {"tier": "platinum"})
    assert status == 400 and answer["error"].startswith("tier:")
    status, answer = admin(server, "/admin/tick", {"steps": "many"})
    assert status == 400 and answer["error"].startswith("steps:")


def test_admin_external_trade_price_tick_and_state(server, kraken):
    status, answer = admin(
        server, "/admin/trade", {"pair": "btc/usd", "side": "buy", "volume": "0.01"}
    )
    assert status == 200 and answer["pair"] == "XXBTZUSD"
    trades = private(kraken, "TradesHistory", {"ledgers": True})["trades"]
    assert list(trades) == answer["trades"]
    assert next(iter(trades.values()))["ordertxid"] == answer["txid"]
    assert private(kraken, "QueryOrders", {"txid": answer["txid"]})[answer["txid"]]["status"] == (
        "closed"
    )

    status, answer = admin(server, "/admin/price", {"pair": "XBTUSD", "price": "65000"})
    assert status == 200 and answer["mid"] == "65000.0"
    ticker = kraken.query_public("Ticker", {"pair": "XBTUSD"}, timeout=CALL_TIMEOUT)["result"]
    assert Decimal(ticker["XXBTZUSD"]["b"][0]) < 65000 < Decimal(ticker["XXBTZUSD"]["a"][0])

    before = server.exchange.market.mid("XXBTZUSD")
    assert admin(server, "/admin/tick", {"steps": 5}) == (200, {"ok": True, "steps": 5})
    assert server.exchange.market.mid("XXBTZUSD") != before

    status, state = admin(server, "/admin/state")
    assert status == 200 and state["trades"] == 1 and state["open_orders"] == 0
    assert state["prices"]["XBT/USD"]["pair"] == "XXBTZUSD"
    assert "ZUSD" in state["balances"]


# ---------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("unavailable", "EService:Unavailable"),
        ("rate_limit", "EAPI:Rate limit exceeded"),
        ("internal", "EGeneral:Internal error"),
    ],
)
def test_envelope_faults(server, kraken, kind, error):
    assert admin(server, "/admin/fault", {"kind": kind, "rate": 1, "seconds": 30})[0] == 200
    assert kraken.query_private("Balance", timeout=CALL_TIMEOUT) == {"error": [error]}
    assert kraken.query_public("Time", timeout=CALL_TIMEOUT) == {"error": [error]}
    assert kraken.response.status_code == 200
    assert admin(server, "/admin/fault/clear")[0] == 200
    assert kraken.query_private("Balance", timeout=CALL_TIMEOUT)["error"] == []


def test_http_502_drop_and_latency_faults(server, kraken):
    admin(server, "/admin/fault", {"kind": "http_502", "rate": 1, "seconds": 30})
    with pytest.raises(requests.HTTPError, match="502"):
        kraken.query_private("Balance", timeout=CALL_TIMEOUT)
    admin(server, "/admin/fault/clear")

    admin(server, "/admin/fault", {"kind": "drop", "rate": 1, "seconds": 30})
    with pytest.raises(requests.ConnectionError):
        kraken.query_private("Balance", timeout=CALL_TIMEOUT)
    admin(server, "/admin/fault/clear")

    admin(server, "/admin/fault", {"kind": "latency", "rate": 1, "seconds": 30, "latency_ms": 150})
    started = time.monotonic()
    assert kraken.query_private("Balance", timeout=CALL_TIMEOUT)["error"] == []
    assert time.monotonic() - started >= 0.15
    with pytest.raises(requests.Timeout):
        kraken.query_public("Time", timeout=0.05)
    admin(server, "/admin/fault/clear")
    assert kraken.query_public("Time", timeout=CALL_TIMEOUT)["error"] == []


def test_fault_rate_hits_a_share_and_expires(server, kraken):
    admin(server, "/admin/fault", {"kind": "unavailable", "rate": 0.5, "seconds": 30})
    answers = [kraken.query_public("Time", timeout=CALL_TIMEOUT)["error"] for _ in range(60)]
    failed = sum(1 for error in answers if error)
    assert 10 < failed < 50
    admin(server, "/admin/fault", {"kind": "unavailable", "rate": 1, "seconds": 0.1})
    deadline = time.monotonic() + 5
    while kraken.query_public("Time", timeout=CALL_TIMEOUT)["error"]:
        assert time.monotonic() < deadline, "the fault did not expire"


# ---------------------------------------------------------------------------- rate limit


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time_ns()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)


def test_rest_rate_counter_by_tier():
    clock = FakeClock()
    server = PaperExchangeServer(settings(rate_limit_tier="starter"), clock=clock)
    server.start()
    client = make_client(server)
    try:
        # Starter: max 15, decay 0.33/s; Balance costs 1, Ledgers 2, AddOrder nothing.
        for _ in range(13):
            assert client.query_private("Balance", timeout=CALL_TIMEOUT)["error"] == []
        assert client.query_private("Ledgers", timeout=CALL_TIMEOUT)["error"] == []
        limited = {"error": ["EAPI:Rate limit exceeded"]}
        assert client.query_private("Balance", timeout=CALL_TIMEOUT) == limited
        order = {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "50000.0",
            "volume": "0.01",
        }
        assert client.query_private("AddOrder", order, timeout=CALL_TIMEOUT)["error"] == []
        clock.advance(3.1)  # decays by 1.02
        assert client.query_private("Balance", timeout=CALL_TIMEOUT)["error"] == []
        assert client.query_private("Balance", timeout=CALL_TIMEOUT) == limited
        # Switching tiers restarts the counter; off disables it.
        assert admin(server, "/admin/rate_limit", {"tier": "off"})[0] == 200
        for _ in range(30):
            assert client.query_private("Balance", timeout=CALL_TIMEOUT)["error"] == []
        admin(server, "/admin/rate_limit", {"tier": "pro"})
        results = [
            client.query_private("Balance", timeout=CALL_TIMEOUT)["error"] for _ in range(21)
        ]
        assert results[:20] == [[]] * 20 and results[20] == limited["error"]
    finally:
        client.close()
        server.stop()


# ---------------------------------------------------------------------------- persistence


def test_restart_with_state_file_keeps_the_account(tmp_path):
    state = tmp_path / "paper.sqlite"
    first = PaperExchangeServer(settings(state_file=state))
    first.start()
    client = make_client(first)
    try:
        resting = private(
            client,
            "AddOrder",
            {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "limit",
                "price": "50000.0",
                "volume": "0.01",
            },
        )["txid"][0]
        private(
            client,
            "AddOrder",
            {"pair": "ETHUSD", "type": "buy", "ordertype": "market", "volume": "0.5"},
        )
        admin(first, "/admin/deposit", {"asset": "SOL", "amount": "3"})
        balances = private(client, "Balance")
        trades = private(client, "TradesHistory")
        ledger = private(client, "Ledgers")
        mid = first.exchange.market.mid("XETHZUSD")
        key, secret = first.key, first.secret
    finally:
        client.close()
        first.stop()

    second = PaperExchangeServer(settings(state_file=state))
    second.start()
    client = make_client(second)
    try:
        assert (second.key, second.secret) == (key, secret)
        assert private(client, "Balance") == balances
        assert private(client, "TradesHistory") == trades
        assert private(client, "Ledgers") == ledger
        assert list(private(client, "OpenOrders")["open"]) == [resting]
        assert second.exchange.market.mid("XETHZUSD") == mid

        class OldNonce(krakenex.API):
            def _nonce(self) -> int:
                return 5

        stale = OldNonce(key, secret)
        stale.uri = second.url
        assert stale.query_private("Balance", timeout=CALL_TIMEOUT) == {
            "error": ["EAPI:Invalid nonce"]
        }
        stale.close()
        # New ids never reuse old ones.
        new = private(
            client,
            "AddOrder",
            {"pair": "ETHUSD", "type": "buy", "ordertype": "market", "volume": "0.5"},
        )
        assert new["txid"][0] not in trades["trades"] and new["txid"][0] != resting
    finally:
        client.close()
        second.stop()


def test_stop_leaves_no_connection_thread(server):
    import threading

    clients = [make_client(server) for _ in range(3)]
    for client in clients:
        assert client.query_public("Time", timeout=CALL_TIMEOUT)["error"] == []
    server.stop()
    deadline = time.monotonic() + 5
    while any(t.name.startswith("paper-") for t in threading.enumerate()):
        assert time.monotonic() < deadline, [t.name for t in threading.enumerate()]
        time.sleep(0.01)
    for client in clients:
        client.close()


def test_json_body_is_signed_over_the_raw_bytes(server):
    import json

    from kraken.paper.api import sign

    body = json.dumps({"nonce": str(time.time_ns()), "asset": "ZUSD"}).encode()
    nonce = json.loads(body)["nonce"]
    headers = {
        "API-Key": server.key,
        "API-Sign": sign("/0/private/TradeBalance", nonce, body, server.secret),
        "Content-Type": "application/json",
    }
    answer = requests.post(
        server.url + "/0/private/TradeBalance", data=body, headers=headers, timeout=CALL_TIMEOUT
    ).json()
    assert answer["error"] == [] and answer["result"]["eb"] == "100000.0000"


def test_relative_expiry_and_unknown_order_queries(kraken):
    txid = private(
        kraken,
        "AddOrder",
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "50000.0",
            "volume": "0.01",
            "expiretm": "+3600",
        },
    )["txid"][0]
    order = private(kraken, "OpenOrders")["open"][txid]
    assert order["time_in_force"] == "gtd"
    assert 3590 < order["expiretm"] - order["opentm"] <= 3600.001
    assert kraken.query_private(
        "QueryOrders", {"txid": "OAAAAA-BBBBB-CCCCCC"}, timeout=CALL_TIMEOUT
    ) == {"error": ["EOrder:Invalid order"]}
    assert kraken.query_private("QueryOrders", timeout=CALL_TIMEOUT) == {
        "error": ["EGeneral:Invalid arguments:txid"]
    }
    assert kraken.query_private("TradesHistory", {"start": "TNOPE"}, timeout=CALL_TIMEOUT) == {
        "error": ["EGeneral:Invalid arguments:start"]
    }


def test_every_ledger_entry_carries_the_running_balance_of_its_asset(server, kraken):
    """`balance` is the asset's balance after the entry (what reconciliation takes as the
    exchange's balance as of it), across trades, fees in base, deposits, withdrawals and a
    silent drift (the next entry goes on from the drifted balance)."""
    private(
        kraken,
        "AddOrder",
        {"pair": "ETHUSD", "type": "buy", "ordertype": "market", "volume": "1", "oflags": "fcib"},
    )
    private(
        kraken,
        "AddOrder",
        {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.1"},
    )
    admin(server, "/admin/deposit", {"asset": "XBT", "amount": "0.5"})
    admin(server, "/admin/balance", {"asset": "ETH", "balance": "0.9"})
    private(
        kraken,
        "AddOrder",
        {"pair": "ETHUSD", "type": "sell", "ordertype": "market", "volume": "0.4"},
    )
    admin(server, "/admin/withdraw", {"asset": "USD", "amount": "100"})

    # Ledgers lists newest first; oldest first, entries of one time in the order booked
    newest_first = list(private(kraken, "Ledgers")["ledger"].values())
    entries = sorted(reversed(newest_first), key=lambda e: e["time"])
    running: dict[str, Decimal] = {}  # the opening balance is a deposit entry too
    for entry in entries:
        asset = entry["asset"]
        if asset == "XETH" and entry["type"] == "trade" and Decimal(entry["amount"]) < 0:
            running[asset] = Decimal("0.9")  # the drift, which left no entry
        running[asset] = (
            running.get(asset, Decimal(0)) + Decimal(entry["amount"]) - Decimal(entry["fee"])
        )
        assert Decimal(entry["balance"]) == running[asset], entry
    balances = {k: Decimal(v["balance"]) for k, v in private(kraken, "BalanceEx").items()}
    assert {a: v for a, v in balances.items() if a in running} == running
