"""The key, the secret, the signatures and private request bodies never reach a log line,
an error message or a repr, even in tracebacks rendered with their variables."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from loguru import logger

from kraken import errors
from kraken.credentials import Credentials
from tests.kraken import proxy as scripted
from tests.kraken.conftest import clear_faults, fast_retry, fault

# A distinctive volume: if a private request body leaked, this string would show it.
VOLUME = Decimal("0.01234567")


def _forbidden(server, proxy) -> list[str]:
    secret_bytes = base64.b64decode(server.secret)
    return [
        server.key,
        server.secret,
        secret_bytes.hex(),
        repr(secret_bytes),
        "API-Sign",
        str(VOLUME),
        *proxy.signatures,
        *proxy.bodies,
    ]


def _assert_absent(texts: list[str], forbidden: list[str]) -> None:
    assert forbidden, "nothing to look for"
    for text in texts:
        for value in forbidden:
            assert value not in text, f"leaked {value[:12]}… in {text[:300]!r}"


def test_credentials_stay_out_of_logs_errors_and_reprs(
    make_client, server, proxy, sleeps, captured_logs
):
    client = make_client(url=proxy.url, sleep=sleeps, retry=fast_retry(max_attempts=3))
    raised: list[BaseException] = []

    # Ordinary calls, and an order whose answer is lost and then recovered.
    client.balance()
    client.add_order("XBT/USD", "buy", "limit", VOLUME, Decimal("50000"))
    proxy.script("/0/private/AddOrder", scripted.DROP_ANSWER)
    client.add_order("XBT/USD", "buy", "limit", VOLUME, Decimal("50100"))

    # Retries through a fault.
    fault(server, "unavailable")
    sleeps.hooks.append(lambda: clear_faults(server))
    client.open_orders()

    # Failures, each logged with its traceback and variables.
    proxy.script("/0/private/AddOrder", scripted.DROP_ANSWER)
    proxy.script("/0/private/OpenOrders", *[scripted.status(502)] * 3)
    with pytest.raises(errors.OrderOutcomeUnknown) as unknown:
        client.add_order("XBT/USD", "sell", "limit", VOLUME, Decimal("90000"))
    raised.append(unknown.value)
    fault(server, "drop")
    with pytest.raises(errors.ConnectionFailed) as dropped:
        client.trades_history()
    raised.append(dropped.value)
    clear_faults(server)
    wrong_secret = base64.b64encode(b"another secret, also sixty-four bytes long!!").decode()
    stranger = make_client(url=proxy.url, credentials=Credentials(server.key, wrong_secret))
    with pytest.raises(errors.InvalidSignature) as bad_signature:
        stranger.balance()
    raised.append(bad_signature.value)
    for error in raised:
        # From the first client-layer frame on: the test's own call line shows its arguments.
        assert error.__traceback__ is not None
        error.with_traceback(error.__traceback__.tb_next)
        logger.opt(exception=error).error("call failed: {}", error)

    texts = [
        *captured_logs,
        *(str(error) for error in raised),
        *(repr(error) for error in raised),
        repr(client),
        repr(client._api()),
        repr(Credentials(server.key, server.secret)),
    ]
    assert any("Traceback" in line for line in captured_logs), "tracebacks were not rendered"
    assert any("kraken AddOrder ok" in line for line in captured_logs)
    _assert_absent(texts, _forbidden(server, proxy))
