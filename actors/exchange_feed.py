"""The exchange side of the execution actor: a plain thread that does all of its Kraken I/O.

An actor must never block on the network, so `ExchangeFeed` owns the `KrakenClient` in a
thread of its own. Every `poll_interval_seconds` it reads what changed on the account and
hands it to the actor (`deliver`, the actor's `tell`) as small local dataclasses:

- `OrderOpened` for an order first seen open, `OrderFinished` for one seen canceled or
  expired (OpenOrders, ClosedOrders);
- `FillSeen` for each new trade (TradesHistory, paged), joined with its two Ledgers `trade`
  entries (refid = trade txid), which say in which currency the fee really left and how much
  (TradesHistory states every fee in quote, even when it was charged in base with `fcib`);
  with the order's state from QueryOrders (did this trade complete it?) and, for a pair whose
  quote is not the valuation currency, the quote → valuation rate read from Ticker now;
- `MarketSeen` (touch, pair terms, available balances) for the pairs orders may be placed on.

Commands go the other way through `submit`: `PlaceOrder` (AddOrder, always with a
`cl_ord_id`, so a lost answer can be looked up instead of placing twice) and `CancelOrder`.
Their outcomes come back as `OrderPlaced`, `OrderRefused` (the exchange said no) or
`OrderNotPlaced` (nothing reached the book for another reason).

History is read from a little before the newest trade already seen, and a trade or an order
status already handed over is skipped, so a trade appears once per run; across runs the
receiver deduplicates by exec_id. A failed poll changes nothing (every result of one poll is
handed over only when the whole poll succeeded), is reported as `FeedTrouble`, and the next
poll waits longer (exponential backoff).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from loguru import logger

from kraken.client import KrakenClient, RetryPolicy
from kraken.credentials import Credentials
from kraken.errors import (
    KrakenAPIError,
    KrakenError,
    OrderOutcomeUnknown,
    OrderRequestError,
    UnknownOrder,
)
from kraken.joins import completes_order, fee_from_ledger
from kraken.models import KRAKEN_DECIMAL_CONTEXT, LedgerEntry, Order, Ticker, Trade
from kraken.names import PairInfo, UnknownPairName
from kraken.nonce import NonceSource
from messages.units import NS_PER_SECOND

__all__ = [
    "CancelOrder",
    "ExchangeFeed",
    "FeedSettings",
    "FeedTrouble",
    "FillSeen",
    "MarketSeen",
    "OrderFinished",
    "OrderNotPlaced",
    "OrderOpened",
    "OrderPlaced",
    "OrderRefused",
    "PlaceOrder",
    "TradeDeferred",
    "completes_order",
    "fee_from_ledger",
]


#: Each poll reads history from this long before the newest record already seen: rows that
#: share a timestamp with it, or land a moment late, are read again (and skipped by id).
POLL_OVERLAP_NS = 2 * NS_PER_SECOND

#: A trade whose ledger entries are not there yet is held back this many polls before its
#: fee is taken from the trade itself (stated in quote).
LEDGER_WAIT_POLLS = 3

#: The longest pause between polls after repeated failures.
MAX_BACKOFF_SECONDS = 30.0

_FINISHED_STATUSES = frozenset({"canceled", "expired"})
_ZERO = Decimal(0)


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True)
class FeedSettings:
    """What the feed connects to and how it follows the account.

    `start_ns` None reads the whole history (a paper account); otherwise trades and closed
    orders after that time. `orders_allowed` False refuses every `PlaceOrder` (a live key
    that must only follow). `market_pairs` are the pairs reported in `MarketSeen` each poll
    (none: no market reads at all).
    """

    url: str
    credentials: Credentials = field(repr=False)
    timeout_seconds: float
    nonce_dir: Path
    poll_interval_seconds: float
    valuation_currency: str
    start_ns: int | None
    orders_allowed: bool
    market_pairs: tuple[str, ...] = ()
    name: str = "execution"


# ---------------------------------------------------------------------------- commands in


@dataclass(frozen=True, kw_only=True)
class PlaceOrder:
    """Place an order: `volume` in base, `limit_price` in quote (None for a market order)."""

    cl_ord_id: str
    pair: str
    side: str
    ordertype: str
    volume: Decimal
    limit_price: Decimal | None = None
    oflags: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CancelOrder:
    """Cancel the open order `order_txid`."""

    order_txid: str


# ---------------------------------------------------------------------------- results out


@dataclass(frozen=True, kw_only=True)
class OrderOpened:
    """An order seen open for the first time in this run."""

    order: Order


@dataclass(frozen=True, kw_only=True)
class OrderFinished:
    """An order seen canceled or expired (its fills, if any, are reported as trades)."""

    order: Order


@dataclass(frozen=True, kw_only=True)
class FillSeen:
    """One trade of the account with what the trade row alone does not say.

    `fee` left the account in `fee_currency` (from the ledger; the trade's own quote fee when
    the ledger had nothing). `completes_order` is True when this trade brought the order's
    executed volume to its full volume. `quote_rate` is valuation currency per unit of the
    trade's quote currency, None when the quote is the valuation currency.
    """

    trade: Trade
    fee: Decimal
    fee_currency: str
    completes_order: bool
    quote_rate: Decimal | None


@dataclass(frozen=True, kw_only=True)
class TradeDeferred:
    """A trade seen but held back (ledger not there yet, no conversion rate): it will come
    as a `FillSeen` later, so the receiver must not count it as done."""

    trade: Trade
    reason: str


@dataclass(frozen=True, kw_only=True)
class OrderPlaced:
    """`request` is on the exchange as order `order_txid`."""

    request: PlaceOrder
    order_txid: str


@dataclass(frozen=True, kw_only=True)
class OrderRefused:
    """The exchange (or the client's own check) refused `request`: nothing was placed.

    `pair` is the normalized symbol and `quote` its quote currency; `ts_ns` when refused.
    """

    request: PlaceOrder
    pair: str
    quote: str
    reason: str
    ts_ns: int


@dataclass(frozen=True, kw_only=True)
class OrderNotPlaced:
    """`request` was not placed for a reason that is not the exchange's refusal (orders not
    allowed, unknown pair, the exchange unreachable) or its outcome is unknown."""

    request: PlaceOrder
    reason: str
    outcome_unknown: bool = False


@dataclass(frozen=True, kw_only=True)
class MarketSeen:
    """The touch and trading terms of the market pairs, the rates quote → valuation for
    their quotes, and the available balance per asset (after holds of open orders)."""

    tickers: Mapping[str, Ticker]
    pairs: Mapping[str, PairInfo]
    rates: Mapping[str, Decimal]
    available: Mapping[str, Decimal]


@dataclass(frozen=True, kw_only=True)
class FeedTrouble:
    """An exchange call failed: `operation` (poll, place, cancel), the error's class name and
    message, and how many polls in a row have failed (0 for an order command)."""

    operation: str
    error: str
    detail: str
    consecutive_failures: int


# ---------------------------------------------------------------------------- pure joins


# ---------------------------------------------------------------------------- the thread


class FeedStopping(Exception):
    """Raised inside the feed thread to abandon a call in progress when the feed stops."""


@dataclass
class _Deferred:
    trade: Trade
    polls: int = 0


@dataclass
class _PollResult:
    """Everything one poll found, handed over only once the whole poll succeeded."""

    opened: list[Order] = field(default_factory=list)
    fills: list[FillSeen] = field(default_factory=list)
    deferred: list[TradeDeferred] = field(default_factory=list)
    finished: list[Order] = field(default_factory=list)
    market: MarketSeen | None = None
    newest_trade_ns: int | None = None
    newest_close_ns: int | None = None
    open_txids: set[str] = field(default_factory=set)
    seen_trades: dict[str, int] = field(default_factory=dict)


_WAKE = object()


class ExchangeFeed:
    """Follows the account on the exchange from its own thread; see the module docstring.

    `deliver` is called from the feed thread with each result (the actor's `tell`); if it
    raises (the actor is gone) the feed stops. `clock` gives integer nanoseconds.
    """

    def __init__(
        self,
        settings: FeedSettings,
        deliver: Callable[[object], None],
        *,
        clock: Callable[[], int] = time.time_ns,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._deliver = deliver
        self._clock = clock
        self._log = logger.bind(actor=settings.name)
        self._stop = threading.Event()
        self._commands: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._nonce = NonceSource(
            settings.credentials.key,
            settings.nonce_dir,
            lock_timeout_seconds=max(10.0, 2 * settings.timeout_seconds),
        )
        policy = retry or RetryPolicy(
            max_attempts=3,
            base_delay_seconds=0.25,
            max_delay_seconds=2.0,
            deadline_seconds=max(5.0, 2 * settings.timeout_seconds),
            order_lookup_delay_seconds=min(2.0, settings.timeout_seconds),
        )
        try:
            self._client = KrakenClient(
                settings.url,
                settings.credentials,
                timeout_seconds=settings.timeout_seconds,
                retry=policy,
                nonce=self._nonce,
                sleep=self._pause,
                clock_ns=clock,
            )
        except BaseException:
            self._nonce.close()
            raise
        # Follow state: only the feed thread touches it.
        self._trade_cursor_ns = settings.start_ns
        self._close_cursor_ns = settings.start_ns
        self._reported_trades: dict[str, int] = {}
        self._deferred: dict[str, _Deferred] = {}
        self._announced_open: set[str] = set()
        self._reported_finished: dict[str, int] = {}
        self._consecutive_failures = 0

    # -- control (any thread) --------------------------------------------------------------
    def start(self) -> None:
        """Start the feed thread; it polls at once."""
        if self._thread is not None:
            raise RuntimeError("the exchange feed is already started")
        self._thread = threading.Thread(
            target=self._run, name=f"{self.settings.name}-exchange-feed", daemon=True
        )
        self._thread.start()

    def submit(self, command: PlaceOrder | CancelOrder) -> None:
        """Queue an order command for the feed thread (thread-safe, never blocks)."""
        if not isinstance(command, PlaceOrder | CancelOrder):
            raise TypeError(f"command: expected PlaceOrder or CancelOrder, got {command!r}")
        self._commands.put(command)

    def stop(self, timeout_seconds: float) -> bool:
        """Stop the thread: wake it, wait for it at most `timeout_seconds`, close the client.

        True when the thread ended in time. Idempotent.
        """
        self._stop.set()
        self._commands.put(_WAKE)
        stopped = True
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            stopped = not self._thread.is_alive()
            if not stopped:
                self._log.warning(
                    "exchange feed thread still busy after {:.1f} s; leaving it (daemon)",
                    timeout_seconds,
                )
        if stopped:
            self._client.close()
            self._nonce.close()
        return stopped

    @property
    def alive(self) -> bool:
        """True while the feed thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------
    def _pause(self, seconds: float) -> None:
        """The client's sleep between retries: cut short (by raising) when the feed stops."""
        if self._stop.wait(seconds):
            raise FeedStopping

    def _run(self) -> None:
        next_poll = time.monotonic()
        try:
            while not self._stop.is_set():
                wait = max(0.0, next_poll - time.monotonic())
                try:
                    command = self._commands.get(timeout=wait)
                except queue.Empty:
                    command = None
                if self._stop.is_set():
                    break
                if isinstance(command, PlaceOrder | CancelOrder):
                    self._execute_guarded(command)
                    next_poll = time.monotonic()  # show its effect without waiting
                    continue
                if time.monotonic() < next_poll:
                    continue
                next_poll = time.monotonic() + self._poll_once()
        except FeedStopping:
            pass
        except _ReceiverGone:
            self._log.info("exchange feed: the actor is gone; stopping")
        except Exception:
            # A bug, not an exchange error: say so loudly rather than die in silence.
            self._log.exception("exchange feed thread failed")
        finally:
            self._log.debug("exchange feed thread ended")

    def _hand_over(self, result: object) -> None:
        try:
            self._deliver(result)
        except Exception as exc:
            raise _ReceiverGone from exc

    def _poll_once(self) -> float:
        """One poll; returns the pause until the next one.

        An exchange error and an unexpected one (a bug, an answer no parser foresaw) are
        handled alike: logged, reported as `FeedTrouble`, and retried after a growing pause,
        so following never silently stops.
        """
        try:
            result = self._read()
        except (FeedStopping, _ReceiverGone):
            raise
        except Exception as error:
            self._consecutive_failures += 1
            backoff = min(
                MAX_BACKOFF_SECONDS,
                self.settings.poll_interval_seconds * 2 ** min(self._consecutive_failures, 16),
            )
            expected = isinstance(error, KrakenError | UnknownPairName)
            self._log.opt(exception=None if expected else error).warning(
                "exchange poll failed ({} in a row): {}: {}; next try in {:.1f} s",
                self._consecutive_failures,
                type(error).__name__,
                error,
                backoff,
            )
            self._hand_over(
                FeedTrouble(
                    operation="poll",
                    error=type(error).__name__,
                    detail=str(error),
                    consecutive_failures=self._consecutive_failures,
                )
            )
            return backoff
        if self._consecutive_failures:
            self._log.info("exchange poll succeeded after {} failures", self._consecutive_failures)
        self._consecutive_failures = 0
        self._apply(result)
        return self.settings.poll_interval_seconds

    # -- one poll: read everything first, hand over only after -----------------------------
    def _read(self) -> _PollResult:
        client = self._client
        result = _PollResult()
        open_orders = client.open_orders()
        closed = list(client.iter_closed_orders(start=self._since(self._close_cursor_ns)))
        trades = list(client.iter_trades_history(start=self._since(self._trade_cursor_ns)))

        result.open_txids = {order.txid for order in open_orders}
        result.opened = sorted(
            (o for o in open_orders if o.txid not in self._announced_open),
            key=lambda o: o.open_ns,
        )
        result.finished = sorted(
            (
                o
                for o in closed
                if o.status in _FINISHED_STATUSES and o.txid not in self._reported_finished
            ),
            key=lambda o: o.close_ns or o.open_ns,
        )
        closes = [o.close_ns for o in closed if o.close_ns is not None]
        result.newest_close_ns = max(closes) if closes else None
        result.newest_trade_ns = max((t.time_ns for t in trades), default=None)

        fresh = [t for t in reversed(trades) if t.txid not in self._reported_trades]  # oldest first
        candidates = {t.txid: t for t in fresh}
        for txid, waiting in self._deferred.items():
            candidates.setdefault(txid, waiting.trade)
        ordered = sorted(candidates.values(), key=lambda t: t.time_ns)

        market_pairs = [self._client.names.pair(text) for text in self.settings.market_pairs]
        ledger = self._ledger_by_trade(ordered)
        orders = self._query_orders({t.order_txid for t in ordered})
        quotes = {t.quote for t in ordered} | {pair.quote for pair in market_pairs}
        tickers, rates = self._tickers_and_rates(quotes, {p.symbol for p in market_pairs})
        for trade in ordered:
            self._join(trade, ledger.get(trade.txid), orders, rates, result)
        if market_pairs:
            result.market = MarketSeen(
                tickers={p.symbol: tickers[p.symbol] for p in market_pairs if p.symbol in tickers},
                pairs={pair.symbol: pair for pair in market_pairs},
                rates=rates,
                available=self._available_balances(),
            )
        return result

    def _ledger_by_trade(self, trades: list[Trade]) -> dict[str, list[LedgerEntry]]:
        """The `trade` ledger entries around these trades, by refid (= trade txid)."""
        ledger: dict[str, list[LedgerEntry]] = {}
        if not trades:
            return ledger
        since = max(0, min(t.time_ns for t in trades) - NS_PER_SECOND)
        for entry in self._client.iter_ledgers(start=since, type="trade"):
            if entry.refid is not None:
                ledger.setdefault(entry.refid, []).append(entry)
        return ledger

    def _tickers_and_rates(
        self, quotes: set[str], symbols: set[str]
    ) -> tuple[dict[str, Ticker], dict[str, Decimal]]:
        """One Ticker call for `symbols` and the pairs that price each quote currency in the
        valuation currency; the rate is the mid (1 / mid through an inverse pair)."""
        valuation = self.settings.valuation_currency
        rate_pairs = {q: self._rate_pair(q) for q in quotes if q != valuation}
        wanted = symbols | {found[0] for found in rate_pairs.values() if found is not None}
        tickers = self._client.ticker(sorted(wanted)) if wanted else {}
        rates: dict[str, Decimal] = {}
        for quote, found in rate_pairs.items():
            if found is not None and found[0] in tickers:
                symbol, inverted = found
                mid = tickers[symbol].mid
                rates[quote] = KRAKEN_DECIMAL_CONTEXT.divide(1, mid) if inverted else mid
        return tickers, rates

    def _available_balances(self) -> dict[str, Decimal]:
        """What new orders may use per asset (staking and earn variants left out)."""
        available: dict[str, Decimal] = {}
        for line in self._client.balance_ex():
            if not line.is_variant:
                available[line.asset] = KRAKEN_DECIMAL_CONTEXT.add(
                    available.get(line.asset, _ZERO), line.available
                )
        return available

    def _join(
        self,
        trade: Trade,
        legs: list[LedgerEntry] | None,
        orders: Mapping[str, Order],
        rates: Mapping[str, Decimal],
        result: _PollResult,
    ) -> None:
        waiting = self._deferred.get(trade.txid)
        polls = waiting.polls + 1 if waiting is not None else 1
        if not legs and polls <= LEDGER_WAIT_POLLS:
            self._defer(trade, polls, "its ledger entries are not there yet", result)
            return
        if legs:
            fee, fee_currency = fee_from_ledger(trade, legs)
        else:
            self._log.warning(
                "trade {}: no ledger entries after {} polls; taking its fee in {}",
                trade.txid,
                LEDGER_WAIT_POLLS,
                trade.quote,
            )
            fee, fee_currency = trade.fee, trade.quote
        rate: Decimal | None = None
        if trade.quote != self.settings.valuation_currency:
            rate = rates.get(trade.quote)
            if rate is None or rate <= 0:
                self._defer(
                    trade,
                    polls,
                    f"no rate {trade.quote} → {self.settings.valuation_currency}",
                    result,
                )
                return
        result.fills.append(
            FillSeen(
                trade=trade,
                fee=fee,
                fee_currency=fee_currency,
                completes_order=completes_order(trade, orders.get(trade.order_txid)),
                quote_rate=rate,
            )
        )
        result.seen_trades[trade.txid] = trade.time_ns

    def _defer(self, trade: Trade, polls: int, reason: str, result: _PollResult) -> None:
        if trade.txid not in self._deferred:
            self._log.info("trade {} held back: {}", trade.txid, reason)
            result.deferred.append(TradeDeferred(trade=trade, reason=reason))
        self._deferred[trade.txid] = _Deferred(trade=trade, polls=polls)

    def _query_orders(self, txids: set[str]) -> dict[str, Order]:
        """The orders by txid; an order the exchange does not know is left out (one unknown
        id fails the whole batch on Kraken, so the batch is then asked one by one)."""
        if not txids:
            return {}
        ordered = sorted(txids)
        try:
            found = self._client.query_orders(ordered, trades=True)
        except UnknownOrder:
            found_list = []
            for txid in ordered:
                try:
                    found_list.extend(self._client.query_orders([txid], trades=True))
                except UnknownOrder:
                    self._log.info("order {} of a trade is unknown to the exchange", txid)
            found = tuple(found_list)
        return {order.txid: order for order in found}

    def _rate_pair(self, quote: str) -> tuple[str, bool] | None:
        """The pair that prices `quote` in the valuation currency: (symbol, inverted)."""
        valuation = self.settings.valuation_currency
        names = self._client.names
        for text, inverted in ((f"{quote}/{valuation}", False), (f"{valuation}/{quote}", True)):
            try:
                return names.pair(text).symbol, inverted
            except UnknownPairName:
                continue
        return None

    def _since(self, cursor_ns: int | None) -> int | None:
        return None if cursor_ns is None else max(0, cursor_ns - POLL_OVERLAP_NS)

    def _apply(self, result: _PollResult) -> None:
        """Hand over what the poll found, in the order the books expect, then move on."""
        for order in result.opened:
            self._hand_over(OrderOpened(order=order))
            self._announced_open.add(order.txid)
        for deferred in result.deferred:
            self._hand_over(deferred)
        for fill in result.fills:
            self._hand_over(fill)
            self._deferred.pop(fill.trade.txid, None)
        self._reported_trades.update(result.seen_trades)
        for order in result.finished:
            self._hand_over(OrderFinished(order=order))
            self._reported_finished[order.txid] = order.close_ns or order.open_ns
        if result.market is not None:
            self._hand_over(result.market)
        # An order no longer open is announced again if it ever shows open again: harmless.
        self._announced_open &= result.open_txids
        if result.newest_trade_ns is not None:
            self._trade_cursor_ns = max(self._trade_cursor_ns or 0, result.newest_trade_ns)
        if result.newest_close_ns is not None:
            self._close_cursor_ns = max(self._close_cursor_ns or 0, result.newest_close_ns)
        self._forget_old()

    def _forget_old(self) -> None:
        """Drop ids older than any future poll can return, so memory stays bounded."""
        if self._trade_cursor_ns is not None:
            horizon = self._trade_cursor_ns - 2 * POLL_OVERLAP_NS
            self._reported_trades = {
                txid: ns for txid, ns in self._reported_trades.items() if ns >= horizon
            }
        if self._close_cursor_ns is not None:
            horizon = self._close_cursor_ns - 2 * POLL_OVERLAP_NS
            self._reported_finished = {
                txid: ns for txid, ns in self._reported_finished.items() if ns >= horizon
            }

    # -- order commands --------------------------------------------------------------------
    def _execute_guarded(self, command: PlaceOrder | CancelOrder) -> None:
        try:
            self._execute(command)
        except (FeedStopping, _ReceiverGone):
            raise
        except Exception as error:
            # Typed exchange errors are handled in _place/_cancel; this is a bug. The order
            # may or may not be on the book: the polls will show it if it is.
            self._log.opt(exception=error).error("order command {} failed", command)
            operation = "cancel" if isinstance(command, CancelOrder) else "place"
            self._hand_over(
                FeedTrouble(
                    operation=operation,
                    error=type(error).__name__,
                    detail=str(error),
                    consecutive_failures=0,
                )
            )
            if isinstance(command, PlaceOrder):
                self._hand_over(
                    OrderNotPlaced(request=command, reason=str(error), outcome_unknown=True)
                )

    def _execute(self, command: PlaceOrder | CancelOrder) -> None:
        if isinstance(command, CancelOrder):
            self._cancel(command)
        else:
            self._place(command)

    def _place(self, request: PlaceOrder) -> None:
        if not self.settings.orders_allowed:
            self._log.warning("order {} not placed: orders are not allowed", request.cl_ord_id)
            self._hand_over(OrderNotPlaced(request=request, reason="orders are not allowed"))
            return
        try:
            pair = self._client.names.pair(request.pair)
        except UnknownPairName:
            self._hand_over(
                OrderNotPlaced(request=request, reason=f"unknown pair {request.pair!r}")
            )
            return
        except KrakenError as error:
            self._not_placed(request, error)
            return
        try:
            placed = self._client.add_order(
                pair.symbol,
                request.side,
                request.ordertype,
                request.volume,
                request.limit_price,
                oflags=request.oflags,
                cl_ord_id=request.cl_ord_id,
            )
        except (KrakenAPIError, OrderRequestError) as error:
            self._log.info(
                "order {} ({} {} {}) refused: {}",
                request.cl_ord_id,
                request.side,
                request.volume,
                pair.symbol,
                error,
            )
            self._hand_over(
                OrderRefused(
                    request=request,
                    pair=pair.symbol,
                    quote=pair.quote,
                    reason=str(error),
                    ts_ns=self._clock(),
                )
            )
            return
        except KrakenError as error:
            self._not_placed(request, error)
            return
        assert placed.txid is not None  # not a validate-only call
        self._log.info(
            "placed {} {} {} {} as {} (cl_ord_id {})",
            request.ordertype,
            request.side,
            request.volume,
            pair.symbol,
            placed.txid,
            request.cl_ord_id,
        )
        self._hand_over(OrderPlaced(request=request, order_txid=placed.txid))

    def _not_placed(self, request: PlaceOrder, error: KrakenError) -> None:
        unknown = isinstance(error, OrderOutcomeUnknown)
        self._log.warning(
            "order {} {}: {}: {}",
            request.cl_ord_id,
            "outcome unknown" if unknown else "not placed",
            type(error).__name__,
            error,
        )
        self._hand_over(OrderNotPlaced(request=request, reason=str(error), outcome_unknown=unknown))

    def _cancel(self, command: CancelOrder) -> None:
        try:
            outcome = self._client.cancel_order(command.order_txid)
        except UnknownOrder:
            self._log.info("cancel of {}: already closed", command.order_txid)
            return
        except KrakenError as error:
            self._log.warning("cancel of {} failed: {}", command.order_txid, error)
            self._hand_over(
                FeedTrouble(
                    operation="cancel",
                    error=type(error).__name__,
                    detail=str(error),
                    consecutive_failures=0,
                )
            )
            return
        self._log.info("cancel of {}: {} canceled", command.order_txid, outcome.count)


class _ReceiverGone(Exception):
    """`deliver` raised: the actor this feed works for has stopped."""
