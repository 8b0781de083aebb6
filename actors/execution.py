"""The execution actor: feeds the books from the exchange, and places the orders it may.

`ExchangeFeed` (a plain thread, see `actors.exchange_feed`) does every exchange call and tells
this actor what it saw. The actor turns each observation into an `ExecutionReport` and sends
it to the journal over the reliable channel (`journal.ingest`): resent until acknowledged, so
a journal restart loses nothing, and deduplicated there by `exec_id`, so a resend or a trade
read twice is harmless.

- A trade becomes a fill: exec_id = the trade txid, order_id = its order txid, quantity,
  price and cost as the exchange reported them, the fee in the currency it really left
  (from the ledger), status FILLED for the trade that completed its order, else
  PARTIALLY_FILLED; for a pair not quoted in the valuation currency, `quote_rate` is the
  quote → valuation rate read when the trade was read.
- An order's status change moves no money: NEW when first seen open, CANCELED / EXPIRED
  when it ends that way (after partial fills too: those fills are reported as trades),
  REJECTED when the exchange refuses an order placed here. exec_id = f"{order}:{STATUS}".
- Resume: `execution.state_file` keeps `acknowledged_through_ns`, a time at or before which
  every fill has been acknowledged by the journal. The next start reads history from
  `RESUME_OVERLAP_NS` before it (the journal acknowledges the few repeats as duplicates).
  Without the file a paper account is read from its beginning and a live one from now.
- Orders: `SubmitOrder` (told by a caller, or planned by the paper demo flow every
  `execution.order_interval_seconds`) is checked with the risk actor first (`CheckOrder`,
  request with timeout, carrying how many reports wait for the journal and for how long, so
  risk denies while the books lag behind the exchange); no answer or a denial places
  nothing. An approved order goes to the feed with a fresh `cl_ord_id`. In live mode no order
  is ever placed unless `execution.allow_live_orders` is true.
"""

from __future__ import annotations

import decimal
import json
import os
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from actors.exchange_feed import (
    CancelOrder,
    ExchangeFeed,
    FeedSettings,
    FeedTrouble,
    FillSeen,
    MarketSeen,
    OrderFinished,
    OrderNotPlaced,
    OrderOpened,
    OrderPlaced,
    OrderRefused,
    PlaceOrder,
    TradeDeferred,
)
from actors.runtime.actor import (
    Connect,
    Inbound,
    RequestFailed,
    Serve,
    ServiceActor,
    SocketSpec,
    handles,
)
from kraken.credentials import CredentialsError, require_credentials
from kraken.models import Order
from messages import (
    Acknowledgement,
    CheckOrder,
    DeliveryRefused,
    ErrorReply,
    ExecutionReport,
    OrderStatus,
    RiskDecision,
    Side,
)
from messages.base import Message
from messages.errors import SetupError
from messages.units import NS_PER_SECOND
from service.config import ExecutionSettings, decimal_context, exchange_url

__all__ = [
    "RESUME_OVERLAP_NS",
    "ExecutionActor",
    "ExecutionStats",
    "GetExecutionStats",
    "RequestCancel",
    "ResumeStateError",
    "SubmitOrder",
    "fill_report",
    "load_resume_point",
    "plan_demo_order",
    "refusal_report",
    "save_resume_point",
    "status_report",
]

#: The exchange URL the runner hands to the group (the paper exchange's, in paper mode).

#: How far before the resume point history is read again on start.
RESUME_OVERLAP_NS = 30 * NS_PER_SECOND

_ZERO = Decimal(0)
_STATE_VERSION = 1
_PERSIST_DELAY_SECONDS = 0.5
_FEED_JOIN_MAX_SECONDS = 10.0


class ResumeStateError(ValueError):
    """The resume state file is unreadable or malformed; `path` and `field` say where."""

    def __init__(self, path: Path, field: str, detail: str) -> None:
        super().__init__(f"{path}: {field}: {detail}")
        self.path = path
        self.field = field


# ---------------------------------------------------------------------------- local messages


@dataclass(frozen=True, kw_only=True)
class SubmitOrder:
    """Ask the actor to place an order, after the risk check.

    `volume` in base; `limit_price` in quote for a limit order (None for market);
    `reference_price` is the price the risk check uses for a market order (default: the
    last touch the feed read, ask for a buy and bid for a sell). `cancel_after_seconds`
    cancels the order then if it is still open.
    """

    pair: str
    side: Side
    ordertype: str
    volume: Decimal
    limit_price: Decimal | None = None
    reference_price: Decimal | None = None
    oflags: tuple[str, ...] = ()
    cancel_after_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class RequestCancel:
    """Ask the actor to cancel the open order `order_txid`."""

    order_txid: str


