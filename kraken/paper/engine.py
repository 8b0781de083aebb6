"""The paper account: balances, holds, orders, matching, fees and ledgers.

No HTTP here: the request layer turns Kraken parameters into calls on ``PaperExchange`` and
renders what it returns. The clock is injected (integer nanoseconds). One re-entrant lock
guards all state because the HTTP server calls in from many threads; each mutation is handed
to the store and committed before the call returns, so an answer is never sent for a change
that a crash could lose.

Money rules (Kraken's, as observed):

* A fill of ``volume`` base at ``price`` costs ``cost = price × volume`` quote (rounded to
  the smaller of the pair's cost decimals and the quote asset's decimals).
* The fee is ``cost × rate / 100`` with ``rate`` the first tier of the pair's taker or maker
  schedule, charged in quote; with ``fcib`` it is ``volume × rate / 100`` charged in base.
* Buy: base ``+volume``, quote ``−cost``; sell: base ``−volume``, quote ``+cost``. Each leg
  is one ``trade`` ledger entry (refid = trade txid) with the fee on the leg that paid it and
  ``balance = previous + amount − fee``.
* Open orders hold funds (``hold_trade``): a buy holds ``remaining × limit × (1 + rate/100)``
  quote (no fee part with ``fcib``); a sell holds ``remaining`` base (plus the base fee with
  ``fcib``). ``available = balance − hold``; orders needing more are refused.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from loguru import logger

from kraken.names import KrakenNames, PairInfo, UnknownAssetName, UnknownPairName
from kraken.paper.amounts import (
    MAX_BALANCE,
    ZERO,
    AmountError,
    bounded_decimal,
    decimal_places,
    paper_decimal_context,
    quantize,
    round_down,
    round_up,
)
from kraken.paper.ids import kraken_id
from kraken.paper.market import BRIDGE_QUOTE, Market, Quote
from kraken.paper.records import (
    BUY,
    CANCELED,
    CLOSED,
    EXPIRED,
    LIMIT,
    LIVE_STATUSES,
    MARKET,
    OPEN,
    SELL,
    LedgerEntry,
    Order,
    Trade,
)
from kraken.paper.settings import PaperSettings
from kraken.paper.store import StateBatch, StateStore
from messages.units import NS_PER_DAY

# A taker order walks at most this many ticks past the touch (one tick per extra piece).
_MAX_TAKER_PIECES = 3
# A resting order crossed by the market fills this share (percent) of its remainder per pass.
_MAKER_SHARE_RANGE = (20, 70)
_FIRST_TRADE_ID = 40_000_000

REASON_USER = "User requested"
REASON_POST_ONLY = "Post only order"
REASON_IOC = "Immediate or cancel"


def _bounded(value: Decimal, field: str, *, allow_zero: bool = False) -> Decimal:
    """``bounded_decimal`` for a Decimal handed to the exchange; ValueError naming ``field``."""
    if not isinstance(value, Decimal):
        raise ValueError(f"{field}: must be a Decimal, got {type(value).__name__}")
    try:
        return bounded_decimal(value, allow_zero=allow_zero)
    except AmountError as error:
        raise ValueError(f"{field}: {error}") from None


class ExchangeError(Exception):
    """A Kraken business error; ``code`` is Kraken's error string, e.g.
    ``EOrder:Insufficient funds``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, kw_only=True)
class OrderRequest:
    """A validated AddOrder: volume in base, ``limit_price`` in quote (None for market)."""

    pair: PairInfo
    side: str
    ordertype: str
    volume: Decimal
    limit_price: Decimal | None = None
    post_only: bool = False
    fee_in_base: bool = False
    time_in_force: str = "gtc"
    expire_ns: int | None = None
    userref: int | None = None
    cl_ord_id: str | None = None
    validate: bool = False


@dataclass(frozen=True, kw_only=True)
class TradeBalance:
    """Kraken's TradeBalance for a spot account, valued in ``asset_id``.

    ``equivalent`` = Σ balance × rate(asset → valuation asset) over assets with a price;
    on a spot account trade balance, equity and free margin all equal it.
    """

    asset_id: str
    equivalent: Decimal
    decimals: int


