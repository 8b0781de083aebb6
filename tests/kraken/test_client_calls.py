"""Every client call against the paper exchange through krakenex: typed results, names in
every form, and Kraken's error envelopes as typed exceptions."""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal

import pytest

from kraken import errors
from kraken.client import KrakenClient
from kraken.credentials import Credentials
from kraken.models import AddOrderResult, Order, Ticker
from kraken.names import KrakenNames, UnknownPairName
from kraken.nonce import NonceSource
from tests.kraken import proxy as scripted
from tests.kraken.conftest import NO_RETRY, admin, balance_of, external_trades

# ---------------------------------------------------------------------------- public


def test_server_time_and_status(client):
    status = client.system_status()
    assert status.status == "online" and status.is_online
    now_ns = client.server_time()
    assert isinstance(now_ns, int) and now_ns % 1_000_000_000 == 0
    assert abs(now_ns - status.timestamp_ns) < 5_000_000_000


@pytest.mark.parametrize(
    "name", ["BTC/USD", "XBT/USD", "XBTUSD", "XXBTZUSD", "btc/usd", "BTCUSD", "xbtusd"]
)
def test_ticker_resolves_every_pair_form(client, name):
    tickers = client.ticker(name)
    assert list(tickers) == ["XBT/USD"]
    ticker = tickers["XBT/USD"]
    assert isinstance(ticker, Ticker) and ticker.pair_id == "XXBTZUSD"
    assert ticker.bid < ticker.ask
    assert all(isinstance(v, Decimal) for v in (ticker.bid, ticker.ask, ticker.last, ticker.open))
    assert ticker.bid < ticker.mid < ticker.ask


def test_ticker_of_several_pairs_tracks_set_prices(client, server):
    admin(server, "/admin/price", {"pair": "ETH/USD", "price": "3210.5"})
    tickers = client.ticker(["XBT/USD", "ETHUSD", "XDG/USD", "DOGE/USD"])
    assert set(tickers) == {"XBT/USD", "ETH/USD", "XDG/USD"}
    assert tickers["ETH/USD"].mid == Decimal("3210.5")
    assert tickers["ETH/USD"].received_ns > 0


def test_unknown_pair_is_a_local_typed_error(client):
    with pytest.raises(UnknownPairName, match="NOPE/USD"):
        client.ticker("NOPE/USD")


def test_assets_and_asset_pairs(client):
    assets = {asset.id: asset for asset in client.assets()}
    assert assets["XXBT"].name == "XBT" and assets["ZUSD"].decimals == 4
    pairs = {pair.id: pair for pair in client.asset_pairs()}
    xbt_usd = pairs["XXBTZUSD"]
    assert (xbt_usd.base, xbt_usd.quote, xbt_usd.altname) == ("XBT", "USD", "XBTUSD")
    assert xbt_usd.lot_decimals == 8 and xbt_usd.ordermin == Decimal("0.00005")


def test_names_are_fetched_once_when_not_given(make_client, proxy):
    client = make_client(url=proxy.url, names=None)
    client.balance()
    client.ticker("BTC/USD")
    client.open_orders()
    assert proxy.count("/0/public/Assets") == 1
    assert proxy.count("/0/public/AssetPairs") == 1
    assert client.names.pair("XBTUSD").symbol == "XBT/USD"


# ---------------------------------------------------------------------------- balances


def test_balance_normalizes_assets_and_flags_variants(client, server):
    admin(server, "/admin/deposit", {"asset": "XBT", "amount": "0.25"})
    admin(server, "/admin/deposit", {"asset": "DOT28.S", "amount": "12.5"})
    admin(server, "/admin/deposit", {"asset": "ETH2.S", "amount": "1.5"})
    admin(server, "/admin/deposit", {"asset": "USD.M", "amount": "7"})

    lines = {line.raw_asset: line for line in client.balance()}

    assert lines["ZUSD"].asset == "USD" and lines["ZUSD"].balance == Decimal("100000")
    assert lines["XXBT"].asset == "XBT" and lines["XXBT"].balance == Decimal("0.25")
    assert not lines["XXBT"].is_variant
    bonded = lines["DOT28.S"]
    assert (bonded.asset, bonded.is_variant, bonded.suffix, bonded.bonded_days) == (
        "DOT",
        True,
        ".S",
        28,
    )
    assert bonded.balance == Decimal("12.5")
    assert (lines["ETH2.S"].asset, lines["ETH2.S"].is_variant) == ("ETH", True)
    assert (lines["USD.M"].asset, lines["USD.M"].is_variant) == ("USD", True)
    assert all(isinstance(line.balance, Decimal) for line in lines.values())


