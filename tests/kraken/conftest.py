"""Fixtures: a paper exchange (no background ticking), clients for it with short backoff,
its admin interface, a scripted proxy, and a loguru capture."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from loguru import logger

from kraken.client import KrakenClient, RetryPolicy
from kraken.credentials import Credentials
from kraken.names import KrakenNames
from kraken.paper import PaperExchangeServer, PaperSettings
from tests.kraken.proxy import ScriptedProxy

CALL_TIMEOUT = 5.0


def fast_retry(**overrides: Any) -> RetryPolicy:
    """Backoff in milliseconds, seeded jitter: retries without slowing tests down."""
    values: dict[str, Any] = {
        "max_attempts": 5,
        "base_delay_seconds": 0.001,
        "max_delay_seconds": 0.01,
        "deadline_seconds": 10.0,
        "order_lookup_delay_seconds": 0.0,
        "rng": random.Random(3),
    }
    values.update(overrides)
    return RetryPolicy(**values)


NO_RETRY = fast_retry(max_attempts=1)


def paper_settings(**overrides: Any) -> PaperSettings:
    values: dict[str, Any] = {"tick_interval_seconds": 0, "seed": 5}
    values.update(overrides)
    return PaperSettings(**values)


@pytest.fixture
def server() -> Iterator[PaperExchangeServer]:
    exchange = PaperExchangeServer(paper_settings())
    exchange.start()
    try:
        yield exchange
    finally:
        exchange.stop()


def credentials_of(server: PaperExchangeServer) -> Credentials:
    return Credentials(server.key, server.secret)


class Sleeps:
    """An injectable ``sleep`` that records each pause and runs ``on_sleep`` hooks (e.g. to
    clear a fault), so a retry happens exactly when the test says, with no real waiting."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.hooks: list[Callable[[], None]] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        if self.hooks:
            self.hooks.pop(0)()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(server: PaperExchangeServer) -> Iterator[Callable[..., KrakenClient]]:
    """Build clients for the paper exchange (closed in teardown); keyword overrides go to
    ``KrakenClient`` (``retry``, ``sleep``, ``url``, ``credentials``, ``names``...)."""
    made: list[KrakenClient] = []

    def build(**overrides: Any) -> KrakenClient:
        values: dict[str, Any] = {
            "url": server.url,
            "credentials": credentials_of(server),
            "timeout_seconds": CALL_TIMEOUT,
            "names": KrakenNames.bundled(),
            "retry": fast_retry(),
        }
        values.update(overrides)
        url = values.pop("url")
        credentials = values.pop("credentials")
        client = KrakenClient(url, credentials, **values)
        made.append(client)
        return client

    try:
        yield build
    finally:
        for client in made:
            client.close()


@pytest.fixture
def client(make_client: Callable[..., KrakenClient]) -> KrakenClient:
    return make_client()


def admin(server: PaperExchangeServer, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST to the paper exchange's admin interface; fails the test unless it succeeded."""
    response = requests.post(server.url + path, json=body or {}, timeout=CALL_TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def fault(server: PaperExchangeServer, kind: str, **extra: Any) -> None:
    admin(server, "/admin/fault", {"kind": kind, "rate": 1, "seconds": 60, **extra})


def clear_faults(server: PaperExchangeServer) -> None:
    admin(server, "/admin/fault/clear")


def external_trades(server: PaperExchangeServer, count: int, volume: str = "0.0001") -> None:
    for _ in range(count):
        admin(server, "/admin/trade", {"pair": "XBT/USD", "side": "buy", "volume": volume})


@pytest.fixture
def proxy(server: PaperExchangeServer) -> Iterator[ScriptedProxy]:
    scripted = ScriptedProxy(server.url)
    scripted.start()
    try:
        yield scripted
    finally:
        scripted.stop()


@pytest.fixture
def captured_logs() -> Iterator[list[str]]:
    """Every loguru message (TRACE and up, with tracebacks and their variables) while the
    test runs."""
    lines: list[str] = []
    sink_id = logger.add(
        lambda message: lines.append(str(message)),
        level="TRACE",
        backtrace=True,
        diagnose=True,
        format="{time} {level} {name}:{function} {message} {extra}\n{exception}",
    )
    try:
        yield lines
    finally:
        logger.remove(sink_id)


def balance_of(client: KrakenClient, raw_asset: str) -> Decimal:
    for line in client.balance():
        if line.raw_asset == raw_asset:
            return line.balance
    return Decimal(0)
