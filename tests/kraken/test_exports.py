"""Reading replay files: a Kraken trades export (CSV) and JSONL events, into typed messages."""

from __future__ import annotations

import decimal
import json
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kraken.exports import (
    BalanceOptionError,
    ReplayInputError,
    parse_balance_option,
    read_replay_file,
)
from kraken.names import KrakenNames
from messages.codec import to_fields
from messages.journal import ExecutionReport, OrderStatus, PriceMark, Side, Transfer

DATA = Path(__file__).parent / "data"
EXPORT = DATA / "kraken_trades_export.csv"
EVENTS = DATA / "replay_events.jsonl"

NAMES = KrakenNames.bundled()
NOW_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
EXPORT_HEADER = (
    '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol",'
    '"margin","misc","ledgers"'
)


def fixed_clock() -> int:
    return NOW_NS


def read(path: Path, valuation_currency: str = "USD") -> list:
    return read_replay_file(
        path, names=NAMES, valuation_currency=valuation_currency, clock_ns=fixed_clock
    )


def write(tmp_path: Path, text: str, name: str = "replay.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def export_row(
    *,
    txid: str = "TQAB3D-7XKLM-4HZPQ2",
    pair: str = "XXBTZUSD",
    time: str = "2024-05-27 08:53:20.1234",
    side: str = "buy",
    price: str = "68250.00000",
    cost: str = "17062.50000",
    fee: str = "44.36250",
    vol: str = "0.25000000",
    margin: str = "0.00000",
) -> str:
    return (
        f'"{txid}","OZ5KQY-3NJX4-WQTLZB","{pair}","{time}","{side}","limit",{price},{cost},'
        f'{fee},{vol},{margin},"","L4UESK-KG3EQ-BJM7HJ,L5JFAD-LC4FR-CKN8IK"'
    )


def jsonl_fill(**overrides: object) -> str:
    event: dict[str, object] = {
        "type": "ExecutionReport",
        "exec_id": "TQAB3D-7XKLM-4HZPQ2",
        "order_id": "OZ5KQY-3NJX4-WQTLZB",
        "pair": "XBT/USD",
        "side": "buy",
        "status": "FILLED",
        "last_qty": "0.25",
        "last_price": "68250.0",
        "fee": "44.3625",
        "fee_currency": "USD",
        "ts": "2024-05-27T08:53:20Z",
    }
    event.update(overrides)
    return json.dumps({key: value for key, value in event.items() if value is not ...})


# --- the Kraken trades export -----------------------------------------------------------


def test_export_gives_one_filled_report_per_row_with_quote_fees_and_symbols():
    messages = read(EXPORT)

    assert [message.exec_id for message in messages] == [
        "TQAB3D-7XKLM-4HZPQ2",
        "TCWJEG-FL4SZ-3FKGH6",
        "TH7RWQ-K2MZD-VX3QNA",
        "TJ3PLD-RZ8WX-6QKMNV",
        "TN5QWE-3HXRT-Y8LMKZ",
        "TR8KXA-5NQPM-W2ZDLT",
        "TD4YHV-8QWRL-K3MXTB",
        "TV2MRC-9KZQX-P4LWDN",
    ]
    assert all(type(message) is ExecutionReport for message in messages)
    assert all(message.status is OrderStatus.FILLED for message in messages)
    assert [message.pair for message in messages] == [
        "XBT/USD",
        "ETH/USD",
        "ETH/XBT",
        "SOL/USD",
        "SOL/USD",
        "XBT/USD",
        "ETH/XBT",
        "SOL/USD",
    ]
    assert [message.fee_currency for message in messages] == [
        "USD",
        "USD",
        "XBT",
        "USD",
        "USD",
        "USD",
        "XBT",
        "USD",
    ]
    first = messages[0]
    assert first == ExecutionReport(
        exec_id="TQAB3D-7XKLM-4HZPQ2",
        order_id="OZ5KQY-3NJX4-WQTLZB",
        pair="XBT/USD",
        side=Side.BUY,
        status=OrderStatus.FILLED,
        last_qty=Decimal("0.25000000"),
        last_price=Decimal("68250.00000"),
        fee=Decimal("44.36250"),
        fee_currency="USD",
        quote_rate=None,
        cost=Decimal("17062.50000"),
        ts_event=1_716_800_000_123_400_000,
        ts_init=1_716_800_000_123_400_000,
    )
    # Digits are kept as written: the export's rounding is the exchange's, not ours.
    assert to_fields(messages[2])["cost"] == "0.0855300000"
    assert messages[5].side is Side.SELL