def test_balance_ex_shows_holds_and_available(client):
    client.add_order("XBT/USD", "buy", "limit", Decimal("0.1"), Decimal("50000"))

    usd = next(line for line in client.balance_ex() if line.raw_asset == "ZUSD")

    assert usd.balance == Decimal("100000")
    assert usd.hold_trade > Decimal("5000")  # 0.1 × 50000 plus the fee reserve
    assert usd.available == usd.balance - usd.hold_trade


def test_trade_balance_in_any_asset_form(client):
    by_name = client.trade_balance("USD")
    by_id = client.trade_balance("ZUSD")
    assert by_name.asset == by_id.asset == "USD"
    assert by_name.equivalent_balance == by_id.equivalent_balance == Decimal("100000")
    assert by_name.equity == Decimal("100000")
    assert by_name.margin_level is None


# ---------------------------------------------------------------------------- orders


def test_market_order_produces_trades_ledgers_and_a_closed_order(client):
    placed = client.add_order("BTC/USD", "buy", "market", Decimal("0.01"))

    assert isinstance(placed, AddOrderResult)
    assert placed.txid and placed.cl_ord_id and not placed.recovered and placed.attempts == 1
    assert uuid.UUID(placed.cl_ord_id)
    assert placed.description.startswith("buy 0.01000000 XBTUSD @ market")

    trades = [t for t in client.trades_history() if t.order_txid == placed.txid]
    assert trades and sum(t.volume for t in trades) == Decimal("0.01")
    for trade in trades:
        assert (trade.symbol, trade.side, trade.fee_asset) == ("XBT/USD", "buy", "USD")
        # cost = price × volume, to USD's 4 decimals.
        assert abs(trade.cost - trade.price * trade.volume) < Decimal("0.0001")
        assert trade.fee > 0 and trade.maker is False
    assert client.query_trades([t.txid for t in trades]) == tuple(trades)

    (closed,) = client.closed_orders(cl_ord_id=placed.cl_ord_id)
    assert closed.txid == placed.txid and closed.status == "closed"
    assert closed.volume_executed == Decimal("0.01")
    assert closed.cost == sum(t.cost for t in trades)
    assert closed.close_ns is not None and closed.open_ns <= closed.close_ns
    assert client.query_orders([placed.txid]) == (closed,)

    usd_trades = client.ledgers(asset="USD", type="trade")
    refids = {entry.refid for entry in usd_trades}
    assert {t.txid for t in trades} <= refids
    assert all(entry.asset == "USD" and entry.amount < 0 for entry in usd_trades)
    xbt = client.ledgers(asset=["XBT"])
    assert sum(entry.amount for entry in xbt) == Decimal("0.01")
    assert balance_of(client, "XXBT") == Decimal("0.01")


def test_resting_limit_order_is_open_and_cancelable_three_ways(client):
    by_txid = client.add_order("XBT/USD", "buy", "limit", Decimal("0.001"), Decimal("40000"))
    by_ref = client.add_order(
        "XBT/USD", "buy", "limit", Decimal("0.001"), Decimal("40000.5"), userref=77
    )
    mine = f"mine-{uuid.uuid4().hex[:8]}"
    # A sell needs XBT: buy some first, then rest a sell far above the market.
    client.add_order("XBT/USD", "buy", "market", Decimal("0.002"))
    by_client_id = client.add_order(
        "XBTUSD", "sell", "limit", Decimal("0.001"), Decimal("90000"), cl_ord_id=mine
    )
    assert by_client_id.cl_ord_id == mine and by_ref.cl_ord_id is None and by_ref.userref == 77

    open_orders = {order.txid: order for order in client.open_orders()}
    assert set(open_orders) == {by_txid.txid, by_ref.txid, by_client_id.txid}
    resting = open_orders[by_txid.txid]
    assert isinstance(resting, Order) and resting.is_open and resting.status == "open"
    assert resting.limit_price == Decimal("40000") and resting.average_price is None
    assert resting.remaining == Decimal("0.001")
    assert [o.txid for o in client.open_orders(userref=77)] == [by_ref.txid]
    assert [o.txid for o in client.open_orders(cl_ord_id=mine)] == [by_client_id.txid]

    assert client.cancel_order(by_txid.txid).count == 1
    assert client.cancel_order(userref=77).count == 1
    assert client.cancel_order(cl_ord_id=mine).count == 1
    assert client.open_orders() == ()
    canceled = {o.txid: o for o in client.closed_orders()}
    assert canceled[by_txid.txid].status == "canceled"
    assert canceled[by_txid.txid].reason == "User requested"


