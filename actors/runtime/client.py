"""Request/reply from outside the actors (runner, CLI, risk clients, tests): Lazy Pirate.

Send, poll with a timeout; with no answer close the socket with LINGER=0, reopen it, resend;
after the last attempt raise `RequestFailed`, saying where and how long. Answers are matched
by correlation id, so a late answer to an earlier attempt is never taken for this one.
"""

from __future__ import annotations

import itertools
import os
import time

import zmq

from actors.runtime.actor import RequestFailed
from actors.runtime.settings import TransportSettings
from actors.runtime.sockets import CurveKeys, connect_socket
from messages import ErrorReply
from messages.base import Message
from messages.codec import CodecError, decode, encode


class RemoteError(RuntimeError):
    """The other side answered with an ErrorReply."""

    def __init__(self, endpoint: str, reply: ErrorReply) -> None:
        super().__init__(f"{endpoint} refused the request: {reply.code.value}: {reply.detail}")
        self.endpoint = endpoint
        self.reply = reply


class RequestClient:
    """A synchronous, single-threaded request/reply client for one endpoint."""

    _ids = itertools.count(1)

    def __init__(
        self,
        context: zmq.Context,
        endpoint_name: str,
        address: str,
        transport: TransportSettings,
        *,
        timeout_ms: int | None = None,
        retries: int | None = None,
        curve: CurveKeys | None = None,
    ) -> None:
        self._context = context
        self.endpoint_name = endpoint_name
        self.address = address
        self._transport = transport
        self._curve = curve
        self.timeout_ms = timeout_ms if timeout_ms is not None else transport.request_timeout_ms
        self.retries = retries if retries is not None else transport.request_retries
        self._socket: zmq.Socket | None = None

    def new_correlation_id(self) -> str:
        """A correlation id unique to this process."""
        return f"client-{os.getpid()}-{next(self._ids)}"

    def _open(self) -> zmq.Socket:
        if self._socket is None:
            self._socket = connect_socket(
                self._context,
                zmq.DEALER,
                self.endpoint_name,
                self.address,
                self._transport,
                self._curve,
            )
        return self._socket

    def _reset(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def request(self, message: Message, *, raise_on_error: bool = True) -> Message:
        """Send `message`, return the matching answer, or raise RequestFailed / RemoteError."""
        correlation_id = getattr(message, "correlation_id", None)
        frame = encode(message)
        started = time.monotonic()
        attempts = 0
        for _ in range(self.retries + 1):
            attempts += 1
            sock = self._open()
            sock.send_multipart([b"", frame])
            deadline = time.monotonic() + self.timeout_ms / 1000
            while True:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    break
                # A receive bounded by RCVTIMEO, not poll() then recv(): Socket.poll builds
                # a Poller per call, a third of this client's own time per request.
                sock.setsockopt(zmq.RCVTIMEO, left_ms)
                try:
                    frames = sock.recv_multipart()
                except zmq.Again:
                    break
                try:
                    reply = decode(frames[-1], max_bytes=self._transport.max_frame_bytes)
                except CodecError:
                    continue
                reply_id = getattr(reply, "correlation_id", None)
                if (
                    reply_id is not None
                    and correlation_id is not None
                    and reply_id != correlation_id
                ):
                    continue  # an answer to an earlier attempt or request
                if isinstance(reply, ErrorReply) and raise_on_error:
                    raise RemoteError(self.endpoint_name, reply)
                return reply
            self._reset()
        waited = int((time.monotonic() - started) * 1000)
        raise RequestFailed(self.endpoint_name, message, attempts, waited)

    def close(self) -> None:
        """Close the socket now."""
        self._reset()

    def __enter__(self) -> RequestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
