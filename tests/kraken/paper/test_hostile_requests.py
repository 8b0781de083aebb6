"""Absurd and hostile requests to the paper exchange, through the real
``runner.py paper-exchange`` process and raw HTTP: each gets an answer naming the field or
header at fault, and the account, ``Ledgers`` and the state file are left as they were."""

from __future__ import annotations

import hashlib
import json
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kraken.paper.api import sign
from tests.kraken.paper.conftest import CALL_TIMEOUT, CountingKraken, private
from tests.support.group import ROOT, RUNNER, wait_for, write_config

START_SECONDS = 30.0
STOP_SECONDS = 20.0
SOCKET_SECONDS = 15.0


class PaperProcess:
    """``runner.py paper-exchange`` on a free port with ``paper`` settings; always stopped."""

    def __init__(self, directory: Path, **paper: Any) -> None:
        self.state_file = directory / "paper.sqlite"
        settings = {"tick_interval_seconds": 0, "state_file": str(self.state_file), **paper}
        path = write_config(
            directory,
            processes={"books": ["ingest"]},
            endpoints={},
            exchange_mode="paper",
            extra={"exchange": {"paper": settings}},
        )
        self._stderr = (directory / "paper-exchange.stderr").open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(RUNNER), "--config", str(path), "paper-exchange", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=ROOT,
        )
        try:
            line = self._read_line()
        except BaseException:
            self.stop()
            raise
        self.url, self.key, self.secret = line["url"], line["key"], line["secret"]
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname or "", parts.port or 0

    def _read_line(self) -> dict:
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=START_SECONDS):
                raise AssertionError("the paper exchange printed nothing in time")
        line = json.loads(self.process.stdout.readline())
        assert "error" not in line, line
        return line

    def client(self) -> CountingKraken:
        client = CountingKraken(self.key, self.secret)
        client.uri = self.url
        return client

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process.stdout.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def exchange(tmp_path_factory) -> Iterator[PaperProcess]:
    process = PaperProcess(tmp_path_factory.mktemp("paper"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def kraken(exchange) -> Iterator[CountingKraken]:
    client = exchange.client()
    try:
        yield client
    finally:
        client.close()


def fingerprint(exchange: PaperProcess) -> str:
    """A digest of the state file and its write-ahead log: equal digests, no write."""
    digest = hashlib.sha256()
    for path in (exchange.state_file, Path(f"{exchange.state_file}-wal")):
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def account(kraken: CountingKraken) -> dict[str, Any]:
    """Balance, every ledger entry and the open orders, read through Kraken's API."""
    return {
        "balance": private(kraken, "Balance"),
        "ledgers": private(kraken, "Ledgers"),
        "open": private(kraken, "OpenOrders"),
    }


def send(
    exchange: PaperProcess,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request with exactly ``headers`` (a Host and the Content-Length are added unless
    given); returns the status and the JSON answer."""
    data = body.encode() if isinstance(body, str) else body
    given = {"Host": f"127.0.0.1:{exchange.port}", **(headers or {})}
    if data is not None:
        given.setdefault("Content-Length", str(len(data)))
    connection = HTTPConnection(exchange.host, exchange.port, timeout=SOCKET_SECONDS)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in given.items():
            if value is not None:
                connection.putheader(name, value)
        connection.endheaders(data)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def post_json(exchange: PaperProcess, path: str, body: bytes | str) -> tuple[int, dict[str, Any]]:
    return send(exchange, "POST", path, body, {"Content-Type": "application/json"})


def exchange_raw(exchange: PaperProcess, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; everything the server sends until it closes."""
    with socket.create_connection((exchange.host, exchange.port), timeout=SOCKET_SECONDS) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP responses in ``raw``: (status, headers with lower-case names, body)."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        length = int(fields.get("content-length", "0"))
        found.append((status, fields, rest[:length]))
        raw = rest[length:]
    return found


def assert_untouched(exchange, kraken, before_account, before_file) -> None:
    assert fingerprint(exchange) == before_file, "the state file changed"
    assert account(kraken) == before_account


# ---------------------------------------------------------------------------- admin numbers

DEEP_ARRAY = "[" * 20_000 + "]" * 20_000
DEEP_OBJECT = '{"a":' * 5_000 + "1" + "}" * 5_000


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/deposit", '{"asset": "USD", "amount": "1E+999999"}', "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": 1E+999999}', "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": "' + "1" * 5000 + '"}', "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": ' + "1" * 5000 + "}", "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": "1e16"}', "amount"),
        ("/admin/deposit", '{"asset": "XBT", "amount": "0.00000000001"}', "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": "0.00001"}', "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": "-5"}', "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": 0}', "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": "NaN"}', "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": "-Infinity"}', "amount"),
        ("/admin/deposit", '{"asset": "USD", "amount": true}', "amount"),
        ("/admin/deposit", '{"asset": "' + "X" * 5000 + '", "amount": "1"}', "asset"),
        ("/admin/withdraw", '{"asset": "USD", "amount": "1E+999999"}', "amount"),
        ("/admin/withdraw", '{"asset": "USD", "amount": "100000.0001"}', "amount"),
        ("/admin/balance", '{"asset": "USD", "balance": "1E+999999"}', "balance"),
        ("/admin/balance", '{"asset": "USD", "balance": "-1"}', "balance"),
        ("/admin/price", '{"pair": "XBT/USD", "price": "1E+999999"}', "price"),
        ("/admin/price", '{"pair": "XBT/USD", "price": "1E-999999"}', "price"),
        ("/admin/price", '{"pair": "XBT/USD", "price": -60000}', "price"),
        ("/admin/trade", '{"pair": "XBT/USD", "side": "buy", "volume": "1E+999999"}', "volume"),
        ("/admin/trade", '{"pair": "XBT/USD", "side": "buy", "volume": "-1"}', "volume"),
        ("/admin/fault", '{"kind": "unavailable", "rate": 1, "seconds": 1e400}', "seconds"),
        ("/admin/fault", '{"kind": "unavailable", "rate": 1, "seconds": -1}', "seconds"),
        ("/admin/fault", '{"kind": "unavailable", "rate": 1e400, "seconds": 1}', "rate"),
        ("/admin/fault", '{"kind": "unavailable", "rate": -0.5, "seconds": 1}', "rate"),
        (
            "/admin/fault",
            '{"kind": "latency", "rate": 1, "seconds": 1, "latency_ms": 1e400}',
            "latency_ms",
        ),
        ("/admin/tick", '{"steps": 1' + "0" * 400 + "}", "steps"),
        (
            "/admin/fault",
            '{"kind": "unavailable", "rate": 1, "seconds": 1e9' + "9" * 20 + "}",
            "body",
        ),
        ("/admin/deposit", '{"asset": "USD", "amount": NaN}', "body"),
        ("/admin/fault", DEEP_ARRAY, "body"),
        ("/admin/fault", DEEP_OBJECT, "body"),
        ("/admin/deposit", '{"asset": "USD", "amount": "1"', "body"),
        ("/admin/deposit", '["USD", "1"]', "body"),
        ("/admin/deposit", b'{"asset": "\xff"}', "body"),
    ],
)
def test_an_absurd_admin_value_is_a_400_naming_the_field_and_changes_nothing(
    exchange, kraken, path, body, field
):
    before_account, before_file = account(kraken), fingerprint(exchange)
    status, answer = post_json(exchange, path, body)
    assert status == 400, answer
    assert answer["error"].startswith(f"{field}:"), answer
    assert len(answer["error"]) < 300  # the refused value is not echoed in full
    assert_untouched(exchange, kraken, before_account, before_file)


