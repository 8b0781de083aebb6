"""Reconciliation: where the books and the exchange disagree. Pure: no clock, no I/O.

Both sides are taken as of one point of the exchange's ledger, its newest entry read (`H2`),
so a verdict needs no quiet account. The exchange's side (`exchange_as_of`): a run reads the
ledger, then the balances, then the ledger again; an asset with an entry in that second read
has the `balance` of its last such entry, any other asset the balance read (it did not move
between the two ledger reads, so that was its balance at `H2`). The books' side
(`in_flight`, `books_as_of`): the books without the moves the exchange does not include yet,
the fills and transfers whose exchange time (`ts_event`) is after `H2`, left out only while
within the grace of now (a fill that never reaches the exchange shows as a difference then).
Both are functions of what was read and of the journal: a fold replayed after a restart
gives the same answer.

An asset differs when |exchange − books| exceeds its threshold in its own units and, when it
can be valued, its value exceeds the threshold in the valuation currency. A difference is a
discrepancy only once it has been seen, unchanged, in `confirm_runs` runs in a row: a real
drift stays put, a race moves on.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from messages import Transfer

ZERO = Decimal(0)


class BalanceLine(Protocol):
    """What the core reads of one line of the exchange's balances (kraken.models'
    `AssetBalanceEx` is one): Kraken's asset name, its normalized name, whether it is a
    staking or earn variant, and the balance."""

    @property
    def raw_asset(self) -> str: ...

    @property
    def asset(self) -> str: ...

    @property
    def is_variant(self) -> bool: ...

    @property
    def balance(self) -> Decimal: ...


class LedgerLine(BalanceLine, Protocol):
    """What the core reads of one ledger entry (kraken.models' `LedgerEntry` is one): the
    line's names and balance after it, plus its id, type, time, gross amount and fee."""

    @property
    def ledger_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def time_ns(self) -> int: ...

    @property
    def amount(self) -> Decimal: ...

    @property
    def fee(self) -> Decimal: ...


TRADE_LEDGER_TYPE = "trade"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How far apart books and exchange may be: `per_asset` (else `default`) in the asset's
    units, and `value` in the valuation currency (applied when the difference can be
    valued). Both must be exceeded."""

    default: Decimal
    per_asset: Mapping[str, Decimal]
    value: Decimal

    def of(self, asset: str) -> Decimal:
        """The threshold in `asset`'s units."""
        return self.per_asset.get(asset, self.default)


@dataclass(frozen=True, slots=True)
class Difference:
    """`asset` is `books` in the books and `exchange` on the exchange; difference =
    exchange − books; `value` its worth in the valuation currency (None: unpriced)."""

    asset: str
    books: Decimal
    exchange: Decimal
    difference: Decimal
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class ExchangeSide:
    """The exchange's balances as of one ledger point: `trading` per normalized asset (what
    the books are compared with), `staking` per variant by Kraken's name (reported apart)."""

    trading: dict[str, Decimal]
    staking: dict[str, Decimal]


def exchange_as_of(balances: Iterable[BalanceLine], later: Iterable[LedgerLine]) -> ExchangeSide:
    """The balances as of the newest ledger entry of a read (see the module docstring).

    `balances` were read after the first ledger read; `later` are the entries the second
    ledger read found that the first did not, oldest first (on equal times, in the order
    they were booked). Each of Kraken's assets (`raw_asset`) takes the `balance` of its last
    entry in `later`, else its line in `balances`; trading assets are then summed by
    normalized name, variants (`XBT.M`, `DOT.S`) kept apart.
    """
    held: dict[str, tuple[str, bool, Decimal]] = {}
    for line in balances:
        held[line.raw_asset] = (line.asset, line.is_variant, line.balance)
    for entry in later:
        held[entry.raw_asset] = (entry.asset, entry.is_variant, entry.balance)
    trading: dict[str, Decimal] = {}
    staking: dict[str, Decimal] = {}
    for raw_asset, (asset, is_variant, balance) in held.items():
        if is_variant:
            staking[raw_asset] = balance
        else:
            trading[asset] = trading.get(asset, ZERO) + balance
    return ExchangeSide(trading=trading, staking=staking)


@dataclass(frozen=True, slots=True)
class Move:
    """What one journaled fill or transfer moved in the books, per asset (signed), its
    exchange time (`ts_event`: a fill's trade time, a transfer's ledger time) and its id
    (`key`: the trade txid or ledger id)."""

    seq: int
    ts_event: int
    moved: Mapping[str, Decimal]
    key: str = ""


def in_flight(
    moves: Iterable[Move],
    point_ns: int | None,
    now_ns: int,
    grace_ns: int,
    read: frozenset[str] = frozenset(),
) -> list[Move]:
    """The moves the exchange's side as of ledger point `point_ns` does not include yet.

    A move is on the exchange iff its `ts_event` <= `point_ns` (None: the ledger is empty,
    nothing is on it) or its `key` is among the trade txids and ledger ids `read` up to that
    point (a trade whose ledger legs carry an earlier time than the trade). One not on the
    exchange is left out of the books while its `ts_event` is within `grace_ns` of
    `now_ns`; past that it counts, so a fill the exchange never shows is a difference.
    Adjustments are never moves here: they set the books to the exchange.
    """
    return [
        move
        for move in moves
        if (point_ns is None or move.ts_event > point_ns)
        and move.key not in read
        and abs(now_ns - move.ts_event) <= grace_ns
    ]


def books_as_of(
    books: Mapping[str, Decimal], beyond: Iterable[Mapping[str, Decimal]]
) -> dict[str, Decimal]:
    """The books without the events the exchange's side does not include yet.

    `beyond` holds, per such event, what it moved per asset (signed); each is taken back.
    """
    adjusted = dict(books)
    for moved in beyond:
        for asset, amount in moved.items():
            adjusted[asset] = adjusted.get(asset, ZERO) - amount
    return adjusted


def compare(
    books: Mapping[str, Decimal],
    exchange: Mapping[str, Decimal],
    thresholds: Thresholds,
    value_of: Callable[[str, Decimal], Decimal | None],
    context: decimal.Context,
) -> list[Difference]:
    """Every asset whose balances differ beyond the thresholds, sorted by asset.

    An asset missing on one side holds zero there. `value_of(asset, amount)` gives the
    amount's worth in the valuation currency, or None when it cannot be priced.
    """
    found = []
    for asset in sorted(set(books) | set(exchange)):
        held = books.get(asset, ZERO)
        told = exchange.get(asset, ZERO)
        difference = context.subtract(told, held)
        if abs(difference) <= thresholds.of(asset):
            continue
        value = value_of(asset, difference)
        if value is not None and abs(value) <= thresholds.value:
            continue
        found.append(Difference(asset, held, told, difference, value))
    return found


@dataclass
class Confirmations:
    """Differences seen run after run; one becomes a discrepancy when it is seen with the
    same difference in `runs` consecutive runs. `since_ns` remembers when each was first
    seen."""

    runs: int
    seen: dict[str, tuple[Decimal, int, int]] = field(default_factory=dict)

    def observe(self, found: Iterable[Difference], now_ns: int) -> list[tuple[Difference, int]]:
        """Record one run's differences; the confirmed ones with their first-seen time."""
        current: dict[str, tuple[Decimal, int, int]] = {}
        confirmed = []
        for difference in found:
            previous = self.seen.get(difference.asset)
            if previous is not None and previous[0] == difference.difference:
                count, since = previous[1] + 1, previous[2]
            else:
                count, since = 1, now_ns
            current[difference.asset] = (difference.difference, count, since)
            if count >= self.runs:
                confirmed.append((difference, since))
        self.seen = current
        return confirmed


def transfer_of(
    entry: LedgerLine, ts_init: int, unit_price: Decimal | None = None
) -> Transfer | None:
    """The transfer a ledger entry is, or None.

    Every entry on a trading asset that is not a trade leg moves the balance without a
    trade: a deposit, a withdrawal, a move to or from staking, a correction by the exchange.
    Each is a flow of amount − fee (Kraken's `amount` is gross; the leg's fee leaves too).
    Staking and earn variants (`XBT.M`, `DOT.S`) are not trading balances: None.
    """
    if entry.type == TRADE_LEDGER_TYPE or entry.is_variant:
        return None
    moved = entry.amount - entry.fee
    if moved == ZERO:
        return None
    return Transfer(
        transfer_id=entry.ledger_id,
        asset=entry.asset,
        amount=moved,
        unit_price=unit_price if moved > ZERO else None,
        ts_event=entry.time_ns,
        ts_init=ts_init,
    )
