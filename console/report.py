"""The report: the equity curve, its drawdowns, and realized P&L and fees per asset, as one PNG
and one self-contained HTML page, from what the drawdown actor recorded.

The input is the drawdown actor's SQLite file (`drawdown.database`, see actors/drawdown.py):
the `marks` table (one row per equity mark, in time order: equity and the all-time, daily
and weekly peaks after that mark, `flow` = 1 where a deposit, withdrawal or adjustment scaled
the peaks) and the `snapshot` row `drawdown` (the books it values, so realized P&L and fees
per asset). The file is opened read-only and read in one transaction, so a running group
(which writes it in WAL mode) is never disturbed and the report is one consistent point.

Each drawdown is pct = (peak − equity) / peak × 100 of a mark against that mark's own peak
of the window (`actors.core.drawdown.drawdown_pct`: positive is below the peak, floored at
0); the maxima are over every mark. Money and percentages stay `Decimal` and are shown as
strings; floats appear only as pixel coordinates.
"""

from __future__ import annotations

import base64
import decimal
import html
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from actors.core.drawdown import drawdown_pct
from console.png import Canvas, Color
from messages import CodecError, DrawdownSnapshot, decode
from messages.units import NS_PER_SECOND

SNAPSHOT_NAME = "drawdown"
"""The row of the `snapshot` table the drawdown actor saves its state under."""