def test_a_huge_deposit_then_withdrawal_cannot_wipe_the_account(exchange, kraken):
    before_account, before_file = account(kraken), fingerprint(exchange)
    for path in ("/admin/deposit", "/admin/withdraw"):
        status, answer = post_json(exchange, path, '{"asset": "USD", "amount": "1E+999999"}')
        assert status == 400 and answer["error"].startswith("amount:"), answer
    assert_untouched(exchange, kraken, before_account, before_file)
    assert before_account["balance"] == {"ZUSD": "100000.0000"}


def test_refused_admin_requests_are_counted(exchange):
    post_json(exchange, "/admin/deposit", '{"asset": "USD", "amount": "1E+999999"}')
    status, state = send(exchange, "GET", "/admin/state")
    assert status == 200 and state["refused"]["admin_input"] >= 1


# ---------------------------------------------------------------------------- admin headers


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_an_admin_post_that_is_not_json_is_a_415(exchange, kraken, content_type):
    before_account, before_file = account(kraken), fingerprint(exchange)
    body = '{"asset": "USD", "amount": "1"}'
    status, answer = send(exchange, "POST", "/admin/deposit", body, {"Content-Type": content_type})
    assert status == 415 and answer["error"].startswith("Content-Type:"), answer
    assert_untouched(exchange, kraken, before_account, before_file)


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil", "[::1]x"],
)
def test_an_admin_request_naming_another_host_is_a_403(exchange, kraken, host):
    before_account, before_file = account(kraken), fingerprint(exchange)
    body = '{"asset": "USD", "amount": "1"}'
    headers = {"Host": host, "Content-Type": "application/json"}
    status, answer = send(exchange, "POST", "/admin/deposit", body, headers)
    assert status == 403 and answer["error"].startswith("Host:"), answer
    status, answer = send(exchange, "GET", "/admin/state", headers={"Host": host})
    assert status == 403 and answer["error"].startswith("Host:"), answer
    assert_untouched(exchange, kraken, before_account, before_file)


