"""Replay files: a Kraken trades export (CSV) or a JSONL of events, read into typed messages.

`python runner.py replay FILE` runs a file through the service's actors; this module turns the
file into the ordered list of messages they receive. The format is recognized by content:

* A Kraken trades export: a CSV whose header names TradesHistory's columns (txid, ordertxid,
  pair, time, type, ordertype, price, cost, fee, vol, margin, misc, ledgers; in any order,
  extra columns ignored). Every row is one fill and becomes a FILLED `ExecutionReport`.
  Kraken states a trade's fee in the pair's quote currency, so that is its fee currency.
  Rows are replayed in time order (ties in file order): the books are a fold of fills
  oldest first, whichever way the export was sorted.
* JSONL: one JSON object a line (blank lines skipped), each an `ExecutionReport`, a
  `PriceMark` or a `Transfer`, replayed in file order. Money travels as decimal strings; a
  JSON number is refused because a binary float loses digits.

A fill on a cross pair (ETH/XBT when valuing in USD) needs the rate of its quote currency
into the valuation currency at fill time (`quote_rate`), so that the fold of the log never
depends on a later price. An export carries no such rate: the reader stamps the latest one
the file itself has shown before the fill (the price of a QUOTE/VALUATION fill, or in JSONL
also the mid of a QUOTE/VALUATION `PriceMark` or a `quote_rate` given for the same quote),
and refuses the fill when there is none.

Every message is built by the codec's `from_fields`, so the validator the wire uses applies
here too. A bad line stops the reading with a `ReplayInputError` naming the file, the line,
the field (as the file spells it) and what was wrong.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import decimal
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from kraken.names import KrakenNames, PairInfo, UnknownAssetName, UnknownPairName
from messages.base import Message
from messages.codec import CodecError, from_fields, to_fields
from messages.journal import ExecutionReport, OrderStatus, PriceMark, Transfer
from messages.units import NS_PER_DAY, NS_PER_SECOND

__all__ = [
    "FUTURE_TOLERANCE_NS",
    "TRADES_EXPORT_COLUMNS",
    "BalanceOptionError",
    "ReplayInputError",
    "parse_balance_option",
    "read_replay_file",
]

TRADES_EXPORT_COLUMNS: tuple[str, ...] = (
    "txid",
    "ordertxid",
    "pair",
    "time",
    "type",
    "ordertype",
    "price",
    "cost",
    "fee",
    "vol",
    "margin",
    "misc",
    "ledgers",
)
"""The columns a Kraken trades export must have (TradesHistory's trade fields)."""

FUTURE_TOLERANCE_NS = NS_PER_DAY
"""How far past the clock's now a timestamp may lie (one day, more than any time-zone slip).

Nothing in a replay file can have happened in the future; a timestamp beyond this is a unit
or format mistake (milliseconds read as seconds, a year typed wrong)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIMESTAMP_CHARS = 64
_MAX_PAIR_CHARS = 64

# Exact arithmetic only: any rounding in a timestamp or a rate signals instead of passing.
_EXACT = decimal.Context(
    prec=200,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow, decimal.DivisionByZero],
)

_UNIX_SECONDS = re.compile(r"\d{1,20}(?:\.\d{1,30})?", re.ASCII)
_DATE_TIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[T ]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
    r"(?:\.(?P<fraction>\d{1,30}))?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_PLAIN_AMOUNT = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_CURRENCY_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.]*", re.ASCII)

M = TypeVar("M", bound=Message)


# --- errors -----------------------------------------------------------------------------


class ReplayInputError(ValueError):
    """A replay file could not be read: which file, which line (1-based), which field, why.

    `field` is the field or column as the file spells it (`vol`, `ts`, `quote_rate`), or None
    when the problem is the line as a whole (invalid JSON, wrong number of columns).
    `str()` reads "FILE:LINE: field: what was wrong".
    """

    def __init__(self, path: Path, line: int, field: str | None, detail: str) -> None:
        super().__init__(path, line, field, detail)
        self.path = path
        self.line = line
        self.field = field
        self.detail = detail

    def __str__(self) -> str:
        if self.field is None:
            return f"{self.path}:{self.line}: {self.detail}"
        return f"{self.path}:{self.line}: {self.field}: {self.detail}"


class _LineProblem(Exception):
    """What is wrong with the line being read; the reader adds the file and line number."""

    def __init__(self, field: str | None, detail: str) -> None:
        super().__init__(field, detail)
        self.field = field
        self.detail = detail


class BalanceOptionError(argparse.ArgumentTypeError, ValueError):
    """A `--balance` option that is not `CUR=AMOUNT`.

    A ValueError for callers; also an `ArgumentTypeError` so that argparse shows this message
    rather than its generic "invalid value" when the parser is used as an option's `type`.
    """


# --- public API -------------------------------------------------------------------------


def read_replay_file(
    path: Path,
    *,
    names: KrakenNames,
    valuation_currency: str = "USD",
    clock_ns: Callable[[], int] = time.time_ns,
) -> list[Message]:
    """The messages a replay file holds, in the order they are to be journaled.

    `names` resolves pairs (`XXBTZUSD`, `ETHXBT`, `BTC/USD` → the symbol `XBT/USD`) and
    assets (`XXBT` → `XBT`); `valuation_currency` decides which fills need a `quote_rate`;
    `clock_ns` gives now in nanoseconds, against which timestamps from the future are refused
    (see `FUTURE_TOLERANCE_NS`). Every timestamp becomes both `ts_event` and `ts_init`.

    Raises `ReplayInputError` for the first bad line (unrecognized format, invalid JSON or
    UTF-8, unknown type, missing or extra field, bad decimal, negative quantity, unknown pair,
    bad timestamp, a CSV row with the wrong number of columns, a cross-pair fill with no known
    rate), and `OSError` when the file cannot be read.
    """
    path = Path(path)
    text = _decode_text(path, path.read_bytes())
    reader = _FileReader(
        path=path,
        names=names,
        valuation_currency=_valuation_name(names, valuation_currency),
        now_ns=clock_ns(),
    )
    first = _first_content_line(text)
    if first is None:
        raise ReplayInputError(path, 1, None, f"empty file: {_EXPECTED_FORMATS}")
    first_line, first_text = first
    if first_text.lstrip().startswith("{"):
        messages = reader.read_jsonl(text)
        file_format = "JSONL"
    else:
        messages = reader.read_trades_export(text, first_line)
        file_format = "Kraken trades export"
    logger.info("read {} events from {} ({})", len(messages), path, file_format)
    return messages


def parse_balance_option(text: str, *, names: KrakenNames | None = None) -> tuple[str, Decimal]:
    """A `--balance CUR=AMOUNT` option as (normalized currency, amount): `USD=10000`.

    The currency is normalized through `names` (the bundled tables by default), so `ZUSD`
    and `usd` both give `USD`. The amount is a plain non-negative decimal (no sign, exponent
    or separators): a starting balance. Raises `BalanceOptionError` (a ValueError) naming
    the option otherwise.
    """
    currency_text, separator, amount_text = text.partition("=")
    currency_text = currency_text.strip()
    amount_text = amount_text.strip()
    if not separator or not currency_text or not amount_text:
        raise BalanceOptionError(f"--balance {text!r}: expected CUR=AMOUNT, e.g. USD=10000")
    if not _CURRENCY_CODE.fullmatch(currency_text):
        raise BalanceOptionError(
            f"--balance {text!r}: the currency must be a code such as USD or XBT, "
            f"got {currency_text!r}"
        )
    if len(amount_text) > 64 or not _PLAIN_AMOUNT.fullmatch(amount_text):
        raise BalanceOptionError(
            f"--balance {text!r}: the amount must be a plain non-negative decimal "
            f"such as 10000 or 0.5, got {amount_text!r}"
        )
    resolver = names if names is not None else KrakenNames.bundled()
    return resolver.asset_name(currency_text), _EXACT.create_decimal(amount_text)


# --- reading ----------------------------------------------------------------------------

_EXPECTED_FORMATS = (
    "expected a Kraken trades export (a CSV header with the columns "
    + ", ".join(TRADES_EXPORT_COLUMNS)
    + ") or JSONL (one JSON object a line)"
)

# Decimal fields of each JSONL type: these must be JSON strings, never JSON numbers.
_JSONL_MONEY_FIELDS = frozenset(
    {"last_qty", "last_price", "fee", "quote_rate", "cost", "bid", "ask", "amount", "unit_price"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class _JsonlShape:
    """The keys one JSONL event type must and may carry (besides "type")."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


_JSONL_SHAPES: Mapping[str, _JsonlShape] = {
    "ExecutionReport": _JsonlShape(
        required=(
            "exec_id",
            "order_id",
            "pair",
            "side",
            "status",
            "last_qty",
            "last_price",
            "fee",
            "fee_currency",
            "ts",
        ),
        optional=("quote_rate", "cost", "reason"),
    ),
    "PriceMark": _JsonlShape(required=("pair", "bid", "ask", "ts")),
    "Transfer": _JsonlShape(
        required=("transfer_id", "asset", "amount", "ts"), optional=("unit_price",)
    ),
}

# Message fields as a JSONL line spells them.
_JSONL_FIELD_NAMES = {"ts_event": "ts", "ts_init": "ts"}

# ExecutionReport fields as the trades export's columns spell them.
_EXPORT_FIELD_NAMES = {
    "exec_id": "txid",
    "order_id": "ordertxid",
    "side": "type",
    "last_qty": "vol",
    "last_price": "price",
    "ts_event": "time",
    "ts_init": "time",
}


@dataclasses.dataclass(slots=True)
class _ExportFill:
    """A fill read from the export, kept with its line until the rows are put in time order."""

    line: int
    pair: PairInfo
    report: ExecutionReport


@dataclasses.dataclass(slots=True)
class _FileReader:
    """Reads one file; `rates` holds the latest quote → valuation rate seen per currency."""

    path: Path
    names: KrakenNames
    valuation_currency: str
    now_ns: int
    rates: dict[str, Decimal] = dataclasses.field(default_factory=dict)

    # ----------------------------------------------------------------- trades export (CSV)

    def read_trades_export(self, text: str, header_line: int) -> list[Message]:
        """Every fill of the export, oldest first, cross pairs stamped with their rate."""
        records = _csv_records(self.path, text)
        columns: dict[str, int] | None = None
        width = 0
        fills: list[_ExportFill] = []
        for line, cells in records:
            if columns is None:
                columns = self._export_columns(cells, line)
                width = len(cells)
                continue
            if len(cells) != width:
                raise ReplayInputError(
                    self.path,
                    line,
                    None,
                    f"expected {width} columns as in the header (line {header_line}), "
                    f"got {len(cells)}",
                )
            try:
                fills.append(self._export_fill(cells, columns, line))
            except _LineProblem as problem:
                raise ReplayInputError(self.path, line, problem.field, problem.detail) from None
        fills.sort(key=lambda fill: fill.report.ts_event)  # stable: ties keep file order
        messages: list[Message] = []
        for fill in fills:
            try:
                messages.append(self._with_quote_rate(fill.report, fill.pair, "export"))
            except _LineProblem as problem:
                raise ReplayInputError(
                    self.path, fill.line, problem.field, problem.detail
                ) from None
            self._learn_from_fill(fill.report, fill.pair)
        return messages

    def _export_columns(self, cells: list[str], line: int) -> dict[str, int]:
        """The position of each required column in the header; refuses anything else."""
        header = [cell.strip().lower() for cell in cells]
        missing = [column for column in TRADES_EXPORT_COLUMNS if column not in header]
        if missing:
            if len(missing) == len(TRADES_EXPORT_COLUMNS):
                raise ReplayInputError(
                    self.path, line, None, f"not a replay file: {_EXPECTED_FORMATS}"
                )
            raise ReplayInputError(
                self.path,
                line,
                missing[0],
                "not a Kraken trades export: the header lacks the column(s) " + ", ".join(missing),
            )
        for column in TRADES_EXPORT_COLUMNS:
            if header.count(column) > 1:
                raise ReplayInputError(self.path, line, column, "the column appears more than once")
        return {column: header.index(column) for column in TRADES_EXPORT_COLUMNS}

    def _export_fill(self, cells: list[str], columns: Mapping[str, int], line: int) -> _ExportFill:
        def cell(column: str) -> str:
            return cells[columns[column]]

        pair = self._pair(cell("pair"), "pair")
        ts = _timestamp_ns(cell("time"), "time", zone_required=False, now_ns=self.now_ns)
        _require_spot(cell("margin"))
        report = _build(
            ExecutionReport,
            {
                "exec_id": cell("txid"),
                "order_id": cell("ordertxid"),
                "pair": pair.symbol,
                "side": cell("type"),
                "status": OrderStatus.FILLED.value,
                "last_qty": cell("vol"),
                "last_price": cell("price"),
                "fee": cell("fee"),
                "fee_currency": pair.quote,
                "quote_rate": None,
                "cost": cell("cost"),
                "ts_event": ts,
                "ts_init": ts,
            },
            _EXPORT_FIELD_NAMES,
        )
        if report.last_qty <= 0:
            raise _LineProblem("vol", f"must be > 0 (an export lists fills), got {cell('vol')!r}")
        if report.last_price <= 0:
            raise _LineProblem("price", f"must be > 0 for a fill, got {cell('price')!r}")
        return _ExportFill(line=line, pair=pair, report=report)

    # ----------------------------------------------------------------- JSONL

    def read_jsonl(self, text: str) -> list[Message]:
        """Every event of a JSONL file, in file order."""
        messages: list[Message] = []
        for line, content in _numbered_lines(text):
            if not content.strip():
                continue
            try:
                messages.append(self._jsonl_event(content))
            except _LineProblem as problem:
                raise ReplayInputError(self.path, line, problem.field, problem.detail) from None
        return messages

    def _jsonl_event(self, content: str) -> Message:
        event = _json_object(content)
        if "type" not in event:
            raise _LineProblem("type", "missing: " + _known_types())
        kind = event.pop("type")
        shape = _JSONL_SHAPES.get(kind) if type(kind) is str else None
        if shape is None:
            raise _LineProblem("type", f"unknown type {_shown_json(kind)}: " + _known_types())
        for key in shape.required:
            if key not in event:
                raise _LineProblem(key, "missing")
        for key in event:
            if key not in shape.required and key not in shape.optional:
                raise _LineProblem(key, "unexpected field")
        for key, value in event.items():
            if key in _JSONL_MONEY_FIELDS and _is_json_number(value):
                raise _LineProblem(
                    key,
                    f'must be a decimal string such as "{value}", not a JSON number '
                    "(a binary float loses digits)",
                )
        ts = _timestamp_ns(event["ts"], "ts", zone_required=True, now_ns=self.now_ns)
        if kind == "ExecutionReport":
            return self._jsonl_execution_report(event, ts)
        if kind == "PriceMark":
            return self._jsonl_price_mark(event, ts)
        return self._jsonl_transfer(event, ts)

    def _jsonl_execution_report(self, event: dict[str, Any], ts: int) -> ExecutionReport:
        pair = self._pair(event["pair"], "pair")
        fee_currency = self._asset(event["fee_currency"], "fee_currency")
        fee_currencies = (pair.base, pair.quote, "FEE")
        if fee_currency not in fee_currencies:
            raise _LineProblem(
                "fee_currency",
                f"must be the pair's base ({pair.base}), its quote ({pair.quote}) or FEE "
                f"(Kraken fee credits), got {event['fee_currency']!r}",
            )
        fields: dict[str, Any] = {
            "exec_id": event["exec_id"],
            "order_id": event["order_id"],
            "pair": pair.symbol,
            "side": event["side"],
            "status": event["status"],
            "last_qty": event["last_qty"],
            "last_price": event["last_price"],
            "fee": event["fee"],
            "fee_currency": fee_currency,
            "quote_rate": event.get("quote_rate"),
            "ts_event": ts,
            "ts_init": ts,
        }
        for optional in ("cost", "reason"):
            if optional in event:
                fields[optional] = event[optional]
        report = _build(ExecutionReport, fields, _JSONL_FIELD_NAMES)
        if report.last_qty > 0:
            report = self._with_quote_rate(report, pair, "JSONL")
        if report.quote_rate is not None and pair.quote != self.valuation_currency:
            self.rates[pair.quote] = report.quote_rate
        self._learn_from_fill(report, pair)
        return report

    def _jsonl_price_mark(self, event: dict[str, Any], ts: int) -> PriceMark:
        pair = self._pair(event["pair"], "pair")
        mark = _build(
            PriceMark,
            {"pair": pair.symbol, "bid": event["bid"], "ask": event["ask"], "ts_event": ts},
            _JSONL_FIELD_NAMES,
        )
        if mark.bid > mark.ask:
            raise _LineProblem("bid", f"must not exceed ask ({event['ask']}), got {event['bid']!r}")
        if pair.quote == self.valuation_currency:
            try:
                self.rates[pair.base] = _EXACT.divide(_EXACT.add(mark.bid, mark.ask), Decimal(2))
            except decimal.Inexact:
                # Only scales hundreds of digits apart (1E+999 and 1E-999) overflow an exact mid.
                raise _LineProblem(
                    "ask",
                    f"bid and ask have no exact mid (scales too far apart), got {event['ask']!r}",
                ) from None
        return mark

    def _jsonl_transfer(self, event: dict[str, Any], ts: int) -> Transfer:
        fields: dict[str, Any] = {
            "transfer_id": event["transfer_id"],
            "asset": self._asset(event["asset"], "asset"),
            "amount": event["amount"],
            "ts_event": ts,
            "ts_init": ts,
        }
        if "unit_price" in event:
            fields["unit_price"] = event["unit_price"]
        transfer = _build(Transfer, fields, _JSONL_FIELD_NAMES)
        if transfer.amount == 0:
            raise _LineProblem(
                "amount", "must not be zero (> 0 for a deposit, < 0 for a withdrawal)"
            )
        return transfer

    # ----------------------------------------------------------------- shared

    def _with_quote_rate(
        self, report: ExecutionReport, pair: PairInfo, source: str
    ) -> ExecutionReport:
        """The fill with its quote → valuation rate stamped when it needs one and lacks it."""
        if report.quote_rate is not None or pair.quote == self.valuation_currency:
            return report
        rate = self.rates.get(pair.quote)
        if rate is None:
            where = (
                f"a {pair.quote}/{self.valuation_currency} fill"
                if source == "export"
                else f"a {pair.quote}/{self.valuation_currency} fill or PriceMark, or a quote_rate"
            )
            raise _LineProblem(
                "quote_rate",
                f"no {pair.quote}→{self.valuation_currency} rate is known at this "
                f"{pair.symbol} fill: the file must show {where} before it",
            )
        fields = to_fields(report)
        fields["quote_rate"] = str(rate)
        return _build(ExecutionReport, fields, {})

    def _learn_from_fill(self, report: ExecutionReport, pair: PairInfo) -> None:
        """A fill priced in the valuation currency gives its base's rate from then on."""
        if pair.quote == self.valuation_currency and report.last_qty > 0 and report.last_price > 0:
            self.rates[pair.base] = report.last_price

    def _pair(self, value: Any, field: str) -> PairInfo:
        if type(value) is not str:
            raise _LineProblem(field, f"must be a pair name string, got {_shown_json(value)}")
        if len(value) > _MAX_PAIR_CHARS:  # a glued name is tried at every cut: bound the work
            raise _LineProblem(field, f"unknown pair {_shown_json(value)}")
        try:
            return self.names.pair(value)
        except UnknownPairName:
            raise _LineProblem(field, f"unknown pair {value!r}") from None

    def _asset(self, value: Any, field: str) -> str:
        if type(value) is not str:
            raise _LineProblem(field, f"must be an asset code string, got {_shown_json(value)}")
        try:
            return self.names.asset_name(value)
        except UnknownAssetName:
            raise _LineProblem(field, f"must be an asset code, got {value!r}") from None


# --- helpers ----------------------------------------------------------------------------


def _valuation_name(names: KrakenNames, valuation_currency: str) -> str:
    try:
        return names.asset_name(valuation_currency)
    except UnknownAssetName:
        raise ValueError(
            f"valuation_currency must be an asset code, got {valuation_currency!r}"
        ) from None


def _decode_text(path: Path, data: bytes) -> str:
    """The file as text: UTF-8, with the byte-order mark spreadsheet exports often carry."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ReplayInputError(path, line, None, f"not UTF-8 text: {error.reason}") from None


def _numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    # newline="" splits on \n, \r\n and \r alike but never on the Unicode line separators
    # str.splitlines() also honours, so numbers match what an editor shows.
    return enumerate(io.StringIO(text, newline=""), start=1)


def _first_content_line(text: str) -> tuple[int, str] | None:
    for line, content in _numbered_lines(text):
        if content.strip():
            return line, content
    return None


def _csv_records(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank CSV record with the line it starts on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ReplayInputError(path, start, None, f"malformed CSV: {error}") from None
        if any(cell.strip() for cell in cells):
            yield start, cells


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _LineProblem(key, "appears more than once in the object")
        result[key] = value
    return result


def _json_object(content: str) -> dict[str, Any]:
    try:
        value = json.loads(
            content,
            parse_float=Decimal,  # no binary float ever exists, even for a refused field
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except ValueError as error:  # JSONDecodeError, NaN / Infinity
        raise _LineProblem(None, f"invalid JSON: {error}") from None
    except RecursionError:
        raise _LineProblem(None, "invalid JSON: nests too deeply") from None
    if type(value) is not dict:
        raise _LineProblem(None, f"a line must be one JSON object, got {_shown_json(value)}")
    return value


def _known_types() -> str:
    return "expected one of " + ", ".join(_JSONL_SHAPES)


def _is_json_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _shown_json(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _require_spot(margin_text: str) -> None:
    """Refuses a margin trade: the books hold spot assets, and a margin fill moves none."""
    try:
        margin = _EXACT.create_decimal(margin_text) if margin_text.strip() else Decimal(0)
    except decimal.DecimalException:  # not a number, or too many digits to hold exactly
        raise _LineProblem("margin", f"must be a decimal, got {_shown_json(margin_text)}") from None
    if not margin.is_finite() or margin != 0:
        raise _LineProblem(
            "margin",
            f"margin trades cannot be replayed (spot fills only), got {_shown_json(margin_text)}",
        )


def _build(message_type: type[M], fields: dict[str, Any], field_names: Mapping[str, str]) -> M:
    """The message through the codec's validator; its complaint renamed as the file names it."""
    try:
        return from_fields(message_type, fields)
    except CodecError as error:
        field = error.field.split(".", 1)[0] if error.field else None
        if field is not None:
            field = field_names.get(field, field)
        raise _LineProblem(field, error.detail) from None


def _timestamp_ns(value: Any, field: str, *, zone_required: bool, now_ns: int) -> int:
    """Integer nanoseconds since the epoch, exactly, from a timestamp as a file writes it.

    Accepted: Unix seconds with an optional fraction (`1716800100.5123`, exports only) and
    `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM]` (a zone is required when `zone_required`,
    else its absence means UTC). A fraction finer than a nanosecond, a time before 1970 or
    more than `FUTURE_TOLERANCE_NS` after `now_ns` is refused.
    """
    if type(value) is not str:
        raise _LineProblem(
            field, f"must be an ISO-8601 UTC timestamp string, got {_shown_json(value)}"
        )
    if len(value) > _MAX_TIMESTAMP_CHARS:
        raise _LineProblem(field, f"bad timestamp: longer than {_MAX_TIMESTAMP_CHARS} characters")
    if not zone_required and _UNIX_SECONDS.fullmatch(value):
        ns = _unix_seconds_ns(value, field)
    else:
        ns = _date_time_ns(value, field, zone_required=zone_required)
    if ns < 0:
        raise _LineProblem(field, f"bad timestamp: before 1970-01-01, got {value!r}")
    if ns > now_ns + FUTURE_TOLERANCE_NS:
        raise _LineProblem(
            field, f"bad timestamp: {value!r} lies in the future (more than a day after now)"
        )
    return ns


def _unix_seconds_ns(value: str, field: str) -> int:
    ns = _EXACT.scaleb(_EXACT.create_decimal(value), 9)
    if ns != _EXACT.to_integral_value(ns):
        raise _LineProblem(field, f"bad timestamp: finer than a nanosecond, got {value!r}")
    return int(ns)


def _date_time_ns(value: str, field: str, *, zone_required: bool) -> int:
    match = _DATE_TIME.fullmatch(value)
    if match is None or (zone_required and match["zone"] is None):
        expected = (
            "an ISO-8601 UTC timestamp such as 2024-05-27T08:53:20Z"
            if zone_required
            else "Unix seconds or 'YYYY-MM-DD HH:MM:SS[.fraction]' UTC"
        )
        raise _LineProblem(field, f"bad timestamp: expected {expected}, got {value!r}")
    try:
        moment = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=UTC,
        )
    except ValueError as error:
        raise _LineProblem(field, f"bad timestamp: {error}, got {value!r}") from None
    fraction = match["fraction"] or ""
    if fraction[9:].strip("0"):
        raise _LineProblem(field, f"bad timestamp: finer than a nanosecond, got {value!r}")
    fraction_ns = int(fraction[:9].ljust(9, "0"))
    offset_seconds = 0
    zone = match["zone"]
    if zone is not None and zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise _LineProblem(field, f"bad timestamp: invalid UTC offset {zone!r}")
        offset_seconds = (hours * 3600 + minutes * 60) * (1 if zone[0] == "+" else -1)
    delta = moment - _EPOCH
    whole_seconds = delta.days * 86_400 + delta.seconds - offset_seconds
    return whole_seconds * NS_PER_SECOND + fraction_ns