NO_MARKS = "no equity marks recorded yet"
PNG_NAME = "report.png"
HTML_NAME = "report.html"
WINDOWS = ("total", "daily", "weekly")
PERCENT_STEP = Decimal("0.01")
"""Percentages in the tables are rounded half-even to this step."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Colors of the picture (also what a reader of the PNG can look for).
BACKGROUND: Color = (255, 255, 255)
INK: Color = (40, 40, 40)
GRID: Color = (228, 228, 228)
EQUITY_COLOR: Color = (31, 119, 180)
PEAK_COLOR: Color = (110, 110, 110)
TOTAL_SHADE: Color = (246, 170, 170)
DAILY_SHADE: Color = (252, 196, 128)
WEEKLY_SHADE: Color = (196, 170, 228)
DAILY_LINE: Color = (214, 120, 20)
WEEKLY_LINE: Color = (120, 80, 170)
LIMIT_COLOR: Color = (200, 0, 0)
FLOW_COLOR: Color = (60, 160, 90)
PROFIT_COLOR: Color = (44, 160, 44)
LOSS_COLOR: Color = (214, 39, 40)
FEES_COLOR: Color = (150, 150, 150)

WIDTH, HEIGHT = 1200, 900
_LEFT, _RIGHT = 100, WIDTH - 24


class ReportError(Exception):
    """The recorded data cannot be read: names the file and what is wrong with it."""

    def __init__(self, database: Path, problem: str) -> None:
        super().__init__(f"{database}: {problem}")
        self.database = database
        self.problem = problem


@dataclass(frozen=True, slots=True)
class EquityMark:
    """One row of the `marks` table: equity and the peaks after the mark (valuation
    currency), at `ts_ns` (UTC ns) after journal event `seq`; `is_flow` where a deposit,
    withdrawal or adjustment scaled the peaks."""

    ts_ns: int
    seq: int
    equity: Decimal
    peak_equity: Decimal
    daily_peak: Decimal
    weekly_peak: Decimal
    is_flow: bool


@dataclass(frozen=True, slots=True)
class AssetResult:
    """One asset's cumulative realized P&L (net of fees, positive: a gain) and fees paid
    (>= 0), in the valuation currency."""

    asset: str
    realized_pnl: Decimal
    fees: Decimal


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the drawdown actor recorded: its marks in time order, and from its last snapshot
    (None when it saved none yet) the books' journal seq, realized P&L and fees per asset
    and cash per currency. `skipped_marks` counts rows without a peak yet (not drawn)."""

    database: Path
    marks: tuple[EquityMark, ...]
    assets: tuple[AssetResult, ...]
    cash: Mapping[str, Decimal]
    snapshot_seq: int | None
    skipped_marks: int


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures of the equity curve. `peak_equity` is the all-time peak at the last mark
    (moved by flows like every peak); the maxima are over every mark, each mark against its
    own window's peak."""

    first_ns: int
    last_ns: int
    start_equity: Decimal
    end_equity: Decimal
    peak_equity: Decimal
    max_total_pct: Decimal
    max_daily_pct: Decimal
    max_weekly_pct: Decimal
    last_total_pct: Decimal
    last_daily_pct: Decimal
    last_weekly_pct: Decimal
    marks: int
    flows: int


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Where the report was written."""

    png: Path
    html: Path


# -- reading -----------------------------------------------------------------------------------


def load_recorded(database: Path) -> Recorded:
    """The marks and the books' results the drawdown actor recorded in `database`.

    Amounts are in the valuation currency the group ran with (the file does not say which;
    `write_report` is told). Raises `ReportError` naming the file for a missing file, a file
    that is not SQLite, a missing table or column, or a value that is not what it should be.
    """
    database = Path(database)
    if not database.exists():
        raise ReportError(database, "no such file")
    if not database.is_file():
        raise ReportError(database, "not a file")
    try:
        db = sqlite3.connect(
            f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise ReportError(database, f"cannot be opened: {exc}") from None
    try:
        # one read transaction: the marks and the snapshot as of one point in the WAL
        db.execute("BEGIN")
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        for table in ("marks", "snapshot"):
            if table not in tables:
                raise ReportError(database, f"no table {table!r} (not a drawdown database?)")
        rows = db.execute(
            "SELECT rowid, ts_ns, seq, equity, peak_equity, daily_peak, weekly_peak, flow"
            " FROM marks ORDER BY rowid"
        ).fetchall()
        saved = db.execute(
            "SELECT seq, state FROM snapshot WHERE name = ?", (SNAPSHOT_NAME,)
        ).fetchone()
    except sqlite3.Error as exc:
        raise ReportError(database, f"cannot be read as a drawdown database: {exc}") from None
    finally:
        db.close()
    marks: list[EquityMark] = []
    skipped = 0
    for row in rows:
        mark = _mark_of(database, row)
        if mark is None:
            skipped += 1
        else:
            marks.append(mark)
    assets, cash, snapshot_seq = _books_of(database, saved)
    return Recorded(
        database=database,
        marks=tuple(marks),
        assets=assets,
        cash=cash,
        snapshot_seq=snapshot_seq,
        skipped_marks=skipped,
    )


def _mark_of(database: Path, row: tuple) -> EquityMark | None:
    """A mark from its row; None for a row written before the first peak existed."""
    rowid, ts_ns, seq, *amounts, is_flow = row
    names = ("equity", "peak_equity", "daily_peak", "weekly_peak")
    if any(value is None or value == "None" for value in amounts):
        return None
    for name, value in (("ts_ns", ts_ns), ("seq", seq)):
        if type(value) is not int or value < 0:
            raise ReportError(database, f"marks row {rowid}: {name} is not an int >= 0: {value!r}")
    if is_flow not in (0, 1):
        raise ReportError(database, f"marks row {rowid}: flow is not 0 or 1: {is_flow!r}")
    parsed = [
        _decimal_of(database, rowid, name, value)
        for name, value in zip(names, amounts, strict=True)
    ]
    return EquityMark(ts_ns, seq, *parsed, is_flow=bool(is_flow))


def _decimal_of(database: Path, rowid: int, name: str, value: object) -> Decimal:
    if not isinstance(value, str):
        raise ReportError(database, f"marks row {rowid}: {name} is not a decimal string: {value!r}")
    try:
        number = Decimal(value)
    except decimal.InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ReportError(database, f"marks row {rowid}: {name} is not a decimal: {value!r}")
    return number


def _books_of(
    database: Path, saved: tuple | None
) -> tuple[tuple[AssetResult, ...], dict[str, Decimal], int | None]:
    if saved is None:
        return (), {}, None
    seq, blob = saved
    if type(seq) is not int or seq < 0:
        raise ReportError(database, f"snapshot {SNAPSHOT_NAME!r}: seq is not an int >= 0: {seq!r}")
    if not isinstance(blob, bytes):
        raise ReportError(database, f"snapshot {SNAPSHOT_NAME!r}: state is not a blob")
    try:
        state = decode(blob, max_bytes=1 << 30)
    except CodecError as exc:
        raise ReportError(
            database, f"snapshot {SNAPSHOT_NAME!r} cannot be decoded: {exc}"
        ) from None
    if not isinstance(state, DrawdownSnapshot):
        raise ReportError(
            database,
            f"snapshot {SNAPSHOT_NAME!r} holds a {type(state).__name__}, not a DrawdownSnapshot",
        )
    assets = tuple(
        AssetResult(asset=asset, realized_pnl=position.realized_pnl, fees=position.fees)
        for asset, position in sorted(state.positions.items())
    )
    return assets, dict(sorted(state.cash.items())), seq


# -- figures -------------------------------------------------------------------------------


def report_context() -> decimal.Context:
    """The local decimal context of the report's arithmetic."""
    return decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)