class PaperExchange:
    """The simulated Kraken account and market."""

    def __init__(
        self,
        settings: PaperSettings,
        names: KrakenNames,
        *,
        clock: Callable[[], int],
        store: StateStore | None = None,
    ) -> None:
        self.settings = settings
        self.names = names
        self._clock = clock
        self._store = store
        self._lock = threading.RLock()
        self._seed = settings.seed
        self._pairs: dict[str, PairInfo] = {}
        start_prices: dict[str, Decimal | None] = {}
        for text, price in settings.pairs.items():
            try:
                pair = names.pair(text)
            except UnknownPairName as error:
                raise ValueError(f"pairs: {error}") from error
            self._pairs[pair.id] = pair
            start_prices[pair.id] = price
        self.market = Market(
            self._pairs,
            start_prices,
            seed=settings.seed,
            volatility_bps=settings.volatility_bps,
            spread_bps=settings.spread_bps,
        )
        self._fill_rng = random.Random(settings.seed * 1_000_003 + 11)
        self._balances: dict[str, Decimal] = {}
        self._orders: dict[str, Order] = {}
        self._open: dict[str, Order] = {}
        self._trades: list[Trade] = []
        self._trades_by_txid: dict[str, Trade] = {}
        self._ledgers: list[LedgerEntry] = []
        self._ledgers_by_id: dict[str, LedgerEntry] = {}
        self._counters: dict[str, int] = {"seq": 0}
        self._trade_ids: dict[str, int] = {}
        self._nonces: dict[str, int] = {}
        self._credentials: dict[str, str] | None = None
        self._decimals_cache: dict[str, int] = {}
        self._reset_dirty()
        with self._transaction():
            loaded = store.load() if store is not None else None
            if loaded is None or loaded.is_new:
                self._open_account()
            else:
                self._restore(loaded)

    # ================================================================== market

    def pairs(self) -> tuple[PairInfo, ...]:
        """The traded pairs, in settings order."""
        return tuple(self._pairs.values())

    def traded_pair(self, text: str) -> PairInfo:
        """A traded pair by any of its names; ``EQuery:Unknown asset pair`` otherwise."""
        try:
            pair = self.names.pair(text)
        except UnknownPairName as error:
            raise ExchangeError("EQuery:Unknown asset pair") from error
        if pair.id not in self._pairs:
            raise ExchangeError("EQuery:Unknown asset pair")
        return pair

    def quote(self, pair_id: str) -> Quote:
        """The current touch of a traded pair."""
        with self._lock:
            return self.market.quote(pair_id)

    def ticker(self, pair_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Quote and session statistics per pair id, for the Ticker endpoint."""
        with self._lock, paper_decimal_context():
            self.market.open_session(self._clock() // NS_PER_DAY)
            result: dict[str, dict[str, Any]] = {}
            for pair_id in pair_ids:
                stats = self.market.stats(pair_id)
                result[pair_id] = {
                    "quote": self.market.quote(pair_id),
                    "stats": replace(stats),
                }
            return result

    def step(self, steps: int = 1) -> None:
        """Advance the market ``steps`` random-walk steps; after each, resting orders that
        the touch crosses fill (partially) and due GTD orders expire."""
        if steps < 0:
            raise ValueError(f"steps: must be >= 0, got {steps}")
        with self._transaction():
            now = self._clock()
            self.market.open_session(now // NS_PER_DAY)
            for _ in range(steps):
                self.market.step()
                self._expire_due(now)
                self._match_resting(now)
            self._dirty_meta.update({"market", "fill_rng"})

    def set_price(self, pair_text: str, price: Decimal) -> Decimal:
        """Set a traded pair's mid (any pair name form), then run one matching pass.
        Returns the mid as set (on the tick)."""
        pair = self.traded_pair(pair_text)
        price = _bounded(price, "price")
        with self._transaction():
            now = self._clock()
            self.market.set_mid(pair.id, price)
            self._expire_due(now)
            self._match_resting(now)
            self._dirty_meta.update({"market", "fill_rng"})
            return self.market.mid(pair.id)

    # ================================================================== auth state

    def accept_nonce(self, key: str, nonce: int) -> bool:
        """Accept ``nonce`` for ``key`` only if strictly greater than the last accepted one."""
        with self._transaction():
            last = self._nonces.get(key)
            if last is not None and nonce <= last:
                return False
            self._nonces[key] = nonce
            self._dirty_meta.add("nonces")
            return True

    def stored_credentials(self) -> tuple[str, str] | None:
        """The API key and secret kept with the account, if any."""
        with self._lock:
            if not self._credentials:
                return None
            return self._credentials["key"], self._credentials["secret"]

    def save_credentials(self, key: str, secret: str) -> None:
        """Keep the API key and secret with the account (in the state file, if any)."""
        with self._transaction():
            self._credentials = {"key": key, "secret": secret}
            self._dirty_meta.add("credentials")

    # ================================================================== balances

    def balances(self) -> dict[str, Decimal]:
        """Balance per asset id (total, including held funds), every asset ever held."""
        with self._lock:
            return dict(self._balances)

    def holds(self) -> dict[str, Decimal]:
        """Funds reserved by open orders, per asset id."""
        with self._lock, paper_decimal_context():
            held: dict[str, Decimal] = {}
            for order in self._open.values():
                asset_id, amount = self._hold_of(order)
                held[asset_id] = held.get(asset_id, ZERO) + amount
            return held

    def balance_sheet(self) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """Balances and holds per asset id, read together (one consistent instant)."""
        with self._lock:
            return dict(self._balances), self.holds()

    def asset_decimals(self, asset_id: str) -> int:
        """Record-keeping decimals of an asset (Kraken's ``decimals``)."""
        cached = self._decimals_cache.get(asset_id)
        if cached is None:
            try:
                cached = self.names.asset_info(asset_id).decimals
            except UnknownAssetName:
                cached = 10
            self._decimals_cache[asset_id] = cached
        return cached

    def trade_balance(self, asset_text: str) -> TradeBalance:
        """The account's value in one asset (default ZUSD); ``EQuery:Unknown asset`` if the
        asset is unknown. Assets with no price path are left out."""
        try:
            asset_id = self.names.asset_id(asset_text)
        except UnknownAssetName as error:
            raise ExchangeError("EQuery:Unknown asset") from error
        with self._lock, paper_decimal_context():
            total = ZERO
            for held_id, amount in self._balances.items():
                if not amount:
                    continue
                rate = self._rate(held_id, asset_id)
                if rate is not None:
                    total += amount * rate
            return TradeBalance(
                asset_id=asset_id, equivalent=total, decimals=self.asset_decimals(asset_id)
            )

    # ================================================================== orders

    def add_order(self, request: OrderRequest) -> str | None:
        """Place an order (or only check it, with ``validate``). Returns the new txid, or None
        when validating. Raises ExchangeError with Kraken's code when refused.

        A market order, or a limit order the touch already crosses, fills now as taker (in
        one to three trades walking one tick each, never past the limit). A crossing
        post-only order is accepted and canceled (``Post only order``); an IOC limit that
        does not cross is canceled (``Immediate or cancel``); other limits rest and fill as
        maker at their limit price when the market crosses them.
        """
        pair = request.pair
        if pair.id not in self._pairs:
            raise ExchangeError("EQuery:Unknown asset pair")
        with self._transaction():
            now = self._clock()
            self._expire_due(now)
            quote = self.market.quote(pair.id)
            self._check_order_rules(request, quote)
            if request.cl_ord_id is not None and any(
                order.cl_ord_id == request.cl_ord_id for order in self._open.values()
            ):
                raise ExchangeError("EGeneral:Invalid arguments:cl_ord_id")
            self._check_funds(request, quote)
            if request.validate:
                return None
            order = self._new_order(request, now)
            if request.ordertype == MARKET:
                self._take(order, quote, now)
                self._finish(order, CLOSED, None, now)
            else:
                assert request.limit_price is not None
                crosses = (
                    quote.ask <= request.limit_price
                    if request.side == BUY
                    else quote.bid >= request.limit_price
                )
                if crosses and request.post_only:
                    self._finish(order, CANCELED, REASON_POST_ONLY, now)
                elif crosses:
                    self._take(order, quote, now)
                    self._finish(order, CLOSED, None, now)
                elif request.time_in_force == "ioc":
                    self._finish(order, CANCELED, REASON_IOC, now)
            return order.txid

    def cancel_order(self, *, txid: str | None = None, cl_ord_id: str | None = None) -> int:
        """Cancel by order txid, by userref (a txid made of digits cancels every open order
        with that userref) or by ``cl_ord_id``. Returns how many were canceled; an id that
        matches no open order raises ``EOrder:Unknown order``."""
        with self._transaction():
            now = self._clock()
            self._expire_due(now)
            if cl_ord_id is not None:
                matches = [o for o in self._open.values() if o.cl_ord_id == cl_ord_id]
            elif txid is not None and txid.lstrip("-").isdigit():
                userref = int(txid)
                matches = [o for o in self._open.values() if o.userref == userref]
            elif txid is not None:
                found = self._open.get(txid.strip())
                matches = [found] if found is not None else []
            else:
                raise ExchangeError("EGeneral:Invalid arguments:txid")
            if not matches:
                raise ExchangeError("EOrder:Unknown order")
            for order in matches:
                self._finish(order, CANCELED, REASON_USER, now)
            return len(matches)

    def cancel_all(self) -> int:
        """Cancel every open order; returns how many."""
        with self._transaction():
            now = self._clock()
            self._expire_due(now)
            orders = list(self._open.values())
            for order in orders:
                self._finish(order, CANCELED, REASON_USER, now)
            return len(orders)

    def open_orders(self) -> list[Order]:
        """Copies of the open orders, newest first."""
        with self._transaction():
            self._expire_due(self._clock())
            return [
                replace(o, trade_txids=list(o.trade_txids)) for o in reversed(self._open.values())
            ]

    def finished_orders(self) -> list[Order]:
        """Copies of closed, canceled and expired orders, most recently finished first."""
        with self._transaction():
            self._expire_due(self._clock())
            finished = [o for o in self._orders.values() if o.status not in LIVE_STATUSES]
            finished.sort(key=lambda o: (o.close_ns or 0, o.seq), reverse=True)
            return [replace(o, trade_txids=list(o.trade_txids)) for o in finished]

    def order(self, txid: str) -> Order | None:
        """A copy of one order by txid, or None."""
        with self._transaction():
            self._expire_due(self._clock())
            found = self._orders.get(txid)
            return None if found is None else replace(found, trade_txids=list(found.trade_txids))

    def trades(self) -> list[Trade]:
        """Every trade, newest first."""
        with self._lock:
            return self._trades[::-1]

    def trade(self, txid: str) -> Trade | None:
        """One trade by txid, or None."""
        with self._lock:
            return self._trades_by_txid.get(txid)

    def ledger_entries(self) -> list[LedgerEntry]:
        """Every ledger entry, newest first."""
        with self._lock:
            return self._ledgers[::-1]

    def ledger_entry(self, ledger_id: str) -> LedgerEntry | None:
        """One ledger entry by id, or None."""
        with self._lock:
            return self._ledgers_by_id.get(ledger_id)

    # ================================================================== external events

    def deposit(self, asset_text: str, amount: Decimal) -> LedgerEntry:
        """Credit ``amount`` of an asset (any name form) with a ``deposit`` ledger entry."""
        asset_id = self._asset_for_admin(asset_text)
        amount = self._admin_amount(asset_id, amount, "amount")
        with self._transaction():
            if self._balances.get(asset_id, ZERO) + amount > MAX_BALANCE:
                raise ValueError(f"amount: the {asset_id} balance would exceed {MAX_BALANCE:f}")
            return self._move(
                asset_id, amount, ZERO, refid=self._next_id("F"), kind="deposit", now=self._clock()
            )

    def withdraw(self, asset_text: str, amount: Decimal) -> LedgerEntry:
        """Debit ``amount`` (at most the available balance) with a ``withdrawal`` entry."""
        asset_id = self._asset_for_admin(asset_text)
        amount = self._admin_amount(asset_id, amount, "amount")
        with self._transaction():
            if amount > self._available(asset_id):
                raise ValueError(
                    f"amount: {amount} exceeds the available {self._available(asset_id)} {asset_id}"
                )
            return self._move(
                asset_id,
                -amount,
                ZERO,
                refid=self._next_id("F"),
                kind="withdrawal",
                now=self._clock(),
            )

    def set_balance(self, asset_text: str, balance: Decimal) -> Decimal:
        """Set a balance silently (no ledger entry): a drift the books must detect."""
        asset_id = self._asset_for_admin(asset_text)
        balance = self._admin_amount(asset_id, balance, "balance", allow_zero=True)
        with self._transaction():
            previous = self._balances.get(asset_id, ZERO)
            self._balances[asset_id] = balance
            self._dirty_balances.add(asset_id)
            logger.info(
                "paper balance of {} set from {} to {} (no ledger)", asset_id, previous, balance
            )
            return balance

    def external_trade(self, pair_text: str, side: str, volume: Decimal) -> Order:
        """A trade made outside the service (on the website, by another bot): a market order
        of its own, filled at the touch as taker in one trade. Checked for funds."""
        pair = self.traded_pair(pair_text)
        if side not in (BUY, SELL):
            raise ValueError(f"side: must be 'buy' or 'sell', got {side!r}")
        volume = _bounded(volume, "volume")
        if decimal_places(volume) > pair.lot_decimals:
            raise ValueError(f"volume: at most {pair.lot_decimals} decimals for {pair.altname}")
        request = OrderRequest(pair=pair, side=side, ordertype=MARKET, volume=volume)
        with self._transaction():
            now = self._clock()
            quote = self.market.quote(pair.id)
            self._check_funds(request, quote)
            order = self._new_order(request, now)
            order.external = True
            self._take(order, quote, now, pieces=1)
            self._finish(order, CLOSED, None, now)
            return replace(order, trade_txids=list(order.trade_txids))

    def state_summary(self) -> dict[str, Any]:
        """Balances, holds, open order and trade counts and prices, for humans and tests."""
        with self._lock, paper_decimal_context():
            holds = self.holds()
            return {
                "balances": {a: str(v) for a, v in self._balances.items()},
                "holds": {a: str(v) for a, v in holds.items()},
                "open_orders": len(self._open),
                "orders": len(self._orders),
                "trades": len(self._trades),
                "ledgers": len(self._ledgers),
                "prices": {
                    self._pairs[p].symbol: {
                        "pair": p,
                        "bid": str(q.bid),
                        "ask": str(q.ask),
                        "mid": str(q.mid),
                    }
                    for p in self._pairs
                    for q in [self.market.quote(p)]
                },
            }

    def close(self) -> None:
        """Close the store (idempotent); the exchange must not be used afterwards."""
        with self._lock:
            if self._store is not None:
                self._store.close()

    # ================================================================== internals: rules

    def _fee_rate(self, pair: PairInfo, maker: bool) -> Decimal:
        """First-tier fee in percent: maker schedule for maker fills, taker otherwise."""
        table = pair.fees_maker if maker and pair.fees_maker else pair.fees
        return table[0][1] if table else ZERO

    def _cost_places(self, pair: PairInfo) -> int:
        # Cost and fee must be representable both in the trade (cost_decimals) and in the
        # quote balance (asset decimals) so trades and ledgers agree to the digit.
        return min(pair.cost_decimals, self.asset_decimals(pair.quote_id))

    def _check_order_rules(self, request: OrderRequest, quote: Quote) -> None:
        pair = request.pair
        if decimal_places(request.volume) > pair.lot_decimals:
            raise ExchangeError("EGeneral:Invalid arguments:volume")
        if request.volume < pair.ordermin:
            raise ExchangeError("EOrder:Order minimum not met")
        price = request.limit_price
        if price is not None:
            if decimal_places(price) > pair.pair_decimals:
                raise ExchangeError(
                    f"EOrder:Invalid price:{pair.wsname} price can only be specified up to "
                    f"{pair.pair_decimals} decimals."
                )
            if pair.tick_size > 0 and price % pair.tick_size != 0:
                raise ExchangeError("EOrder:Tick size check failed")
        reference = price if price is not None else quote.mid
        if reference * request.volume < pair.costmin:
            raise ExchangeError("EOrder:Cost minimum not met")

    def _required_funds(self, request: OrderRequest, quote: Quote) -> tuple[str, Decimal]:
        """What placing the order needs available: the asset id and amount (rounded up)."""
        pair = request.pair
        taker = self._fee_rate(pair, maker=False)
        rate = self._fee_rate(pair, maker=True) if request.post_only else taker
        if request.side == BUY:
            if request.ordertype == MARKET:
                worst = quote.ask + pair.tick_size * (_MAX_TAKER_PIECES - 1)
                amount = request.volume * worst
                rate = taker
            else:
                assert request.limit_price is not None
                amount = request.volume * request.limit_price
            if not request.fee_in_base:
                amount *= 1 + rate / 100
            return pair.quote_id, round_up(amount, self.asset_decimals(pair.quote_id))
        amount = request.volume
        if request.fee_in_base:
            amount *= 1 + rate / 100
        return pair.base_id, round_up(amount, self.asset_decimals(pair.base_id))

    def _check_funds(self, request: OrderRequest, quote: Quote) -> None:
        asset_id, needed = self._required_funds(request, quote)
        if needed > self._available(asset_id):
            raise ExchangeError("EOrder:Insufficient funds")

    def _hold_of(self, order: Order) -> tuple[str, Decimal]:
        pair = self._pairs[order.pair_id]
        rate = self._fee_rate(pair, maker=order.post_only)
        if order.side == BUY:
            assert order.limit_price is not None
            amount = order.remaining * order.limit_price
            if not order.fee_in_base:
                amount *= 1 + rate / 100
            return pair.quote_id, round_up(amount, self.asset_decimals(pair.quote_id))
        amount = order.remaining
        if order.fee_in_base:
            amount *= 1 + rate / 100
        return pair.base_id, round_up(amount, self.asset_decimals(pair.base_id))

    def _available(self, asset_id: str) -> Decimal:
        held = ZERO
        for order in self._open.values():
            held_id, amount = self._hold_of(order)
            if held_id == asset_id:
                held += amount
        return self._balances.get(asset_id, ZERO) - held

    def _rate(self, from_id: str, to_id: str) -> Decimal | None:
        """Units of ``to_id`` per unit of ``from_id`` from mids: direct, inverse, or through
        the USD bridge; None when no traded pair connects them."""
        if from_id == to_id:
            return Decimal(1)
        for pair_id, pair in self._pairs.items():
            if pair.base_id == from_id and pair.quote_id == to_id:
                return self.market.mid(pair_id)
            if pair.base_id == to_id and pair.quote_id == from_id:
                return 1 / self.market.mid(pair_id)
        try:
            bridge_id = self.names.asset_id(BRIDGE_QUOTE)
        except UnknownAssetName:
            return None
        if bridge_id in (from_id, to_id):
            return None
        first = self._rate(from_id, bridge_id)
        second = self._rate(bridge_id, to_id)
        if first is None or second is None:
            return None
        return first * second

    # ================================================================== internals: fills

    def _new_order(self, request: OrderRequest, now: int) -> Order:
        order = Order(
            txid=self._next_id("O"),
            seq=self._next_seq(),
            pair_id=request.pair.id,
            side=request.side,
            ordertype=request.ordertype,
            volume=request.volume,
            limit_price=request.limit_price,
            post_only=request.post_only,
            fee_in_base=request.fee_in_base,
            time_in_force=request.time_in_force,
            expire_ns=request.expire_ns,
            userref=request.userref,
            cl_ord_id=request.cl_ord_id,
            status=OPEN,
            open_ns=now,
        )
        self._orders[order.txid] = order
        self._open[order.txid] = order
        self._dirty_orders.add(order.txid)
        return order

    def _finish(self, order: Order, status: str, reason: str | None, now: int) -> None:
        order.status = status
        order.reason = reason
        order.close_ns = now
        self._open.pop(order.txid, None)
        self._dirty_orders.add(order.txid)

    def _take(self, order: Order, quote: Quote, now: int, pieces: int | None = None) -> None:
        """Fill the whole remainder as taker from the touch, one tick further per piece,
        never past the order's limit."""
        pair = self._pairs[order.pair_id]
        count = pieces if pieces is not None else self._fill_rng.randint(1, _MAX_TAKER_PIECES)
        remaining = order.remaining
        if remaining < pair.ordermin * count:
            count = 1
        sizes: list[Decimal] = []
        left = remaining
        for _ in range(count - 1):
            share = Decimal(self._fill_rng.randint(20, 60)) / 100
            size = round_down(left * share, pair.lot_decimals)
            if size <= 0 or left - size < pair.ordermin:
                break
            sizes.append(size)
            left -= size
        sizes.append(left)
        touch = quote.ask if order.side == BUY else quote.bid
        for level, size in enumerate(sizes):
            if order.side == BUY:
                price = touch + pair.tick_size * level
                if order.limit_price is not None:
                    price = min(price, order.limit_price)
            else:
                price = max(touch - pair.tick_size * level, pair.tick_size)
                if order.limit_price is not None:
                    price = max(price, order.limit_price)
            self._fill(order, price, size, maker=False, now=now)
        self._dirty_meta.add("fill_rng")

    def _match_resting(self, now: int) -> None:
        """Fill a seeded share of each crossed resting limit order at its limit, as maker."""
        for order in list(self._open.values()):
            if order.ordertype != LIMIT or order.limit_price is None:
                continue
            quote = self.market.quote(order.pair_id)
            crossed = (
                quote.ask <= order.limit_price
                if order.side == BUY
                else quote.bid >= order.limit_price
            )
            if not crossed:
                continue
            pair = self._pairs[order.pair_id]
            share = Decimal(self._fill_rng.randint(*_MAKER_SHARE_RANGE)) / 100
            size = round_down(order.remaining * share, pair.lot_decimals)
            if size <= 0 or order.remaining - size < pair.ordermin:
                size = order.remaining
            self._fill(order, order.limit_price, size, maker=True, now=now)
            if order.remaining <= 0:
                self._finish(order, CLOSED, None, now)

    def _fill(
        self, order: Order, price: Decimal, volume: Decimal, *, maker: bool, now: int
    ) -> Trade:
        pair = self._pairs[order.pair_id]
        places = self._cost_places(pair)
        cost = quantize(price * volume, places)
        rate = self._fee_rate(pair, maker)
        fee_in_quote = quantize(cost * rate / 100, places)
        base_fee = quote_fee = ZERO
        if order.fee_in_base:
            base_fee = quantize(volume * rate / 100, self.asset_decimals(pair.base_id))
        else:
            quote_fee = fee_in_quote
        sign = 1 if order.side == BUY else -1
        trade_txid = self._next_id("T")
        base_entry = self._move(
            pair.base_id, sign * volume, base_fee, refid=trade_txid, kind="trade", now=now
        )
        quote_entry = self._move(
            pair.quote_id, -sign * cost, quote_fee, refid=trade_txid, kind="trade", now=now
        )
        trade_id = self._trade_ids.get(pair.id, _FIRST_TRADE_ID + self._seed % 1000) + 1
        self._trade_ids[pair.id] = trade_id
        trade = Trade(
            txid=trade_txid,
            seq=self._next_seq(),
            order_txid=order.txid,
            pair_id=pair.id,
            time_ns=now,
            side=order.side,
            ordertype=order.ordertype,
            price=price,
            cost=cost,
            fee=fee_in_quote,
            volume=volume,
            maker=maker,
            trade_id=trade_id,
            ledger_ids=(base_entry.id, quote_entry.id),
        )
        self._trades.append(trade)
        self._trades_by_txid[trade.txid] = trade
        self._new_trades.append(trade)
        order.vol_exec += volume
        order.cost += cost
        order.fee += fee_in_quote
        order.trade_txids.append(trade.txid)
        self._dirty_orders.add(order.txid)
        self.market.record_trade(pair.id, price, volume)
        self._dirty_meta.update({"market", "counters"})
        return trade

    def _move(
        self, asset_id: str, amount: Decimal, fee: Decimal, *, refid: str, kind: str, now: int
    ) -> LedgerEntry:
        """Apply ``balance += amount − fee`` and record the ledger entry."""
        balance = self._balances.get(asset_id, ZERO) + amount - fee
        self._balances[asset_id] = balance
        self._dirty_balances.add(asset_id)
        entry = LedgerEntry(
            id=self._next_id("L"),
            seq=self._next_seq(),
            refid=refid,
            time_ns=now,
            type=kind,
            subtype="",
            asset_id=asset_id,
            amount=amount,
            fee=fee,
            balance=balance,
        )
        self._ledgers.append(entry)
        self._ledgers_by_id[entry.id] = entry
        self._new_ledgers.append(entry)
        return entry

    def _expire_due(self, now: int) -> None:
        for order in list(self._open.values()):
            if order.expire_ns is not None and order.expire_ns <= now:
                self._finish(order, EXPIRED, None, order.expire_ns)

    def _asset_for_admin(self, asset_text: str) -> str:
        try:
            return self.names.asset_id(asset_text)
        except UnknownAssetName as error:
            raise ValueError(f"asset: {error}") from error

    def _admin_amount(
        self, asset_id: str, amount: Decimal, field: str, *, allow_zero: bool = False
    ) -> Decimal:
        """A bounded amount (``bounded_decimal``) with at most the asset's decimals, quantized
        to them; ValueError naming ``field`` otherwise."""
        places = self.asset_decimals(asset_id)
        value = _bounded(amount, field, allow_zero=allow_zero)
        if decimal_places(value) > places:
            raise ValueError(f"{field}: at most {places} decimals for {asset_id}")
        return quantize(value, places)

    # ================================================================== internals: ids, state

    def _next_seq(self) -> int:
        self._counters["seq"] += 1
        self._dirty_meta.add("counters")
        return self._counters["seq"]

    def _next_id(self, prefix: str) -> str:
        counter = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = counter
        self._dirty_meta.add("counters")
        return kraken_id(prefix, counter, self._seed)

    def _open_account(self) -> None:
        now = self._clock()
        for asset_text, amount in self.settings.starting_balances.items():
            try:
                asset_id = self.names.asset_id(asset_text)
            except UnknownAssetName as error:
                raise ValueError(f"starting_balances: {error}") from error
            if amount > 0:
                amount = quantize(amount, self.asset_decimals(asset_id))
                self._move(
                    asset_id, amount, ZERO, refid=self._next_id("F"), kind="deposit", now=now
                )
        self.market.open_session(now // NS_PER_DAY)
        self._dirty_meta.update({"market", "fill_rng", "counters", "nonces"})

    def _restore(self, loaded: Any) -> None:
        meta = loaded.meta
        counters = meta.get("counters", {})
        self._counters = dict(counters.get("ids", {"seq": 0}))
        self._trade_ids = dict(counters.get("trade_ids", {}))
        self._nonces = {key: int(value) for key, value in meta.get("nonces", {}).items()}
        self._credentials = meta.get("credentials")
        if "market" in meta:
            self.market.restore(meta["market"])
        rng = meta.get("fill_rng")
        if rng:
            self._fill_rng.setstate((rng[0], tuple(rng[1]), rng[2]))
        self._balances = {asset: Decimal(amount) for asset, amount in loaded.balances.items()}
        for doc in loaded.orders:
            order = Order.from_json(doc)
            self._orders[order.txid] = order
            if order.status in LIVE_STATUSES:
                self._open[order.txid] = order
        for doc in loaded.trades:
            trade = Trade.from_json(doc)
            self._trades.append(trade)
            self._trades_by_txid[trade.txid] = trade
        for doc in loaded.ledgers:
            entry = LedgerEntry.from_json(doc)
            self._ledgers.append(entry)
            self._ledgers_by_id[entry.id] = entry
        logger.info(
            "paper account restored: {} orders ({} open), {} trades, {} ledger entries",
            len(self._orders),
            len(self._open),
            len(self._trades),
            len(self._ledgers),
        )

    def _reset_dirty(self) -> None:
        self._dirty_meta: set[str] = set()
        self._dirty_balances: set[str] = set()
        self._dirty_orders: set[str] = set()
        self._new_trades: list[Trade] = []
        self._new_ledgers: list[LedgerEntry] = []

    def _meta_value(self, key: str) -> Any:
        if key == "counters":
            return {"ids": self._counters, "trade_ids": self._trade_ids}
        if key == "nonces":
            return {k: str(v) for k, v in self._nonces.items()}
        if key == "market":
            return self.market.snapshot()
        if key == "fill_rng":
            version, internal, gauss = self._fill_rng.getstate()
            return [version, list(internal), gauss]
        if key == "credentials":
            return self._credentials
        raise KeyError(key)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Hold the lock and the decimal context; commit what changed before leaving."""
        with self._lock, paper_decimal_context():
            try:
                yield
            finally:
                self._flush()

    def _flush(self) -> None:
        if self._store is None:
            self._reset_dirty()
            return
        batch = StateBatch(
            meta={key: self._meta_value(key) for key in self._dirty_meta},
            balances={a: str(self._balances[a]) for a in self._dirty_balances},
            orders={t: self._orders[t].to_json() for t in self._dirty_orders},
            trades=[t.to_json() for t in self._new_trades],
            ledgers=[e.to_json() for e in self._new_ledgers],
        )
        self._reset_dirty()
        self._store.write(batch)
