"""The report from a drawdown database: a real PNG with the drawdown shaded, an HTML page with
the figures as decimal strings and nothing fetched from elsewhere, clear errors on bad files.

The database is built here the way the drawdown actor writes it: the `marks` table and the
`drawdown` snapshot row holding an encoded `DrawdownSnapshot`. 2026-01-05 is a Monday.
"""

from __future__ import annotations

import base64
import decimal
import html
import re
import sqlite3
import struct
import zlib
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from console.png import Canvas
from console.report import (
    DAILY_SHADE,
    LIMIT_COLOR,
    TOTAL_SHADE,
    WEEKLY_SHADE,
    ReportError,
    load_recorded,
    write_report,
)
from messages import DrawdownFigures, DrawdownSnapshot, PositionState, encode

CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)
LEGEND_SWATCH_PIXELS = 10 * 7  # each legend swatch is 10 x 7 pixels


def ns(iso: str) -> int:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(moment.astimezone(UTC).timestamp()) * 1_000_000_000


# (time, equity, all-time peak, daily peak, weekly peak, flow)
MARKS = [
    ("2026-01-05T10:00:00Z", "100000.00", "100000.00", "100000.00", "100000.00", 1),  # deposit
    ("2026-01-05T12:00:00Z", "110000.00", "110000.00", "110000.00", "110000.00", 0),
    ("2026-01-05T18:00:00Z", "99000.00", "110000.00", "110000.00", "110000.00", 0),
    ("2026-01-06T00:30:00Z", "99000.00", "110000.00", "99000.00", "110000.00", 0),  # new day
    ("2026-01-06T06:00:00Z", "94050.00", "110000.00", "99000.00", "110000.00", 0),  # the drop
    ("2026-01-06T12:00:00Z", "104000.00", "110000.00", "104000.00", "110000.00", 0),
    ("2026-01-07T09:00:00Z", "121000.00", "121000.00", "121000.00", "121000.00", 0),
    ("2026-01-07T10:00:00Z", "108900.00", "108900.00", "108900.00", "108900.00", 1),  # withdrawal
    ("2026-01-08T15:00:00Z", "100188.00", "108900.00", "108900.00", "108900.00", 0),
]

POSITIONS = {
    "XBT": ("0.5", "50000", "1234.5678", "12.34"),
    "ETH": ("0", "0", "-45.10", "3.21"),
}


def drawdown_pct(peak: str, equity: str) -> Decimal:
    """(peak − equity) / peak × 100, as the test works it out."""
    return CONTEXT.divide(
        CONTEXT.multiply(CONTEXT.subtract(Decimal(peak), Decimal(equity)), Decimal(100)),
        Decimal(peak),
    )


def snapshot_blob(seq: int) -> bytes:
    positions = {
        asset: PositionState(
            asset=asset,
            quantity=Decimal(quantity),
            average_cost=Decimal(cost),
            realized_pnl=Decimal(pnl),
            fees=Decimal(fees),
            market_value=None,
            unrealized_pnl=None,
        )
        for asset, (quantity, cost, pnl, fees) in POSITIONS.items()
    }
    last = MARKS[-1]
    figures = DrawdownFigures(
        seq=seq,
        peak_equity=Decimal(last[2]),
        daily_peak=Decimal(last[3]),
        weekly_peak=Decimal(last[4]),
        daily_window_start_ns=ns("2026-01-08T00:00:00Z"),
        weekly_window_start_ns=ns("2026-01-05T00:00:00Z"),
        last_equity=Decimal(last[1]),
        last_mark_ns=ns(last[0]),
        breached=(),
        marks=len(MARKS),
    )
    return encode(
        DrawdownSnapshot(
            seq=seq,
            cash={"USD": Decimal("50000.00")},
            positions=positions,
            figures=figures,
        )
    )


