"""The paper exchange's HTTP server: Kraken's REST paths plus ``/admin``, on loopback.

HTTP/1.1 with keep-alive (krakenex reuses one connection), one thread per connection, a
background thread stepping prices. ``stop()`` closes idle keep-alive connections, joins every
thread with a deadline and closes the state file.
"""

from __future__ import annotations

import base64
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
from kraken.paper.admin import AdminApi
from kraken.paper.api import KrakenApi, error_envelope
from kraken.paper.engine import PaperExchange
from kraken.paper.faults import ENVELOPE_ERRORS, FaultInjector
from kraken.paper.rate_limit import RestRateCounter
from kraken.paper.settings import PaperSettings, is_loopback_host
from kraken.paper.store import StateStore

_MAX_BODY_BYTES = 1 << 20
# An idle keep-alive connection is closed after this long.
_IDLE_CONNECTION_SECONDS = 30.0
_JOIN_SECONDS = 5.0
_POLL_SECONDS = 0.05

_BAD_GATEWAY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "paper-kraken/1.0"
    sys_version = ""
    timeout = _IDLE_CONNECTION_SECONDS
    server: _PaperHttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes: without NODELAY, Nagle plus delayed
        # ACKs would add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
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
            body = self._read_body()
        except ValueError as error:
            self._send_json(400, {"error": str(error)}, close=True)
            return
        if path.startswith("/admin/") or path == "/admin":
            if not self.server.is_loopback_client(self.client_address[0]):
                self._send_json(403, {"error": "admin: loopback clients only"})
                return
            status, document = self.server.admin.handle(verb, path, body)
            self._send_json(status, document)
            return
        if path.startswith("/0/public/") or path.startswith("/0/private/"):
            self._kraken(verb, path, query, body)
            return
        self._send_json(404, {"error": f"unknown path: {path}"})

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

    def _read_body(self) -> bytes:
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError as error:
            raise ValueError("Content-Length: not an integer") from error
        if not 0 <= length <= _MAX_BODY_BYTES:
            raise ValueError(f"Content-Length: must be within 0..{_MAX_BODY_BYTES}")
        return self.rfile.read(length)

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
        self.end_headers()
        self.wfile.write(body)


class _PaperHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], api: KrakenApi, admin: AdminApi, faults: FaultInjector
    ) -> None:
        super().__init__(address, _Handler)
        self.api = api
        self.admin = admin
        self.faults = faults
        self.stopping = threading.Event()
        self._tracking = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._connection_threads: set[threading.Thread] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="paper-http-connection",
            daemon=True,
        )
        with self._tracking:
            self._connection_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._tracking:
                self._connection_threads.discard(threading.current_thread())

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
        self.admin = AdminApi(self.exchange, self.faults, self.rate_counter)
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
                (self.settings.host, self.settings.port), self.api, self.admin, self.faults
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