@dataclass(frozen=True)
class GetExecutionStats:
    """Ask (pykka `ask`) for the actor's counters; answered with `ExecutionStats`."""


@dataclass(frozen=True, kw_only=True)
class ExecutionStats:
    """The actor's counters, and where following would resume.

    `reports_sent` counts first sends (resends are the runtime's); `unacknowledged` reports
    still wait for the journal; `acknowledged_through_ns` is the resume point;
    `feed_running` is False once the exchange feed thread has ended.
    """

    reports_sent: int
    fills_reported: int
    statuses_reported: int
    acknowledged: int
    duplicates: int
    refused_by_journal: int
    unacknowledged: int
    trades_deferred: int
    exchange_errors: int
    orders_submitted: int
    orders_denied: int
    risk_unanswered: int
    orders_placed: int
    orders_rejected: int
    orders_not_placed: int
    acknowledged_through_ns: int | None
    feed_running: bool


@dataclass(frozen=True)
class _DemoOrderDue:
    """Timer: plan and submit the next demo order."""


@dataclass(frozen=True)
class _PersistDue:
    """Timer: write the resume point if it moved."""


@dataclass(frozen=True, kw_only=True)
class _CancelDue:
    order_txid: str


# ---------------------------------------------------------------------------- pure reports


def _quote_of(pair: str) -> str:
    return pair.partition("/")[2]


def fill_report(fill: FillSeen, ts_init: int) -> ExecutionReport:
    """The `ExecutionReport` of one trade: exec_id = trade txid, the exchange's numbers."""
    trade = fill.trade
    return ExecutionReport(
        exec_id=trade.txid,
        order_id=trade.order_txid,
        pair=trade.symbol,
        side=Side(trade.side),
        status=OrderStatus.FILLED if fill.completes_order else OrderStatus.PARTIALLY_FILLED,
        last_qty=trade.volume,
        last_price=trade.price,
        fee=fill.fee,
        fee_currency=fill.fee_currency,
        quote_rate=fill.quote_rate,
        cost=trade.cost,
        ts_event=trade.time_ns,
        ts_init=ts_init,
    )


def status_report(
    order: Order, status: OrderStatus, ts_event: int, ts_init: int, reason: str = ""
) -> ExecutionReport:
    """A report that moves no money: exec_id = f"{order txid}:{status}", zero amounts."""
    return ExecutionReport(
        exec_id=f"{order.txid}:{status.value}",
        order_id=order.txid,
        pair=order.symbol,
        side=Side(order.side),
        status=status,
        last_qty=_ZERO,
        last_price=_ZERO,
        fee=_ZERO,
        fee_currency=_quote_of(order.symbol),
        quote_rate=None,
        cost=_ZERO,
        reason=reason,
        ts_event=ts_event,
        ts_init=ts_init,
    )


def refusal_report(refused: OrderRefused, ts_init: int) -> ExecutionReport:
    """REJECTED for an order the exchange refused: it has no txid, so the cl_ord_id names it."""
    request = refused.request
    return ExecutionReport(
        exec_id=f"{request.cl_ord_id}:{OrderStatus.REJECTED.value}",
        order_id=request.cl_ord_id,
        pair=refused.pair,
        side=Side(request.side),
        status=OrderStatus.REJECTED,
        last_qty=_ZERO,
        last_price=_ZERO,
        fee=_ZERO,
        fee_currency=refused.quote,
        quote_rate=None,
        cost=_ZERO,
        reason=refused.reason[:500],
        ts_event=refused.ts_ns,
        ts_init=ts_init,
    )