def test_an_admin_request_without_a_host_or_with_two_is_a_403(exchange):
    for hosts in ([], ["127.0.0.1", "evil.example"]):
        request = b"GET /admin/state HTTP/1.1\r\n"
        request += b"".join(f"Host: {host}\r\n".encode() for host in hosts)
        request += b"Connection: close\r\n\r\n"
        [(status, _, body)] = responses(exchange_raw(exchange, request))
        assert status == 403 and json.loads(body)["error"].startswith("Host:")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:1234", "LOCALHOST", "[::1]:80", "[::1]"])
def test_loopback_hosts_and_a_json_charset_are_served(exchange, host):
    headers = {"Host": host, "Content-Type": "application/json; charset=utf-8"}
    assert send(exchange, "POST", "/admin/fault/clear", "{}", headers) == (200, {"ok": True})


# ---------------------------------------------------------------------------- framing

SMUGGLED = (
    b"POST /admin/deposit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 30\r\n\r\n{"asset":"USD","amount":"123"}'
)


@pytest.mark.parametrize(
    "framing",
    [
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
    ],
)
def test_a_transfer_encoded_body_is_refused_and_never_read_as_a_request(exchange, kraken, framing):
    before_account, before_file = account(kraken), fingerprint(exchange)
    request = (
        b"POST /admin/fault/clear HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n" + framing + b"\r\n" + SMUGGLED
    )
    answers = responses(exchange_raw(exchange, request))
    assert len(answers) == 1, answers  # the body was not served as a second request
    [(status, headers, body)] = answers
    assert status == 411 and headers["connection"] == "close"
    assert json.loads(body)["error"].startswith("Transfer-Encoding:")
    assert_untouched(exchange, kraken, before_account, before_file)


@pytest.mark.parametrize(
    ("path", "framing", "status"),
    [
        ("/admin/fault/clear", b"", 411),
        ("/0/private/Balance", b"", 411),
        ("/admin/fault/clear", b"Content-Length: 10000000\r\n", 413),
        ("/0/private/Balance", b"Content-Length: 10000000\r\n", 413),
        ("/admin/fault/clear", b"Content-Length: abc\r\n", 400),
        ("/admin/fault/clear", b"Content-Length: -1\r\n", 400),
        ("/admin/fault/clear", b"Content-Length: 2\r\nContent-Length: 30\r\n", 400),
    ],
)
def test_a_post_without_a_usable_content_length_is_refused(exchange, kraken, path, framing, status):
    before_account, before_file = account(kraken), fingerprint(exchange)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        + b"Content-Type: application/json\r\n"
        + framing
        + b"\r\n{}"
        + SMUGGLED
    )
    answers = responses(exchange_raw(exchange, request))
    assert len(answers) == 1, answers
    [(answered, headers, body)] = answers
    assert answered == status and headers["connection"] == "close"
    assert json.loads(body)["error"].startswith("Content-Length:")
    assert_untouched(exchange, kraken, before_account, before_file)


# ---------------------------------------------------------------------------- Kraken's API


LIMIT = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "50000.0"}