def test_export_accepts_both_time_formats_exactly_to_the_nanosecond():
    messages = {message.exec_id: message for message in read(EXPORT)}

    # "1716800100.5123": Unix seconds with a fraction.
    assert messages["TCWJEG-FL4SZ-3FKGH6"].ts_event == 1_716_800_100_512_300_000
    # "2024-05-27 09:10:03.0005": UTC date and time.
    assert messages["TH7RWQ-K2MZD-VX3QNA"].ts_event == 1_716_801_003_000_500_000
    # "1716805000.0001": a float would give ...000099999 here.
    assert messages["TD4YHV-8QWRL-K3MXTB"].ts_event == 1_716_805_000_000_100_000
    # "2024-05-27 10:20:15": no fraction.
    assert messages["TV2MRC-9KZQX-P4LWDN"].ts_event == 1_716_805_215_000_000_000
    assert all(message.ts_init == message.ts_event for message in messages.values())


def test_export_stamps_cross_pairs_with_the_latest_preceding_quote_price():
    messages = {message.exec_id: message for message in read(EXPORT)}

    # ETH/XBT at 09:10 follows the XBT/USD fill at 68250; at 10:16 the one at 68410.5.
    assert messages["TH7RWQ-K2MZD-VX3QNA"].quote_rate == Decimal("68250.00000")
    assert messages["TD4YHV-8QWRL-K3MXTB"].quote_rate == Decimal("68410.50000")
    assert all(
        message.quote_rate is None for message in messages.values() if message.pair != "ETH/XBT"
    )


def test_export_listed_newest_first_is_replayed_oldest_first(tmp_path):
    header, *rows = EXPORT.read_text(encoding="utf-8").splitlines()
    reversed_export = write(tmp_path, "\n".join([header, *reversed(rows)]) + "\n", "new.csv")

    assert read(reversed_export) == read(EXPORT)


def test_export_columns_may_come_in_any_order_with_extra_columns_and_quoting(tmp_path):
    text = (
        "\ufeff"  # the byte-order mark spreadsheet exports carry
        '"ledgers","aclass","vol","fee","cost","price","ordertype","type","time","pair",'
        '"ordertxid","txid","misc","margin","postxid"\r\n'
        '"LA,LB","forex","1.0","2.5","100.0","100.0","limit","sell","1716800000","SOLUSD",'
        '"OSOL","TSOL","closing","0.00000","TKH2SE-M7IF5-CFI7LT"\r\n'
    )
    (report,) = read(write(tmp_path, text, "export.csv"))

    assert (report.exec_id, report.order_id, report.pair, report.side) == (
        "TSOL",
        "OSOL",
        "SOL/USD",
        Side.SELL,
    )
    assert (report.last_qty, report.last_price, report.cost, report.fee) == (
        Decimal("1.0"),
        Decimal("100.0"),
        Decimal("100.0"),
        Decimal("2.5"),
    )
    assert report.ts_event == 1_716_800_000 * 10**9


def test_export_in_another_valuation_currency_needs_rates_for_usd_quoted_fills(tmp_path):
    path = write(tmp_path, EXPORT_HEADER + "\n" + export_row() + "\n", "export.csv")

    with pytest.raises(ReplayInputError) as caught:
        read(path, valuation_currency="ZEUR")

    assert (caught.value.line, caught.value.field) == (2, "quote_rate")
    assert "USD→EUR" in caught.value.detail


def test_export_cross_pair_fill_before_any_quote_price_is_refused(tmp_path):
    rows = [
        export_row(txid="TSOLXBT", pair="SOLXBT", price="0.0024390", cost="0.0097560", vol="4"),
        export_row(time="2024-05-27 10:00:00"),
    ]
    path = write(tmp_path, "\n".join([EXPORT_HEADER, *rows]) + "\n", "export.csv")

    with pytest.raises(ReplayInputError) as caught:
        read(path)

    assert (caught.value.line, caught.value.field) == (2, "quote_rate")
    assert "SOL/XBT" in caught.value.detail


