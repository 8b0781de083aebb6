"""Kraken's JSON shapes for the paper exchange's records (KRAKEN_REST.md §4).

Amounts become fixed-point strings with Kraken's decimals (volumes: lot decimals, limit
prices: pair decimals, cost/fee/average price: cost decimals, balances and ledgers: asset
decimals); times become JSON numbers of Unix seconds with four decimals.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kraken.names import PairInfo
from kraken.paper.amounts import ZERO, fixed, paper_decimal_context
from kraken.paper.ids import SPOT_POSTXID
from kraken.paper.market import Quote, SessionStats
from kraken.paper.records import FINISHED_STATUSES, MARKET, LedgerEntry, Order, Trade

# Kraken prints times with four decimals: one unit is 100 microseconds.
TIME_UNIT_NANOS = 100_000


def kraken_time(time_ns: int) -> float:
    """Unix seconds with four decimals, floored: the number Kraken puts in ``time``."""
    return (time_ns // TIME_UNIT_NANOS) / 10_000


def time_units(time_ns: int) -> int:
    """A time in Kraken's 100-microsecond units, the grain ``start``/``end`` compare on."""
    return time_ns // TIME_UNIT_NANOS


def describe_order(
    pair: PairInfo, side: str, ordertype: str, volume: Decimal, limit_price: Decimal | None
) -> str:
    """Kraken's ``descr.order`` text: ``buy 0.50000000 XBTUSD @ limit 60000.0``."""
    text = f"{side} {fixed(volume, pair.lot_decimals)} {pair.altname} @ {ordertype}"
    if limit_price is not None and ordertype != MARKET:
        text += f" {fixed(limit_price, pair.pair_decimals)}"
    return text


def ticker_view(pair: PairInfo, quote: Quote, stats: SessionStats) -> dict[str, Any]:
    """A Ticker entry: ``a``/``b`` [price, whole lot volume, lot volume], ``c`` [price, lot
    volume], ``v``/``p``/``l``/``h`` [today, last 24h], ``t`` integers, ``o`` one string."""
    with paper_decimal_context():
        places = pair.cost_decimals
        lots = pair.lot_decimals
        vwap = fixed(stats.vwap, places)
        return {
            "a": [fixed(quote.ask, places), "1", "1.000"],
            "b": [fixed(quote.bid, places), "1", "1.000"],
            "c": [fixed(stats.last_price, places), fixed(stats.last_volume, lots)],
            "v": [fixed(stats.volume, lots), fixed(stats.volume, lots)],
            "p": [vwap, vwap],
            "t": [stats.trades, stats.trades],
            "l": [fixed(stats.low, places), fixed(stats.low, places)],
            "h": [fixed(stats.high, places), fixed(stats.high, places)],
            "o": fixed(stats.open, places),
        }


def order_view(order: Order, pair: PairInfo, *, with_trades: bool) -> dict[str, Any]:
    """An order as OpenOrders / ClosedOrders / QueryOrders show it (§4.9).

    ``price`` is the average fill price ``cost / vol_exec`` (0 until filled); the limit is
    ``descr.price``. ``cost`` and ``fee`` are in quote.
    """
    with paper_decimal_context():
        places = pair.cost_decimals
        average = order.cost / order.vol_exec if order.vol_exec else ZERO
        flags = []
        if order.post_only:
            flags.append("post")
        flags.append("fcib" if order.fee_in_base else "fciq")
        partial = ZERO < order.vol_exec < order.volume
        view: dict[str, Any] = {
            "refid": None,
            "userref": order.userref,
        }
        if order.cl_ord_id is not None:
            view["cl_ord_id"] = order.cl_ord_id
        view.update(
            {
                "status": order.status,
                "opentm": kraken_time(order.open_ns),
                "starttm": 0,
                "expiretm": 0 if order.expire_ns is None else kraken_time(order.expire_ns),
                "descr": {
                    "pair": pair.altname,
                    "aclass": "forex",
                    "type": order.side,
                    "ordertype": order.ordertype,
                    "price": "0"
                    if order.limit_price is None
                    else fixed(order.limit_price, pair.pair_decimals),
                    "price2": "0",
                    "leverage": "none",
                    "order": describe_order(
                        pair, order.side, order.ordertype, order.volume, order.limit_price
                    ),
                    "close": "",
                },
                "vol": fixed(order.volume, pair.lot_decimals),
                "vol_exec": fixed(order.vol_exec, pair.lot_decimals),
                "cost": fixed(order.cost, places),
                "fee": fixed(order.fee, places),
                "price": fixed(average, places),
                "stopprice": fixed(ZERO, places),
                "limitprice": fixed(ZERO, places),
                "misc": "partial" if partial and order.status in FINISHED_STATUSES else "",
                "oflags": ",".join(flags),
                "time_in_force": order.time_in_force,
            }
        )
        if order.status in FINISHED_STATUSES:
            view["closetm"] = kraken_time(order.close_ns or order.open_ns)
            view["reason"] = order.reason
        if with_trades and order.trade_txids:
            view["trades"] = list(order.trade_txids)
        return view


def trade_view(trade: Trade, pair: PairInfo, *, with_ledgers: bool) -> dict[str, Any]:
    """A trade as TradesHistory / QueryTrades show it (§4.13): ``pair`` is the pair id,
    ``fee`` is in quote even when the base leg paid it."""
    places = pair.cost_decimals
    view: dict[str, Any] = {
        "ordertxid": trade.order_txid,
        "postxid": SPOT_POSTXID,
        "pair": trade.pair_id,
        "aclass": "forex",
        "time": kraken_time(trade.time_ns),
        "type": trade.side,
        "ordertype": trade.ordertype,
        "price": fixed(trade.price, places),
        "cost": fixed(trade.cost, places),
        "fee": fixed(trade.fee, places),
        "vol": fixed(trade.volume, pair.lot_decimals),
        "margin": fixed(ZERO, places),
        "leverage": "0",
        "misc": "",
        "trade_id": trade.trade_id,
        "maker": trade.maker,
    }
    if with_ledgers:
        view["ledgers"] = list(trade.ledger_ids)
    return view


def ledger_view(entry: LedgerEntry, decimals: int) -> dict[str, Any]:
    """A ledger entry (§4.17): ``amount`` signed and gross, ``fee`` on this leg, ``balance``
    after the entry, all with the asset's decimals."""
    return {
        "refid": entry.refid,
        "time": kraken_time(entry.time_ns),
        "type": entry.type,
        "subtype": entry.subtype,
        "aclass": "currency",
        "asset": entry.asset_id,
        "amount": fixed(entry.amount, decimals),
        "fee": fixed(entry.fee, decimals),
        "balance": fixed(entry.balance, decimals),
    }