def plan_demo_order(
    rng: random.Random,
    market: MarketSeen,
    settings: ExecutionSettings,
    valuation_currency: str,
    context: decimal.Context,
) -> SubmitOrder | None:
    """The next order of the paper demo flow, drawn from `rng`; None if it cannot be sized.

    Pair and side at random (a sell only when the base is available, else a buy); size =
    `order_value` / price (the value converted to quote as value / rate when the pair is not
    quoted in the valuation currency), rounded down to the pair's lot decimals, at least
    `ordermin`. Six orders in ten are market orders; the others are limit orders 1-5 ticks
    inside the spread or outside the touch, so they rest and fill as the price walks, and
    four in ten of those are canceled 3-6 order intervals later.
    """
    symbol = rng.choice(settings.order_pairs)
    side = rng.choice((Side.BUY, Side.SELL))
    roll, ticks, inside, cancel_roll = rng.random(), rng.randint(1, 5), rng.random(), rng.random()
    cancel_intervals = rng.randint(3, 6)
    ticker = market.tickers.get(symbol)
    pair = market.pairs.get(symbol)
    if ticker is None or pair is None or not 0 < ticker.bid < ticker.ask:
        return None
    value = settings.order_value
    if pair.quote != valuation_currency:
        rate = market.rates.get(pair.quote)
        if rate is None or rate <= 0:
            return None
        value = context.divide(value, rate)
    if side is Side.SELL:
        lot = Decimal(1).scaleb(-pair.lot_decimals)
        wanted = context.divide(value, ticker.bid).quantize(lot, ROUND_DOWN, context)
        if market.available.get(pair.base, _ZERO) < max(wanted, pair.ordermin):
            side = Side.BUY
    reference = ticker.ask if side is Side.BUY else ticker.bid
    lot = Decimal(1).scaleb(-pair.lot_decimals)
    volume = max(context.divide(value, reference).quantize(lot, ROUND_DOWN, context), pair.ordermin)
    if roll < 0.6:
        return SubmitOrder(
            pair=symbol, side=side, ordertype="market", volume=volume, reference_price=reference
        )
    tick = pair.tick_size if pair.tick_size > 0 else Decimal(1).scaleb(-pair.pair_decimals)
    offset = context.multiply(tick, ticks)
    if side is Side.BUY:
        touch = ticker.bid
        price = context.add(touch, offset) if inside < 0.5 else context.subtract(touch, offset)
        price = min(price, context.subtract(ticker.ask, tick))
    else:
        touch = ticker.ask
        price = context.subtract(touch, offset) if inside < 0.5 else context.add(touch, offset)
        price = max(price, context.add(ticker.bid, tick))
    steps = context.divide(price, tick).to_integral_value(ROUND_DOWN, context)
    price = context.multiply(steps, tick)
    if price <= 0:
        return None
    cancel_after = settings.order_interval_seconds * cancel_intervals if cancel_roll < 0.4 else None
    return SubmitOrder(
        pair=symbol,
        side=side,
        ordertype="limit",
        volume=volume,
        limit_price=price,
        cancel_after_seconds=cancel_after,
    )


# ---------------------------------------------------------------------------- resume state


def load_resume_point(path: Path) -> int | None:
    """`acknowledged_through_ns` from the state file; None when there is no file yet.

    Raises ResumeStateError naming the file and the field when it cannot be trusted.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ResumeStateError(path, "file", f"unreadable: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except ValueError:
        raise ResumeStateError(path, "file", "not JSON") from None
    if not isinstance(document, dict):
        raise ResumeStateError(path, "file", "expected a JSON object")
    if document.get("version") != _STATE_VERSION:
        raise ResumeStateError(path, "version", f"expected {_STATE_VERSION}")
    value = document.get("acknowledged_through_ns")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ResumeStateError(path, "acknowledged_through_ns", f"not a time in ns: {value!r}")
    return value


def save_resume_point(path: Path, acknowledged_through_ns: int) -> None:
    """Write the resume point atomically: a temporary file, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"version": _STATE_VERSION, "acknowledged_through_ns": acknowledged_through_ns}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# ---------------------------------------------------------------------------- the actor


