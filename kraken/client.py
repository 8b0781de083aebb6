"""The Kraken client: the only way the service talks to Kraken (or to the paper exchange).

``KrakenClient`` wraps krakenex (the only HTTP client) and adds what krakenex leaves out:

* a timeout on every call, and retries with exponential backoff and jitter, bounded by a
  number of attempts and an overall deadline, only where repeating is safe (reads, cancels);
* a strictly increasing nonce per API key, across threads and processes (``NonceSource``),
  with a key's private calls serialized so they reach Kraken in nonce order;
* Kraken's error envelope (HTTP 200 with an ``error`` list) and transport failures turned
  into typed exceptions (``kraken.errors``); warnings are logged, not raised;
* Decimal amounts and integer-nanosecond times in typed results (``kraken.models``), with
  asset and pair names normalized (``kraken.names``);
* AddOrder that is never blindly repeated: each order carries a ``cl_ord_id``; after an
  ambiguous failure the order is looked up by it, and resent only when the lookup proves it
  was not placed;
* history paging (TradesHistory, Ledgers, ClosedOrders) that neither skips nor repeats a
  row when new rows arrive while paging.

Nothing secret is logged: one debug line per call says the method, the outcome and the
duration, never the key, the secret, the signature or a private request's parameters.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import krakenex
import requests
from loguru import logger

from kraken.credentials import Credentials
from kraken.errors import (
    ConnectionFailed,
    DeadlineElapsed,
    HTTPStatusError,
    InternalError,
    InvalidArguments,
    InvalidNonce,
    KrakenError,
    MalformedResponse,
    MarketModeRestricted,
    MissingCredentials,
    NonceLockTimeout,
    NonJSONResponse,
    OrderOutcomeUnknown,
    OrderRequestError,
    RateLimitExceeded,
    RequestTimeout,
    ServiceError,
    Throttled,
    TransportError,
    UnknownOrder,
    classify,
    split_warnings,
)
from kraken.models import (
    KRAKEN_DECIMAL_CONTEXT,
    AddOrderResult,
    AssetBalance,
    AssetBalanceEx,
    CancelResult,
    FieldError,
    LedgerEntry,
    Order,
    SystemStatus,
    Ticker,
    Trade,
    TradeBalance,
    require_mapping,
    server_time_ns,
)
from kraken.names import AssetInfo, KrakenNames, PairInfo, UnknownPairName
from kraken.nonce import NonceSource
from messages.units import NS_PER_SECOND, NS_PER_US

__all__ = [
    "DEFAULT_RETRY",
    "HistoryBound",
    "KrakenClient",
    "RetryPolicy",
    "format_amount",
]

#: A history bound: integer nanoseconds, an aware datetime, or a Kraken id (txid, ledger id).
HistoryBound = int | datetime | str | None

#: Order types Kraken accepts, and those that need a ``price``.
ORDER_TYPES = frozenset(
    {
        "market",
        "limit",
        "iceberg",
        "stop-loss",
        "take-profit",
        "stop-loss-limit",
        "take-profit-limit",
        "trailing-stop",
        "trailing-stop-limit",
        "settle-position",
    }
)
_PRICED_ORDER_TYPES = ORDER_TYPES - {"market", "settle-position"}
_TIME_IN_FORCE = frozenset({"GTC", "IOC", "GTD", "FOK"})
_INT32 = (-(2**31), 2**31 - 1)
_MAX_QUERY_ORDERS = 50
_MAX_QUERY_TRADES = 20
# A looked-up order must have opened after the first send minus this much, which absorbs
# clock skew between this host and Kraken and keeps old orders that reused an id out.
_LOOKUP_SKEW_NS = 300 * NS_PER_SECOND

_Row = TypeVar("_Row")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How calls that are safe to repeat are retried.

    Attempt ``n`` (1-based) that fails retryably is followed by a pause of
    ``d × (1 − jitter × u)`` seconds with ``d = min(max_delay, base_delay × 2^(n−1))`` and
    ``u`` uniform in [0, 1) from ``rng``, unless ``max_attempts`` attempts were made or the
    pause would end after ``deadline_seconds`` since the first attempt. ``Throttled`` pauses
    at least until the time Kraken named. ``order_lookup_delay_seconds`` is the wait, after
    an AddOrder timed out, before looking the order up: a request still in flight must land
    before its absence can prove anything.
    """

    max_attempts: int = 5
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0
    deadline_seconds: float = 30.0
    jitter: float = 0.5
    order_lookup_delay_seconds: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {self.max_attempts}")
        for name in (
            "base_delay_seconds",
            "max_delay_seconds",
            "deadline_seconds",
            "order_lookup_delay_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter: must be within 0..1, got {self.jitter}")

    def delay_seconds(self, attempt: int) -> float:
        """The pause after failed attempt ``attempt`` (1-based), jitter included."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        return ceiling * (1 - self.jitter * self.rng.random())


DEFAULT_RETRY = RetryPolicy()


def format_amount(value: Decimal, places: int, field_name: str, pair_name: str) -> str:
    """``value`` as a fixed-point string with at most ``places`` decimals (``0.00001``,
    never ``1E-5``), for Kraken's ``volume``/``price`` parameters.

    Raises OrderRequestError naming ``field_name`` for a non-Decimal (a float has already
    lost digits), a non-finite or non-positive value, or more decimals than the pair allows:
    an amount is never rounded silently.
    """
    if not isinstance(value, Decimal):
        raise OrderRequestError(field_name, f"must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or value <= 0:
        raise OrderRequestError(field_name, f"must be a positive finite number, got {value}")
    normalized = value.normalize(context=KRAKEN_DECIMAL_CONTEXT)
    exponent = normalized.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if decimals > places:
        raise OrderRequestError(
            field_name, f"{value} has {decimals} decimals; {pair_name} allows {places}"
        )
    return format(normalized, "f")


def _bound_text(bound: HistoryBound, name: str) -> str | None:
    """A history bound as Kraken wants it: Unix seconds as a fixed-point string, or an id."""
    if bound is None:
        return None
    if isinstance(bound, bool):
        raise ValueError(f"{name}: expected ns, a datetime or an id, got a bool")
    if isinstance(bound, int):
        if bound < 0:
            raise ValueError(f"{name}: negative time {bound}")
        seconds = Decimal(bound).scaleb(-9, context=KRAKEN_DECIMAL_CONTEXT)
        return format(seconds.normalize(context=KRAKEN_DECIMAL_CONTEXT), "f")
    if isinstance(bound, datetime):
        if bound.tzinfo is None:
            raise ValueError(f"{name}: datetime must be timezone-aware")
        micros = (bound - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        return _bound_text(micros * NS_PER_US, name)
    if isinstance(bound, str) and bound.strip():
        return bound.strip()
    raise ValueError(f"{name}: expected ns, a datetime or an id, got {bound!r}")


def _valid_cl_ord_id(text: str) -> bool:
    """Kraken's forms: a UUID with dashes (36) or without (32 hex), or ≤ 18 printable ASCII."""
    if len(text) in (32, 36):
        try:
            uuid.UUID(text)
            return True
        except ValueError:
            pass
    return 0 < len(text) <= 18 and text.isascii() and text.isprintable()