def mark_drawdowns(mark: EquityMark, context: decimal.Context) -> tuple[Decimal, Decimal, Decimal]:
    """Total, daily and weekly drawdown % of a mark: (peak − equity) / peak × 100 against
    each window's peak, positive below the peak, floored at 0."""
    return (
        drawdown_pct(mark.peak_equity, mark.equity, context),
        drawdown_pct(mark.daily_peak, mark.equity, context),
        drawdown_pct(mark.weekly_peak, mark.equity, context),
    )


def summarize(marks: Sequence[EquityMark], context: decimal.Context) -> Summary | None:
    """The summary of the equity curve; None without a mark."""
    if not marks:
        return None
    per_mark = [mark_drawdowns(mark, context) for mark in marks]
    first, last = marks[0], marks[-1]
    return Summary(
        first_ns=first.ts_ns,
        last_ns=last.ts_ns,
        start_equity=first.equity,
        end_equity=last.equity,
        peak_equity=last.peak_equity,
        max_total_pct=max(pcts[0] for pcts in per_mark),
        max_daily_pct=max(pcts[1] for pcts in per_mark),
        max_weekly_pct=max(pcts[2] for pcts in per_mark),
        last_total_pct=per_mark[-1][0],
        last_daily_pct=per_mark[-1][1],
        last_weekly_pct=per_mark[-1][2],
        marks=len(marks),
        flows=sum(1 for mark in marks if mark.is_flow),
    )


def percent_text(pct: Decimal, context: decimal.Context) -> str:
    """A percentage as the tables show it: rounded half-even to 0.01."""
    return str(pct.quantize(PERCENT_STEP, context=context))


