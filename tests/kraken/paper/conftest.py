"""Fixtures: a started paper exchange (no background ticking) and krakenex clients for it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import krakenex
import pytest
import requests

from kraken.paper import PaperExchangeServer, PaperSettings

CALL_TIMEOUT = 5.0


class CountingKraken(krakenex.API):
    """krakenex with a strictly increasing nonce: its own millisecond nonce collides when
    calls are fast."""

    _nonces = itertools.count(time.time_ns())

    def _nonce(self) -> int:
        return next(self._nonces)


def make_client(server: PaperExchangeServer) -> CountingKraken:
    client = CountingKraken(server.key, server.secret)
    client.uri = server.url
    return client


def private(client: krakenex.API, method: str, data: dict[str, Any] | None = None) -> Any:
    """A private call that must succeed; returns ``result``."""
    answer = client.query_private(method, data or {}, timeout=CALL_TIMEOUT)
    assert answer["error"] == [], answer
    return answer["result"]


def admin(server: PaperExchangeServer, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST (or GET for /admin/state) to the admin interface; returns (status, document)."""
    url = server.url + path
    if body is None and path == "/admin/state":
        response = requests.get(url, timeout=CALL_TIMEOUT)
    else:
        response = requests.post(url, json=body or {}, timeout=CALL_TIMEOUT)
    return response.status_code, response.json()


def settings(**overrides: Any) -> PaperSettings:
    values: dict[str, Any] = {"tick_interval_seconds": 0, "seed": 11}
    values.update(overrides)
    return PaperSettings(**values)


@pytest.fixture
def server() -> Iterator[PaperExchangeServer]:
    exchange_server = PaperExchangeServer(settings())
    exchange_server.start()
    try:
        yield exchange_server
    finally:
        exchange_server.stop()


@pytest.fixture
def kraken(server: PaperExchangeServer) -> Iterator[CountingKraken]:
    client = make_client(server)
    try:
        yield client
    finally:
        client.close()


def balances_from_ledgers(client: krakenex.API) -> dict[str, Decimal]:
    """Σ (amount − fee) per asset over every ledger page."""
    totals: dict[str, Decimal] = {}
    offset = 0
    while True:
        result = private(client, "Ledgers", {"ofs": offset})
        for entry in result["ledger"].values():
            amount = Decimal(entry["amount"]) - Decimal(entry["fee"])
            totals[entry["asset"]] = totals.get(entry["asset"], Decimal(0)) + amount
        offset += len(result["ledger"])
        if offset >= result["count"] or not result["ledger"]:
            return totals
