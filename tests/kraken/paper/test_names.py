"""Name resolution against the bundled Kraken tables."""

from decimal import Decimal

import pytest

from kraken.names import KrakenNames, UnknownAssetName, UnknownPairName, load_bundled_results


@pytest.fixture(scope="module")
def names() -> KrakenNames:
    return KrakenNames.bundled()


@pytest.mark.parametrize(
    ("raw", "name", "suffix", "bonded", "variant"),
    [
        ("XXBT", "XBT", None, None, False),
        ("ZUSD", "USD", None, None, False),
        ("XXDG", "XDG", None, None, False),
        ("XBT.M", "XBT", ".M", None, True),
        ("XXBT.M", "XBT", ".M", None, True),
        ("DOT28.S", "DOT", ".S", 28, True),
        ("DOT28.S.S", "DOT", ".S", 28, True),
        ("ETH2", "ETH", None, None, True),
        ("ETH2.S", "ETH", ".S", None, True),
        ("USD.HOLD", "USD", ".HOLD", None, True),
        ("KFEE", "FEE", None, None, False),
        ("BTC", "XBT", None, None, False),
        ("DOGE", "XDG", None, None, False),
        ("XTZ", "XTZ", None, None, False),
        ("XXRP", "XRP", None, None, False),
        ("SOL", "SOL", None, None, False),
        ("USDC.F", "USDC", ".F", None, True),
        # Absent from the table: suffix and bonding stripped, the code kept.
        ("ATOM21.S", "ATOM", ".S", 21, True),
        ("ZETA", "ZETA", None, None, False),
        ("XION.B", "XION", ".B", None, True),
    ],
)
def test_asset_normalizes_every_kraken_form(names, raw, name, suffix, bonded, variant):
    resolved = names.asset(raw)
    assert (resolved.raw, resolved.name, resolved.suffix, resolved.bonded_days) == (
        raw,
        name,
        suffix,
        bonded,
    )
    assert resolved.is_variant is variant
    assert names.asset_name(raw) == name


def test_asset_rejects_empty_input(names):
    with pytest.raises(UnknownAssetName, match="''"):
        names.asset("")


@pytest.mark.parametrize(
    ("text", "asset_id"),
    [
        ("XBT", "XXBT"),
        ("BTC", "XXBT"),
        ("XXBT", "XXBT"),
        ("usd", "ZUSD"),
        ("DOGE", "XXDG"),
        ("SOL", "SOL"),
        ("XTZ", "XTZ"),
        ("FEE", "KFEE"),
        ("ETH2", "ETH2"),
    ],
)
def test_asset_id_accepts_names_aliases_and_ids(names, text, asset_id):
    assert names.asset_id(text) == asset_id


def test_asset_id_names_the_unknown_input(names):
    with pytest.raises(UnknownAssetName, match="NOPE"):
        names.asset_id("NOPE")


def test_asset_info_carries_decimals(names):
    assert names.asset_info("BTC").decimals == 10
    assert names.asset_info("ZUSD").decimals == 4
    assert names.asset_info("USD").display_decimals == 2


@pytest.mark.parametrize(
    "text", ["XXBTZUSD", "XBTUSD", "XBT/USD", "BTC/USD", "btc/usd", "BTCUSD", "xbtusd"]
)
def test_pair_accepts_every_name_form(names, text):
    pair = names.pair(text)
    assert pair.id == "XXBTZUSD"
    assert pair.symbol == "XBT/USD"
    assert (pair.base_id, pair.quote_id) == ("XXBT", "ZUSD")


@pytest.mark.parametrize(
    ("text", "pair_id", "symbol"),
    [
        ("DOGE/USD", "XDGUSD", "XDG/USD"),
        ("ETHBTC", "XETHXXBT", "ETH/XBT"),
        ("USDTUSD", "USDTZUSD", "USDT/USD"),
        ("BTC/USDT", "XBTUSDT", "XBT/USDT"),
        ("ETH2.S/ETH", "ETH2.SETH", "ETH2.S/ETH"),
        ("SOL/BTC", "SOLXBT", "SOL/XBT"),
    ],
)
def test_pair_resolves_mixed_ids(names, text, pair_id, symbol):
    assert names.pair(text).id == pair_id
    assert names.pair(text).symbol == symbol


def test_pair_unknown_names_the_input(names):
    with pytest.raises(UnknownPairName, match="FOO/BAR"):
        names.pair("FOO/BAR")


def test_pair_for_and_fields(names):
    pair = names.pair_for("BTC", "USD")
    assert pair is not None and pair.id == "XXBTZUSD"
    assert names.pair_for("XDG", "EUR") is None
    assert pair.ordermin == Decimal("0.00005")
    assert pair.tick_size == Decimal("0.1")
    assert pair.fees[0] == (Decimal("0"), Decimal("0.40"))
    assert pair.fees_maker[1] == (Decimal("10000"), Decimal("0.20"))


def test_bundled_tables_cover_the_required_names(names):
    assets, pairs = load_bundled_results()
    for asset_id in [
        "XXBT",
        "ZUSD",
        "ZEUR",
        "ZGBP",
        "XETH",
        "SOL",
        "USDT",
        "USDC",
        "XXDG",
        "DOT",
        "ADA",
        "XXRP",
        "XLTC",
        "LINK",
        "XTZ",
        "ETH2",
        "KFEE",
    ]:
        assert asset_id in assets
    for pair_id in [
        "XXBTZUSD",
        "XETHZUSD",
        "XETHXXBT",
        "SOLUSD",
        "USDTZUSD",
        "XDGUSD",
        "XXBTZEUR",
        "XETHZEUR",
        "DOTUSD",
        "ADAUSD",
        "XBTUSDT",
        "USDCUSD",
        "XXRPZUSD",
        "XLTCZUSD",
        "LINKUSD",
        "XTZUSD",
        "SOLXBT",
        "ETH2.SETH",
    ]:
        assert pair_id in pairs
        assert pairs[pair_id]["fee_volume_currency"] == "ZUSD"
    assert len(names.pairs()) == len(pairs)


def test_from_results_names_the_bad_field():
    with pytest.raises(ValueError, match=r"'XXBTZUSD'.*pair_decimals"):
        KrakenNames.from_results(
            {"XXBT": {"altname": "XBT", "decimals": 10}},
            {
                "XXBTZUSD": {
                    "altname": "XBTUSD",
                    "base": "XXBT",
                    "quote": "ZUSD",
                    "pair_decimals": "one",
                    "lot_decimals": 8,
                }
            },
        )


def test_from_results_accepts_live_shapes_with_float_fees_and_empty_tables():
    names = KrakenNames.from_results(
        {
            "XXBT": {"altname": "XBT", "decimals": 10, "display_decimals": 5},
            "ZUSD": {"altname": "USD", "decimals": 4, "display_decimals": 2},
        },
        {
            "XXBTZUSD": {
                "altname": "XBTUSD",
                "base": "XXBT",
                "quote": "ZUSD",
                "pair_decimals": 1,
                "lot_decimals": 8,
                "fees": [[0, 0.26]],
                "fees_maker": [],
            }
        },
    )
    pair = names.pair("BTC/USD")
    assert pair.fees == ((Decimal("0"), Decimal("0.26")),)
    assert pair.fees_maker == ()
    assert pair.tick_size == Decimal("0.1")
    assert pair.wsname == "XBT/USD"