class ExecutionActor(ServiceActor):
    """Follows the exchange into the journal; checks and places orders (see module doc)."""

    def sockets(self) -> Iterable[SocketSpec]:
        return (Connect("journal.ingest"), Connect("risk.query"), Serve("execution.query"))

    def clock(self) -> int:
        """Wall time in integer ns (`ts_init`, the live start point); tests override it."""
        return time.time_ns()

    # -- lifecycle -------------------------------------------------------------------------
    def started(self) -> None:
        settings = self.config.execution
        exchange = self.config.exchange
        self.decimal = decimal_context(self.config)
        self.counts: dict[str, int] = dict.fromkeys(
            (
                "reports_sent",
                "fills_reported",
                "statuses_reported",
                "acknowledged",
                "duplicates",
                "refused_by_journal",
                "trades_deferred",
                "exchange_errors",
                "orders_submitted",
                "orders_denied",
                "risk_unanswered",
                "orders_placed",
                "orders_rejected",
                "orders_not_placed",
            ),
            0,
        )
        self.feed: ExchangeFeed | None = None
        self.market: MarketSeen | None = None
        self.rng = random.Random(settings.seed)
        self._outstanding_fills: dict[str, int] = {}
        self._newest_acknowledged_ns: int | None = None
        self._persist_scheduled = False
        self._persisted_ns: int | None = None
        self._pending_orders: dict[str, SubmitOrder] = {}

        paper = exchange.mode == "paper"
        self.orders_allowed = paper or settings.allow_live_orders
        self.acknowledged_through_ns = load_resume_point(settings.state_file)
        self._persisted_ns = self.acknowledged_through_ns
        if self.acknowledged_through_ns is not None:
            start_ns: int | None = max(0, self.acknowledged_through_ns - RESUME_OVERLAP_NS)
            where = f"resuming after {self.acknowledged_through_ns} ns"
        elif paper:
            start_ns, where = None, "reading the paper account from its beginning"
        else:
            now = self.clock()
            start_ns, where = now, "first start: following from now on"
            self.acknowledged_through_ns = now
            self._persist_now()
        try:
            credentials = require_credentials(key_file=exchange.key_file)
        except CredentialsError as exc:
            raise SetupError("exchange credentials", str(exc)) from None
        url = exchange_url(self.config)
        self.demo = paper and settings.demo_orders
        try:
            self.feed = ExchangeFeed(
                FeedSettings(
                    url=url,
                    credentials=credentials,
                    timeout_seconds=exchange.timeout_seconds,
                    nonce_dir=self.config.run_dir / "state",
                    poll_interval_seconds=settings.poll_interval_seconds,
                    valuation_currency=self.config.accounting.valuation_currency,
                    start_ns=start_ns,
                    orders_allowed=self.orders_allowed,
                    market_pairs=settings.order_pairs if self.demo else (),
                    name=self.name,
                ),
                self.actor_ref.tell,
                clock=self.clock,
            )
        except ValueError as exc:
            raise SetupError("exchange", str(exc)) from None
        self.log.info("following the {} exchange at {}: {}", exchange.mode, url, where)
        if paper:
            self.log.info(
                "paper mode: demo orders {}",
                f"every {settings.order_interval_seconds} s" if self.demo else "off",
            )
        elif settings.allow_live_orders:
            self.log.warning("live mode: orders MAY be placed (execution.allow_live_orders)")
        else:
            self.log.info(
                "live mode: following only; no order is ever placed "
                "(execution.allow_live_orders is false)"
            )
        self.feed.start()
        if self.demo:
            self.schedule(settings.order_interval_seconds, _DemoOrderDue())

    def stopping(self) -> None:
        feed = getattr(self, "feed", None)
        if feed is not None:
            join = min(self.config.exchange.timeout_seconds + 1.0, _FEED_JOIN_MAX_SECONDS)
            feed.stop(join)
        if hasattr(self, "counts"):
            self._persist_now()

    # -- what the feed saw -----------------------------------------------------------------
    @handles(FillSeen)
    def on_fill(self, fill: FillSeen, inbound: Inbound | None) -> None:
        """A trade: send its fill report; it holds the resume point until acknowledged."""
        report = fill_report(fill, self.clock())
        self._outstanding_fills[report.exec_id] = report.ts_event
        self.counts["fills_reported"] += 1
        self._send(report)

    @handles(TradeDeferred)
    def on_trade_deferred(self, deferred: TradeDeferred, inbound: Inbound | None) -> None:
        """A trade seen but not reported yet: the resume point must not pass it."""
        self.counts["trades_deferred"] += 1
        self._outstanding_fills.setdefault(deferred.trade.txid, deferred.trade.time_ns)

    @handles(OrderOpened)
    def on_order_opened(self, seen: OrderOpened, inbound: Inbound | None) -> None:
        """NEW, stamped with the order's open time."""
        order = seen.order
        self._send_status(status_report(order, OrderStatus.NEW, order.open_ns, self.clock()))

    @handles(OrderFinished)
    def on_order_finished(self, seen: OrderFinished, inbound: Inbound | None) -> None:
        """CANCELED or EXPIRED, stamped with the order's close time, with Kraken's reason."""
        order = seen.order
        status = OrderStatus.EXPIRED if order.status == "expired" else OrderStatus.CANCELED
        ts_event = order.close_ns or order.open_ns
        report = status_report(order, status, ts_event, self.clock(), order.reason or "")
        self._send_status(report)

    @handles(OrderRefused)
    def on_order_refused(self, refused: OrderRefused, inbound: Inbound | None) -> None:
        """REJECTED: the exchange refused an order placed here."""
        self._pending_orders.pop(refused.request.cl_ord_id, None)
        self.counts["orders_rejected"] += 1
        self._send_status(refusal_report(refused, self.clock()))

    @handles(OrderPlaced)
    def on_order_placed(self, placed: OrderPlaced, inbound: Inbound | None) -> None:
        """Counted; a cancel is scheduled when the order asked for one."""
        self.counts["orders_placed"] += 1
        submitted = self._pending_orders.pop(placed.request.cl_ord_id, None)
        if submitted is not None and submitted.cancel_after_seconds is not None:
            self.schedule(submitted.cancel_after_seconds, _CancelDue(order_txid=placed.order_txid))

    @handles(OrderNotPlaced)
    def on_order_not_placed(self, failed: OrderNotPlaced, inbound: Inbound | None) -> None:
        """Counted (the feed logged why)."""
        self._pending_orders.pop(failed.request.cl_ord_id, None)
        self.counts["orders_not_placed"] += 1

    @handles(MarketSeen)
    def on_market(self, market: MarketSeen, inbound: Inbound | None) -> None:
        """The latest touch and balances, for pricing and sizing orders."""
        self.market = market

    @handles(FeedTrouble)
    def on_feed_trouble(self, trouble: FeedTrouble, inbound: Inbound | None) -> None:
        """Counted (the feed logged it and backs off)."""
        self.counts["exchange_errors"] += 1

    # -- the journal's answers -------------------------------------------------------------
    def acknowledged(self, endpoint: str, ack: Acknowledgement, message: Message) -> None:
        self.counts["acknowledged"] += 1
        if ack.duplicate:
            self.counts["duplicates"] += 1
        self._settled(message)

    def refused(self, endpoint: str, refusal: DeliveryRefused, message: Message) -> None:
        # Refused for good: resending or reading it again cannot help, so it does not hold
        # the resume point back.
        self.counts["refused_by_journal"] += 1
        self.log.error("journal refused {}: {}", refusal.key, refusal.reason)
        self._settled(message, acknowledged=False)

    def _settled(self, message: Message, *, acknowledged: bool = True) -> None:
        if not isinstance(message, ExecutionReport):
            return
        ts_event = self._outstanding_fills.pop(message.exec_id, None)
        if ts_event is None:
            return  # a status report: it does not move the resume point
        if acknowledged:
            self._newest_acknowledged_ns = max(self._newest_acknowledged_ns or 0, ts_event)
        self._advance_resume_point()

    def _advance_resume_point(self) -> None:
        """acknowledged_through = the newest acknowledged trade time, but short of any fill
        still waiting, so that a restart reads that fill again."""
        newest = self._newest_acknowledged_ns
        if newest is None:
            return
        if self._outstanding_fills:
            newest = min(newest, min(self._outstanding_fills.values()) - 1)
        if self.acknowledged_through_ns is None or newest > self.acknowledged_through_ns:
            self.acknowledged_through_ns = newest
            if not self._persist_scheduled:
                self._persist_scheduled = True
                self.schedule(_PERSIST_DELAY_SECONDS, _PersistDue())

    @handles(_PersistDue)
    def on_persist_due(self, due: _PersistDue, inbound: Inbound | None) -> None:
        """Write the resume point (throttled: at most one write per delay)."""
        self._persist_scheduled = False
        self._persist_now()

    def _persist_now(self) -> None:
        through = self.acknowledged_through_ns
        if through is None or through == self._persisted_ns:
            return
        try:
            save_resume_point(self.config.execution.state_file, through)
        except OSError as exc:
            self.log.error("cannot write {}: {}", self.config.execution.state_file, exc)
            return
        self._persisted_ns = through

    def _send(self, report: ExecutionReport) -> None:
        self.counts["reports_sent"] += 1
        self.send_reliable("journal.ingest", report)

    def _send_status(self, report: ExecutionReport) -> None:
        self.counts["statuses_reported"] += 1
        self._send(report)

    # -- orders ----------------------------------------------------------------------------
    @handles(SubmitOrder)
    def on_submit(self, order: SubmitOrder, inbound: Inbound | None) -> None:
        """Check `order` with the risk actor; place it only when approved."""
        self.counts["orders_submitted"] += 1
        if not self.orders_allowed:
            self.counts["orders_not_placed"] += 1
            self.log.warning(
                "order on {} not placed: live mode without execution.allow_live_orders",
                order.pair,
            )
            return
        price = order.limit_price or order.reference_price or self._touch(order)
        if price is None or price <= 0 or order.volume <= 0:
            self.counts["orders_denied"] += 1
            self.log.warning("order on {} not placed: no price to check it at", order.pair)
            return
        check = CheckOrder(
            correlation_id=self.next_correlation_id(),
            pair=order.pair,
            side=order.side,
            quantity=order.volume,
            price=price,
            # how far the books lag behind what the feed saw: risk denies past its limit
            unacknowledged_reports=self.unacknowledged("journal.ingest"),
            oldest_unacknowledged_ms=int(
                self.oldest_unacknowledged_seconds("journal.ingest") * 1000
            ),
        )
        self.request(
            "risk.query",
            check,
            on_reply=lambda answer: self._on_decision(order, check, answer),
            on_failure=lambda failure: self._on_risk_silent(order, failure),
        )

    def _touch(self, order: SubmitOrder) -> Decimal | None:
        ticker = self.market.tickers.get(order.pair) if self.market is not None else None
        if ticker is None:
            return None
        return ticker.ask if order.side is Side.BUY else ticker.bid

    def _on_decision(self, order: SubmitOrder, check: CheckOrder, answer: Any) -> None:
        if not isinstance(answer, RiskDecision) or not answer.approved:
            self.counts["orders_denied"] += 1
            if isinstance(answer, RiskDecision):
                reason = answer.reason
            elif isinstance(answer, ErrorReply):
                reason = f"{answer.code.value}: {answer.detail}"
            else:
                reason = f"unexpected answer {type(answer).__name__}"
            self.log.info(
                "order {} {} {} not placed: risk says no ({})",
                order.side.value,
                order.volume,
                order.pair,
                reason,
            )
            return
        cl_ord_id = str(uuid.uuid4())
        self._pending_orders[cl_ord_id] = order
        assert self.feed is not None
        self.feed.submit(
            PlaceOrder(
                cl_ord_id=cl_ord_id,
                pair=order.pair,
                side=order.side.value,
                ordertype=order.ordertype,
                volume=order.volume,
                limit_price=order.limit_price,
                oflags=order.oflags,
            )
        )

    def _on_risk_silent(self, order: SubmitOrder, failure: RequestFailed) -> None:
        self.counts["risk_unanswered"] += 1
        self.log.warning("order on {} not placed: {}", order.pair, failure)

    @handles(RequestCancel)
    def on_request_cancel(self, cancel: RequestCancel, inbound: Inbound | None) -> None:
        """Have the feed cancel the order."""
        if self.feed is not None:
            self.feed.submit(CancelOrder(order_txid=cancel.order_txid))

    @handles(_CancelDue)
    def on_cancel_due(self, due: _CancelDue, inbound: Inbound | None) -> None:
        """A demo order's time to go (if it is still open; else the exchange says so)."""
        if self.feed is not None:
            self.feed.submit(CancelOrder(order_txid=due.order_txid))

    @handles(_DemoOrderDue)
    def on_demo_order_due(self, due: _DemoOrderDue, inbound: Inbound | None) -> None:
        """Plan and submit the next demo order, then schedule the one after."""
        settings = self.config.execution
        self.schedule(settings.order_interval_seconds, _DemoOrderDue())
        if self.market is None:
            return
        planned = plan_demo_order(
            self.rng,
            self.market,
            settings,
            self.config.accounting.valuation_currency,
            self.decimal,
        )
        if planned is not None:
            self.on_submit(planned, None)

    def counters(self) -> dict[str, int]:
        return dict(self.counts)

    # -- inspection ------------------------------------------------------------------------
    @handles(GetExecutionStats)
    def on_stats(self, request: GetExecutionStats, inbound: Inbound | None) -> ExecutionStats:
        """The counters (for tests and tools, through pykka `ask`)."""
        return ExecutionStats(
            **self.counts,
            unacknowledged=self.unacknowledged("journal.ingest"),
            acknowledged_through_ns=self.acknowledged_through_ns,
            feed_running=self.feed is not None and self.feed.alive,
        )