@pytest.mark.parametrize(
    ("method", "data", "param"),
    [
        ("AddOrder", {**LIMIT, "volume": "1E+999999"}, "volume"),
        ("AddOrder", {**LIMIT, "volume": "1" * 5000}, "volume"),
        ("AddOrder", {**LIMIT, "volume": "1E-999999"}, "volume"),
        ("AddOrder", {**LIMIT, "volume": "0.01", "price": "1E+999999"}, "price"),
        ("AddOrder", {**LIMIT, "volume": "0.01", "price": "5" + "0" * 5000}, "price"),
        ("AddOrder", {**LIMIT, "volume": "0.01", "price": "1." + "0" * 50 + "1"}, "price"),
        ("AddOrder", {**LIMIT, "volume": "0.01", "expiretm": "+1E+999999"}, "expiretm"),
        ("AddOrder", {**LIMIT, "volume": "0.01", "expiretm": "1E+999999"}, "expiretm"),
        ("TradesHistory", {"start": "1E+999999"}, "start"),
        ("Ledgers", {"end": "1e400"}, "end"),
        ("ClosedOrders", {"start": "1E-999999"}, "start"),
    ],
)
def test_an_absurd_kraken_parameter_is_invalid_arguments(kraken, method, data, param):
    before = account(kraken)
    answer = kraken.query_private(method, data, timeout=CALL_TIMEOUT)
    assert answer == {"error": [f"EGeneral:Invalid arguments:{param}"]}
    assert account(kraken) == before


def test_a_nonce_of_absurd_length_is_refused_and_does_not_lock_the_key_out(exchange, kraken):
    before = account(kraken)

    class HugeNonce(CountingKraken):
        def _nonce(self) -> int:
            return 10**100

    huge = HugeNonce(exchange.key, exchange.secret)
    huge.uri = exchange.url
    try:
        assert huge.query_private("Balance", timeout=CALL_TIMEOUT) == {
            "error": ["EAPI:Invalid nonce"]
        }
    finally:
        huge.close()
    assert account(kraken) == before


def test_a_deeply_nested_json_body_to_kraken_is_a_bad_request(exchange, kraken):
    nonce = str(time.time_ns() * 1000)
    body = ('{"nonce": "' + nonce + '", "asset": ' + "[" * 2000 + "]" * 2000 + "}").encode()
    headers = {
        "API-Key": exchange.key,
        "API-Sign": sign("/0/private/TradeBalance", nonce, body, exchange.secret),
        "Content-Type": "application/json",
    }
    status, answer = send(exchange, "POST", "/0/private/TradeBalance", body, headers)
    assert (status, answer) == (200, {"error": ["EAPI:Bad request"]})
    assert private(kraken, "Balance") == {"ZUSD": "100000.0000"}


# ---------------------------------------------------------------------------- connections


def test_connections_over_the_bound_get_a_503_until_one_closes(tmp_path):
    exchange = PaperProcess(tmp_path, max_connections=2)
    held: list[socket.socket] = []
    try:
        for _ in range(2):
            sock = socket.create_connection((exchange.host, exchange.port), timeout=SOCKET_SECONDS)
            held.append(sock)
            sock.sendall(b"GET /0/public/Time HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # served, and kept alive
        status, answer = send(exchange, "GET", "/0/public/Time")
        assert status == 503 and answer["error"].startswith("busy:"), answer
        for sock in held:
            sock.close()
        held.clear()
        wait_for(lambda: send(exchange, "GET", "/0/public/Time")[0] == 200, timeout=20)
    finally:
        for sock in held:
            sock.close()
        exchange.stop()


def test_an_idle_connection_is_closed_after_the_idle_timeout(tmp_path):
    exchange = PaperProcess(tmp_path, idle_timeout_seconds=1)
    try:
        for opening in (b"", b"GET /0/public/Time HTTP/1.1\r\n"):
            with socket.create_connection(
                (exchange.host, exchange.port), timeout=SOCKET_SECONDS
            ) as sock:
                sock.sendall(opening)
                # The server closes it: end of stream, well before the socket's own timeout.
                assert sock.recv(65536) == b""
        status, answer = send(exchange, "GET", "/0/public/Time")
        assert status == 200 and answer["error"] == []
    finally:
        exchange.stop()