def create_tables(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE marks (ts_ns INTEGER, seq INTEGER, equity TEXT, peak_equity TEXT,"
        " daily_peak TEXT, weekly_peak TEXT, flow INTEGER)"
    )
    db.execute("CREATE TABLE snapshot (name TEXT PRIMARY KEY, seq INTEGER, state BLOB)")


def build_database(path: Path, marks: list[tuple] = MARKS, *, with_snapshot: bool = True) -> Path:
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        create_tables(db)
        # a row from before the first mark had a peak: the actor writes "None" there
        if marks:
            db.execute(
                "INSERT INTO marks VALUES (?, 0, ?, 'None', 'None', 'None', 0)",
                (ns(marks[0][0]) - 1, marks[0][1]),
            )
        for seq, (ts, equity, peak, daily, weekly, flow) in enumerate(marks, start=1):
            db.execute(
                "INSERT INTO marks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ns(ts), seq, equity, peak, daily, weekly, flow),
            )
        if with_snapshot:
            db.execute(
                "INSERT INTO snapshot VALUES ('drawdown', ?, ?)",
                (len(marks), snapshot_blob(len(marks))),
            )
    finally:
        db.close()
    return path


# -- reading the outputs back ------------------------------------------------------------------


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and every pixel of an 8-bit RGB PNG, checking each chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color_type, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * 3 + 1
    assert len(raw) == stride * height
    pixels = []
    for row in range(height):
        assert raw[row * stride] == 0, "only filter type 0 is expected"
        line = raw[row * stride + 1 : (row + 1) * stride]
        pixels += [tuple(line[i : i + 3]) for i in range(0, len(line), 3)]
    return width, height, pixels


def table_rows(page: str) -> dict[str, list[str]]:
    """Each table row of the page: first cell -> the other cells, tags stripped."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, flags=re.S):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<t[dh][^>]*>.*?</t[dh]>", row)
        ]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture
def report(tmp_path: Path):
    database = build_database(tmp_path / "drawdown.sqlite")
    files = write_report(
        database,
        tmp_path / "out",
        valuation_currency="USD",
        limits={"daily": Decimal("4"), "weekly": Decimal("12"), "total": None},
    )
    return files


# -- the tests ---------------------------------------------------------------------------------


def test_png_is_valid_and_shows_the_drawdowns(report):
    width, height, pixels = decode_png(report.png.read_bytes())

    assert (width, height) == (1200, 900)
    counts = Counter(pixels)
    assert len(counts) > 3
    # the shading is far more than the legend swatches: the drop is drawn
    assert counts[TOTAL_SHADE] > 20 * LEGEND_SWATCH_PIXELS
    assert counts[DAILY_SHADE] > 5 * LEGEND_SWATCH_PIXELS
    assert counts[WEEKLY_SHADE] > 5 * LEGEND_SWATCH_PIXELS
    assert counts[LIMIT_COLOR] > 2 * 1000  # two dashed limit lines across the panels


def test_rising_equity_shades_nothing(tmp_path):
    rising = [
        ("2026-01-05T10:00:00Z", "100", "100", "100", "100", 1),
        ("2026-01-06T10:00:00Z", "110", "110", "110", "110", 0),
        ("2026-01-07T10:00:00Z", "120", "120", "120", "120", 0),
    ]
    database = build_database(tmp_path / "drawdown.sqlite", rising)

    files = write_report(database, tmp_path / "out", valuation_currency="USD")

    counts = Counter(decode_png(files.png.read_bytes())[2])
    # at most the legend swatch and a few pixels where the band meets the lines
    assert counts[TOTAL_SHADE] < LEGEND_SWATCH_PIXELS + 50
    assert "<td>Max total drawdown %</td>" in files.html.read_text()
    assert table_rows(files.html.read_text())["Max total drawdown %"] == ["0.00"]


def test_html_summary_holds_the_figures_worked_out_independently(report):
    page = report.html.read_text(encoding="utf-8")
    rows = table_rows(page)

    def pct(value: Decimal) -> str:
        return str(value.quantize(Decimal("0.01"), context=CONTEXT))

    max_total = max(drawdown_pct(m[2], m[1]) for m in MARKS)
    max_daily = max(drawdown_pct(m[3], m[1]) for m in MARKS)
    max_weekly = max(drawdown_pct(m[4], m[1]) for m in MARKS)
    assert pct(max_total) == "14.50"  # 94050 against the peak of 110000
    assert rows["Max total drawdown %"] == [pct(max_total)]
    assert rows["Max daily drawdown %"] == [pct(max_daily)]
    assert rows["Max weekly drawdown %"] == [pct(max_weekly)]
    assert rows["First mark (UTC)"] == ["2026-01-05T10:00:00Z"]
    assert rows["Last mark (UTC)"] == ["2026-01-08T15:00:00Z"]
    assert rows["Start equity (USD)"] == ["100000.00"]
    assert rows["End equity (USD)"] == ["100188.00"]
    assert rows["Peak equity, all-time, moved by flows (USD)"] == ["108900.00"]
    assert rows["Equity marks"] == [str(len(MARKS))]
    assert rows["Flows (deposits, withdrawals, adjustments)"] == ["2"]
    assert rows["Rows without a peak yet (not drawn)"] == ["1"]
    assert rows["Daily drawdown limit %"] == ["4"]
    assert rows["Total drawdown limit %"] == ["none"]
    assert rows["Books (P&L, fees, cash) at journal seq"] == [str(len(MARKS))]


def test_html_lists_realized_pnl_and_fees_per_asset_as_decimal_strings(report):
    rows = table_rows(report.html.read_text(encoding="utf-8"))

    for asset, (_, _, pnl, fees) in POSITIONS.items():
        assert rows[asset] == [pnl, fees]
    assert rows["Total"] == [
        str(CONTEXT.add(Decimal("1234.5678"), Decimal("-45.10"))),
        str(CONTEXT.add(Decimal("12.34"), Decimal("3.21"))),
    ]
    assert rows["USD"] == ["50000.00"]


def test_html_is_self_contained_with_the_png_inline(report):
    page = report.html.read_text(encoding="utf-8")

    assert "http:" not in page.lower() and "https:" not in page.lower()
    assert "<script" not in page.lower() and "<link" not in page.lower()
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references and all(ref.startswith("data:") for ref in references)
    inline = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(inline.group(1)) == report.png.read_bytes()


def test_empty_database_says_no_marks_yet(tmp_path):
    database = build_database(tmp_path / "drawdown.sqlite", [], with_snapshot=False)

    files = write_report(database, tmp_path / "out", valuation_currency="EUR")

    width, height, pixels = decode_png(files.png.read_bytes())
    assert (width, height) == (1200, 900)
    assert Counter(pixels)[TOTAL_SHADE] <= LEGEND_SWATCH_PIXELS
    page = files.html.read_text(encoding="utf-8")
    assert "no equity marks recorded yet" in page.lower()
    assert table_rows(page)["Books (P&L, fees, cash) at journal seq"] == ["no snapshot saved yet"]


def test_a_database_being_written_is_read_without_disturbing_the_writer(tmp_path):
    database = build_database(tmp_path / "drawdown.sqlite")
    writer = sqlite3.connect(str(database), isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute(
            "INSERT INTO marks VALUES (?, 99, '100200.00', '108900.00', '108900.00',"
            " '108900.00', 0)",
            (ns("2026-01-08T16:00:00Z"),),
        )
        assert Path(f"{database}-wal").exists()

        recorded = load_recorded(database)

        assert recorded.marks[-1].equity == Decimal("100200.00")
        writer.execute(
            "INSERT INTO marks VALUES (?, 100, '1', '1', '1', '1', 0)",
            (ns("2026-01-09T00:00:00Z"),),
        )
    finally:
        writer.close()
    assert len(load_recorded(database).marks) == len(MARKS) + 2


def test_loaded_marks_are_decimals_in_time_order(tmp_path):
    recorded = load_recorded(build_database(tmp_path / "drawdown.sqlite"))

    assert [m.ts_ns for m in recorded.marks] == [ns(m[0]) for m in MARKS]
    assert [m.equity for m in recorded.marks] == [Decimal(m[1]) for m in MARKS]
    assert all(isinstance(m.peak_equity, Decimal) for m in recorded.marks)
    assert [m.is_flow for m in recorded.marks] == [bool(m[5]) for m in MARKS]
    assert {a.asset: (a.realized_pnl, a.fees) for a in recorded.assets} == {
        asset: (Decimal(pnl), Decimal(fees)) for asset, (_, _, pnl, fees) in POSITIONS.items()
    }
    assert recorded.skipped_marks == 1


def test_garbage_file_is_a_report_error_naming_the_file(tmp_path):
    garbage = tmp_path / "drawdown.sqlite"
    garbage.write_bytes(b"this is not a database at all\x00\x01" * 100)

    with pytest.raises(ReportError) as raised:
        write_report(garbage, tmp_path / "out", valuation_currency="USD")

    assert str(garbage) in str(raised.value)
    assert not (tmp_path / "out" / "report.png").exists()


def test_missing_file_is_a_report_error_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "drawdown.sqlite"

    with pytest.raises(ReportError, match="no such file") as raised:
        load_recorded(missing)

    assert str(missing) in str(raised.value)
    assert not missing.exists()  # read-only: nothing was created


def test_missing_table_is_a_report_error_naming_it(tmp_path):
    database = tmp_path / "drawdown.sqlite"
    db = sqlite3.connect(str(database))
    db.execute("CREATE TABLE marks (ts_ns INTEGER)")
    db.close()

    with pytest.raises(ReportError, match="snapshot") as raised:
        load_recorded(database)

    assert str(database) in str(raised.value)


def test_bad_value_in_a_mark_is_a_report_error_naming_row_and_column(tmp_path):
    database = build_database(tmp_path / "drawdown.sqlite")
    db = sqlite3.connect(str(database))
    with db:
        db.execute("UPDATE marks SET equity = 'lots' WHERE seq = 3")
    db.close()

    with pytest.raises(ReportError, match=r"row 4: equity is not a decimal: 'lots'"):
        load_recorded(database)


def test_undecodable_snapshot_is_a_report_error(tmp_path):
    database = build_database(tmp_path / "drawdown.sqlite")
    db = sqlite3.connect(str(database))
    with db:
        db.execute("UPDATE snapshot SET state = ? WHERE name = 'drawdown'", (b"\xc1garbage",))
    db.close()

    with pytest.raises(ReportError, match="snapshot 'drawdown' cannot be decoded"):
        load_recorded(database)


def test_canvas_text_and_lines_land_where_asked():
    canvas = Canvas(40, 20, (255, 255, 255))

    canvas.line(0, 19, 39, 19, (0, 0, 0), width=1)
    drawn = canvas.text(2, 2, "1%", (255, 0, 0))

    assert drawn == Canvas.text_width("1%") == 11
    assert canvas.get(0, 19) == canvas.get(39, 19) == (0, 0, 0)
    assert canvas.get(4, 2) == (255, 0, 0)  # the top of the "1"
    assert canvas.get(0, 0) == (255, 255, 255)
    width, height, pixels = decode_png(canvas.to_png())
    assert (width, height) == (40, 20)
    assert pixels[19 * 40] == (0, 0, 0) and pixels[2 * 40 + 4] == (255, 0, 0)