def utc_iso(ts_ns: int) -> str:
    """ISO-8601 UTC (`Z`) from integer nanoseconds (to the microsecond)."""
    moment = _EPOCH + timedelta(microseconds=ts_ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def normalized_limits(limits: Mapping[str, Decimal | None] | None) -> dict[str, Decimal | None]:
    """The limit % per window (`total`, `daily`, `weekly`) from keys named either way
    (`daily` or `max_daily_drawdown_pct`); None: no limit."""
    out: dict[str, Decimal | None] = dict.fromkeys(WINDOWS)
    for key, value in (limits or {}).items():
        window = key.removeprefix("max_").removesuffix("_drawdown_pct")
        if window not in WINDOWS:
            raise ValueError(f"limits: unknown window {key!r} (expected one of {WINDOWS})")
        if value is not None and (
            not isinstance(value, Decimal) or not value.is_finite() or value <= 0
        ):
            raise ValueError(f"limits[{key!r}]: expected a Decimal > 0 or None, got {value!r}")
        out[window] = value
    return out


# -- the report ----------------------------------------------------------------------------


def write_report(
    database: Path,
    out_dir: Path,
    *,
    valuation_currency: str,
    limits: dict[str, Decimal | None] | None = None,
    title: str = "Portfolio report",
) -> ReportFiles:
    """Write `report.png` and `report.html` into `out_dir` (created if needed) from the
    drawdown database; `limits` are the drawdown limit % per window, drawn and listed.

    Each file is written whole then renamed into place, so a reader never sees half of one.
    Raises `ReportError` when the database cannot be read.
    """
    window_limits = normalized_limits(limits)
    recorded = load_recorded(Path(database))
    context = report_context()
    summary = summarize(recorded.marks, context)
    png = render_png(recorded, summary, valuation_currency, window_limits, title, context)
    page = render_html(recorded, summary, valuation_currency, window_limits, title, png, context)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(png=out_dir / PNG_NAME, html=out_dir / HTML_NAME)
    _write_whole(files.png, png)
    _write_whole(files.html, page.encode("utf-8"))
    logger.info(
        "report of {} marks from {} written to {} and {}",
        len(recorded.marks),
        recorded.database,
        files.png,
        files.html,
    )
    return files


def _write_whole(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# -- the picture -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Panel:
    """A plot area and the value range its height maps (low at the bottom)."""

    top: int
    bottom: int
    low: Decimal
    high: Decimal
    left: int = _LEFT
    right: int = _RIGHT

    def y(self, value: Decimal) -> float:
        span = float(self.high - self.low)
        return self.bottom - (float(value - self.low) / span) * (self.bottom - self.top)


def render_png(
    recorded: Recorded,
    summary: Summary | None,
    valuation_currency: str,
    limits: Mapping[str, Decimal | None],
    title: str,
    context: decimal.Context,
) -> bytes:
    """The report's picture: equity with its all-time peak and the total drawdown shaded
    between them; daily and weekly drawdown % shaded with their limits; realized P&L (green
    a gain, red a loss) and fees per asset as bars."""
    canvas = Canvas(WIDTH, HEIGHT, BACKGROUND)
    canvas.text(_LEFT, 14, title, INK, scale=2)
    if summary is None:
        subtitle = f"{valuation_currency} - {NO_MARKS}"
    else:
        subtitle = (
            f"{valuation_currency} - {utc_iso(summary.first_ns)} TO {utc_iso(summary.last_ns)}"
            f" - {summary.marks} MARKS, {summary.flows} FLOWS"
        )
    canvas.text(_LEFT, 38, subtitle, INK)
    marks = recorded.marks
    if marks:
        first, last = marks[0].ts_ns, marks[-1].ts_ns
        xs = [_x_of(mark.ts_ns, first, last) for mark in marks]
    else:
        first = last = 0
        xs = []
    _equity_panel(canvas, marks, xs, first, last, limits["total"], valuation_currency, context)
    for index, window in enumerate(("daily", "weekly")):
        _drawdown_panel(canvas, marks, xs, first, last, window, limits[window], index, context)
    _results_panel(canvas, recorded.assets, valuation_currency, context)
    return canvas.to_png()


def _x_of(ts_ns: int, first: int, last: int) -> float:
    if last <= first:
        return (_LEFT + _RIGHT) / 2
    return _LEFT + (ts_ns - first) / (last - first) * (_RIGHT - _LEFT)


def _equity_panel(
    canvas: Canvas,
    marks: Sequence[EquityMark],
    xs: list[float],
    first: int,
    last: int,
    total_limit: Decimal | None,
    currency: str,
    context: decimal.Context,
) -> None:
    top, bottom = 80, 340
    canvas.text(_LEFT, top - 14, f"EQUITY ({currency})", INK)
    _legend(
        canvas,
        top - 14,
        [("EQUITY", EQUITY_COLOR), ("ALL-TIME PEAK", PEAK_COLOR), ("TOTAL DRAWDOWN", TOTAL_SHADE)]
        + ([("FLOW", FLOW_COLOR)] if any(mark.is_flow for mark in marks) else [])
        + ([(f"TOTAL LIMIT {total_limit}%", LIMIT_COLOR)] if total_limit is not None else []),
    )
    if not marks:
        _frame(canvas, top, bottom)
        _centered(canvas, top, bottom, NO_MARKS)
        return
    floors = []
    if total_limit is not None:
        keep = context.subtract(Decimal(1), context.divide(total_limit, Decimal(100)))
        floors = [context.multiply(mark.peak_equity, keep) for mark in marks]
    values = [mark.equity for mark in marks] + [mark.peak_equity for mark in marks] + floors
    low, high, ticks = _axis(min(values), max(values), 6, context)
    panel = _Panel(top, bottom, low, high)
    _grid(canvas, panel, ticks, lambda tick: _amount_label(tick))
    _time_grid(canvas, panel, first, last)
    equity_ys = [panel.y(mark.equity) for mark in marks]
    peak_ys = [panel.y(mark.peak_equity) for mark in marks]
    canvas.fill_between(*_band(xs, peak_ys, equity_ys), TOTAL_SHADE)
    for mark, x in zip(marks, xs, strict=True):
        if mark.is_flow:
            canvas.line(x, top, x, bottom, FLOW_COLOR, dash=3)
    if floors:
        canvas.polyline(*_envelope(xs, [panel.y(f) for f in floors]), LIMIT_COLOR)
    canvas.polyline(*_envelope(xs, peak_ys), PEAK_COLOR)
    canvas.polyline(*_envelope(xs, equity_ys), EQUITY_COLOR, width=2)
    if len(marks) == 1:  # one mark is a point: make it visible
        canvas.rect(xs[0] - 3, equity_ys[0] - 3, xs[0] + 3, equity_ys[0] + 3, EQUITY_COLOR)
    _frame(canvas, top, bottom)


def _drawdown_panel(
    canvas: Canvas,
    marks: Sequence[EquityMark],
    xs: list[float],
    first: int,
    last: int,
    window: str,
    limit: Decimal | None,
    index: int,
    context: decimal.Context,
) -> None:
    top = 400 + index * 170
    bottom = top + 120
    shade, line = (DAILY_SHADE, DAILY_LINE) if window == "daily" else (WEEKLY_SHADE, WEEKLY_LINE)
    canvas.text(_LEFT, top - 14, f"{window.upper()} DRAWDOWN %", INK)
    _legend(
        canvas,
        top - 14,
        [(f"{window.upper()} DRAWDOWN", shade)]
        + ([(f"{window.upper()} LIMIT {limit}%", LIMIT_COLOR)] if limit is not None else []),
    )
    if not marks:
        _frame(canvas, top, bottom)
        _centered(canvas, top, bottom, NO_MARKS)
        return
    # drawn downwards from 0: a drawdown of 3% sits at -3
    depths = [
        context.minus(drawdown_pct(_peak_of(mark, window), mark.equity, context)) for mark in marks
    ]
    deepest = min([*depths, context.minus(limit) if limit is not None else Decimal(0)])
    low, high, ticks = _axis(deepest if deepest < 0 else Decimal(-1), Decimal(0), 4, context)
    panel = _Panel(top, bottom, low, high)
    _grid(canvas, panel, ticks, lambda tick: f"{_amount_label(tick)}%")
    _time_grid(canvas, panel, first, last)
    zero_ys = [panel.y(Decimal(0))] * len(marks)
    depth_ys = [panel.y(depth) for depth in depths]
    canvas.fill_between(*_band(xs, zero_ys, depth_ys), shade)
    canvas.polyline(*_envelope(xs, depth_ys), line)
    if limit is not None:
        y = panel.y(context.minus(limit))
        canvas.line(_LEFT, y, _RIGHT, y, LIMIT_COLOR, width=2, dash=8)
    _frame(canvas, top, bottom)


def _peak_of(mark: EquityMark, window: str) -> Decimal:
    return mark.daily_peak if window == "daily" else mark.weekly_peak


def _results_panel(
    canvas: Canvas, assets: Sequence[AssetResult], currency: str, context: decimal.Context
) -> None:
    top, bottom = 750, 860
    canvas.text(_LEFT, top - 14, f"REALIZED P&L AND FEES PER ASSET ({currency})", INK)
    _legend(canvas, top - 14, [("GAIN", PROFIT_COLOR), ("LOSS", LOSS_COLOR), ("FEES", FEES_COLOR)])
    if not assets:
        _frame(canvas, top, bottom)
        _centered(canvas, top, bottom, "no positions recorded yet")
        return
    values = [a.realized_pnl for a in assets] + [a.fees for a in assets] + [Decimal(0)]
    low, high = min(values), max(values)
    low, high, ticks = _axis(low, high, 4, context)
    panel = _Panel(top, bottom, low, high)
    _grid(canvas, panel, ticks, _amount_label)
    zero = panel.y(Decimal(0))
    slot = (_RIGHT - _LEFT) / len(assets)
    bar = max(1.0, min(40.0, slot * 0.35))
    for index, result in enumerate(assets):
        middle = _LEFT + slot * (index + 0.5)
        color = PROFIT_COLOR if result.realized_pnl >= 0 else LOSS_COLOR
        canvas.rect(middle - bar - 1, zero, middle - 1, panel.y(result.realized_pnl), color)
        canvas.rect(middle + 1, zero, middle + bar + 1, panel.y(result.fees), FEES_COLOR)
        label = result.asset[: max(1, int(slot // 6) - 1)]
        canvas.text(middle - Canvas.text_width(label) / 2, bottom + 6, label, INK)
    canvas.line(_LEFT, zero, _RIGHT, zero, INK)
    _frame(canvas, top, bottom)


def _band(
    xs: Sequence[float], tops: Sequence[float], bottoms: Sequence[float]
) -> tuple[list[float], list[float], list[float]]:
    """The shaded band, one point per pixel column when the marks outnumber the columns
    (the column's extent over its marks), so a long curve costs what the picture holds."""
    if len(xs) <= 2 * (_RIGHT - _LEFT):
        return list(xs), list(tops), list(bottoms)
    columns: dict[int, tuple[float, float]] = {}
    for x, y0, y1 in zip(xs, tops, bottoms, strict=True):
        column = round(x)
        low, high = min(y0, y1), max(y0, y1)
        known = columns.get(column)
        columns[column] = (
            (low, high) if known is None else (min(known[0], low), max(known[1], high))
        )
    ordered = sorted(columns.items())
    return (
        [float(column) for column, _ in ordered],
        [span[0] for _, span in ordered],
        [span[1] for _, span in ordered],
    )


def _envelope(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """The line's points, reduced when they outnumber the pixel columns to each column's
    first, lowest, highest and last point in time order (the picture is the same)."""
    if len(xs) <= 2 * (_RIGHT - _LEFT):
        return list(xs), list(ys)
    keep: list[int] = []
    start = 0
    for index in range(1, len(xs) + 1):
        if index == len(xs) or round(xs[index]) != round(xs[start]):
            members = range(start, index)
            chosen = {
                start,
                index - 1,
                min(members, key=lambda i: ys[i]),
                max(members, key=lambda i: ys[i]),
            }
            keep.extend(sorted(chosen))
            start = index
    return [xs[i] for i in keep], [ys[i] for i in keep]


def _axis(
    low: Decimal, high: Decimal, target: int, context: decimal.Context
) -> tuple[Decimal, Decimal, list[Decimal]]:
    """A range covering low..high that starts and ends on a round step (1, 2 or 5 × 10^k,
    about `target` steps), and its ticks."""
    if low == high:
        pad = max(context.divide(context.abs(low), Decimal(100)), Decimal(1))
        low, high = context.subtract(low, pad), context.add(high, pad)
    raw = context.divide(context.subtract(high, low), Decimal(target))
    power = Decimal(1).scaleb(raw.adjusted(), context)
    step = next(
        context.multiply(m, power)
        for m in (Decimal(1), Decimal(2), Decimal(5), Decimal(10))
        if context.multiply(m, power) >= raw
    )
    first = context.multiply(
        context.divide(low, step).to_integral_value(decimal.ROUND_FLOOR, context), step
    )
    end = context.multiply(
        context.divide(high, step).to_integral_value(decimal.ROUND_CEILING, context), step
    )
    count = int(context.divide(context.subtract(end, first), step))
    ticks = [context.add(first, context.multiply(step, Decimal(i))) for i in range(count + 1)]
    return first, end, ticks


def _amount_label(value: Decimal) -> str:
    """A tick's number without exponent or trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _grid(
    canvas: Canvas, panel: _Panel, ticks: Iterable[Decimal], label: Callable[[Decimal], str]
) -> None:
    for tick in ticks:
        y = panel.y(tick)
        canvas.line(panel.left, y, panel.right, y, GRID)
        text = label(tick)
        canvas.text(panel.left - 6 - Canvas.text_width(text), y - 3, text, INK)


_TIME_STEPS_S = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 91 * 86400, 182 * 86400, 365 * 86400,
)  # fmt: skip


def _time_grid(canvas: Canvas, panel: _Panel, first: int, last: int) -> None:
    """Vertical grid lines at round UTC times, labelled under the panel."""
    span = last - first
    if span <= 0:
        text = utc_iso(first)
        canvas.text(
            (panel.left + panel.right - Canvas.text_width(text)) / 2, panel.bottom + 6, text, INK
        )
        return
    step_s = next((s for s in _TIME_STEPS_S if span // (s * NS_PER_SECOND) <= 7), 365 * 86400)
    step = step_s * NS_PER_SECOND
    tick = -(-first // step) * step
    while tick <= last:
        x = _x_of(tick, first, last)
        canvas.line(x, panel.top, x, panel.bottom, GRID)
        moment = _EPOCH + timedelta(microseconds=tick // 1000)
        if step_s < 60:
            text = moment.strftime("%H:%M:%S")
        elif step_s < 86400:
            text = moment.strftime("%m-%d %H:%M")
        else:
            text = moment.strftime("%Y-%m-%d")
        width = Canvas.text_width(text)
        left = min(max(x - width / 2, panel.left), panel.right - width)
        canvas.text(left, panel.bottom + 6, text, INK)
        tick += step


def _frame(canvas: Canvas, top: int, bottom: int) -> None:
    canvas.rect(_LEFT, top, _RIGHT, bottom, INK, fill=False)


def _centered(canvas: Canvas, top: int, bottom: int, text: str) -> None:
    width = Canvas.text_width(text, 2)
    canvas.text((_LEFT + _RIGHT - width) / 2, (top + bottom) / 2 - 7, text, INK, scale=2)


def _legend(canvas: Canvas, y: int, entries: Sequence[tuple[str, Color]]) -> None:
    """Swatches and names, right-aligned on the panel's title line."""
    x = _RIGHT - sum(14 + Canvas.text_width(name) + 16 for name, _ in entries) + 16
    for name, color in entries:
        canvas.rect(x, y, x + 9, y + 6, color)
        x += 14
        x += canvas.text(x, y, name, INK) + 16


# -- the page ------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; margin: 24px; color: #282828; }
table { border-collapse: collapse; margin: 8px 0 24px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
td.number { text-align: right; font-family: monospace; }
img { max-width: 100%; border: 1px solid #ddd; }
.note { font-weight: bold; }
"""


def render_html(
    recorded: Recorded,
    summary: Summary | None,
    valuation_currency: str,
    limits: Mapping[str, Decimal | None],
    title: str,
    png: bytes,
    context: decimal.Context,
) -> str:
    """One self-contained page: the picture inline (a data URI) and the tables, every
    amount and percentage as a decimal string."""
    currency = html.escape(valuation_currency)
    image = base64.b64encode(png).decode("ascii")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Valuation currency: {currency}. Source: {html.escape(str(recorded.database))}.</p>",
    ]
    if summary is None:
        parts.append(f'<p class="note">{NO_MARKS.capitalize()}.</p>')
    parts.append(
        f'<p><img alt="equity, drawdown and P&amp;L chart" src="data:image/png;base64,{image}"></p>'
    )
    parts.append("<h2>Summary</h2>")
    summary_rows = _summary_rows(recorded, summary, valuation_currency, limits, context)
    parts.append(_table(("Figure", "Value"), summary_rows))
    parts.append(f"<h2>Realized P&amp;L and fees per asset ({currency})</h2>")
    if recorded.assets:
        total_pnl = sum_decimals((a.realized_pnl for a in recorded.assets), context)
        total_fees = sum_decimals((a.fees for a in recorded.assets), context)
        rows = [(a.asset, str(a.realized_pnl), str(a.fees)) for a in recorded.assets]
        rows.append(("Total", str(total_pnl), str(total_fees)))
        parts.append(_table(("Asset", "Realized P&L (net of fees)", "Fees"), rows))
    else:
        parts.append("<p>No positions recorded yet.</p>")
    if recorded.cash:
        parts.append("<h2>Cash</h2>")
        parts.append(
            _table(("Currency", "Balance"), [(k, str(v)) for k, v in recorded.cash.items()])
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def sum_decimals(values: Iterable[Decimal], context: decimal.Context) -> Decimal:
    """The exact sum of `values` in `context` (0 for none)."""
    total = Decimal(0)
    for value in values:
        total = context.add(total, value)
    return total


def _summary_rows(
    recorded: Recorded,
    summary: Summary | None,
    currency: str,
    limits: Mapping[str, Decimal | None],
    context: decimal.Context,
) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if summary is None:
        rows.append(("Equity marks", f"0 ({NO_MARKS})"))
    else:

        def pct(value: Decimal) -> str:
            return percent_text(value, context)

        rows += [
            ("First mark (UTC)", utc_iso(summary.first_ns)),
            ("Last mark (UTC)", utc_iso(summary.last_ns)),
            (f"Start equity ({currency})", str(summary.start_equity)),
            (f"End equity ({currency})", str(summary.end_equity)),
            (f"Peak equity, all-time, moved by flows ({currency})", str(summary.peak_equity)),
            ("Max total drawdown %", pct(summary.max_total_pct)),
            ("Max daily drawdown %", pct(summary.max_daily_pct)),
            ("Max weekly drawdown %", pct(summary.max_weekly_pct)),
            ("Total drawdown % at the last mark", pct(summary.last_total_pct)),
            ("Daily drawdown % at the last mark", pct(summary.last_daily_pct)),
            ("Weekly drawdown % at the last mark", pct(summary.last_weekly_pct)),
            ("Equity marks", str(summary.marks)),
            ("Flows (deposits, withdrawals, adjustments)", str(summary.flows)),
        ]
    if recorded.skipped_marks:
        rows.append(("Rows without a peak yet (not drawn)", str(recorded.skipped_marks)))
    for window in WINDOWS:
        limit = limits.get(window)
        rows.append(
            (f"{window.capitalize()} drawdown limit %", "none" if limit is None else str(limit))
        )
    rows.append(
        (
            "Books (P&L, fees, cash) at journal seq",
            "no snapshot saved yet"
            if recorded.snapshot_seq is None
            else str(recorded.snapshot_seq),
        )
    )
    return rows


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = []
    for row in rows:
        cells = [f"<td>{html.escape(row[0])}</td>"]
        cells += [f'<td class="number">{html.escape(cell)}</td>' for cell in row[1:]]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def report_limits(config: Any) -> dict[str, Decimal | None]:
    """The drawdown limits of config.yaml's risk section, as `write_report` takes them."""
    risk = config.risk
    return {
        "total": risk.max_total_drawdown_pct,
        "daily": risk.max_daily_drawdown_pct,
        "weekly": risk.max_weekly_drawdown_pct,
    }