# --- JSONL ------------------------------------------------------------------------------


def test_jsonl_gives_every_event_type_in_file_order_with_normalized_names():
    messages = read(EVENTS)

    assert [type(message).__name__ for message in messages] == [
        "Transfer",
        "PriceMark",
        "ExecutionReport",
        "PriceMark",
        "ExecutionReport",
        "ExecutionReport",
        "ExecutionReport",
        "Transfer",
    ]
    deposit, mark, fill, _, cross_fill, cancel, explicit_rate, withdrawal = messages
    assert deposit == Transfer(
        transfer_id="LDEP7Q-K3MWX-2RZTNA",
        asset="USD",
        amount=Decimal("50000.00"),
        ts_event=1_716_796_800 * 10**9,
        ts_init=1_716_796_800 * 10**9,
    )
    assert mark == PriceMark(
        pair="XBT/USD",
        bid=Decimal("68249.9"),
        ask=Decimal("68250.1"),
        ts_event=1_716_799_999_500_000_000,
    )
    assert fill.ts_event == fill.ts_init == 1_716_800_000_123_456_789
    assert (fill.cost, fill.quote_rate) == (Decimal("17062.50000"), None)
    # No rate given: the latest XBT/USD mid before it (68300.0 / 68301.0), not the older fill.
    assert (cross_fill.pair, cross_fill.quote_rate) == ("ETH/XBT", Decimal("68300.5"))
    assert cross_fill.status is OrderStatus.PARTIALLY_FILLED
    # A cancel moves no money, so it needs no rate.
    assert (cancel.status, cancel.last_qty, cancel.quote_rate) == (
        OrderStatus.CANCELED,
        Decimal(0),
        None,
    )
    assert cancel.reason == "User requested"
    assert (explicit_rate.quote_rate, explicit_rate.fee_currency) == (Decimal("68310.5"), "XBT")
    assert withdrawal == Transfer(
        transfer_id="LWDR4M-9QXZT-K2RPNA",
        asset="XBT",
        amount=Decimal("-0.05000000"),
        unit_price=Decimal("68320.0"),
        ts_event=1_716_802_200_250_000_000,  # 11:30:00.25+02:00
        ts_init=1_716_802_200_250_000_000,
    )


def test_jsonl_cross_fill_takes_the_rate_of_a_preceding_usd_fill(tmp_path):
    lines = [
        jsonl_fill(last_price="68000"),
        jsonl_fill(
            exec_id="TETH", pair="XETHXXBT", last_price="0.057", fee="0", fee_currency="XBT"
        ),
    ]
    messages = read(write(tmp_path, "\n".join(lines) + "\n"))

    assert messages[1].quote_rate == Decimal("68000")


def test_jsonl_explicit_quote_rate_serves_later_fills_in_the_same_quote(tmp_path):
    lines = [
        jsonl_fill(exec_id="T1", pair="ETH/XBT", fee_currency="XBT", quote_rate="67000"),
        jsonl_fill(exec_id="T2", pair="SOL/XBT", fee_currency="XBT"),
    ]
    messages = read(write(tmp_path, "\n".join(lines) + "\n"))

    assert [message.quote_rate for message in messages] == [Decimal(67000), Decimal(67000)]


