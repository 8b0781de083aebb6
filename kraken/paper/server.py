"""The paper exchange's HTTP server: Kraken's REST paths plus ``/admin``, on loopback.

HTTP/1.1 with keep-alive (krakenex reuses one connection), one thread per connection and at
most ``max_connections`` of them (one more waits a moment for a free slot, then gets 503), a
background thread stepping prices. ``stop()`` closes idle keep-alive connections, joins every
thread with a deadline and closes the state file.

Requests are framed by ``Content-Length`` only (required on POST, at most 64 KiB, 413 above);
any ``Transfer-Encoding`` is refused with 411 and the connection closed, so a body is never
read as the next request. ``/admin`` answers loopback clients that name a loopback host
(``Host: 127.0.0.1``, ``localhost``, ``[::1]``, any port; 403 otherwise, so a web page cannot
reach it through DNS rebinding) and takes ``application/json`` POSTs only (415 otherwise, so
a page cannot post a form to it). Every request gets an answer, even one that fails.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from loguru import logger

from kraken.names import KrakenNames
from kraken.paper.admin import AdminApi, RefusalCounts
from kraken.paper.amounts import shown
from kraken.paper.api import KrakenApi, error_envelope
from kraken.paper.engine import PaperExchange
from kraken.paper.faults import ENVELOPE_ERRORS, FaultInjector
from kraken.paper.rate_limit import RestRateCounter
from kraken.paper.settings import PaperSettings, is_loopback_host
from kraken.paper.store import StateStore

_MAX_BODY_BYTES = 64 * 1024
# A connection over max_connections waits this long for a free slot, then gets 503.
_SLOT_WAIT_SECONDS = 1.0
# Before a refused connection is closed, what the client still sends is read and dropped for
# at most this long (closing with unread data would reset the connection, and the client
# could lose the answer).
_DRAIN_SECONDS = 0.5
_BUSY_DRAIN_SECONDS = 0.05
_DRAIN_BYTES = 4 * _MAX_BODY_BYTES
_JOIN_SECONDS = 5.0
_POLL_SECONDS = 0.05

_BAD_GATEWAY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class _Refused(Exception):
    """A request answered with an HTTP error: ``status``, a message naming the header or
    field, and whether the connection must close (its framing cannot be trusted)."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


def is_loopback_host_header(value: str) -> bool:
    """True for a ``Host`` naming loopback: ``127.0.0.1``, ``localhost``, ``[::1]`` (or
    another 127.0.0.0/8 address), optionally with a port."""
    value = value.strip()
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return False
        port = rest[1:] if rest else None
        version = 6
    else:
        host, colon, port_text = value.partition(":")
        port = port_text if colon else None
        version = 4
    if port is not None and not (
        port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) <= 65535
    ):
        return False
    if version == 4 and host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == version and address.is_loopback


