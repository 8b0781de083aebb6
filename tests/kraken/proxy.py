"""A scripted HTTP proxy in front of the paper exchange, for failures the exchange cannot make.

The paper exchange's ``drop`` fault closes the connection *before* processing a request.
The case that matters most for AddOrder is the opposite: the order was placed and only the
answer was lost. The proxy forwards requests unchanged (the raw body and the signature
headers, so Kraken's signature still verifies) and, per path, follows a script of actions
consumed in order; once a path's script is used up it forwards.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_JOIN_SECONDS = 5.0
_UPSTREAM_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Action:
    """``forward``; ``drop_answer`` (forward, then close without answering); ``drop`` (close
    without forwarding); ``status`` (answer ``status`` with an HTML page, not forwarded);
    ``forward_status`` (forward, then answer ``status`` with an HTML page); ``json`` (answer
    ``body`` as JSON with HTTP 200, not forwarded); ``text`` (answer ``body`` as HTML with
    HTTP 200, not forwarded)."""

    kind: str
    status: int = 200
    body: Any = None


FORWARD = Action("forward")
DROP_ANSWER = Action("drop_answer")
DROP = Action("drop")


def status(code: int) -> Action:
    return Action("status", status=code)


def answer(body: Any) -> Action:
    return Action("json", body=body)


def text(body: str) -> Action:
    return Action("text", body=body)


def placed_then_status(code: int) -> Action:
    return Action("forward_status", status=code)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, verb: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.partition("?")[0]
        self.server.proxy.record(self.headers.get("API-Sign"), body)
        action = self.server.proxy.next_action(path)
        if action.kind == "drop":
            self.close_connection = True
            return
        if action.kind == "status":
            self._reply(action.status, b"<html>bad gateway</html>", "text/html")
            return
        if action.kind == "json":
            self._reply(200, json.dumps(action.body).encode(), "application/json")
            return
        if action.kind == "text":
            self._reply(200, str(action.body).encode(), "text/html")
            return
        status_code, payload, content_type = self.server.proxy.forward(
            verb, self.path, body, self.headers
        )
        if action.kind == "drop_answer":
            self.close_connection = True
            return
        if action.kind == "forward_status":
            self._reply(action.status, b"<html>gateway timeout</html>", "text/html")
            return
        self._reply(status_code, payload, content_type)

    def _reply(self, status_code: int, payload: bytes, content_type: str) -> None:
        self.send_response(status_code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, proxy: ScriptedProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy
        self.tracking = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve, args=(request, client_address), name="test-proxy-connection"
        )
        thread.daemon = True
        with self.tracking:
            self.connections.add(request)
            self.threads.add(thread)
        thread.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)
            with self.tracking:
                self.connections.discard(request)
                self.threads.discard(threading.current_thread())


class ScriptedProxy:
    """Forwards to ``upstream_url``; ``script(path, *actions)`` queues actions for a path.
    ``sent`` records every path requested, in order; ``signatures`` and ``bodies`` every
    API-Sign header and non-empty request body seen."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Action]] = defaultdict(deque)
        self.sent: list[str] = []
        self.signatures: list[str] = []
        self.bodies: list[str] = []
        self._server = _ProxyServer(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._server.tracking:
            connections = list(self._server.connections)
            threads = list(self._server.threads)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + _JOIN_SECONDS
        for thread in [*threads, self._thread]:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), f"proxy thread {thread.name} did not stop"

    def script(self, path: str, *actions: Action) -> None:
        with self._lock:
            self._scripts[path].extend(actions)

    def record(self, signature: str | None, body: bytes) -> None:
        with self._lock:
            if signature:
                self.signatures.append(signature)
            if body:
                self.bodies.append(body.decode("utf-8", "replace"))

    def count(self, path: str) -> int:
        with self._lock:
            return self.sent.count(path)

    def next_action(self, path: str) -> Action:
        with self._lock:
            self.sent.append(path)
            queue = self._scripts.get(path)
            return queue.popleft() if queue else FORWARD

    def forward(self, verb: str, target: str, body: bytes, headers: Any) -> tuple[int, bytes, str]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=_UPSTREAM_TIMEOUT_SECONDS)
        try:
            forwarded = {
                name: headers[name]
                for name in ("API-Key", "API-Sign", "Content-Type")
                if headers.get(name) is not None
            }
            connection.request(verb, target, body=body or None, headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
            return response.status, payload, response.getheader("Content-Type", "")
        finally:
            connection.close()