@pytest.mark.parametrize(
    ("timestamp", "expected_ns"),
    [
        ("2024-05-27T08:53:20Z", 1_716_800_000_000_000_000),
        ("2024-05-27T08:53:20+00:00", 1_716_800_000_000_000_000),
        ("2024-05-27T08:53:20.000000001Z", 1_716_800_000_000_000_001),
        ("2024-05-27T08:53:20.999999999Z", 1_716_800_000_999_999_999),
        ("2024-05-27T08:53:20.1234567890000Z", 1_716_800_000_123_456_789),
        ("2024-05-27T10:53:20.5+02:00", 1_716_800_000_500_000_000),
        ("2024-05-27T03:23:20-05:30", 1_716_800_000_000_000_000),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_jsonl_timestamps_are_exact_nanoseconds(tmp_path, timestamp, expected_ns):
    (mark,) = read(
        write(
            tmp_path,
            json.dumps(
                {"type": "PriceMark", "pair": "SOLUSD", "bid": "1", "ask": "2", "ts": timestamp}
            ),
        )
    )

    assert mark.ts_event == expected_ns


# --- bad lines --------------------------------------------------------------------------

BAD_JSONL_LINES = [
    pytest.param(
        '{"type": "Trade", "ts": "2024-05-27T08:53:20Z"}', "type", "unknown type", id="type"
    ),
    pytest.param('{"pair": "XBT/USD"}', "type", "missing", id="no-type"),
    pytest.param(jsonl_fill(fee=...), "fee", "missing", id="missing-field"),
    pytest.param(jsonl_fill(venue="kraken"), "venue", "unexpected", id="extra-field"),
    pytest.param(jsonl_fill(last_qty="1.2.3"), "last_qty", "decimal", id="bad-decimal"),
    pytest.param(jsonl_fill(last_price="NaN"), "last_price", "finite", id="nan"),
    pytest.param(jsonl_fill(last_qty="-0.25"), "last_qty", ">= 0", id="negative-qty"),
    pytest.param(jsonl_fill(pair="FOO/BAR"), "pair", "unknown pair", id="unknown-pair"),
    pytest.param(jsonl_fill(pair=7), "pair", "string", id="pair-not-string"),
    pytest.param(jsonl_fill(side="long"), "side", "'buy', 'sell'", id="bad-side"),
    pytest.param(jsonl_fill(status="DONE"), "status", "FILLED", id="bad-status"),
    pytest.param(jsonl_fill(ts="2024-13-01T00:00:00Z"), "ts", "month", id="bad-month"),
    pytest.param(jsonl_fill(ts="2024-05-27T08:53:20"), "ts", "ISO-8601", id="no-zone"),
    pytest.param(jsonl_fill(ts=1716800000), "ts", "string", id="numeric-ts"),
    pytest.param(jsonl_fill(ts="2024-05-27T08:53:20.0000000001Z"), "ts", "nanosecond", id="sub-ns"),
    pytest.param(jsonl_fill(ts="2126-01-01T00:00:00Z"), "ts", "future", id="future-ts"),
    pytest.param(jsonl_fill(ts="1969-12-31T23:59:59Z"), "ts", "1970", id="before-epoch"),
    pytest.param(jsonl_fill(fee_currency="EUR"), "fee_currency", "base (XBT)", id="fee-currency"),
    pytest.param(
        jsonl_fill(pair="ETH/XBT", fee_currency="XBT"), "quote_rate", "XBT→USD", id="no-rate"
    ),
    pytest.param(jsonl_fill(last_qty=0.1), "last_qty", "JSON number", id="float-money"),
    pytest.param(
        '{"type": "Transfer", "transfer_id": "L1", "asset": "USD", "amount": 100, "ts": "x"}',
        "amount",
        "JSON number",
        id="int-money",
    ),
    pytest.param(
        '{"type": "Transfer", "transfer_id": "L1", "asset": "USD", "amount": "0", '
        '"ts": "2024-05-27T08:53:20Z"}',
        "amount",
        "zero",
        id="zero-transfer",
    ),
    pytest.param(
        '{"type": "Transfer", "transfer_id": "", "asset": "USD", "amount": "5", '
        '"ts": "2024-05-27T08:53:20Z"}',
        "transfer_id",
        "empty",
        id="empty-id",
    ),
    pytest.param(
        '{"type": "PriceMark", "pair": "XBTUSD", "bid": "70001", "ask": "70000", '
        '"ts": "2024-05-27T08:53:20Z"}',
        "bid",
        "exceed ask",
        id="crossed-mark",
    ),
    pytest.param(
        '{"type": "PriceMark", "pair": "XBTUSD", "bid": "0", "ask": "1", '
        '"ts": "2024-05-27T08:53:20Z"}',
        "bid",
        "> 0",
        id="zero-bid",
    ),
    pytest.param('{"type": "PriceMark", "pair": "XBTUSD",', None, "invalid JSON", id="bad-json"),
    pytest.param('{"type": "PriceMark", "bid": NaN}', None, "invalid JSON", id="json-nan"),
    pytest.param('["PriceMark"]', None, "JSON object", id="not-object"),
    pytest.param(
        '{"type": ' + "[" * 100_000 + "]" * 100_000 + "}",
        None,
        "nests too deeply",
        id="deep-nesting",
    ),
    pytest.param(jsonl_fill(pair="XBT" * 10_000), "pair", "unknown pair", id="huge-pair"),
    pytest.param(
        '{"type": "PriceMark", "pair": "XBTUSD", "bid": "1E-999", "ask": "1E+999", '
        '"ts": "2024-05-27T08:53:20Z"}',
        "ask",
        "exact mid",
        id="mid-out-of-scale",
    ),
    pytest.param(
        '{"type": "PriceMark", "pair": "XBTUSD", "pair": "ETHUSD"}',
        "pair",
        "more than once",
        id="duplicate-key",
    ),
]


@pytest.mark.parametrize(("bad_line", "field", "detail"), BAD_JSONL_LINES)
def test_a_bad_jsonl_line_is_refused_with_its_line_number_and_field(
    tmp_path, bad_line, field, detail
):
    # SOL/USD fills: they give no XBT rate, so a cross fill in XBT finds none.
    good = jsonl_fill(exec_id="TGOOD", pair="SOLUSD", last_price="166.42")
    path = write(tmp_path, f"{good}\n\n{good.replace('TGOOD', 'TGOOD2')}\n{bad_line}\n{good}\n")

    with pytest.raises(ReplayInputError) as caught:
        read(path)

    error = caught.value
    assert (error.line, error.field) == (4, field)
    assert detail in error.detail
    where = f"{path}:4: " if field is None else f"{path}:4: {field}: "
    assert str(error) == where + error.detail


BAD_EXPORT_ROWS = [
    pytest.param(export_row()[:-45], None, "expected 13 columns", id="too-few-columns"),
    pytest.param(export_row() + ',"extra"', None, "got 14", id="too-many-columns"),
    pytest.param(export_row(pair="XFOOZBAR"), "pair", "unknown pair", id="unknown-pair"),
    pytest.param(export_row(vol="-0.1"), "vol", ">= 0", id="negative-vol"),
    pytest.param(export_row(vol="0"), "vol", "> 0", id="zero-vol"),
    pytest.param(export_row(vol="0,25"), None, "columns", id="decimal-comma"),
    pytest.param(export_row(price="68k"), "price", "decimal", id="bad-price"),
    pytest.param(export_row(fee=""), "fee", "decimal", id="empty-fee"),
    pytest.param(export_row(cost="-1"), "cost", ">= 0", id="negative-cost"),
    pytest.param(export_row(side="short"), "type", "'buy', 'sell'", id="bad-type"),
    pytest.param(export_row(txid=""), "txid", "empty", id="empty-txid"),
    pytest.param(export_row(time="27/05/2024 08:53"), "time", "timestamp", id="bad-time"),
    pytest.param(export_row(time="2024-02-30 08:53:20"), "time", "day", id="no-such-day"),
    pytest.param(export_row(time="1716800000123"), "time", "future", id="ms-as-seconds"),
    pytest.param(export_row(time="1716800000.0000000001"), "time", "nanosecond", id="sub-ns"),
    pytest.param(export_row(margin="25.00000"), "margin", "margin trades", id="margin"),
    pytest.param(export_row(margin="1" * 300), "margin", "decimal", id="huge-margin"),
]


@pytest.mark.parametrize(("bad_row", "field", "detail"), BAD_EXPORT_ROWS)
def test_a_bad_export_row_is_refused_with_its_line_number_and_column(
    tmp_path, bad_row, field, detail
):
    rows = [export_row(txid="T1"), "", export_row(txid="T2"), bad_row, export_row(txid="T3")]
    path = write(tmp_path, "\n".join([EXPORT_HEADER, *rows]) + "\n", "export.csv")

    with pytest.raises(ReplayInputError) as caught:
        read(path)

    error = caught.value
    assert (error.line, error.field) == (5, field)
    assert detail in error.detail
    assert str(error).startswith(f"{path}:5: ")


def test_line_numbers_count_physical_lines_when_a_quoted_field_spans_lines(tmp_path):
    multiline = export_row(txid="T1").replace(',"",', ',"first\nsecond",')
    text = "\r\n".join([EXPORT_HEADER, multiline, export_row(txid="T2", vol="x")]) + "\r\n"

    with pytest.raises(ReplayInputError) as caught:
        read(write(tmp_path, text, "export.csv"))

    assert (caught.value.line, caught.value.field) == (4, "vol")


@pytest.mark.parametrize(
    ("content", "line", "field", "detail"),
    [
        pytest.param("hello, world\n", 1, None, "not a replay file", id="plain-text"),
        pytest.param("", 1, None, "empty file", id="empty"),
        pytest.param("\n  \n", 1, None, "empty file", id="blank"),
        pytest.param("[1, 2]\n", 1, None, "not a replay file", id="json-array"),
        pytest.param(
            '"txid","ordertxid","pair","time","type","price","cost","vol"\n',
            1,
            "ordertype",
            "lacks the column(s) ordertype, fee, margin, misc, ledgers",
            id="missing-columns",
        ),
        pytest.param(EXPORT_HEADER + ',"vol"\n', 1, "vol", "more than once", id="duplicate-column"),
        pytest.param(
            EXPORT_HEADER + '\n"T1,"unterminated\n', 2, None, "malformed CSV", id="bad-quoting"
        ),
    ],
)
def test_anything_but_an_export_or_jsonl_is_refused(tmp_path, content, line, field, detail):
    with pytest.raises(ReplayInputError) as caught:
        read(write(tmp_path, content))

    assert (caught.value.line, caught.value.field) == (line, field)
    assert detail in caught.value.detail


def test_invalid_utf8_is_refused_on_its_line(tmp_path):
    path = tmp_path / "replay.jsonl"
    path.write_bytes(jsonl_fill().encode() + b"\n" + b'{"type": "\xff"}\n')

    with pytest.raises(ReplayInputError) as caught:
        read(path)

    assert (caught.value.line, caught.value.field) == (2, None)
    assert "UTF-8" in caught.value.detail


def test_a_missing_file_raises_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read(tmp_path / "absent.csv")


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=60),
            st.dictionaries(
                st.sampled_from(["type", "pair", "ts", "bid", "ask", "amount", "asset", "x"]),
                st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.none()),
            ).map(json.dumps),
        ),
        max_size=4,
    ),
    start=st.sampled_from(["", '{"type": "PriceMark"}\n', EXPORT_HEADER + "\n"]),
)
def test_arbitrary_content_gives_messages_or_a_replay_input_error_never_another_error(lines, start):
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), start + "\n".join(lines))
        try:
            read(path)
        except ReplayInputError as error:
            assert error.line >= 1


