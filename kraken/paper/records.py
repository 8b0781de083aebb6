"""The account's records: orders, trades and ledger entries, and their JSON form for storage.

Amounts are Decimal, times integer nanoseconds. ``seq`` is the global insertion order the
history endpoints sort by (newest first = highest seq first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kraken.paper.amounts import ZERO

BUY = "buy"
SELL = "sell"
MARKET = "market"
LIMIT = "limit"

PENDING = "pending"
OPEN = "open"
CLOSED = "closed"
CANCELED = "canceled"
EXPIRED = "expired"
LIVE_STATUSES = frozenset({PENDING, OPEN})
FINISHED_STATUSES = frozenset({CLOSED, CANCELED, EXPIRED})


@dataclass(kw_only=True)
class Order:
    """One order of the account, open or finished.

    ``volume``/``vol_exec`` are base amounts; ``cost`` is Σ price × volume of the fills and
    ``fee`` Σ fee of the fills, both in quote (Kraken states order fees in quote even when
    ``fee_in_base`` took them from the base leg). ``limit_price`` is None for market orders.
    """

    txid: str
    seq: int
    pair_id: str
    side: str
    ordertype: str
    volume: Decimal
    limit_price: Decimal | None
    post_only: bool
    fee_in_base: bool
    time_in_force: str
    expire_ns: int | None
    userref: int | None
    cl_ord_id: str | None
    status: str
    open_ns: int
    close_ns: int | None = None
    reason: str | None = None
    vol_exec: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    trade_txids: list[str] = field(default_factory=list)
    external: bool = False

    @property
    def remaining(self) -> Decimal:
        """Base volume still to fill: ``volume − vol_exec``."""
        return self.volume - self.vol_exec

    def to_json(self) -> dict[str, Any]:
        """Storage form: Decimals as strings."""
        return {
            "txid": self.txid,
            "seq": self.seq,
            "pair_id": self.pair_id,
            "side": self.side,
            "ordertype": self.ordertype,
            "volume": str(self.volume),
            "limit_price": None if self.limit_price is None else str(self.limit_price),
            "post_only": self.post_only,
            "fee_in_base": self.fee_in_base,
            "time_in_force": self.time_in_force,
            "expire_ns": self.expire_ns,
            "userref": self.userref,
            "cl_ord_id": self.cl_ord_id,
            "status": self.status,
            "open_ns": self.open_ns,
            "close_ns": self.close_ns,
            "reason": self.reason,
            "vol_exec": str(self.vol_exec),
            "cost": str(self.cost),
            "fee": str(self.fee),
            "trade_txids": list(self.trade_txids),
            "external": self.external,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Order:
        """Inverse of ``to_json``."""
        limit = data["limit_price"]
        return cls(
            txid=data["txid"],
            seq=int(data["seq"]),
            pair_id=data["pair_id"],
            side=data["side"],
            ordertype=data["ordertype"],
            volume=Decimal(data["volume"]),
            limit_price=None if limit is None else Decimal(limit),
            post_only=bool(data["post_only"]),
            fee_in_base=bool(data["fee_in_base"]),
            time_in_force=data["time_in_force"],
            expire_ns=data["expire_ns"],
            userref=data["userref"],
            cl_ord_id=data["cl_ord_id"],
            status=data["status"],
            open_ns=int(data["open_ns"]),
            close_ns=data["close_ns"],
            reason=data["reason"],
            vol_exec=Decimal(data["vol_exec"]),
            cost=Decimal(data["cost"]),
            fee=Decimal(data["fee"]),
            trade_txids=list(data["trade_txids"]),
            external=bool(data.get("external", False)),
        )


@dataclass(frozen=True, kw_only=True)
class Trade:
    """One fill. ``cost = price × volume`` and ``fee`` are in quote (Kraken's TradesHistory
    convention, even when the fee was debited in base); ``maker`` says which fee schedule
    applied; ``ledger_ids`` are the base-leg and quote-leg ledger entries."""

    txid: str
    seq: int
    order_txid: str
    pair_id: str
    time_ns: int
    side: str
    ordertype: str
    price: Decimal
    cost: Decimal
    fee: Decimal
    volume: Decimal
    maker: bool
    trade_id: int
    ledger_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Storage form: Decimals as strings."""
        return {
            "txid": self.txid,
            "seq": self.seq,
            "order_txid": self.order_txid,
            "pair_id": self.pair_id,
            "time_ns": self.time_ns,
            "side": self.side,
            "ordertype": self.ordertype,
            "price": str(self.price),
            "cost": str(self.cost),
            "fee": str(self.fee),
            "volume": str(self.volume),
            "maker": self.maker,
            "trade_id": self.trade_id,
            "ledger_ids": list(self.ledger_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trade:
        """Inverse of ``to_json``."""
        return cls(
            txid=data["txid"],
            seq=int(data["seq"]),
            order_txid=data["order_txid"],
            pair_id=data["pair_id"],
            time_ns=int(data["time_ns"]),
            side=data["side"],
            ordertype=data["ordertype"],
            price=Decimal(data["price"]),
            cost=Decimal(data["cost"]),
            fee=Decimal(data["fee"]),
            volume=Decimal(data["volume"]),
            maker=bool(data["maker"]),
            trade_id=int(data["trade_id"]),
            ledger_ids=tuple(data["ledger_ids"]),
        )


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One balance movement, as Kraken's Ledgers reports it.

    ``amount`` is signed and gross; ``fee`` is charged on this leg; ``balance`` is the asset's
    balance after the entry: ``balance = previous + amount − fee``.
    """

    id: str
    seq: int
    refid: str
    time_ns: int
    type: str
    subtype: str
    asset_id: str
    amount: Decimal
    fee: Decimal
    balance: Decimal

    def to_json(self) -> dict[str, Any]:
        """Storage form: Decimals as strings."""
        return {
            "id": self.id,
            "seq": self.seq,
            "refid": self.refid,
            "time_ns": self.time_ns,
            "type": self.type,
            "subtype": self.subtype,
            "asset_id": self.asset_id,
            "amount": str(self.amount),
            "fee": str(self.fee),
            "balance": str(self.balance),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LedgerEntry:
        """Inverse of ``to_json``."""
        return cls(
            id=data["id"],
            seq=int(data["seq"]),
            refid=data["refid"],
            time_ns=int(data["time_ns"]),
            type=data["type"],
            subtype=data["subtype"],
            asset_id=data["asset_id"],
            amount=Decimal(data["amount"]),
            fee=Decimal(data["fee"]),
            balance=Decimal(data["balance"]),
        )
