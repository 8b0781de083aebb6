"""Kraken REST request handling: authentication, nonces, parameters, envelopes.

``KrakenApi`` turns one request into Kraken's envelope ``{"error": [...], "result": ...}``
(``result`` omitted on error). Business errors are answered, never raised: the HTTP layer
always sends them with status 200, as Kraken does. Private calls are checked in this order:
API key, signature over the path and the raw body, nonce strictly above the last accepted
one, the REST call counter, then the method itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from loguru import logger

from kraken.names import load_bundled_results
from kraken.paper.amounts import (
    MAX_AMOUNT,
    AmountError,
    bounded_decimal,
    fixed,
    paper_decimal_context,
    parse_decimal,
)
from kraken.paper.bodies import BodyError, load_json
from kraken.paper.engine import ExchangeError, OrderRequest, PaperExchange
from kraken.paper.history import BoundError, page, parse_bound, within
from kraken.paper.rate_limit import RestRateCounter
from kraken.paper.records import BUY, LIMIT, MARKET, SELL, LedgerEntry, Order
from kraken.paper.views import (
    describe_order,
    ledger_view,
    order_view,
    ticker_view,
    time_units,
    trade_view,
)
from messages.units import NS_PER_SECOND, seconds_to_ns

Envelope = dict[str, Any]

_INT32 = (-(2**31), 2**31 - 1)
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})
_ORDER_FLAGS = frozenset({"post", "fcib", "fciq", "nompp"})
_LEDGER_TYPES = frozenset(
    {
        "all",
        "trade",
        "deposit",
        "withdrawal",
        "transfer",
        "margin",
        "adjustment",
        "rollover",
        "credit",
        "settled",
        "staking",
        "dividend",
        "sale",
        "nft_rebate",
    }
)
_TRADE_TYPES = {
    "all": True,
    "no position": True,
    "any position": False,
    "closed position": False,
    "closing position": False,
}
_MAX_QUERY_ORDERS = 50
_MAX_QUERY_TRADES = 20
# Kraken's nonce is an unsigned 64-bit integer (20 digits). Larger ones are taken, as a key
# poisoned by another program's nonce scale is part of what this exchange simulates, but a
# nonce longer than this is refused: it would lock the key out for good.
_MAX_NONCE_DIGITS = 40
# An expiry: at most this many seconds (a Unix time, or from now).
_MAX_EXPIRE_SECONDS = Decimal(10) ** 11


def error_envelope(code: str) -> Envelope:
    """Kraken's failure answer: only the ``error`` list."""
    return {"error": [code]}


def ok(result: Any) -> Envelope:
    """Kraken's success answer."""
    return {"error": [], "result": result}