# --- --balance --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("USD=10000", ("USD", Decimal("10000"))),
        ("ZUSD=10000.50", ("USD", Decimal("10000.50"))),
        ("xbt=0.5", ("XBT", Decimal("0.5"))),
        ("XXBT=0", ("XBT", Decimal("0"))),
        (" SOL = 12.25 ", ("SOL", Decimal("12.25"))),
    ],
)
def test_balance_option_gives_normalized_currency_and_exact_amount(text, expected):
    assert parse_balance_option(text) == expected


@pytest.mark.parametrize(
    "text", ["", "USD", "USD=", "=100", "USD=-5", "USD=1e4", "USD=1,000", "USD=NaN", "US D=1"]
)
def test_bad_balance_option_names_the_option(text):
    with pytest.raises(ValueError, match="--balance") as caught:
        parse_balance_option(text)

    assert isinstance(caught.value, BalanceOptionError)


# --- round trip -------------------------------------------------------------------------

PAIR_FORMS = {
    "XBT/USD": ["XBT/USD", "XXBTZUSD", "XBTUSD", "BTC/USD"],
    "ETH/USD": ["ETH/USD", "XETHZUSD", "ETHUSD"],
    "SOL/USD": ["SOL/USD", "SOLUSD"],
    "ETH/XBT": ["ETH/XBT", "XETHXXBT", "ETHXBT", "ETH/BTC"],
    "SOL/XBT": ["SOL/XBT", "SOLXBT"],
}
ASSET_FORMS = {
    "XBT": ["XBT", "XXBT", "BTC"],
    "USD": ["USD", "ZUSD"],
    "ETH": ["ETH", "XETH"],
    "SOL": ["SOL"],
    "FEE": ["FEE", "KFEE"],
}
TRANSFER_ASSETS = ["ETH", "SOL", "USD", "XBT"]
EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation])

