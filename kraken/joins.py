"""Joins over Kraken's records: what one trade's ledger legs and its order say about it.

Pure functions of what was read (no I/O): the execution actor's feed and the reconciliation
actor both use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from loguru import logger

from kraken.models import LedgerEntry, Order, Trade

_ZERO = Decimal(0)


def fee_from_ledger(trade: Trade, legs: Iterable[LedgerEntry]) -> tuple[Decimal, str]:
    """The fee of `trade` and the currency it was charged in, from its ledger legs.

    A spot fill has two `trade` legs (base and quote) sharing refid = trade txid; the leg
    that paid the fee carries it (positive, `balance` moved by amount − fee). No leg with a
    fee means a zero fee in quote. With fees on both legs (not seen on Kraken), the quote
    leg's is taken, as TradesHistory would state it.
    """
    paying = [leg for leg in legs if leg.fee != _ZERO]
    if not paying:
        return _ZERO, trade.quote
    if len(paying) > 1:
        logger.warning(
            "trade {} has fees on {} ledger legs; reporting the quote leg's",
            trade.txid,
            len(paying),
        )
        for leg in paying:
            if leg.asset == trade.quote:
                return leg.fee, leg.asset
    return paying[0].fee, paying[0].asset


def completes_order(trade: Trade, order: Order | None) -> bool:
    """True when `trade` is the one that filled `order` completely.

    The order is filled when its executed volume reaches its volume; the completing trade is
    the last of the order's trades (Kraken lists them in execution order). Unknown order or
    unknown trade list: False (reported as a partial fill, which the books treat the same).
    """
    if order is None or order.volume_executed < order.volume or not order.trade_txids:
        return False
    return order.trade_txids[-1] == trade.txid