def sign(path: str, nonce: str, body: bytes, secret: str) -> str:
    """Kraken's API-Sign:
    ``base64(HMAC-SHA512(b64decode(secret), path + SHA256(nonce + body)))``."""
    digest = hashlib.sha256(nonce.encode() + body).digest()
    mac = hmac.new(base64.b64decode(secret), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


class _Params:
    """Request parameters as strings, with typed getters that fail with Kraken's
    ``EGeneral:Invalid arguments:<param>``."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else value.strip()

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise _invalid(name)
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise _invalid(name)

    def integer(self, name: str, lower: int | None = None, upper: int | None = None) -> int | None:
        value = self.text(name)
        if value is None or value == "":
            return None
        try:
            number = int(value)
        except ValueError as error:
            raise _invalid(name) from error
        if (lower is not None and number < lower) or (upper is not None and number > upper):
            raise _invalid(name)
        return number

    def id_list(self, name: str, limit: int) -> list[str]:
        ids = [part.strip() for part in self.required(name).split(",") if part.strip()]
        if not ids or len(ids) > limit:
            raise _invalid(name)
        return ids


def _invalid(param: str) -> ExchangeError:
    return ExchangeError(f"EGeneral:Invalid arguments:{param}")


def _form_values(body: bytes) -> dict[str, str]:
    parsed = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _json_values(body: bytes) -> dict[str, str]:
    document = load_json(body)
    if not isinstance(document, dict):
        raise ValueError("JSON body must be an object")
    values: dict[str, str] = {}
    for key, value in document.items():
        if isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, list):
            values[key] = ",".join(str(item) for item in value)
        elif value is not None:
            values[key] = str(value)
    return values


def _valid_nonce(text: str) -> bool:
    """At most ``_MAX_NONCE_DIGITS`` ASCII digits."""
    return 0 < len(text) <= _MAX_NONCE_DIGITS and text.isascii() and text.isdigit()


def _bounded(text: str, param: str, **bounds: Any) -> Decimal:
    """``bounded_decimal`` of a parameter; ``EGeneral:Invalid arguments:<param>`` otherwise."""
    try:
        return bounded_decimal(text, **bounds)
    except AmountError as error:
        raise _invalid(param) from error


def _valid_cl_ord_id(text: str) -> bool:
    if len(text) in (32, 36):
        try:
            uuid.UUID(text)
            return True
        except ValueError:
            pass
    return 0 < len(text) <= 18 and text.isascii() and text.isprintable()


class KrakenApi:
    """Answers Kraken's public and private REST methods from a ``PaperExchange``."""

    def __init__(
        self,
        exchange: PaperExchange,
        *,
        credentials: Callable[[], Mapping[str, str]],
        rate_counter: RestRateCounter,
        clock: Callable[[], int],
    ) -> None:
        """``credentials`` returns the accepted API keys mapped to their base64 secrets."""
        self.exchange = exchange
        self._credentials = credentials
        self._rate_counter = rate_counter
        self._clock = clock
        # Table numbers (fee percentages, collateral values) go out as Kraken's JSON numbers.
        self._asset_rows, self._pair_rows = load_bundled_results(wire=True)
        self._public: dict[str, Callable[[_Params], Any]] = {
            "Time": self._time,
            "SystemStatus": self._system_status,
            "Assets": self._assets,
            "AssetPairs": self._asset_pairs,
            "Ticker": self._ticker,
        }
        self._private: dict[str, Callable[[_Params], Any]] = {
            "Balance": self._balance,
            "BalanceEx": self._balance_ex,
            "TradeBalance": self._trade_balance,
            "OpenOrders": self._open_orders,
            "ClosedOrders": self._closed_orders,
            "QueryOrders": self._query_orders,
            "TradesHistory": self._trades_history,
            "QueryTrades": self._query_trades,
            "Ledgers": self._ledgers,
            "QueryLedgers": self._query_ledgers,
            "OpenPositions": self._open_positions,
            "AddOrder": self._add_order,
            "CancelOrder": self._cancel_order,
            "CancelAll": self._cancel_all,
        }

    # ------------------------------------------------------------------ entry points

    def public(self, method: str, query: str) -> Envelope:
        """``GET /0/public/<method>?<query>``."""
        handler = self._public.get(method)
        if handler is None:
            return error_envelope("EGeneral:Unknown method")
        params = _Params(
            {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        )
        return self._run(method, handler, params)

    def private(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, content_type: str
    ) -> Envelope:
        """``POST /0/private/<method>`` with its headers and raw body."""
        handler = self._private.get(method)
        if handler is None:
            return error_envelope("EGeneral:Unknown method")
        key = (headers.get("API-Key") or "").strip()
        secret = self._credentials().get(key) if key else None
        if secret is None:
            return error_envelope("EAPI:Invalid key")
        try:
            if content_type.split(";")[0].strip().lower() == "application/json":
                values = _json_values(body)
            else:
                values = _form_values(body)
        except (UnicodeDecodeError, BodyError, ValueError):
            return error_envelope("EAPI:Bad request")
        nonce_text = values.get("nonce", "")
        given = (headers.get("API-Sign") or "").strip()
        try:
            expected = sign(path, nonce_text, body, secret)
        except (binascii.Error, ValueError):
            return error_envelope("EGeneral:Internal error")
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            return error_envelope("EAPI:Invalid signature")
        if not _valid_nonce(nonce_text) or not self.exchange.accept_nonce(key, int(nonce_text)):
            return error_envelope("EAPI:Invalid nonce")
        if not self._rate_counter.charge(key, method):
            return error_envelope("EAPI:Rate limit exceeded")
        return self._run(method, handler, _Params(values))

    def _run(self, method: str, handler: Callable[[_Params], Any], params: _Params) -> Envelope:
        try:
            with paper_decimal_context():
                return ok(handler(params))
        except ExchangeError as error:
            return error_envelope(error.code)
        except Exception:
            logger.exception("paper exchange failed on {}", method)
            return error_envelope("EGeneral:Internal error")

    # ------------------------------------------------------------------ public

    def _time(self, params: _Params) -> dict[str, Any]:
        now_ns = self._clock()
        moment = datetime.fromtimestamp(now_ns // NS_PER_SECOND, tz=UTC)
        # Kraken's "rfc1123" has a space-padded day and a two-digit year.
        text = f"{moment:%a}, {moment.day:2d} {moment:%b %y %H:%M:%S} +0000"
        return {"unixtime": now_ns // NS_PER_SECOND, "rfc1123": text}

    def _system_status(self, params: _Params) -> dict[str, Any]:
        moment = datetime.fromtimestamp(self._clock() // NS_PER_SECOND, tz=UTC)
        return {"status": "online", "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def _assets(self, params: _Params) -> dict[str, Any]:
        wanted = params.text("asset")
        aclass = params.text("aclass")
        if aclass not in (None, "", "currency"):
            raise _invalid("aclass")
        if not wanted:
            return {asset_id: dict(row) for asset_id, row in self._asset_rows.items()}
        result: dict[str, Any] = {}
        for text in wanted.split(","):
            try:
                asset_id = self.exchange.names.asset_id(text)
            except ValueError as error:
                raise ExchangeError("EQuery:Unknown asset") from error
            result[asset_id] = dict(self._asset_rows[asset_id])
        return result

    def _asset_pairs(self, params: _Params) -> dict[str, Any]:
        info = params.text("info") or "info"
        if info not in ("info", "leverage", "fees", "margin"):
            raise _invalid("info")
        wanted = params.text("pair")
        pairs = (
            [self.exchange.traded_pair(text) for text in wanted.split(",")]
            if wanted
            else list(self.exchange.pairs())
        )
        result: dict[str, Any] = {}
        for pair in pairs:
            row = dict(self._pair_rows[pair.id])
            if info == "leverage":
                row = {"leverage_buy": row["leverage_buy"], "leverage_sell": row["leverage_sell"]}
            elif info == "fees":
                row = {
                    "fees": row["fees"],
                    "fees_maker": row["fees_maker"],
                    "fee_volume_currency": row["fee_volume_currency"],
                }
            elif info == "margin":
                row = {"margin_call": row["margin_call"], "margin_stop": row["margin_stop"]}
            result[pair.id] = row
        return result

    def _ticker(self, params: _Params) -> dict[str, Any]:
        wanted = params.text("pair")
        pairs = (
            [self.exchange.traded_pair(text) for text in wanted.split(",")]
            if wanted
            else list(self.exchange.pairs())
        )
        snapshot = self.exchange.ticker([pair.id for pair in pairs])
        return {
            pair.id: ticker_view(pair, snapshot[pair.id]["quote"], snapshot[pair.id]["stats"])
            for pair in pairs
        }

    # ------------------------------------------------------------------ balances

    def _balance(self, params: _Params) -> dict[str, str]:
        exchange = self.exchange
        return {
            asset_id: fixed(amount, exchange.asset_decimals(asset_id))
            for asset_id, amount in exchange.balances().items()
        }

    def _balance_ex(self, params: _Params) -> dict[str, dict[str, str]]:
        exchange = self.exchange
        balances, holds = exchange.balance_sheet()
        result: dict[str, dict[str, str]] = {}
        for asset_id in list(balances) + [a for a in holds if a not in balances]:
            places = exchange.asset_decimals(asset_id)
            result[asset_id] = {
                "balance": fixed(balances.get(asset_id, Decimal(0)), places),
                "hold_trade": fixed(holds.get(asset_id, Decimal(0)), places),
            }
        return result

    def _trade_balance(self, params: _Params) -> dict[str, str]:
        valued = self.exchange.trade_balance(params.text("asset") or "ZUSD")
        places = valued.decimals
        equity = fixed(valued.equivalent, places)
        zero = fixed(Decimal(0), places)
        return {
            "eb": equity,
            "tb": equity,
            "m": zero,
            "n": zero,
            "c": zero,
            "v": zero,
            "e": equity,
            "mf": equity,
        }

    # ------------------------------------------------------------------ orders

    def _order_json(self, order: Order, with_trades: bool) -> dict[str, Any]:
        pair = self.exchange.names.pair(order.pair_id)
        return order_view(order, pair, with_trades=with_trades)

    def _open_orders(self, params: _Params) -> dict[str, Any]:
        with_trades = params.flag("trades")
        userref = params.integer("userref", *_INT32)
        cl_ord_id = params.text("cl_ord_id") or None
        orders = [
            o
            for o in self.exchange.open_orders()
            if (userref is None or o.userref == userref)
            and (cl_ord_id is None or o.cl_ord_id == cl_ord_id)
        ]
        return {"open": {o.txid: self._order_json(o, with_trades) for o in orders}}

    def _closed_orders(self, params: _Params) -> dict[str, Any]:
        with_trades = params.flag("trades")
        userref = params.integer("userref", *_INT32)
        cl_ord_id = params.text("cl_ord_id") or None
        offset = params.integer("ofs", 0) or 0
        closetime = params.text("closetime") or "both"
        if closetime not in ("open", "close", "both"):
            raise _invalid("closetime")
        without_count = params.flag("without_count")

        def order_open_units(txid: str) -> int | None:
            found = self.exchange.order(txid)
            return None if found is None else time_units(found.open_ns)

        # An order id as a bound stands for that order's open time (Kraken's rule).
        bounds = []
        for name in ("start", "end"):
            try:
                bound = parse_bound(params.text(name), name, order_open_units)
            except BoundError as error:
                raise _invalid(error.param) from error
            if bound is not None and bound.seq is not None:
                bound = type(bound)(units=bound.seq)
            bounds.append(bound)
        start, end = bounds

        def selected(order: Order) -> bool:
            if userref is not None and order.userref != userref:
                return False
            if cl_ord_id is not None and order.cl_ord_id != cl_ord_id:
                return False
            opened = within(time_units(order.open_ns), order.seq, start, end)
            closed = within(time_units(order.close_ns or order.open_ns), order.seq, start, end)
            if closetime == "open":
                return opened
            if closetime == "close":
                return closed
            return opened or closed

        matching = [o for o in self.exchange.finished_orders() if selected(o)]
        result: dict[str, Any] = {
            "closed": {o.txid: self._order_json(o, with_trades) for o in page(matching, offset)}
        }
        if not without_count:
            result["count"] = len(matching)
        return result

    def _query_orders(self, params: _Params) -> dict[str, Any]:
        with_trades = params.flag("trades")
        userref = params.integer("userref", *_INT32)
        result: dict[str, Any] = {}
        for txid in params.id_list("txid", _MAX_QUERY_ORDERS):
            order = self.exchange.order(txid)
            if order is None:
                raise ExchangeError("EOrder:Invalid order")
            if userref is None or order.userref == userref:
                result[txid] = self._order_json(order, with_trades)
        return result

    def _add_order(self, params: _Params) -> dict[str, Any]:
        request = self._order_request(params)
        txid = self.exchange.add_order(request)
        description = describe_order(
            request.pair, request.side, request.ordertype, request.volume, request.limit_price
        )
        result: dict[str, Any] = {"descr": {"order": description}}
        if txid is not None:
            result["txid"] = [txid]
        return result

    def _order_request(self, params: _Params) -> OrderRequest:
        pair = self.exchange.traded_pair(params.required("pair"))
        side = params.required("type").lower()
        if side not in (BUY, SELL):
            raise _invalid("type")
        ordertype = params.required("ordertype").lower()
        if ordertype not in (MARKET, LIMIT):
            raise _invalid("ordertype")
        volume = _bounded(params.required("volume"), "volume", maximum=MAX_AMOUNT)
        limit_price: Decimal | None = None
        if ordertype == LIMIT:
            price_text = params.required("price")
            parsed = parse_decimal(price_text)
            if parsed is None or price_text[0] in "+-#" or price_text.endswith("%"):
                raise _invalid("price")
            if parsed <= 0:
                raise ExchangeError("EOrder:Invalid price")
            limit_price = _bounded(price_text, "price", maximum=MAX_AMOUNT)
        flags = {f.strip().lower() for f in (params.text("oflags") or "").split(",") if f.strip()}
        if not flags <= _ORDER_FLAGS or {"fcib", "fciq"} <= flags:
            raise _invalid("oflags")
        post_only = "post" in flags
        if post_only and ordertype != LIMIT:
            raise _invalid("oflags")
        time_in_force = (params.text("timeinforce") or "GTC").lower()
        if time_in_force not in ("gtc", "ioc", "gtd") or (post_only and time_in_force == "ioc"):
            raise _invalid("timeinforce")
        expire_ns = self._expire_time(params.text("expiretm"))
        if expire_ns is not None:
            time_in_force = "gtd"
        elif time_in_force == "gtd":
            raise _invalid("expiretm")
        if (params.text("starttm") or "0") not in ("0", "+0"):
            raise _invalid("starttm")
        if (params.text("leverage") or "none").lower() != "none":
            raise _invalid("leverage")
        if params.flag("reduce_only"):
            raise _invalid("reduce_only")
        if any(name.startswith("close[") for name in params.values):
            raise _invalid("close")
        userref = params.integer("userref", *_INT32)
        cl_ord_id = params.text("cl_ord_id") or None
        if cl_ord_id is not None and (userref is not None or not _valid_cl_ord_id(cl_ord_id)):
            raise _invalid("cl_ord_id")
        return OrderRequest(
            pair=pair,
            side=side,
            ordertype=ordertype,
            volume=volume,
            limit_price=limit_price,
            post_only=post_only,
            fee_in_base="fcib" in flags,
            time_in_force=time_in_force,
            expire_ns=expire_ns,
            userref=userref,
            cl_ord_id=cl_ord_id,
            validate=params.flag("validate"),
        )

    def _expire_time(self, text: str | None) -> int | None:
        """``expiretm``: 0/absent, ``+<seconds>`` from now, or a Unix time in the future."""
        if not text or text in ("0", "+0"):
            return None
        relative = text.startswith("+")
        value = _bounded(text[1:] if relative else text, "expiretm", maximum=_MAX_EXPIRE_SECONDS)
        now = self._clock()
        expire_ns = seconds_to_ns(value) + (now if relative else 0)
        if expire_ns <= now:
            raise _invalid("expiretm")
        return expire_ns

    def _cancel_order(self, params: _Params) -> dict[str, Any]:
        cl_ord_id = params.text("cl_ord_id") or None
        txid = params.text("txid") or None
        if cl_ord_id is None and txid is None:
            raise _invalid("txid")
        return {"count": self.exchange.cancel_order(txid=txid, cl_ord_id=cl_ord_id)}

    def _cancel_all(self, params: _Params) -> dict[str, Any]:
        return {"count": self.exchange.cancel_all()}

    def _open_positions(self, params: _Params) -> dict[str, Any]:
        # A spot account holds no margin positions.
        return {}

    # ------------------------------------------------------------------ trades and ledgers

    def _trades_history(self, params: _Params) -> dict[str, Any]:
        kind = params.text("type") or "all"
        if kind not in _TRADE_TYPES:
            raise _invalid("type")
        with_ledgers = params.flag("ledgers")
        params.flag("trades")
        params.flag("consolidate_taker", True)
        offset = params.integer("ofs", 0) or 0
        without_count = params.flag("without_count")
        start, end = self._bounds(params, self._trade_seq)
        trades = self.exchange.trades() if _TRADE_TYPES[kind] else []
        matching = [t for t in trades if within(time_units(t.time_ns), t.seq, start, end)]
        names = self.exchange.names
        result: dict[str, Any] = {
            "trades": {
                t.txid: trade_view(t, names.pair(t.pair_id), with_ledgers=with_ledgers)
                for t in page(matching, offset)
            }
        }
        if not without_count:
            result["count"] = len(matching)
        return result

    def _query_trades(self, params: _Params) -> dict[str, Any]:
        names = self.exchange.names
        result: dict[str, Any] = {}
        for txid in params.id_list("txid", _MAX_QUERY_TRADES):
            trade = self.exchange.trade(txid)
            if trade is None:
                raise _invalid("txid")
            result[txid] = trade_view(trade, names.pair(trade.pair_id), with_ledgers=False)
        return result

    def _ledgers(self, params: _Params) -> dict[str, Any]:
        assets_text = params.text("asset") or "all"
        asset_ids: set[str] | None = None
        if assets_text.lower() != "all":
            asset_ids = set()
            for text in assets_text.split(","):
                try:
                    asset_ids.add(self.exchange.names.asset_id(text))
                except ValueError as error:
                    raise _invalid("asset") from error
        if (params.text("aclass") or "currency") != "currency":
            raise _invalid("aclass")
        kind = params.text("type") or "all"
        if kind not in _LEDGER_TYPES:
            raise _invalid("type")
        offset = params.integer("ofs", 0) or 0
        without_count = params.flag("without_count")
        start, end = self._bounds(params, self._ledger_seq)

        def selected(entry: LedgerEntry) -> bool:
            return (
                (asset_ids is None or entry.asset_id in asset_ids)
                and (kind == "all" or entry.type == kind)
                and within(time_units(entry.time_ns), entry.seq, start, end)
            )

        matching = [e for e in self.exchange.ledger_entries() if selected(e)]
        result: dict[str, Any] = {
            "ledger": {
                e.id: ledger_view(e, self.exchange.asset_decimals(e.asset_id))
                for e in page(matching, offset)
            }
        }
        if not without_count:
            result["count"] = len(matching)
        return result

    def _query_ledgers(self, params: _Params) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for ledger_id in params.id_list("id", _MAX_QUERY_TRADES):
            entry = self.exchange.ledger_entry(ledger_id)
            if entry is None:
                raise _invalid("id")
            result[ledger_id] = ledger_view(entry, self.exchange.asset_decimals(entry.asset_id))
        return result

    def _bounds(self, params: _Params, seq_of: Callable[[str], int | None]) -> list[Any]:
        bounds = []
        for name in ("start", "end"):
            try:
                bounds.append(parse_bound(params.text(name), name, seq_of))
            except BoundError as error:
                raise _invalid(error.param) from error
        return bounds

    def _trade_seq(self, txid: str) -> int | None:
        trade = self.exchange.trade(txid)
        return None if trade is None else trade.seq

    def _ledger_seq(self, ledger_id: str) -> int | None:
        entry = self.exchange.ledger_entry(ledger_id)
        return None if entry is None else entry.seq