text_characters = st.characters(blacklist_categories=("Cs",))
identifiers = st.text(text_characters, min_size=1, max_size=128)
timestamps = st.integers(min_value=0, max_value=NOW_NS)


def decimals(*, min_value: int, max_value: int = 10**12) -> st.SearchStrategy[Decimal]:
    return st.integers(min_value=0, max_value=12).flatmap(
        lambda places: st.decimals(
            min_value=min_value, max_value=max_value, places=places, allow_nan=False
        )
    )


def iso_utc(ns: int) -> str:
    seconds, fraction = divmod(ns, 10**9)
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


@st.composite
def execution_reports(draw: st.DrawFn) -> tuple[dict, ExecutionReport]:
    symbol = draw(st.sampled_from(sorted(PAIR_FORMS)))
    base, quote = symbol.split("/")
    fee_currency = draw(st.sampled_from([base, quote, "FEE"]))
    ts = draw(timestamps)
    report = ExecutionReport(
        exec_id=draw(identifiers),
        order_id=draw(identifiers),
        pair=symbol,
        side=draw(st.sampled_from(Side)),
        status=draw(st.sampled_from(OrderStatus)),
        last_qty=draw(decimals(min_value=0)),
        last_price=draw(decimals(min_value=0)),
        fee=draw(decimals(min_value=0)),
        fee_currency=fee_currency,
        # A cross-pair fill read alone must carry its rate: the file shows no other.
        quote_rate=draw(decimals(min_value=1) if quote != "USD" else st.none()),
        cost=draw(st.none() | decimals(min_value=0)),
        reason=draw(st.text(text_characters, max_size=40)),
        ts_event=ts,
        ts_init=ts,
    )
    line = {
        "type": "ExecutionReport",
        **to_fields(report),
        "pair": draw(st.sampled_from(PAIR_FORMS[symbol])),
        "fee_currency": draw(st.sampled_from(ASSET_FORMS[fee_currency])),
        "ts": iso_utc(ts),
    }
    del line["ts_event"], line["ts_init"]
    for optional in ("quote_rate", "cost"):
        if line[optional] is None and draw(st.booleans()):
            del line[optional]
    return line, report