def test_validate_only_places_nothing(client):
    result = client.add_order(
        "XBT/USD", "buy", "limit", Decimal("0.01"), Decimal("1000"), validate=True
    )
    assert result.validated and result.txid is None
    assert client.open_orders() == () and client.closed_orders() == ()


def test_cancel_all_counts(client):
    for price in ("40000", "41000", "42000"):
        client.add_order("XBT/USD", "buy", "limit", Decimal("0.001"), Decimal(price))
    assert client.cancel_all().count == 3
    assert client.cancel_all().count == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"volume": 0.01}, "volume"),
        ({"volume": Decimal("0.000000001")}, "volume"),
        ({"price": Decimal("50000.05")}, "price"),
        ({"price": None}, "price"),
        ({"side": "hold"}, "side"),
        ({"ordertype": "moon"}, "ordertype"),
        ({"pair": "NOPE/USD"}, "pair"),
        ({"userref": 5, "cl_ord_id": "abc"}, "cl_ord_id"),
        ({"cl_ord_id": "x" * 40}, "cl_ord_id"),
        ({"timeinforce": "forever"}, "timeinforce"),
    ],
)
def test_bad_order_requests_are_refused_before_sending(make_client, proxy, kwargs, field):
    client = make_client(url=proxy.url)
    request = {
        "pair": "XBT/USD",
        "side": "buy",
        "ordertype": "limit",
        "volume": Decimal("0.01"),
        "price": Decimal("50000"),
    }
    request.update(kwargs)
    with pytest.raises(errors.OrderRequestError) as raised:
        client.add_order(**request)
    assert raised.value.field == field
    assert proxy.count("/0/private/AddOrder") == 0


def test_market_order_with_a_price_is_refused(client):
    with pytest.raises(errors.OrderRequestError, match="price"):
        client.add_order("XBT/USD", "buy", "market", Decimal("0.01"), Decimal("1"))


# ---------------------------------------------------------------------------- error envelopes


def test_insufficient_funds(client, sleeps):
    with pytest.raises(errors.InsufficientFunds) as raised:
        client.add_order("XBT/USD", "buy", "market", Decimal("1000"))
    assert raised.value.errors == ("EOrder:Insufficient funds",)
    assert raised.value.method == "AddOrder"


def test_order_minimum_not_met(client):
    with pytest.raises(errors.OrderMinimumNotMet):
        client.add_order("XBT/USD", "buy", "market", Decimal("0.00001"))


def test_unknown_order_on_cancel(make_client, sleeps):
    client = make_client(sleep=sleeps)
    with pytest.raises(errors.UnknownOrder) as raised:
        client.cancel_order("OAAAAA-BBBBB-CCCCCC")
    assert raised.value.method == "CancelOrder"
    assert sleeps.pauses == []


def test_invalid_arguments_name_the_argument(client):
    with pytest.raises(errors.InvalidArguments) as raised:
        client.query_trades(["TNOPE0-NOPE0-NOPE00"])
    assert raised.value.argument == "txid"


def test_unknown_asset_pair_and_unknown_method_through_raw_calls(client):
    with pytest.raises(errors.UnknownAssetPair):
        client.call_public("Ticker", {"pair": "NOPEUSD"})
    with pytest.raises(errors.GeneralError, match="EGeneral:Unknown method"):
        client.call_public("NoSuchMethod")


def test_invalid_key_is_not_retried(make_client, server, sleeps):
    wrong = Credentials("not-the-key", server.secret)
    client = make_client(credentials=wrong, sleep=sleeps)
    with pytest.raises(errors.InvalidKey):
        client.balance()
    assert sleeps.pauses == []