def drain_and_half_close(connection: socket.socket, seconds: float) -> None:
    """End our side of ``connection``, then read and drop what the client still sends, for
    at most ``seconds``: closing with unread data would reset the connection, and the
    client could lose the answer already sent."""
    deadline = time.monotonic() + seconds
    received = 0
    try:
        connection.shutdown(socket.SHUT_WR)
        while received < _DRAIN_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            connection.settimeout(left)
            chunk = connection.recv(65536)
            if not chunk:
                return
            received += len(chunk)
    except OSError:
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "paper-kraken/1.0"
    sys_version = ""
    server: _PaperHttpServer
    _drain_on_close = False

    def setup(self) -> None:
        # The socket timeout: a connection that sends nothing for this long is closed.
        self.timeout = self.server.idle_timeout_seconds
        super().setup()
        # Headers and body go out as separate writes: without NODELAY, Nagle plus delayed
        # ACKs would add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
            if self._drain_on_close:
                drain_and_half_close(self.connection, _DRAIN_SECONDS)
        finally:
            self.server.untrack_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        # No access log: at hundreds of requests a second it would drown everything else.
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, verb: str) -> None:
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body(verb)
            if path.startswith("/admin/") or path == "/admin":
                self._check_admin_request(verb)
                status, document = self.server.admin.handle(verb, path, body)
                self._send_json(status, document)
            elif path.startswith("/0/public/") or path.startswith("/0/private/"):
                self._kraken(verb, path, query, body)
            else:
                self._send_json(404, {"error": f"unknown path: {shown(path)}"})
        except _Refused as refused:
            self.server.refusals.add(f"http_{refused.status}")
            logger.info(
                "paper exchange: {} {} refused with {}: {}",
                verb,
                shown(path),
                refused.status,
                refused.message,
            )
            self._send_json(refused.status, {"error": refused.message}, close=refused.close)
        except OSError as error:
            # The client went away, or sent its body too slowly (the idle timeout).
            logger.debug("paper exchange: {} {}: connection ended: {}", verb, shown(path), error)
            self.close_connection = True
        except Exception:
            logger.exception("paper exchange: {} {} failed", verb, shown(path))
            self._send_json(500, {"error": "internal error"}, close=True)

    def _check_admin_request(self, verb: str) -> None:
        if not self.server.is_loopback_client(self.client_address[0]):
            raise _Refused(403, "admin: loopback clients only")
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or not is_loopback_host_header(hosts[0]):
            raise _Refused(
                403,
                "Host: the admin interface answers 127.0.0.1, localhost or [::1] (any port) "
                f"only, got {shown(hosts[0] if len(hosts) == 1 else hosts)}",
            )
        if verb == "POST":
            content_type = self.headers.get("Content-Type") or ""
            if content_type.split(";")[0].strip().lower() != "application/json":
                raise _Refused(
                    415, f"Content-Type: must be application/json, got {shown(content_type)}"
                )

    def _kraken(self, verb: str, path: str, query: str, body: bytes) -> None:
        draw = self.server.faults.draw()
        if draw.latency_ms and self.server.stopping.wait(draw.latency_ms / 1000):
            return
        if draw.failure == "drop":
            self.close_connection = True
            return
        if draw.failure == "http_502":
            self._send(502, _BAD_GATEWAY_PAGE, "text/html")
            return
        if draw.failure is not None:
            self._send_json(200, error_envelope(ENVELOPE_ERRORS[draw.failure]))
            return
        api = self.server.api
        public = path.startswith("/0/public/")
        method = path.rsplit("/", 1)[-1]
        try:
            if public and verb == "GET":
                envelope = api.public(method, query)
            elif not public and verb == "POST":
                headers = {name: value for name, value in self.headers.items()}
                envelope = api.private(
                    method, path, headers, body, self.headers.get("Content-Type", "")
                )
            else:
                envelope = error_envelope("EAPI:Bad request")
        except Exception:
            # Kraken answers its own failures inside the envelope; so does this server.
            logger.exception("paper exchange: request {} failed", path)
            envelope = error_envelope("EGeneral:Internal error")
        self._send_json(200, envelope)

    def _read_body(self, verb: str) -> bytes:
        """The body, framed by Content-Length only; ``_Refused`` (closing the connection)
        when it cannot be framed or is too long."""
        if self.headers.get_all("Transfer-Encoding"):
            raise _Refused(
                411,
                "Transfer-Encoding: not supported; send the body with a Content-Length",
                close=True,
            )
        lengths = {text.strip() for text in self.headers.get_all("Content-Length") or []}
        if not lengths:
            if verb == "POST":
                raise _Refused(411, "Content-Length: required on POST", close=True)
            return b""
        (length_text,) = lengths if len(lengths) == 1 else ("",)
        if not (length_text.isascii() and length_text.isdigit() and len(length_text) <= 12):
            raise _Refused(400, "Content-Length: not a single non-negative integer", close=True)
        length = int(length_text)
        if length > _MAX_BODY_BYTES:
            raise _Refused(
                413,
                f"Content-Length: {length} bytes, over the limit of {_MAX_BODY_BYTES}",
                close=True,
            )
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("the client closed the connection inside the body")
        return body

    def _send_json(self, status: int, document: dict[str, Any], close: bool = False) -> None:
        try:
            body = json.dumps(document, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            logger.exception("paper exchange: answer not encodable")
            body = json.dumps(error_envelope("EGeneral:Internal error")).encode()
        self._send(status, body, "application/json", close=close)

    def _send(self, status: int, body: bytes, content_type: str, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
            self._drain_on_close = True
        self.end_headers()
        self.wfile.write(body)


class _PaperHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        api: KrakenApi,
        admin: AdminApi,
        faults: FaultInjector,
        *,
        max_connections: int,
        idle_timeout_seconds: float,
    ) -> None:
        super().__init__(address, _Handler)
        self.api = api
        self.admin = admin
        self.faults = faults
        self.refusals = admin.refusals
        self.max_connections = max_connections
        self.idle_timeout_seconds = idle_timeout_seconds
        self._slots = threading.BoundedSemaphore(max_connections)
        self.stopping = threading.Event()
        self._tracking = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._connection_threads: set[threading.Thread] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        # The accept loop waits here for a free slot: while it waits, new connections queue
        # in the listen backlog.
        if not self._slots.acquire(timeout=_SLOT_WAIT_SECONDS):
            self._refuse_busy(request)
            return
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="paper-http-connection",
            daemon=True,
        )
        with self._tracking:
            self._connection_threads.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._tracking:
                self._connection_threads.discard(thread)
            self._slots.release()
            raise

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._tracking:
                self._connection_threads.discard(threading.current_thread())
            self._slots.release()

    def _refuse_busy(self, request: socket.socket) -> None:
        """Answer 503 on a connection over ``max_connections`` and close it."""
        self.refusals.add("http_503")
        logger.info(
            "paper exchange: {} connections open, one more refused with 503", self.max_connections
        )
        body = json.dumps(
            {"error": f"busy: {self.max_connections} connections open, retry later"}
        ).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            request.settimeout(_DRAIN_SECONDS)
            request.sendall(head + body)
            drain_and_half_close(request, _BUSY_DRAIN_SECONDS)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.opt(exception=True).debug("paper http connection ended with an error")

    def track_connection(self, connection: socket.socket) -> None:
        with self._tracking:
            self._connections.add(connection)

    def untrack_connection(self, connection: socket.socket) -> None:
        with self._tracking:
            self._connections.discard(connection)

    def is_loopback_client(self, host: str) -> bool:
        return is_loopback_host(host)

    def close_connections(self) -> None:
        with self._tracking:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join_connection_threads(self, deadline: float) -> list[threading.Thread]:
        """Join connection threads until ``deadline`` (monotonic); returns the ones left."""
        with self._tracking:
            threads = list(self._connection_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread for thread in threads if thread.is_alive()]


