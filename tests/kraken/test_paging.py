"""History paging (50 rows a page, newest first) neither skips nor repeats a row when new
rows arrive between page requests: they push older rows down by as many rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tests.kraken.conftest import external_trades

PAGE = 50


def _drain(rows: Iterator[Any], between_pages: dict[int, Callable[[], None]]) -> list[Any]:
    """Consume ``rows``; after the row numbered k (a page boundary), run ``between_pages[k]``
    so it lands between two page requests of the lazy iterator."""
    seen: list[Any] = []
    for row in rows:
        seen.append(row)
        action = between_pages.get(len(seen))
        if action is not None:
            action()
    return seen


def test_trades_added_between_pages_are_neither_skipped_nor_repeated(client, server):
    # Exactly two pages at the start: the rows pushed down make a third page necessary.
    external_trades(server, 2 * PAGE)
    before = {trade.txid for trade in client.trades_history()}
    assert len(before) == 2 * PAGE

    scanned = _drain(client.iter_trades_history(), {PAGE: lambda: external_trades(server, 7)})

    txids = [trade.txid for trade in scanned]
    assert len(txids) == len(set(txids)), "a trade was yielded twice"
    assert set(txids) == before, "a trade was skipped"
    times = [trade.time_ns for trade in scanned]
    assert times == sorted(times, reverse=True)


def test_trades_added_before_several_pages_are_neither_skipped_nor_repeated(client, server):
    external_trades(server, 120)
    before = {trade.txid for trade in client.trades_history()}
    assert len(before) == 120

    scanned = _drain(
        client.iter_trades_history(),
        {PAGE: lambda: external_trades(server, 7), 2 * PAGE: lambda: external_trades(server, 3)},
    )

    txids = [trade.txid for trade in scanned]
    assert len(txids) == len(set(txids)), "a trade was yielded twice"
    assert set(txids) == before, "a trade was skipped"
    times = [trade.time_ns for trade in scanned]
    assert times == sorted(times, reverse=True)
    assert len(client.trades_history()) == 130


def test_ledger_entries_added_between_pages_are_neither_skipped_nor_repeated(client, server):
    external_trades(server, 49)  # two entries each, plus the opening deposit: 99 entries
    before = {entry.ledger_id for entry in client.ledgers()}
    assert len(before) == 99

    scanned = _drain(client.iter_ledgers(), {PAGE: lambda: external_trades(server, 5)})

    ids = [entry.ledger_id for entry in scanned]
    assert len(ids) == len(set(ids)) and set(ids) == before


def test_closed_orders_added_between_pages_are_neither_skipped_nor_repeated(client, server):
    external_trades(server, 2 * PAGE)
    before = {order.txid for order in client.closed_orders()}
    assert len(before) == 2 * PAGE

    scanned = _drain(client.iter_closed_orders(), {PAGE: lambda: external_trades(server, 11)})

    txids = [order.txid for order in scanned]
    assert len(txids) == len(set(txids)) and set(txids) == before


def test_exactly_one_page_and_an_empty_history(client, server):
    assert client.trades_history() == ()
    external_trades(server, PAGE)
    assert len(client.trades_history()) == PAGE


def test_trade_id_bounds_exclude_start_and_include_end(client, server):
    external_trades(server, 12)
    newest_first = client.trades_history()
    start, end = newest_first[9], newest_first[2]

    between = client.trades_history(start=start.txid, end=end.txid)

    assert [t.txid for t in between] == [t.txid for t in newest_first[2:9]]