def test_invalid_signature_is_not_retried(make_client, server, sleeps):
    other_secret = base64.b64encode(b"some other secret of sixty-four bytes").decode()
    client = make_client(credentials=Credentials(server.key, other_secret), sleep=sleeps)
    with pytest.raises(errors.InvalidSignature):
        client.balance()
    assert sleeps.pauses == []


def test_invalid_nonce_after_the_key_saw_a_larger_one(make_client, server):
    # Another program used the key with a much larger nonce scale...
    future = NonceSource(server.key, clock_ns=lambda: 10**30)
    make_client(nonce=future, retry=NO_RETRY).balance()
    # ...so a source that knows nothing of it (its own sequence, a normal clock) is refused.
    stale = NonceSource("unrelated-" + server.key[:4], clock_ns=lambda: 10**15)
    client = make_client(nonce=stale, retry=NO_RETRY)
    with pytest.raises(errors.InvalidNonce) as raised:
        client.balance()
    assert raised.value.retryable


def test_private_call_without_credentials(make_client):
    client = make_client(credentials=None)
    with pytest.raises(errors.MissingCredentials):
        client.balance()
    assert client.ticker("XBT/USD")  # public calls still work


def test_url_with_a_path_is_refused():
    with pytest.raises(ValueError, match="url"):
        KrakenClient("http://127.0.0.1:1/kraken", None, timeout_seconds=1)
    with pytest.raises(ValueError, match="timeout_seconds"):
        KrakenClient("http://127.0.0.1:1", None, timeout_seconds=0)


# ---------------------------------------------------------------------------- odd answers


def test_malformed_answer_names_the_field_and_is_not_retried(make_client, proxy, sleeps):
    client = make_client(url=proxy.url, sleep=sleeps)
    proxy.script("/0/private/Balance", scripted.answer({"error": [], "result": {"XXBT": "abc"}}))
    with pytest.raises(errors.MalformedResponse) as raised:
        client.balance()
    assert raised.value.field == "result[XXBT]"
    assert sleeps.pauses == []
    proxy.script("/0/private/Balance", scripted.answer({"result": {}}))
    with pytest.raises(errors.MalformedResponse, match="error"):
        client.balance()
    proxy.script("/0/private/Balance", scripted.answer(["not", "an", "object"]))
    with pytest.raises(errors.MalformedResponse, match="body"):
        client.balance()
    proxy.script("/0/private/Balance", scripted.answer({"error": []}))
    with pytest.raises(errors.MalformedResponse, match="result"):
        client.balance()


def test_warnings_are_logged_not_raised(make_client, proxy, captured_logs):
    client = make_client(url=proxy.url)
    proxy.script(
        "/0/public/Time",
        scripted.answer(
            {"error": ["WGeneral:Deprecated"], "result": {"unixtime": 1716800000, "rfc1123": ""}}
        ),
    )
    assert client.server_time() == 1_716_800_000_000_000_000
    assert any("WGeneral:Deprecated" in line and "WARNING" in line for line in captured_logs)


def test_history_of_external_trades_is_typed(client, server):
    external_trades(server, 3)
    trades = client.trades_history()
    assert len(trades) == 3
    assert [t.time_ns for t in trades] == sorted((t.time_ns for t in trades), reverse=True)
    assert all(t.symbol == "XBT/USD" and t.volume == Decimal("0.0001") for t in trades)


def test_bundled_names_work_offline(client):
    assert isinstance(client.names, KrakenNames)
    assert client.names.asset_name("XXBT") == "XBT"


def test_asset_names_of_every_form_select_the_same_ledger(client, server):
    external_trades(server, 2)
    by_alias = client.ledgers(asset="BTC")
    assert len(by_alias) == 2
    assert client.ledgers(asset="XBT") == by_alias
    assert client.ledgers(asset="XXBT") == by_alias
    assert all(entry.asset == "XBT" and entry.raw_asset == "XXBT" for entry in by_alias)
    both = client.ledgers(asset=["XBT", "ZUSD"], type="trade")
    assert {entry.asset for entry in both} == {"XBT", "USD"} and len(both) == 4
