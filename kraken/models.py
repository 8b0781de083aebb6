"""Typed results of Kraken calls, and their parsing from Kraken's JSON.

Every amount is a ``Decimal`` parsed from Kraken's strings (or from JSON numbers decoded as
Decimal), never a float. Every time is integer nanoseconds since the Unix epoch, converted
from Kraken's fractional seconds through Decimal so no digit is lost. Asset and pair names
are normalized through ``KrakenNames`` (``XXBT`` → ``XBT``, pair ``XXBTZUSD`` → symbol
``XBT/USD``) and the raw ids are kept where a caller may need them.

Parsing raises ``FieldError`` naming the field (``trades[T…].price``) when Kraken's answer
does not have the documented shape; the client turns it into ``MalformedResponse``.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from kraken.names import KrakenNames, PairInfo, UnknownPairName
from messages.errors import ServiceFieldError

__all__ = [
    "KRAKEN_DECIMAL_CONTEXT",
    "AddOrderResult",
    "AssetBalance",
    "AssetBalanceEx",
    "CancelResult",
    "FieldError",
    "LedgerEntry",
    "Order",
    "SystemStatus",
    "Ticker",
    "Trade",
    "TradeBalance",
    "parse_decimal",
    "parse_time_ns",
]

#: The context for arithmetic on Kraken amounts: wide enough that sums of balances and
#: products of prices and volumes are exact, and traps instead of silent NaNs.
KRAKEN_DECIMAL_CONTEXT = decimal.Context(
    prec=40,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZERO = Decimal(0)


class FieldError(ServiceFieldError, ValueError):
    """A field of Kraken's answer that is missing or has the wrong type; ``field`` names it,
    ``detail`` (= ``problem``) says why."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(field, detail)
        self.detail = detail


# ---------------------------------------------------------------------------- field parsing


def require_mapping(value: Any, field: str) -> Mapping[str, Any]:
    """``value`` as a JSON object, or FieldError."""
    if not isinstance(value, Mapping):
        raise FieldError(field, f"expected an object, got {type(value).__name__}")
    return value


def _get(entry: Mapping[str, Any], key: str, field: str) -> Any:
    if key not in entry:
        raise FieldError(f"{field}.{key}", "missing")
    return entry[key]