def _is_ambiguous(error: KrakenError) -> bool:
    """True when a failed AddOrder may still have been placed."""
    if isinstance(error, MarketModeRestricted | DeadlineElapsed):
        return False
    return isinstance(error, TransportError | MalformedResponse | InternalError | ServiceError)


def _proves_not_placed_and_retryable(error: KrakenError) -> bool:
    """Errors that prove an AddOrder was refused before placing anything, and may pass if
    repeated: a stale nonce, the REST rate limit, or a local lock timeout."""
    return isinstance(error, InvalidNonce | RateLimitExceeded | NonceLockTimeout)


class _NoncedKrakenexAPI(krakenex.API):
    """krakenex with the key's shared, strictly increasing nonce instead of its millisecond
    clock (which repeats within a millisecond)."""

    def __init__(self, credentials: Credentials | None, nonce_source: NonceSource | None) -> None:
        if credentials is None:
            super().__init__()
        else:
            super().__init__(credentials.key, credentials.secret)
        self._nonce_source = nonce_source

    def __repr__(self) -> str:
        return f"<krakenex API for {self.uri}>"

    def _nonce(self) -> int:
        if self._nonce_source is None:
            raise RuntimeError("private call without a nonce source")
        return self._nonce_source.next_nonce()


class KrakenClient:
    """Kraken's REST API through krakenex, with typed results and errors.

    ``url`` is the API root (``https://api.kraken.com`` or the paper exchange's URL), with no
    path: krakenex signs ``/0/private/<method>`` and a prefix would break every signature.
    ``credentials`` None allows public calls only. ``timeout_seconds`` bounds every HTTP call.
    ``names`` None fetches Assets and AssetPairs from the server on first need; pass
    ``KrakenNames.bundled()`` to work offline. ``nonce`` None keeps nonces in this process
    only; share a ``NonceSource(key, lock_dir)`` to serialize with other processes.
    ``sleep`` and ``clock_ns`` are injectable for tests.

    Thread-safe: each thread gets its own krakenex session (krakenex keeps the last response
    on the instance), and private calls of one key are serialized by the nonce lock.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials | None,
        *,
        timeout_seconds: float,
        names: KrakenNames | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        nonce: NonceSource | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url: expected http(s)://host[:port], got {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"url: must not carry a path or query (signing), got {url!r}")
        if not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds: must be positive, got {timeout_seconds}")
        if credentials is not None and not isinstance(credentials, Credentials):
            raise TypeError("credentials: expected Credentials or None")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.timeout_seconds = timeout_seconds
        self.retry = retry
        self._credentials = credentials
        self._owns_nonce = nonce is None and credentials is not None
        self._nonce: NonceSource | None = nonce
        if nonce is None and credentials is not None:
            self._nonce = NonceSource(
                credentials.key, None, lock_timeout_seconds=max(60.0, 4 * timeout_seconds)
            )
        self._sleep = sleep
        self._clock_ns = clock_ns
        self._names = names
        self._names_lock = threading.Lock()
        self._local = threading.local()
        self._apis: list[_NoncedKrakenexAPI] = []
        self._apis_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        who = self._credentials.fingerprint if self._credentials else "public"
        return f"KrakenClient({self.url}, key={who})"

    def __enter__(self) -> KrakenClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every krakenex session (and the nonce source this client made). Idempotent."""
        with self._apis_lock:
            self._closed = True
            apis, self._apis = self._apis, []
        for api in apis:
            api.close()
        if self._owns_nonce and self._nonce is not None:
            self._nonce.close()

    # ================================================================== plumbing

    def _api(self) -> _NoncedKrakenexAPI:
        api: _NoncedKrakenexAPI | None = getattr(self._local, "api", None)
        if api is not None and not self._closed:
            return api
        with self._apis_lock:
            if self._closed:
                raise RuntimeError("KrakenClient: used after close()")
            api = _NoncedKrakenexAPI(self._credentials, self._nonce)
            api.uri = self.url
            api.json_options(parse_float=Decimal)
            self._apis.append(api)
        self._local.api = api
        return api

    def _send(self, method: str, params: Mapping[str, Any] | None, *, private: bool) -> Any:
        """One request, no retry: the envelope's ``result``, or a typed KrakenError."""
        data = _request_data(params)
        started = time.monotonic()
        outcome = "ok"
        try:
            if private and (self._credentials is None or self._nonce is None):
                raise MissingCredentials(method)
            api = self._api()
            envelope = self._transport(api, method, data, private)
            return self._unwrap(method, envelope)
        except KrakenError as error:
            outcome = type(error).__name__
            raise
        finally:
            logger.debug(
                "kraken {} {} in {:.1f} ms", method, outcome, (time.monotonic() - started) * 1000
            )

    def _transport(
        self, api: _NoncedKrakenexAPI, method: str, data: dict[str, str], private: bool
    ) -> Any:
        # Every requests error is re-raised "from None": its traceback frames hold the signed
        # headers, which must not reach a log that renders local variables.
        try:
            if private:
                assert self._nonce is not None
                with self._nonce.exclusive(method):
                    return api.query_private(method, data, timeout=self.timeout_seconds)
            return api.query_public(method, data, timeout=self.timeout_seconds)
        except requests.exceptions.JSONDecodeError:
            response = api.response
            status = response.status_code if response is not None else None
            content_type = response.headers.get("Content-Type", "") if response is not None else ""
            raise NonJSONResponse(method, status, content_type) from None
        except requests.exceptions.Timeout:
            raise RequestTimeout(method, self.timeout_seconds) from None
        except requests.exceptions.HTTPError as error:
            status = error.response.status_code if error.response is not None else 0
            raise HTTPStatusError(method, status) from None
        except requests.exceptions.RequestException as error:
            raise ConnectionFailed(method, _describe(error)) from None

    def _unwrap(self, method: str, envelope: Any) -> Any:
        if not isinstance(envelope, Mapping):
            raise MalformedResponse(method, "body", "expected a JSON object")
        strings = envelope.get("error")
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise MalformedResponse(method, "error", "expected a list of strings")
        _, warnings = split_warnings(strings)
        for warning in warnings:
            logger.warning("kraken {} warning: {}", method, warning)
        error = classify(method, strings)
        if error is not None:
            raise error
        if "result" not in envelope:
            raise MalformedResponse(method, "result", "missing")
        return envelope["result"]

    def _pause_before_retry(
        self, method: str, error: KrakenError, attempt: int, started_ns: int
    ) -> float | None:
        """The pause before the next attempt, or None when the policy says stop."""
        policy = self.retry
        if attempt >= policy.max_attempts:
            return None
        delay = policy.delay_seconds(attempt)
        now = self._clock_ns()
        if isinstance(error, Throttled) and error.retry_at_ns is not None:
            delay = max(delay, (error.retry_at_ns - now) / NS_PER_SECOND)
        if (now - started_ns) / NS_PER_SECOND + delay > policy.deadline_seconds:
            return None
        logger.info(
            "kraken {} attempt {} failed ({}); retrying in {:.3f} s",
            method,
            attempt,
            type(error).__name__,
            delay,
        )
        return delay

    def _call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        private: bool,
        retry: bool = True,
    ) -> Any:
        """A call that is safe to repeat: retried on retryable errors per the policy."""
        params = _RequestParams(params or {})
        started = self._clock_ns()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send(method, params, private=private)
            except KrakenError as error:
                if not retry or not error.retryable:
                    raise
                delay = self._pause_before_retry(method, error, attempt, started)
                if delay is None:
                    raise
                self._sleep(delay)

    @contextmanager
    def _parsing(self, method: str) -> Iterator[None]:
        try:
            yield
        except FieldError as error:
            raise MalformedResponse(method, error.field, error.detail) from None

    # ================================================================== names

    @property
    def names(self) -> KrakenNames:
        """The asset and pair tables in use; fetched from the server on first use when the
        client was built without them."""
        names = self._names
        if names is None:
            with self._names_lock:
                if self._names is None:
                    self._names = self.fetch_names()
                names = self._names
        return names

    def fetch_names(self) -> KrakenNames:
        """Fresh asset and pair tables from the server's Assets and AssetPairs."""
        assets = self._call("Assets", private=False)
        pairs = self._call("AssetPairs", private=False)
        try:
            return KrakenNames.from_results(
                require_mapping(assets, "result"), require_mapping(pairs, "result")
            )
        except FieldError as error:
            raise MalformedResponse("AssetPairs", error.field, error.detail) from None
        except ValueError as error:
            raise MalformedResponse("AssetPairs", "result", str(error)) from None

    def assets(self) -> tuple[AssetInfo, ...]:
        """Every asset the server lists (id, altname, decimals)."""
        result = self._call("Assets", private=False)
        try:
            return KrakenNames.from_results(require_mapping(result, "result"), {}).assets()
        except FieldError as error:
            raise MalformedResponse("Assets", error.field, error.detail) from None
        except ValueError as error:
            raise MalformedResponse("Assets", "result", str(error)) from None

    def asset_pairs(self) -> tuple[PairInfo, ...]:
        """Every pair the server lists, with decimals, minimums and fee schedules, and
        normalized base/quote names (fetches Assets too, to name the legs)."""
        return self.fetch_names().pairs()

    # ================================================================== public market data

    def server_time(self) -> int:
        """Kraken's clock, integer nanoseconds (second resolution)."""
        result = self._call("Time", private=False)
        with self._parsing("Time"):
            return server_time_ns(result)

    def system_status(self) -> SystemStatus:
        """Whether Kraken is ``online``, in ``maintenance``, ``cancel_only`` or ``post_only``."""
        result = self._call("SystemStatus", private=False)
        with self._parsing("SystemStatus"):
            return SystemStatus.from_kraken(result)

    def ticker(self, pairs: str | Sequence[str]) -> dict[str, Ticker]:
        """The ticker of each pair (any name form), keyed by normalized symbol (``XBT/USD``).

        Raises UnknownPairName for a name the tables do not know.
        """
        wanted = [self.names.pair(text) for text in _as_list(pairs, "pairs")]
        if not wanted:
            raise ValueError("pairs: at least one pair is needed")
        result = self._call(
            "Ticker", {"pair": ",".join(pair.altname for pair in wanted)}, private=False
        )
        received_ns = self._clock_ns()
        tickers: dict[str, Ticker] = {}
        with self._parsing("Ticker"):
            for key, entry in require_mapping(result, "result").items():
                pair = self._pair_of(key, "Ticker", f"result[{key}]")
                tickers[pair.symbol] = Ticker.from_kraken(pair, entry, received_ns)
        return tickers

    def _pair_of(self, text: str, method: str, field_name: str) -> PairInfo:
        try:
            return self.names.pair(text)
        except UnknownPairName:
            raise MalformedResponse(method, field_name, f"unknown pair {text!r}") from None

    # ================================================================== balances

    def balance(self) -> tuple[AssetBalance, ...]:
        """Total balance per asset id (held funds included), normalized and flagged."""
        result = self._call("Balance", private=True)
        with self._parsing("Balance"):
            entries = require_mapping(result, "result")
            return tuple(
                AssetBalance.from_kraken(raw, value, self.names) for raw, value in entries.items()
            )

    def balance_ex(self) -> tuple[AssetBalanceEx, ...]:
        """Balance, ``hold_trade`` and available amount per asset id."""
        result = self._call("BalanceEx", private=True)
        with self._parsing("BalanceEx"):
            entries = require_mapping(result, "result")
            return tuple(
                AssetBalanceEx.from_kraken(raw, value, self.names) for raw, value in entries.items()
            )

    def trade_balance(self, asset: str = "USD") -> TradeBalance:
        """The account valued in ``asset`` (any name form: ``USD``, ``ZUSD``)."""
        asset_id = self.names.asset_id(asset)
        result = self._call("TradeBalance", {"asset": asset_id}, private=True)
        with self._parsing("TradeBalance"):
            return TradeBalance.from_kraken(self.names.asset_name(asset_id), result)

    # ================================================================== history (paged)

    def _iter_history(
        self,
        method: str,
        result_key: str,
        params: Mapping[str, Any],
        parse: Callable[[str, Any], _Row],
    ) -> Iterator[_Row]:
        """Rows of a paged history, newest first, each exactly once.

        Pages are read with ``ofs`` until ``ofs`` reaches the latest ``count``. Rows that
        arrive while paging push older rows down, so a later page may start with rows
        already seen: they are skipped by id, and no row is ever skipped. Rows newer than
        the first page are not part of this scan.
        """
        params = _RequestParams(params)
        seen: set[str] = set()
        offset = 0
        while True:
            result = self._call(method, {**params, "ofs": offset}, private=True)
            with self._parsing(method):
                page = require_mapping(result, "result")
                rows = require_mapping(page.get(result_key), f"result.{result_key}")
                count = page.get("count")
                if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                    raise FieldError("result.count", f"expected a count, got {count!r}")
                parsed = [(row_id, parse(row_id, entry)) for row_id, entry in rows.items()]
            for row_id, row in parsed:
                if row_id not in seen:
                    seen.add(row_id)
                    yield row
            offset += len(rows)
            if not rows or offset >= count:
                return

    def iter_trades_history(
        self, start: HistoryBound = None, end: HistoryBound = None
    ) -> Iterator[Trade]:
        """Our trades, newest first, after ``start`` (exclusive) up to ``end`` (inclusive);
        bounds are ns, aware datetimes or trade txids. Pages lazily."""
        params = {"start": _bound_text(start, "start"), "end": _bound_text(end, "end")}
        return self._iter_history(
            "TradesHistory",
            "trades",
            params,
            lambda txid, entry: Trade.from_kraken(txid, entry, self.names, "result.trades"),
        )

    def trades_history(
        self, start: HistoryBound = None, end: HistoryBound = None
    ) -> tuple[Trade, ...]:
        """Every trade of ``iter_trades_history``, newest first."""
        return tuple(self.iter_trades_history(start=start, end=end))

    def query_trades(self, txids: Sequence[str]) -> tuple[Trade, ...]:
        """The trades with these txids (queried 20 at a time), in the order given."""
        ids = _as_list(txids, "txids")
        found: dict[str, Trade] = {}
        for chunk in _chunks(ids, _MAX_QUERY_TRADES):
            result = self._call("QueryTrades", {"txid": ",".join(chunk)}, private=True)
            with self._parsing("QueryTrades"):
                for txid, entry in require_mapping(result, "result").items():
                    found[txid] = Trade.from_kraken(txid, entry, self.names, "result")
        return tuple(found[txid] for txid in ids if txid in found)

    def iter_ledgers(
        self,
        start: HistoryBound = None,
        end: HistoryBound = None,
        *,
        asset: str | Sequence[str] | None = None,
        type: str | None = None,
    ) -> Iterator[LedgerEntry]:
        """Ledger entries, newest first, after ``start`` up to ``end``, optionally only for
        ``asset`` (names in any form; staking variants are their own ids) and ``type``
        (``trade``, ``deposit``, ``withdrawal``...). Pages lazily."""
        params: dict[str, Any] = {
            "start": _bound_text(start, "start"),
            "end": _bound_text(end, "end"),
            "type": type,
        }
        if asset is not None:
            params["asset"] = ",".join(self._asset_id(text) for text in _as_list(asset, "asset"))
        return self._iter_history(
            "Ledgers",
            "ledger",
            params,
            lambda ledger_id, entry: LedgerEntry.from_kraken(ledger_id, entry, self.names),
        )

    def _asset_id(self, text: str) -> str:
        """Kraken's id for a name; a variant (``DOT28.S``) that is its own id passes as is."""
        try:
            return self.names.asset_id(text)
        except ValueError:
            normalized = self.names.asset(text)
            if normalized.is_variant:
                return text.strip().upper()
            raise

    def ledgers(
        self,
        start: HistoryBound = None,
        end: HistoryBound = None,
        *,
        asset: str | Sequence[str] | None = None,
        type: str | None = None,
    ) -> tuple[LedgerEntry, ...]:
        """Every entry of ``iter_ledgers``, newest first."""
        return tuple(self.iter_ledgers(start, end, asset=asset, type=type))

    def iter_closed_orders(
        self,
        start: HistoryBound = None,
        end: HistoryBound = None,
        *,
        userref: int | None = None,
        cl_ord_id: str | None = None,
        trades: bool = False,
    ) -> Iterator[Order]:
        """Closed, canceled and expired orders, most recent first, optionally filtered by
        ``userref`` or ``cl_ord_id``; ``trades`` adds the fill txids. Pages lazily."""
        params: dict[str, Any] = {
            "start": _bound_text(start, "start"),
            "end": _bound_text(end, "end"),
            "userref": _int32(userref, "userref"),
            "cl_ord_id": cl_ord_id,
            "trades": True if trades else None,
        }
        return self._iter_history(
            "ClosedOrders",
            "closed",
            params,
            lambda txid, entry: Order.from_kraken(txid, entry, self.names, "result.closed"),
        )

    def closed_orders(
        self,
        start: HistoryBound = None,
        end: HistoryBound = None,
        *,
        userref: int | None = None,
        cl_ord_id: str | None = None,
        trades: bool = False,
    ) -> tuple[Order, ...]:
        """Every order of ``iter_closed_orders``, most recent first."""
        return tuple(
            self.iter_closed_orders(start, end, userref=userref, cl_ord_id=cl_ord_id, trades=trades)
        )

    # ================================================================== orders: reads

    def open_orders(
        self, *, userref: int | None = None, cl_ord_id: str | None = None, trades: bool = False
    ) -> tuple[Order, ...]:
        """Open orders, newest first, optionally filtered by ``userref`` or ``cl_ord_id``."""
        params = {
            "userref": _int32(userref, "userref"),
            "cl_ord_id": cl_ord_id,
            "trades": True if trades else None,
        }
        result = self._call("OpenOrders", params, private=True)
        with self._parsing("OpenOrders"):
            entries = require_mapping(require_mapping(result, "result").get("open"), "result.open")
            return tuple(
                Order.from_kraken(txid, entry, self.names, "result.open")
                for txid, entry in entries.items()
            )

    def query_orders(self, txids: Sequence[str], *, trades: bool = False) -> tuple[Order, ...]:
        """The orders with these txids (queried 50 at a time), in the order given."""
        ids = _as_list(txids, "txids")
        found: dict[str, Order] = {}
        for chunk in _chunks(ids, _MAX_QUERY_ORDERS):
            params = {"txid": ",".join(chunk), "trades": True if trades else None}
            result = self._call("QueryOrders", params, private=True)
            with self._parsing("QueryOrders"):
                for txid, entry in require_mapping(result, "result").items():
                    found[txid] = Order.from_kraken(txid, entry, self.names, "result")
        return tuple(found[txid] for txid in ids if txid in found)

    # ================================================================== orders: writes

    def add_order(
        self,
        pair: str,
        side: str,
        ordertype: str,
        volume: Decimal,
        price: Decimal | None = None,
        *,
        oflags: str | Iterable[str] = (),
        userref: int | None = None,
        cl_ord_id: str | None = None,
        validate: bool = False,
        timeinforce: str | None = None,
        expire_ns: int | None = None,
    ) -> AddOrderResult:
        """Place an order of ``volume`` base on ``pair`` (any name form) at ``price``.

        ``volume`` and ``price`` are Decimals sent as fixed-point strings within the pair's
        lot and price decimals (never rounded: too many decimals is an OrderRequestError).
        ``price`` is required for every type but ``market``. ``oflags``: ``post``, ``fcib``,
        ``fciq``, ``viqc``. ``timeinforce``: GTC, IOC, GTD (with ``expire_ns``), FOK.

        Every order carries ``cl_ord_id`` (the one given, else a new UUID), unless a
        ``userref`` is given: Kraken accepts only one of the two. The request is never
        repeated blindly. After an ambiguous failure (timeout, dropped connection, HTTP
        error page, non-JSON, ``EService:*``, ``EGeneral:Internal error``) the order is looked
        up by ``cl_ord_id``: found, it is returned (``recovered=True``); proven absent, it is
        resent under the retry policy. ``EAPI:Invalid nonce`` and ``EAPI:Rate limit exceeded``
        prove nothing was placed and are retried; ``EOrder:*`` and other refusals are raised.

        Raises OrderOutcomeUnknown when the lookup cannot tell (or there is no cl_ord_id);
        any other error means no order was placed.
        """
        pair_info = self._order_pair(pair)
        data = self._order_data(
            pair_info,
            side,
            ordertype,
            volume,
            price,
            oflags=oflags,
            userref=userref,
            timeinforce=timeinforce,
            expire_ns=expire_ns,
        )
        if userref is not None and cl_ord_id is not None:
            raise OrderRequestError("cl_ord_id", "Kraken accepts either userref or cl_ord_id")
        if cl_ord_id is not None and not _valid_cl_ord_id(cl_ord_id):
            raise OrderRequestError(
                "cl_ord_id", "expected a UUID or at most 18 printable ASCII characters"
            )
        client_id = None if userref is not None else (cl_ord_id or str(uuid.uuid4()))
        if client_id is not None:
            data["cl_ord_id"] = client_id
        if validate:
            data["validate"] = True
            result = self._call("AddOrder", data, private=True)
            return self._order_answer(result, client_id, userref, validated=True, attempts=1)
        return self._place_order(data, pair_info, client_id, userref)

    def _order_pair(self, pair: str) -> PairInfo:
        try:
            return self.names.pair(pair)
        except UnknownPairName:
            raise OrderRequestError("pair", f"unknown pair {pair!r}") from None

    def _order_data(
        self,
        pair: PairInfo,
        side: str,
        ordertype: str,
        volume: Decimal,
        price: Decimal | None,
        *,
        oflags: str | Iterable[str],
        userref: int | None,
        timeinforce: str | None,
        expire_ns: int | None,
    ) -> _RequestParams:
        if side not in ("buy", "sell"):
            raise OrderRequestError("side", f"expected 'buy' or 'sell', got {side!r}")
        if ordertype not in ORDER_TYPES:
            raise OrderRequestError("ordertype", f"unknown order type {ordertype!r}")
        flags = [oflags] if isinstance(oflags, str) else list(oflags)
        flags = [flag.strip() for text in flags for flag in text.split(",") if flag.strip()]
        # With viqc the volume is in quote, so the quote's decimals apply (cost decimals).
        volume_places = pair.cost_decimals if "viqc" in flags else pair.lot_decimals
        data = _RequestParams(
            {
                "pair": pair.altname,
                "type": side,
                "ordertype": ordertype,
                "volume": format_amount(volume, volume_places, "volume", pair.altname),
            }
        )
        if ordertype in _PRICED_ORDER_TYPES:
            if price is None:
                raise OrderRequestError("price", f"required for a {ordertype} order")
            data["price"] = format_amount(price, pair.pair_decimals, "price", pair.altname)
        elif price is not None:
            raise OrderRequestError("price", f"a {ordertype} order takes no price")
        if flags:
            data["oflags"] = ",".join(flags)
        if userref is not None:
            data["userref"] = _int32(userref, "userref")
        if timeinforce is not None:
            if timeinforce.upper() not in _TIME_IN_FORCE:
                raise OrderRequestError("timeinforce", f"expected one of {sorted(_TIME_IN_FORCE)}")
            data["timeinforce"] = timeinforce.upper()
        if expire_ns is not None:
            data["expiretm"] = _bound_text(expire_ns, "expire_ns")
        return data

    def _place_order(
        self, data: _RequestParams, pair: PairInfo, cl_ord_id: str | None, userref: int | None
    ) -> AddOrderResult:
        started = self._clock_ns()
        first_sent_ns = started
        attempts = 0
        ambiguous: KrakenError | None = None
        while True:
            attempts += 1
            try:
                result = self._send("AddOrder", data, private=True)
                return self._order_answer(result, cl_ord_id, userref, False, attempts)
            except KrakenError as error:
                if _is_ambiguous(error):
                    if cl_ord_id is None:
                        raise OrderOutcomeUnknown(
                            None, error, "sent with userref, so it cannot be looked up"
                        ) from error
                    found = self._find_order(cl_ord_id, error, first_sent_ns, data, pair)
                    if found is not None:
                        return self._recovered(found, cl_ord_id, userref, attempts)
                    ambiguous = error
                    if not error.retryable:
                        raise
                    pause = self._pause_before_retry("AddOrder", error, attempts, started)
                elif (
                    ambiguous is not None
                    and cl_ord_id is not None
                    and isinstance(error, InvalidArguments)
                    and error.argument == "cl_ord_id"
                ):
                    # The resend's id is taken: an earlier send landed after all.
                    found = self._find_order(cl_ord_id, error, first_sent_ns, data, pair)
                    if found is not None:
                        return self._recovered(found, cl_ord_id, userref, attempts)
                    raise OrderOutcomeUnknown(
                        cl_ord_id, error, "the resend's cl_ord_id is in use, order not found"
                    ) from error
                elif _proves_not_placed_and_retryable(error):
                    pause = self._pause_before_retry("AddOrder", error, attempts, started)
                else:
                    raise
                if pause is None:
                    raise
                self._sleep(pause)

    def _find_order(
        self,
        cl_ord_id: str,
        cause: KrakenError,
        first_sent_ns: int,
        data: Mapping[str, Any],
        pair: PairInfo,
    ) -> Order | None:
        """The order placed under ``cl_ord_id``, None when the lookup proves there is none,
        or OrderOutcomeUnknown when the lookup fails or finds a different order."""
        logger.warning(
            "kraken AddOrder cl_ord_id={} failed ambiguously ({}); looking it up",
            cl_ord_id,
            type(cause).__name__,
        )
        if isinstance(cause, RequestTimeout) and self.retry.order_lookup_delay_seconds > 0:
            self._sleep(self.retry.order_lookup_delay_seconds)
        try:
            candidates = self.open_orders(cl_ord_id=cl_ord_id)
            if not candidates:
                since = max(0, first_sent_ns - _LOOKUP_SKEW_NS)
                candidates = tuple(self.iter_closed_orders(start=since, cl_ord_id=cl_ord_id))
        except KrakenError as error:
            raise OrderOutcomeUnknown(
                cl_ord_id, cause, f"the lookup failed: {type(error).__name__}"
            ) from error
        if not candidates:
            logger.info("kraken AddOrder cl_ord_id={} was not placed; resending", cl_ord_id)
            return None
        order = candidates[0]
        expected_volume = Decimal(data["volume"])
        if (
            order.pair_id != pair.id
            or order.side != data["type"]
            or order.ordertype != data["ordertype"]
            or (order.volume != expected_volume and "viqc" not in order.oflags)
        ):
            raise OrderOutcomeUnknown(
                cl_ord_id, cause, f"order {order.txid} has this cl_ord_id but other terms"
            )
        logger.warning(
            "kraken AddOrder cl_ord_id={} was placed as {} despite the failure",
            cl_ord_id,
            order.txid,
        )
        return order

    def _recovered(
        self, order: Order, cl_ord_id: str, userref: int | None, attempts: int
    ) -> AddOrderResult:
        return AddOrderResult(
            txid=order.txid,
            cl_ord_id=cl_ord_id,
            userref=userref,
            description=order.description,
            validated=False,
            recovered=True,
            attempts=attempts,
            order=order,
        )

    def _order_answer(
        self,
        result: Any,
        cl_ord_id: str | None,
        userref: int | None,
        validated: bool,
        attempts: int,
    ) -> AddOrderResult:
        with self._parsing("AddOrder"):
            entry = require_mapping(result, "result")
            descr = entry.get("descr") or {}
            description = descr.get("order", "") if isinstance(descr, Mapping) else ""
            txids = entry.get("txid")
            txid: str | None = None
            if not validated:
                if not isinstance(txids, list) or not txids or not isinstance(txids[0], str):
                    raise FieldError("result.txid", f"expected a list with one txid, got {txids!r}")
                txid = txids[0]
        if validated:
            logger.info("kraken AddOrder validated (cl_ord_id={})", cl_ord_id)
        else:
            logger.info("kraken AddOrder placed {} (cl_ord_id={})", txid, cl_ord_id)
        return AddOrderResult(
            txid=txid,
            cl_ord_id=cl_ord_id,
            userref=userref,
            description=str(description),
            validated=validated,
            recovered=False,
            attempts=attempts,
        )

    def cancel_order(
        self, txid: str | None = None, *, userref: int | None = None, cl_ord_id: str | None = None
    ) -> CancelResult:
        """Cancel one open order by ``txid``, every open order with ``userref``, or the order
        with ``cl_ord_id`` (exactly one of the three).

        Retried under the policy: cancelling twice is harmless. When a retry follows an
        ambiguous failure and finds nothing open (``EOrder:Unknown order``), the result is
        ``count=0, uncertain=True``: the order is gone, possibly cancelled by the first try.
        """
        given = [value is not None for value in (txid, userref, cl_ord_id)]
        if sum(given) != 1:
            raise ValueError("cancel_order: give exactly one of txid, userref, cl_ord_id")
        data = _RequestParams()
        if txid is not None:
            data["txid"] = txid
        elif userref is not None:
            data["txid"] = _int32(userref, "userref")
        else:
            data["cl_ord_id"] = cl_ord_id
        started = self._clock_ns()
        attempt = 0
        ambiguous = False
        while True:
            attempt += 1
            try:
                result = self._send("CancelOrder", data, private=True)
                with self._parsing("CancelOrder"):
                    return CancelResult.from_kraken(result)
            except UnknownOrder:
                if ambiguous:
                    return CancelResult(count=0, pending=False, uncertain=True)
                raise
            except KrakenError as error:
                if not error.retryable:
                    raise
                pause = self._pause_before_retry("CancelOrder", error, attempt, started)
                if pause is None:
                    raise
                ambiguous = ambiguous or _is_ambiguous(error)
                self._sleep(pause)

    def cancel_all(self) -> CancelResult:
        """Cancel every open order; ``count`` says how many."""
        result = self._call("CancelAll", private=True)
        with self._parsing("CancelAll"):
            return CancelResult.from_kraken(result)

    # ================================================================== raw access

    def call_public(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Any public method, retried; returns the raw ``result`` (amounts as Decimal)."""
        return self._call(method, params, private=False)

    def call_private(
        self, method: str, params: Mapping[str, Any] | None = None, *, retry_safe: bool = False
    ) -> Any:
        """Any private method; returns the raw ``result``. Retried only when the caller says
        repeating it is safe (``retry_safe``): a write must not be repeated blindly."""
        return self._call(method, params, private=True, retry=retry_safe)


# ---------------------------------------------------------------------------- helpers


class _RequestParams(dict[str, Any]):
    """Request parameters whose repr hides their values: a traceback rendered with its
    local variables (loguru's ``diagnose``) must not print a private request's body."""

    def __repr__(self) -> str:
        return f"<{len(self)} request parameters>"

    __str__ = __repr__


def _request_data(params: Mapping[str, Any] | None) -> _RequestParams:
    """Parameters as Kraken strings: None dropped (krakenex would sign ``None`` while
    requests drops it), booleans as ``true``/``false``, lists comma-joined (krakenex signs a
    list differently from how requests sends it). A fresh dict: krakenex adds the nonce."""
    data = _RequestParams()
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            data[key] = "true" if value else "false"
        elif isinstance(value, int | str):
            data[key] = str(value)
        elif isinstance(value, Decimal):
            data[key] = format(value, "f")
        elif isinstance(value, list | tuple):
            data[key] = ",".join(str(item) for item in value)
        else:
            raise TypeError(f"{key}: unsupported parameter type {type(value).__name__}")
    return data


def _describe(error: Exception) -> str:
    """A short, secret-free description of a requests error (class and reason)."""
    text = str(error)
    if len(text) > 200:
        text = text[:200] + "…"
    return f"{type(error).__name__}: {text}"


def _as_list(value: str | Sequence[str], name: str) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    result = [item.strip() for text in items for item in text.split(",") if item.strip()]
    if not result:
        raise ValueError(f"{name}: at least one value is needed")
    return result


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _int32(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not _INT32[0] <= value <= _INT32[1]:
        raise ValueError(f"{name}: expected a 32-bit integer, got {value!r}")
    return value
