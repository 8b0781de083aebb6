"""The reconciliation actor: keeps checking that the books agree with the exchange.

On start and every `reconciliation.interval_seconds` a run:

1. reads, in its own thread (`AccountReader`), the exchange's ledger since the last entry it
   knows (paged), its balances (BalanceEx), and the ledger again. The point of comparison is
   the newest ledger entry seen (`H2`); each asset's balance as of it is the `balance` of
   its last entry in the second read, else the balance read (it did not move in between),
   so a run reaches a verdict however busy the account is. Trades of those ledger entries
   come from TradesHistory (paged), joined with their ledger legs for the fee's currency,
   as the execution actor does. Any error (Kraken's, a timeout, a rate limit, an HTTP 5xx,
   a page missing) fails the whole read: nothing is handed over, nothing changes; the next
   run comes after a doubling pause;
2. journals what the exchange has and the journal may lack: every trade as a fill
   (`exec_id` = trade txid) and every other movement of a trading balance (deposits,
   withdrawals, staking moves) as a transfer (`transfer_id` = ledger id). The journal drops
   what it already holds, so a run may repeat any of it; a fill it did not hold is a
   recovered fill;
3. once its own fold of the journal (it follows the journal like the other folds) has
   applied all of that, compares per asset the exchange's balances with the books as of the
   same point (`actors.core.reconciliation`): a fill or transfer whose exchange time is
   after `H2` is left out (while within `fill_grace_seconds` of now), so a fill in flight
   is no false alarm. What is left out follows from the journal alone (each event's
   `ts_event`), so a fold restored from a snapshot and replayed after a restart compares
   the same way. A difference beyond the thresholds, seen unchanged in `confirm_runs` runs
   in a row, is a discrepancy;
4. with `auto_update`, journals a `BalanceAdjusted` (asset, before, after, reason) for each
   discrepancy, so the books change only through the log; without it, reports.

Staking and earn balances (`XBT.M`, `DOT.S`...) are reported apart, never compared. The
status (last success, last attempt, failures, open discrepancies, recovered fills...) is
published on `reconciliation.events` after every run and served on `reconciliation.query`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from actors.core.accounting import BooksLedger, PositionBook
from actors.core.conversion import PriceBook, PriceError
from actors.core.reconciliation import (
    Confirmations,
    Difference,
    Move,
    Thresholds,
    books_as_of,
    compare,
    exchange_as_of,
    in_flight,
    transfer_of,
)
from actors.journal_follower import JournalFollower, check_balances, check_positions
from actors.runtime.actor import (
    Connect,
    Inbound,
    Publish,
    Serve,
    SocketSpec,
    Subscribe,
    handles,
)
from actors.translate import valuer_of, with_quotes
from kraken.client import KrakenClient, RetryPolicy
from kraken.credentials import CredentialsError, require_credentials
from kraken.errors import KrakenError
from kraken.joins import completes_order, fee_from_ledger
from kraken.models import AssetBalanceEx, LedgerEntry, Trade
from kraken.nonce import NonceSource
from messages import (
    Acknowledgement,
    BalanceAdjusted,
    CashState,
    DeliveryRefused,
    Discrepancy,
    ExecutionReport,
    GetReconciliationState,
    OrderStatus,
    PricesUpdated,
    ReconciliationReport,
    ReconciliationStatus,
    SequencedEvent,
    Side,
    Transfer,
)
from messages.base import Message
from messages.errors import SetupError
from messages.units import NS_PER_SECOND, seconds_to_ns
from service.config import decimal_context, exchange_url

CURSOR_OVERLAP_NS = 5 * NS_PER_SECOND
"""Each read starts this much before the newest ledger entry known (the journal dedups)."""
MOVES_KEPT = 100_000
"""Recent fills and transfers remembered with their exchange time, at most (oldest dropped)."""
RUN_TIMEOUT_SECONDS = 60.0
"""A run whose journal writes or fold are not done by then fails (they continue anyway)."""


# ---------------------------------------------------------------------------- what is read


@dataclass(frozen=True, kw_only=True)
class AccountRead:
    """One consistent read of the exchange account (see the module docstring).

    `balances` are the trading balances (normalized assets) as of the ledger entry
    `ledger_head_ns` (None: the ledger is empty); `staking` the variants' balances by
    Kraken's name. `fills` and `transfers` are what the ledger since the cursor holds up to
    that entry, oldest first; `reflected` names their trade txids and every ledger id read.
    """

    balances: dict[str, Decimal]
    staking: dict[str, Decimal]
    fills: tuple[ExecutionReport, ...]
    transfers: tuple[Transfer, ...]
    reflected: frozenset[str]
    ledger_head_ns: int | None
    read_ns: int


@dataclass(frozen=True, kw_only=True)
class ReadFailed:
    """A read failed: nothing of it is used."""

    error: str
    kind: str


@dataclass(frozen=True)
class _RunDue:
    """Timer: time for the next run."""


@dataclass(frozen=True)
class _RunTimeout:
    run: int


class AccountReader:
    """Reads the account in its own thread, one read per request (`request_read`)."""

    def __init__(
        self,
        client: KrakenClient,
        deliver: Callable[[object], None],
        *,
        valuation_currency: str,
        clock: Callable[[], int],
        name: str,
    ) -> None:
        self._client = client
        self._deliver = deliver
        self._valuation = valuation_currency
        self._clock = clock
        self._log = logger.bind(actor=name)
        self._requests: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"{name}-reader", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def request_read(self, since_ns: int | None) -> None:
        """Read the ledger after `since_ns` (None: from the beginning), then hand it over."""
        self._requests.put(since_ns if since_ns is not None else -1)

    def stop(self, timeout_seconds: float) -> bool:
        """End the thread within `timeout_seconds`; True when it ended."""
        self._requests.put(None)
        self._thread.join(timeout_seconds)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            since = self._requests.get()
            if since is None:
                return
            try:
                result: object = self.read(None if since < 0 else since)
            except KrakenError as exc:
                result = ReadFailed(error=str(exc), kind=type(exc).__name__)
            except (ValueError, KeyError, OSError) as exc:
                result = ReadFailed(error=str(exc), kind=type(exc).__name__)
            except Exception as exc:  # a bug: say it loudly, keep the thread
                self._log.exception("reading the account failed")
                result = ReadFailed(error=str(exc), kind=type(exc).__name__)
            try:
                self._deliver(result)
            except Exception:
                return  # the actor is gone

    # -- one read (the reader's thread) ------------------------------------------------------
    def read(self, since_ns: int | None) -> AccountRead:
        """One consistent read of the account; raises on any failure."""
        start = None if since_ns is None else max(0, since_ns - CURSOR_OVERLAP_NS)
        first = _oldest_first(self._client.ledgers(start=start))
        balances = self._client.balance_ex()
        head_ns = max((e.time_ns for e in first), default=since_ns)
        # From just before the first read's newest entry: an entry booked at that same time
        # after the first read is still found (the ids tell which are new).
        again = self._client.ledgers(start=None if head_ns is None else max(0, head_ns - 1))
        known = {e.ledger_id for e in first}
        later = [e for e in _oldest_first(again) if e.ledger_id not in known]
        return self._assemble([*first, *later], balances, later, since_ns)

    def _assemble(
        self,
        entries: list[LedgerEntry],
        balances: Iterable[AssetBalanceEx],
        later: list[LedgerEntry],
        since_ns: int | None,
    ) -> AccountRead:
        now = self._clock()
        head_ns = max((e.time_ns for e in entries), default=since_ns)
        legs: dict[str, list[LedgerEntry]] = {}
        transfers = []
        for entry in entries:
            if entry.type == "trade" and entry.refid:
                legs.setdefault(entry.refid, []).append(entry)
            else:
                transfer = transfer_of(entry, now)
                if transfer is not None:
                    transfers.append(transfer)
        fills = self._fills(legs, now)
        side = exchange_as_of(balances, later)
        return AccountRead(
            balances=side.trading,
            staking=side.staking,
            fills=tuple(fills),
            transfers=tuple(transfers),
            reflected=frozenset(legs) | frozenset(e.ledger_id for e in entries),
            ledger_head_ns=head_ns,
            read_ns=now,
        )

    def _fills(self, legs: dict[str, list[LedgerEntry]], now: int) -> list[ExecutionReport]:
        if not legs:
            return []
        earliest = min(leg.time_ns for group in legs.values() for leg in group)
        trades = [
            trade
            for trade in self._client.trades_history(start=max(0, earliest - CURSOR_OVERLAP_NS))
            if trade.txid in legs
        ]
        missing = set(legs) - {trade.txid for trade in trades}
        if missing:
            raise ValueError(f"TradesHistory lacks {len(missing)} trades of the ledger")
        orders = {}
        order_ids = sorted({trade.order_txid for trade in trades})
        if order_ids:
            orders = {order.txid: order for order in self._client.query_orders(order_ids)}
        rates = self._rates({trade.quote for trade in trades} - {self._valuation})
        fills = []
        for trade in sorted(trades, key=lambda t: (t.time_ns, t.txid)):
            fee, fee_currency = fee_from_ledger(trade, legs[trade.txid])
            fills.append(_fill(trade, fee, fee_currency, orders.get(trade.order_txid), rates, now))
        return fills

    def _rates(self, quotes: set[str]) -> dict[str, Decimal]:
        rates = {}
        for quote in sorted(quotes):
            symbol = f"{quote}/{self._valuation}"
            ticker = self._client.ticker(symbol)[symbol]
            rates[quote] = ticker.mid
        return rates


def _oldest_first(entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    """Ledger entries (Kraken lists them newest first) by time, oldest first; entries of one
    time stay in the order they were booked. Repeats (pages shifted by new entries) go."""
    unique = {e.ledger_id: e for e in reversed(tuple(entries))}
    return sorted(unique.values(), key=lambda e: e.time_ns)


def _fill(
    trade: Trade,
    fee: Decimal,
    fee_currency: str,
    order: Any,
    rates: dict[str, Decimal],
    ts_init: int,
) -> ExecutionReport:
    """A trade as the fill report the execution actor would have sent for it."""
    return ExecutionReport(
        exec_id=trade.txid,
        order_id=trade.order_txid,
        pair=trade.symbol,
        side=Side(trade.side),
        status=OrderStatus.FILLED
        if completes_order(trade, order)
        else OrderStatus.PARTIALLY_FILLED,
        last_qty=trade.volume,
        last_price=trade.price,
        fee=fee,
        fee_currency=fee_currency,
        quote_rate=rates.get(trade.quote),
        cost=trade.cost,
        ts_event=trade.time_ns,
        ts_init=ts_init,
    )


# ---------------------------------------------------------------------------- the actor


@dataclass
class _Run:
    """A run in progress after its read: what it still waits for."""

    number: int
    read: AccountRead
    waiting: set[str] = field(default_factory=set)
    target_seq: int = 0
    recovered_fills: int = 0
    recovered_transfers: int = 0


class ReconciliationActor(JournalFollower):
    """Compares the books with the exchange and journals what is missing; see the module."""

    ledger_class = BooksLedger
    events_endpoint = "reconciliation.events"

    def follower_sockets(self) -> Iterable[SocketSpec]:
        return (
            Connect("journal.ingest"),
            Subscribe("prices.events"),
            Publish("reconciliation.events"),
            Serve("reconciliation.query"),
        )

    def clock(self) -> int:
        """Now, integer ns since the epoch (UTC)."""
        return time.time_ns()

    # -- life ------------------------------------------------------------------------------------
    def started(self) -> None:
        settings = self.config.reconciliation
        self.settings = settings
        self.context = decimal_context(self.config)
        self.max_price_age_ns = valuer_of(self.config).max_age_ns
        self.thresholds = Thresholds(
            default=settings.default_threshold,
            per_asset=dict(settings.thresholds),
            value=settings.value_threshold,
        )
        self.confirmations = Confirmations(settings.confirm_runs)
        self.prices = PriceBook()
        self.grace_ns = seconds_to_ns(settings.fill_grace_seconds)
        self.moves: deque[Move] = deque(maxlen=MOVES_KEPT)
        self.run: _Run | None = None
        self.reading = False
        self.runs = 0
        self.failures = 0
        self.status = ReconciliationStatus(
            last_success_ns=None,
            last_attempt_ns=None,
            consecutive_failures=0,
            last_error="",
            open_discrepancies=(),
            recovered_fills=0,
            recovered_transfers=0,
            adjustments=0,
            staking={},
            checked_seq=0,
            auto_update=settings.auto_update,
        )
        self.cursor_ns = _load_cursor(settings.state_file)
        super().started()
        self.reader = self._start_reader()
        self.schedule(0, _RunDue())

    def _start_reader(self) -> AccountReader:
        exchange = self.config.exchange
        try:
            credentials = require_credentials(key_file=exchange.key_file)
        except CredentialsError as exc:
            raise SetupError("exchange credentials", str(exc)) from None
        url = exchange_url(self.config)
        nonce = NonceSource(
            credentials.key,
            self.config.run_dir / "state",
            lock_timeout_seconds=max(10.0, 2 * exchange.timeout_seconds),
        )
        self._nonce = nonce
        client = KrakenClient(
            url,
            credentials,
            timeout_seconds=exchange.timeout_seconds,
            retry=RetryPolicy(max_attempts=1),
            nonce=nonce,
            clock_ns=self.clock,
        )
        self._client = client
        reader = AccountReader(
            client,
            self.actor_ref.tell,
            valuation_currency=self.config.accounting.valuation_currency,
            clock=self.clock,
            name=self.name,
        )
        reader.start()
        self.log.info(
            "reconciling with the {} exchange at {} every {} s (auto_update {})",
            exchange.mode,
            url,
            self.settings.interval_seconds,
            "on" if self.settings.auto_update else "off",
        )
        return reader

    def stopping(self) -> None:
        reader = getattr(self, "reader", None)
        if reader is not None and reader.stop(self.config.exchange.timeout_seconds + 1.0):
            self._client.close()
            self._nonce.close()
        super().stopping()

    # -- the fold (books as the journal has them) --------------------------------------------
    def restore(self, seq: int, state: Message) -> None:
        assert isinstance(state, CashState)
        # Saved as one balance per asset: cash and position quantities together.
        cash_currencies = self.ledger.cash.cash_currencies
        self.ledger.cash.balances = {
            a: v for a, v in state.balances.items() if a in cash_currencies
        }
        self.ledger.positions.positions = {
            a: PositionBook(quantity=v)
            for a, v in state.balances.items()
            if a not in cash_currencies
        }
        self.ledger.seq = seq

    def current_state(self) -> CashState:
        return CashState(correlation_id="snapshot", seq=self.seq, balances=self.books())

    def books(self) -> dict[str, Decimal]:
        """Every asset's balance in the books (cash and position quantities)."""
        held = dict(self.ledger.cash.balances)
        for asset, book in self.ledger.positions.positions.items():
            held[asset] = book.quantity
        return held

    def fold(self, event: SequencedEvent) -> dict[str, Any]:
        """Fold the event; a recent fill or transfer is also remembered as a `Move` with its
        exchange time, so a comparison can leave out what the exchange does not show yet."""
        payload = event.event
        moves = isinstance(payload, Transfer) or (
            isinstance(payload, ExecutionReport) and payload.last_qty > 0
        )
        if not moves or abs(self.clock() - payload.ts_event) > self.grace_ns:
            self._apply(event.seq, payload)  # never left out: no need to remember
            return {}
        before = self.books()
        self._apply(event.seq, payload)
        after = self.books()
        moved = {
            asset: after.get(asset, Decimal(0)) - before.get(asset, Decimal(0))
            for asset in set(before) | set(after)
            if after.get(asset) != before.get(asset)
        }
        key = getattr(payload, type(payload).delivery_key)
        self.moves.append(Move(seq=event.seq, ts_event=payload.ts_event, moved=moved, key=key))
        return {}

    def _apply(self, seq: int, payload: Any) -> None:
        cash, positions = self.ledger.apply(seq, payload)
        check_balances(cash)
        check_positions(positions)

    def publish_changes(self, first_seq: int, seq: int, changed: dict[str, Any]) -> None:
        run = self.run
        if run is not None and not run.waiting and self.seq >= run.target_seq:
            self._compare(run)

    # -- prices (for the valuation threshold) ------------------------------------------------
    @handles(PricesUpdated, on="prices.events")
    def on_prices_updated(self, update: PricesUpdated, inbound: Inbound | None) -> None:
        """Keep the latest quotes."""
        try:
            self.prices, _ = with_quotes(self.prices, update.quotes)
        except PriceError as exc:
            self.log.warning("refused quotes: {}", exc)

    def _value_of(self, asset: str, amount: Decimal) -> Decimal | None:
        conversion = self.prices.convert(
            asset,
            amount,
            to=self.config.accounting.valuation_currency,
            now_ns=self.clock(),
            max_age_ns=self.max_price_age_ns,
            bridges=self.config.prices.bridges,
            context=self.context,
        )
        if conversion.rate is None:
            return None
        return self.context.multiply(amount, conversion.rate)

    # -- runs ------------------------------------------------------------------------------------
    @handles(_RunDue)
    def on_run_due(self, due: _RunDue, inbound: Inbound | None) -> None:
        """Start a run (one at a time)."""
        if self.run is not None or self.reading:
            return
        if self.halted is not None:
            # Its books are not the journal's past the halt: comparing them (and, with
            # auto_update, "correcting" the exchange's balances) would be wrong.
            self._fail(
                f"the fold of the journal is halted at seq {self.halted.seq}: {self.halted.reason}"
            )
            return
        self.reading = True
        self.runs += 1
        self.status = _with(self.status, last_attempt_ns=self.clock())
        self.reader.request_read(self.cursor_ns)
        self.schedule(RUN_TIMEOUT_SECONDS, _RunTimeout(self.runs))

    @handles(ReadFailed)
    def on_read_failed(self, failed: ReadFailed, inbound: Inbound | None) -> None:
        """Nothing of the read is used; the next run comes after a longer pause."""
        self.reading = False
        self._fail(f"{failed.kind}: {failed.error}")

    @handles(AccountRead)
    def on_account_read(self, read: AccountRead, inbound: Inbound | None) -> None:
        """Journal what the exchange has, then compare once the fold has it all."""
        self.reading = False
        run = _Run(number=self.runs, read=read, target_seq=self.seq)
        self.run = run
        for event in (*read.fills, *read.transfers):
            key = getattr(event, type(event).delivery_key)
            run.waiting.add(key)
            self.send_reliable("journal.ingest", event)
        if not run.waiting and self.seq >= run.target_seq:
            self._compare(run)

    def acknowledged(self, endpoint: str, ack: Acknowledgement, message: Message) -> None:
        run = self.run
        if run is None or ack.key not in run.waiting:
            return
        run.waiting.discard(ack.key)
        run.target_seq = max(run.target_seq, ack.seq or 0)
        if not ack.duplicate:
            if isinstance(message, ExecutionReport):
                run.recovered_fills += 1
                self.log.info("recovered fill {} ({})", ack.key, message.pair)
            elif isinstance(message, Transfer):
                run.recovered_transfers += 1
                self.log.info(
                    "journaled transfer {}: {} {}", ack.key, message.amount, message.asset
                )
        if not run.waiting and self.seq >= run.target_seq:
            self._compare(run)

    def refused(self, endpoint: str, refusal: DeliveryRefused, message: Message) -> None:
        run = self.run
        if run is not None and refusal.key in run.waiting:
            self.run = None
            self._fail(f"the journal refused {refusal.key}: {refusal.reason}")

    @handles(_RunTimeout)
    def on_run_timeout(self, timeout: _RunTimeout, inbound: Inbound | None) -> None:
        """A run that could not finish (journal or fold stuck) fails; its writes go on."""
        if self.run is not None and self.run.number == timeout.run:
            self.run = None
            self._fail("the journal did not take the run's events in time")

    def _compare(self, run: _Run) -> None:
        self.run = None
        if self.halted is not None:
            self._fail(f"the fold of the journal is halted at seq {self.halted.seq}")
            return
        read = run.read
        now_ns = self.clock()
        while self.moves and now_ns - self.moves[0].ts_event > self.grace_ns:
            self.moves.popleft()  # oldest first by seq; a later one past grace is skipped below
        left_out = in_flight(self.moves, read.ledger_head_ns, now_ns, self.grace_ns, read.reflected)
        if left_out:
            self.log.debug(
                "{} fills and transfers after the exchange's ledger point {} are left out",
                len(left_out),
                read.ledger_head_ns,
            )
        books = books_as_of(self.books(), (move.moved for move in left_out))
        found = compare(books, read.balances, self.thresholds, self._value_of, self.context)
        confirmed = self.confirmations.observe(found, now_ns)
        adjustments = 0
        if self.settings.auto_update:
            for difference, _ in confirmed:
                self._adjust(difference, read)
                adjustments += 1
        for difference in found:
            if difference not in (c for c, _ in confirmed):
                self.log.info(
                    "{} differs by {} (books {}, exchange {}): confirming next run",
                    difference.asset,
                    difference.difference,
                    difference.books,
                    difference.exchange,
                )
        status = self.status
        self.status = _with(
            status,
            last_success_ns=now_ns,
            consecutive_failures=0,
            last_error="",
            open_discrepancies=tuple(_discrepancy(d, since) for d, since in confirmed),
            recovered_fills=status.recovered_fills + run.recovered_fills,
            recovered_transfers=status.recovered_transfers + run.recovered_transfers,
            adjustments=status.adjustments + adjustments,
            staking=dict(read.staking),
            checked_seq=self.seq,
        )
        if read.ledger_head_ns is not None:
            self.cursor_ns = read.ledger_head_ns
            _save_cursor(self.settings.state_file, self.cursor_ns)
        self.failures = 0
        for difference, _ in confirmed:
            self.log.warning(
                "discrepancy: {} books {} exchange {} (difference {})",
                difference.asset,
                difference.books,
                difference.exchange,
                difference.difference,
            )
        self._publish_status()
        self.schedule(self.settings.interval_seconds, _RunDue())

    def _adjust(self, difference: Difference, read: AccountRead) -> None:
        now = self.clock()
        head = read.ledger_head_ns or 0
        adjustment = BalanceAdjusted(
            adjustment_id=f"recon-{head}-{difference.asset}-{difference.difference}",
            asset=difference.asset,
            before=difference.books,
            after=difference.exchange,
            reason=(
                f"reconciliation: exchange balance {difference.exchange}, books "
                f"{difference.books}, difference {difference.difference} (seq {self.seq})"
            ),
            ts_event=now,
            ts_init=now,
        )
        self.log.warning(
            "adjusting {} from {} to {} (auto_update)",
            difference.asset,
            difference.books,
            difference.exchange,
        )
        self.send_reliable("journal.ingest", adjustment)
        self.confirmations.seen.pop(difference.asset, None)

    def _fail(self, reason: str) -> None:
        self.failures += 1
        self.status = _with(
            self.status,
            consecutive_failures=self.status.consecutive_failures + 1,
            last_error=reason[:500],
        )
        delay = min(
            self.settings.interval_seconds * (2 ** min(self.failures, 16)),
            self.settings.retry_max_seconds,
        )
        self.log.warning("reconciliation run failed ({}); next in {:.1f} s", reason, delay)
        self._publish_status()
        self.schedule(delay, _RunDue())

    def _publish_status(self) -> None:
        self.publish(
            "reconciliation.events",
            ReconciliationReport(
                correlation_id="published", status=self.status, halted=self.halted
            ),
        )

    # -- serving ---------------------------------------------------------------------------------
    @handles(GetReconciliationState, on="reconciliation.query")
    def on_get_state(
        self, request: GetReconciliationState, inbound: Inbound | None
    ) -> ReconciliationReport:
        """The status now."""
        return ReconciliationReport(
            correlation_id=request.correlation_id, status=self.status, halted=self.halted
        )


def _with(status: ReconciliationStatus, **changes: Any) -> ReconciliationStatus:
    fields = {name: getattr(status, name) for name in status.__dataclass_fields__}
    fields.update(changes)
    return ReconciliationStatus(**fields)


def _discrepancy(difference: Difference, since_ns: int) -> Discrepancy:
    return Discrepancy(
        asset=difference.asset,
        books=difference.books,
        exchange=difference.exchange,
        difference=difference.difference,
        value=difference.value,
        since_ns=since_ns,
    )


def _load_cursor(path: Path) -> int | None:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("reconciliation state {} unreadable ({}); reading from the start", path, exc)
        return None
    cursor = document.get("ledger_cursor_ns") if isinstance(document, dict) else None
    return cursor if isinstance(cursor, int) and not isinstance(cursor, bool) else None


def _save_cursor(path: Path, cursor_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"ledger_cursor_ns": cursor_ns}))
    os.replace(temporary, path)