def parse_decimal(value: Any, field: str) -> Decimal:
    """A finite Decimal from a Kraken string, a JSON integer or a Decimal-decoded JSON number.

    Floats are refused: they would mean the JSON was decoded without ``parse_float=Decimal``
    and digits may already be lost.
    """
    if isinstance(value, bool | float):
        raise FieldError(field, f"expected a decimal string, got {type(value).__name__}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except decimal.InvalidOperation:
            raise FieldError(field, f"not a decimal number: {value!r}") from None
    else:
        raise FieldError(field, f"expected a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise FieldError(field, f"not a finite number: {value!r}")
    return result


def _decimal_at(entry: Mapping[str, Any], key: str, field: str) -> Decimal:
    return parse_decimal(_get(entry, key, field), f"{field}.{key}")


def _optional_decimal(
    entry: Mapping[str, Any], key: str, field: str, *, zero_is_none: bool = False
) -> Decimal | None:
    value = entry.get(key)
    if value is None:
        return None
    result = parse_decimal(value, f"{field}.{key}")
    if zero_is_none and result == 0:
        return None
    return result


def parse_time_ns(value: Any, field: str) -> int:
    """Kraken's Unix seconds (``1688666559.8974``, an integer, or a numeric string) as
    integer nanoseconds, converted through Decimal so no digit is lost (rounded half-even
    below one nanosecond)."""
    seconds = parse_decimal(value, field)
    if seconds < 0:
        raise FieldError(field, f"negative time: {value!r}")
    nanos = seconds.scaleb(9, context=KRAKEN_DECIMAL_CONTEXT)
    return int(nanos.to_integral_value(context=KRAKEN_DECIMAL_CONTEXT))


def _time_at(entry: Mapping[str, Any], key: str, field: str) -> int:
    return parse_time_ns(_get(entry, key, field), f"{field}.{key}")


def _optional_time(entry: Mapping[str, Any], key: str, field: str) -> int | None:
    """Kraken writes 0 for an unset ``starttm``/``expiretm``; that, or an absent key, is None."""
    value = entry.get(key)
    if value is None:
        return None
    nanos = parse_time_ns(value, f"{field}.{key}")
    return nanos or None


def _text_at(entry: Mapping[str, Any], key: str, field: str) -> str:
    value = _get(entry, key, field)
    if not isinstance(value, str):
        raise FieldError(f"{field}.{key}", f"expected a string, got {type(value).__name__}")
    return value


def _optional_text(entry: Mapping[str, Any], key: str, field: str) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError(f"{field}.{key}", f"expected a string, got {type(value).__name__}")
    return value


def _int_value(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise FieldError(field, "expected an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise FieldError(field, f"expected an integer, got {value!r}")


def _optional_int(entry: Mapping[str, Any], key: str, field: str) -> int | None:
    value = entry.get(key)
    return None if value is None else _int_value(value, f"{field}.{key}")


def _optional_bool(entry: Mapping[str, Any], key: str, field: str) -> bool | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise FieldError(f"{field}.{key}", f"expected a boolean, got {value!r}")
    return value


def _string_list(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise FieldError(field, "expected a list of strings")
    return tuple(value)


def _comma_list(value: Any, field: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if not isinstance(value, str):
        raise FieldError(field, f"expected a comma-separated string, got {value!r}")
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _pair(names: KrakenNames, text: Any, field: str) -> PairInfo:
    if not isinstance(text, str) or not text:
        raise FieldError(field, f"expected a pair name, got {text!r}")
    try:
        return names.pair(text)
    except UnknownPairName:
        raise FieldError(field, f"unknown pair {text!r}") from None


def _add(*values: Decimal) -> Decimal:
    total = ZERO
    for value in values:
        total = KRAKEN_DECIMAL_CONTEXT.add(total, value)
    return total


# ---------------------------------------------------------------------------- balances


@dataclass(frozen=True, kw_only=True)
class AssetBalance:
    """One line of ``Balance``: the total ``balance`` of ``raw_asset`` (Kraken's id, e.g.
    ``XXBT``, ``DOT28.S``), including funds held by open orders.

    ``asset`` is the normalized name of the underlying (``XBT``, ``DOT``); ``is_variant`` is
    True for staking, earn and hold balances (``suffix`` ``.S``/``.M``/``.F``/``.HOLD``...,
    ``bonded_days`` for bonded staking), which count towards ``asset`` but cannot be traded
    as it.
    """

    asset: str
    raw_asset: str
    balance: Decimal
    is_variant: bool
    suffix: str | None
    bonded_days: int | None

    @classmethod
    def from_kraken(cls, raw_asset: str, value: Any, names: KrakenNames) -> AssetBalance:
        """Parse ``"XXBT": "0.5000000000"``."""
        normalized = names.asset(raw_asset)
        return cls(
            asset=normalized.name,
            raw_asset=raw_asset,
            balance=parse_decimal(value, f"result[{raw_asset}]"),
            is_variant=normalized.is_variant,
            suffix=normalized.suffix,
            bonded_days=normalized.bonded_days,
        )


@dataclass(frozen=True, kw_only=True)
class AssetBalanceEx:
    """One line of ``BalanceEx``: ``balance`` (total), ``hold_trade`` (reserved by open spot
    orders), ``credit`` and ``credit_used`` (zero without a credit line).

    Names as in ``AssetBalance``.
    """

    asset: str
    raw_asset: str
    balance: Decimal
    hold_trade: Decimal
    credit: Decimal
    credit_used: Decimal
    is_variant: bool
    suffix: str | None
    bonded_days: int | None

    @property
    def available(self) -> Decimal:
        """What new orders may use: ``balance + credit − credit_used − hold_trade``."""
        return _add(self.balance, self.credit, -self.credit_used, -self.hold_trade)

    @classmethod
    def from_kraken(cls, raw_asset: str, value: Any, names: KrakenNames) -> AssetBalanceEx:
        """Parse ``"ZUSD": {"balance": "…", "hold_trade": "…"[, "credit", "credit_used"]}``."""
        field = f"result[{raw_asset}]"
        entry = require_mapping(value, field)
        normalized = names.asset(raw_asset)
        return cls(
            asset=normalized.name,
            raw_asset=raw_asset,
            balance=_decimal_at(entry, "balance", field),
            hold_trade=_optional_decimal(entry, "hold_trade", field) or ZERO,
            credit=_optional_decimal(entry, "credit", field) or ZERO,
            credit_used=_optional_decimal(entry, "credit_used", field) or ZERO,
            is_variant=normalized.is_variant,
            suffix=normalized.suffix,
            bonded_days=normalized.bonded_days,
        )


@dataclass(frozen=True, kw_only=True)
class TradeBalance:
    """``TradeBalance`` valued in ``asset`` (normalized name).

    ``equivalent_balance`` (eb) sums every currency; ``trade_balance`` (tb) the equity
    currencies; ``margin`` (m) is margin used; ``unrealized_pnl`` (n) is positive for a
    profit; ``cost_basis`` (c) and ``floating_valuation`` (v) describe open positions;
    ``equity`` (e) = tb + n; ``free_margin`` (mf) = e − initial margin; ``margin_level`` (ml,
    percent) and ``unexecuted_value`` (uv) are None when Kraken omits them (no positions).
    """

    asset: str
    equivalent_balance: Decimal
    trade_balance: Decimal
    margin: Decimal
    unrealized_pnl: Decimal
    cost_basis: Decimal
    floating_valuation: Decimal
    equity: Decimal
    free_margin: Decimal
    margin_level: Decimal | None
    unexecuted_value: Decimal | None

    @classmethod
    def from_kraken(cls, asset: str, value: Any) -> TradeBalance:
        """Parse the ``result`` object of ``TradeBalance``."""
        entry = require_mapping(value, "result")
        return cls(
            asset=asset,
            equivalent_balance=_decimal_at(entry, "eb", "result"),
            trade_balance=_decimal_at(entry, "tb", "result"),
            margin=_optional_decimal(entry, "m", "result") or ZERO,
            unrealized_pnl=_optional_decimal(entry, "n", "result") or ZERO,
            cost_basis=_optional_decimal(entry, "c", "result") or ZERO,
            floating_valuation=_optional_decimal(entry, "v", "result") or ZERO,
            equity=_decimal_at(entry, "e", "result"),
            free_margin=_optional_decimal(entry, "mf", "result") or ZERO,
            margin_level=_optional_decimal(entry, "ml", "result"),
            unexecuted_value=_optional_decimal(entry, "uv", "result"),
        )


# ---------------------------------------------------------------------------- trades, ledgers


@dataclass(frozen=True, kw_only=True)
class Trade:
    """One fill from ``TradesHistory`` / ``QueryTrades``.

    ``volume`` is in base, ``price`` and ``cost`` (= price × volume) in quote. ``fee`` is
    what Kraken reports, always stated in quote (``fee_asset``) even when the fee was charged
    in base or in KFEE; the ledger entries (``ledger_ids``, when requested) say what was
    really debited. ``side`` is ``buy``/``sell`` from our side. ``symbol`` is the normalized
    pair (``XBT/USD``), ``pair_id`` Kraken's id (``XXBTZUSD``).
    """

    txid: str
    order_txid: str
    position_txid: str | None
    pair_id: str
    symbol: str
    base: str
    quote: str
    side: str
    ordertype: str
    price: Decimal
    cost: Decimal
    fee: Decimal
    fee_asset: str
    volume: Decimal
    margin: Decimal
    misc: tuple[str, ...]
    time_ns: int
    trade_id: int | None
    maker: bool | None
    ledger_ids: tuple[str, ...]

    @classmethod
    def from_kraken(cls, txid: str, value: Any, names: KrakenNames, where: str) -> Trade:
        """Parse one trade object; ``where`` names the enclosing map for errors."""
        field = f"{where}[{txid}]"
        entry = require_mapping(value, field)
        pair = _pair(names, _get(entry, "pair", field), f"{field}.pair")
        return cls(
            txid=txid,
            order_txid=_text_at(entry, "ordertxid", field),
            position_txid=_optional_text(entry, "postxid", field),
            pair_id=pair.id,
            symbol=pair.symbol,
            base=pair.base,
            quote=pair.quote,
            side=_side(_text_at(entry, "type", field), f"{field}.type"),
            ordertype=_text_at(entry, "ordertype", field),
            price=_decimal_at(entry, "price", field),
            cost=_decimal_at(entry, "cost", field),
            fee=_decimal_at(entry, "fee", field),
            fee_asset=pair.quote,
            volume=_decimal_at(entry, "vol", field),
            margin=_optional_decimal(entry, "margin", field) or ZERO,
            misc=_comma_list(entry.get("misc"), f"{field}.misc"),
            time_ns=_time_at(entry, "time", field),
            trade_id=_optional_int(entry, "trade_id", field),
            maker=_optional_bool(entry, "maker", field),
            ledger_ids=_string_list(entry.get("ledgers"), f"{field}.ledgers"),
        )


def _side(text: str, field: str) -> str:
    if text not in ("buy", "sell"):
        raise FieldError(field, f"expected 'buy' or 'sell', got {text!r}")
    return text


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One ``Ledgers`` entry: a movement of ``asset``.

    ``amount`` is signed and gross (negative for money leaving), ``fee`` is what this leg
    paid (positive), so the balance moves by ``amount − fee`` and ``balance`` is the
    balance after it. ``refid`` links the legs of one event (the trade txid for fills).
    ``asset`` is normalized (``XBT``), ``raw_asset`` Kraken's id (``XXBT``, ``DOT.S``).
    """

    ledger_id: str
    refid: str | None
    time_ns: int
    type: str
    subtype: str | None
    asset: str
    raw_asset: str
    is_variant: bool
    amount: Decimal
    fee: Decimal
    balance: Decimal

    @classmethod
    def from_kraken(cls, ledger_id: str, value: Any, names: KrakenNames) -> LedgerEntry:
        """Parse one ledger entry."""
        field = f"result.ledger[{ledger_id}]"
        entry = require_mapping(value, field)
        raw_asset = _text_at(entry, "asset", field)
        normalized = names.asset(raw_asset)
        return cls(
            ledger_id=ledger_id,
            refid=_optional_text(entry, "refid", field),
            time_ns=_time_at(entry, "time", field),
            type=_text_at(entry, "type", field),
            subtype=_optional_text(entry, "subtype", field),
            asset=normalized.name,
            raw_asset=raw_asset,
            is_variant=normalized.is_variant,
            amount=_decimal_at(entry, "amount", field),
            fee=_optional_decimal(entry, "fee", field) or ZERO,
            balance=_decimal_at(entry, "balance", field),
        )


# ---------------------------------------------------------------------------- orders

OPEN_STATUSES = frozenset({"pending", "open"})


@dataclass(frozen=True, kw_only=True)
class Order:
    """An order from ``OpenOrders`` / ``ClosedOrders`` / ``QueryOrders``.

    ``status`` is Kraken's (``pending``, ``open``, ``closed``, ``canceled``, ``expired``);
    a partial fill shows as ``0 < volume_executed < volume``. ``volume`` and
    ``volume_executed`` are in base; ``cost``, ``fee`` (total, in quote) and
    ``average_price`` (``cost / volume_executed``; None until filled) in quote.
    ``limit_price`` is the limit or trigger price (None for market orders), ``price2`` the
    secondary price of ``*-limit`` types. Times are ns; ``close_ns`` only once finished.
    """

    txid: str
    status: str
    symbol: str
    pair_id: str
    pair_altname: str
    side: str
    ordertype: str
    limit_price: Decimal | None
    price2: Decimal | None
    stop_price: Decimal | None
    volume: Decimal
    volume_executed: Decimal
    cost: Decimal
    fee: Decimal
    average_price: Decimal | None
    userref: int | None
    cl_ord_id: str | None
    open_ns: int
    close_ns: int | None
    start_ns: int | None
    expire_ns: int | None
    reason: str | None
    misc: tuple[str, ...]
    oflags: tuple[str, ...]
    time_in_force: str | None
    trade_txids: tuple[str, ...]
    description: str

    @property
    def is_open(self) -> bool:
        """True while the order can still fill (``pending`` or ``open``)."""
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        """Unfilled base volume: ``volume − volume_executed``."""
        return _add(self.volume, -self.volume_executed)

    @property
    def is_partially_filled(self) -> bool:
        """``0 < volume_executed < volume``, whatever the status."""
        return ZERO < self.volume_executed < self.volume

    @classmethod
    def from_kraken(cls, txid: str, value: Any, names: KrakenNames, where: str) -> Order:
        """Parse one order object; ``where`` names the enclosing map for errors."""
        field = f"{where}[{txid}]"
        entry = require_mapping(value, field)
        descr = require_mapping(_get(entry, "descr", field), f"{field}.descr")
        descr_field = f"{field}.descr"
        pair_text = _text_at(descr, "pair", descr_field)
        pair = _pair(names, pair_text, f"{descr_field}.pair")
        return cls(
            txid=txid,
            status=_text_at(entry, "status", field),
            symbol=pair.symbol,
            pair_id=pair.id,
            pair_altname=pair_text,
            side=_side(_text_at(descr, "type", descr_field), f"{descr_field}.type"),
            ordertype=_text_at(descr, "ordertype", descr_field),
            limit_price=_optional_decimal(descr, "price", descr_field, zero_is_none=True),
            price2=_optional_decimal(descr, "price2", descr_field, zero_is_none=True),
            stop_price=_optional_decimal(entry, "stopprice", field, zero_is_none=True),
            volume=_decimal_at(entry, "vol", field),
            volume_executed=_decimal_at(entry, "vol_exec", field),
            cost=_decimal_at(entry, "cost", field),
            fee=_decimal_at(entry, "fee", field),
            average_price=_optional_decimal(entry, "price", field, zero_is_none=True),
            userref=_optional_int(entry, "userref", field),
            cl_ord_id=_optional_text(entry, "cl_ord_id", field),
            open_ns=_time_at(entry, "opentm", field),
            close_ns=_optional_time(entry, "closetm", field),
            start_ns=_optional_time(entry, "starttm", field),
            expire_ns=_optional_time(entry, "expiretm", field),
            reason=_optional_text(entry, "reason", field),
            misc=_comma_list(entry.get("misc"), f"{field}.misc"),
            oflags=_comma_list(entry.get("oflags"), f"{field}.oflags"),
            time_in_force=_optional_text(entry, "time_in_force", field),
            trade_txids=_string_list(entry.get("trades"), f"{field}.trades"),
            description=_optional_text(descr, "order", descr_field) or "",
        )


@dataclass(frozen=True, kw_only=True)
class AddOrderResult:
    """The outcome of ``add_order``.

    ``txid`` is the new order's id (None when only validated). ``cl_ord_id`` is the client
    order id it carried (None when a ``userref`` was sent instead). ``recovered`` is True when
    the answer was lost and the order was found by its ``cl_ord_id``; ``order`` is then the
    order as found. ``attempts`` counts AddOrder requests sent.
    """

    txid: str | None
    cl_ord_id: str | None
    userref: int | None
    description: str
    validated: bool
    recovered: bool
    attempts: int
    order: Order | None = None


@dataclass(frozen=True, kw_only=True)
class CancelResult:
    """The outcome of a cancel: ``count`` orders canceled, ``pending`` when Kraken reports
    the cancel as still in progress. ``uncertain`` is True when an earlier attempt failed
    ambiguously and the retry found no open order: the order is not open now, and the
    earlier attempt may be the one that canceled it (``count`` is then 0)."""

    count: int
    pending: bool
    uncertain: bool = False

    @classmethod
    def from_kraken(cls, value: Any) -> CancelResult:
        """Parse ``{"count": N[, "pending": true]}`` (``count`` may arrive as a string)."""
        entry = require_mapping(value, "result")
        pending = entry.get("pending", False)
        if not isinstance(pending, bool):
            raise FieldError("result.pending", f"expected a boolean, got {pending!r}")
        return cls(
            count=_int_value(_get(entry, "count", "result"), "result.count"), pending=pending
        )


# ---------------------------------------------------------------------------- market data


@dataclass(frozen=True, kw_only=True)
class Ticker:
    """One ``Ticker`` entry, in quote per base.

    ``ask``/``bid`` are the touch with their lot volumes, ``last`` the last trade price and
    volume. ``*_today`` cover the day since 00:00 UTC, ``*_24h`` the last 24 hours: traded
    base volume, volume-weighted average price, trade count, low and high. ``open`` is
    today's opening price. ``received_ns`` is when the client received the answer (its
    clock), the only timestamp Kraken's ticker offers.
    """

    symbol: str
    pair_id: str
    ask: Decimal
    ask_volume: Decimal
    bid: Decimal
    bid_volume: Decimal
    last: Decimal
    last_volume: Decimal
    volume_today: Decimal
    volume_24h: Decimal
    vwap_today: Decimal
    vwap_24h: Decimal
    trades_today: int
    trades_24h: int
    low_today: Decimal
    low_24h: Decimal
    high_today: Decimal
    high_24h: Decimal
    open: Decimal
    received_ns: int

    @property
    def mid(self) -> Decimal:
        """``(bid + ask) / 2``."""
        return KRAKEN_DECIMAL_CONTEXT.divide(_add(self.bid, self.ask), Decimal(2))

    @classmethod
    def from_kraken(cls, pair: PairInfo, value: Any, received_ns: int) -> Ticker:
        """Parse one ticker object (the result's value for ``pair``)."""
        field = f"result[{pair.id}]"
        entry = require_mapping(value, field)

        def part(key: str, index: int) -> Any:
            values = _get(entry, key, field)
            if not isinstance(values, list | tuple) or len(values) <= index:
                raise FieldError(f"{field}.{key}", f"expected a list with item {index}")
            return values[index]

        def number(key: str, index: int) -> Decimal:
            return parse_decimal(part(key, index), f"{field}.{key}[{index}]")

        return cls(
            symbol=pair.symbol,
            pair_id=pair.id,
            ask=number("a", 0),
            ask_volume=number("a", 2),
            bid=number("b", 0),
            bid_volume=number("b", 2),
            last=number("c", 0),
            last_volume=number("c", 1),
            volume_today=number("v", 0),
            volume_24h=number("v", 1),
            vwap_today=number("p", 0),
            vwap_24h=number("p", 1),
            trades_today=_int_value(part("t", 0), f"{field}.t[0]"),
            trades_24h=_int_value(part("t", 1), f"{field}.t[1]"),
            low_today=number("l", 0),
            low_24h=number("l", 1),
            high_today=number("h", 0),
            high_24h=number("h", 1),
            open=parse_decimal(_get(entry, "o", field), f"{field}.o"),
            received_ns=received_ns,
        )


@dataclass(frozen=True, kw_only=True)
class SystemStatus:
    """``SystemStatus``: ``status`` is ``online``, ``maintenance``, ``cancel_only`` or
    ``post_only``; ``timestamp_ns`` is Kraken's time of the answer."""

    status: str
    timestamp_ns: int

    @property
    def is_online(self) -> bool:
        """True when every kind of order is accepted."""
        return self.status == "online"

    @classmethod
    def from_kraken(cls, value: Any) -> SystemStatus:
        """Parse ``{"status": "online", "timestamp": "2024-05-27T08:53:20Z"}``."""
        entry = require_mapping(value, "result")
        text = _text_at(entry, "timestamp", "result")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise FieldError("result.timestamp", f"not an ISO 8601 time: {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        nanos = (moment - _EPOCH) // timedelta(microseconds=1) * 1000
        return cls(status=_text_at(entry, "status", "result"), timestamp_ns=nanos)


def server_time_ns(value: Any) -> int:
    """``Time``'s ``unixtime`` (integer seconds) as nanoseconds; ``rfc1123`` is ignored (it
    has a two-digit year)."""
    entry = require_mapping(value, "result")
    return parse_time_ns(_get(entry, "unixtime", "result"), "result.unixtime")