@st.composite
def price_marks(draw: st.DrawFn) -> tuple[dict, PriceMark]:
    symbol = draw(st.sampled_from(sorted(PAIR_FORMS)))
    bid = draw(decimals(min_value=1))
    mark = PriceMark(
        pair=symbol,
        bid=bid,
        ask=EXACT.add(bid, draw(decimals(min_value=0))),
        ts_event=draw(timestamps),
    )
    line = {
        "type": "PriceMark",
        **to_fields(mark),
        "pair": draw(st.sampled_from(PAIR_FORMS[symbol])),
        "ts": iso_utc(mark.ts_event),
    }
    del line["ts_event"]
    return line, mark


@st.composite
def transfers(draw: st.DrawFn) -> tuple[dict, Transfer]:
    asset = draw(st.sampled_from(TRANSFER_ASSETS))
    magnitude = draw(decimals(min_value=1))
    ts = draw(timestamps)
    transfer = Transfer(
        transfer_id=draw(identifiers),
        asset=asset,
        amount=magnitude if draw(st.booleans()) else EXACT.minus(magnitude),
        unit_price=draw(st.none() | decimals(min_value=1)),
        ts_event=ts,
        ts_init=ts,
    )
    line = {
        "type": "Transfer",
        **to_fields(transfer),
        "asset": draw(st.sampled_from(ASSET_FORMS[asset])),
        "ts": iso_utc(ts),
    }
    del line["ts_event"], line["ts_init"]
    if line["unit_price"] is None:
        del line["unit_price"]
    return line, transfer


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=st.one_of(execution_reports(), price_marks(), transfers()))
def test_any_valid_jsonl_event_reads_back_as_the_same_message(tmp_path, event):
    line, expected = event
    path = write(tmp_path, json.dumps(line, ensure_ascii=False) + "\n", "event.jsonl")

    (message,) = read(path)

    assert message == expected
    assert to_fields(message) == to_fields(expected)  # the written digits, not just the value