def generate_credentials() -> tuple[str, str]:
    """A fresh API key (56 characters) and base64 secret (64 random bytes), like Kraken's."""
    key = base64.b64encode(secrets.token_bytes(42)).decode()
    secret = base64.b64encode(secrets.token_bytes(64)).decode()
    return key, secret


class PaperExchangeServer:
    """The paper exchange on HTTP: build, ``start()``, use ``url``/``key``/``secret``, ``stop()``.

    ``key``/``secret`` given here win; otherwise the state file's are reused; otherwise new
    ones are generated (and kept in the state file, if any). ``exchange`` is the engine, for
    tests and tools: ``step()``, ``set_price()``, ``deposit()``...
    """

    def __init__(
        self,
        settings: PaperSettings,
        *,
        clock: Callable[[], int] = time.time_ns,
        key: str | None = None,
        secret: str | None = None,
    ) -> None:
        if (key is None) != (secret is None):
            raise ValueError("key/secret: give both or neither")
        if secret is not None:
            try:
                base64.b64decode(secret, validate=True)
            except ValueError as error:
                raise ValueError("secret: must be base64") from error
        self.settings = settings
        self._clock = clock
        store = StateStore(settings.state_file) if settings.state_file is not None else None
        self.exchange = PaperExchange(settings, KrakenNames.bundled(), clock=clock, store=store)
        stored = self.exchange.stored_credentials()
        if key is not None and secret is not None:
            self.key, self.secret = key, secret
        elif stored is not None:
            self.key, self.secret = stored
        else:
            self.key, self.secret = generate_credentials()
        if stored != (self.key, self.secret):
            self.exchange.save_credentials(self.key, self.secret)
        self.rate_counter = RestRateCounter(settings.rate_limit_tier, clock)
        self.faults = FaultInjector(clock, settings.seed)
        self.api = KrakenApi(
            self.exchange,
            credentials=lambda: {self.key: self.secret},
            rate_counter=self.rate_counter,
            clock=clock,
        )
        self.refusals = RefusalCounts()
        self.admin = AdminApi(self.exchange, self.faults, self.rate_counter, self.refusals)
        self.url = ""
        self._http: _PaperHttpServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._tick_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._state_lock = threading.Lock()

    def __enter__(self) -> PaperExchangeServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind, start serving and ticking; returns once requests are accepted."""
        with self._state_lock:
            if self._http is not None:
                raise RuntimeError("the paper exchange is already started")
            if self._stopped.is_set():
                raise RuntimeError("a stopped paper exchange cannot be restarted; build a new one")
            http = _PaperHttpServer(
                (self.settings.host, self.settings.port),
                self.api,
                self.admin,
                self.faults,
                max_connections=self.settings.max_connections,
                idle_timeout_seconds=self.settings.idle_timeout_seconds,
            )
            self._http = http
            host, port = http.server_address[:2]
            self.url = f"http://{host}:{port}"
            self._serve_thread = threading.Thread(
                target=http.serve_forever,
                kwargs={"poll_interval": _POLL_SECONDS},
                name="paper-http",
                daemon=True,
            )
            self._serve_thread.start()
            if self.settings.tick_interval_seconds > 0:
                self._tick_thread = threading.Thread(
                    target=self._tick_loop, name="paper-ticker", daemon=True
                )
                self._tick_thread.start()
        logger.info("paper exchange serving at {}", self.url)

    def stop(self) -> None:
        """Stop serving and ticking, close connections, join threads (with a deadline) and
        close the state file. Idempotent."""
        with self._state_lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
            http = self._http
        deadline = time.monotonic() + _JOIN_SECONDS
        if http is not None:
            http.stopping.set()
            http.shutdown()
            http.server_close()
            http.close_connections()
            left = http.join_connection_threads(deadline)
            if left:
                logger.warning("paper exchange: {} connection threads still running", len(left))
        for thread in (self._serve_thread, self._tick_thread):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    logger.warning("paper exchange: thread {} did not stop in time", thread.name)
        self.exchange.close()
        logger.info("paper exchange stopped")

    def _tick_loop(self) -> None:
        interval = self.settings.tick_interval_seconds
        while not self._stopped.wait(interval):
            try:
                self.exchange.step(1)
            except Exception:
                logger.exception("paper exchange: price step failed")
