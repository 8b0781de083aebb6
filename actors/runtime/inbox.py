"""The actor's inbox: pykka's mailbox and the actor's ZeroMQ sockets, served by one thread.

A pykka ThreadingActor blocks on `inbox.get()`. This inbox makes that one wait cover three
sources: messages told by other threads (`put`, which writes a byte to a wake-up pipe), frames
arriving on the actor's own sockets (polled with zmq.Poller), and timers. So the actor's
thread is the only thread that ever touches its sockets, and a request that arrives on a
socket reaches the handler with no hand-off between threads.
"""

from __future__ import annotations

import heapq
import itertools
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq
from loguru import logger

_RECV_BATCH = 256


class Delivery:
    """What the inbox hands pykka's loop: a message and (for asks) the future to answer."""

    __slots__ = ("message", "reply_to")

    def __init__(self, message: Any, reply_to: Any = None) -> None:
        self.message = message
        self.reply_to = reply_to


class Frames:
    """Raw frames received on one of the actor's sockets, not decoded yet."""

    __slots__ = ("frames", "socket")

    def __init__(self, socket: str, frames: list[bytes]) -> None:
        self.socket = socket
        self.frames = frames


class SocketInbox:
    """A mailbox whose `get` waits on told messages, the actor's sockets and timers at once.

    `put` and `empty` may be called from any thread; everything else only from the actor's
    own thread (where the sockets are created, registered, polled and closed).
    """

    def __init__(self) -> None:
        self._told: deque[Any] = deque()
        self._received: deque[Delivery] = deque()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._poller = zmq.Poller()
        self._poller.register(self._wake_read, zmq.POLLIN)
        self._sockets: dict[zmq.Socket, str] = {}
        self._readers: dict[zmq.Socket, Callable[[zmq.Socket], None]] = {}
        self._timers: list[tuple[float, int, Any]] = []
        self._timer_order = itertools.count()

    # -- any thread ---------------------------------------------------------------------
    def put(self, envelope: Any) -> None:
        """Queue a told message and wake the actor's thread."""
        self._told.append(envelope)
        try:
            os.write(self._wake_write, b"\x00")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (the thread will wake anyway) or closed at shutdown

    def empty(self) -> bool:
        """True when no told or received message is waiting."""
        return not self._told and not self._received

    # -- the actor's thread ---------------------------------------------------------------
    def register(
        self, sock: zmq.Socket, name: str, reader: Callable[[zmq.Socket], None] | None = None
    ) -> None:
        """Poll `sock` for incoming frames, reported as `Frames(name, ...)`; with `reader`,
        that is called instead (in this thread, within `get`) to read what `sock` has."""
        self._sockets[sock] = name
        if reader is not None:
            self._readers[sock] = reader
        self._poller.register(sock, zmq.POLLIN)

    def unregister(self, sock: zmq.Socket) -> None:
        """Stop polling `sock` (before closing it)."""
        self._readers.pop(sock, None)
        if self._sockets.pop(sock, None) is not None:
            self._poller.unregister(sock)

    def schedule(self, delay_seconds: float, message: Any) -> None:
        """Deliver `message` to the actor after `delay_seconds`."""
        due = time.monotonic() + max(0.0, delay_seconds)
        heapq.heappush(self._timers, (due, next(self._timer_order), message))

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The next message: told first, then received frames, then due timers."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._told:
                return self._told.popleft()
            if self._received:
                return self._received.popleft()
            now = time.monotonic()
            if self._timers and self._timers[0][0] <= now:
                _, _, message = heapq.heappop(self._timers)
                return Delivery(message)
            wait_ms: float | None = None
            if self._timers:
                wait_ms = (self._timers[0][0] - now) * 1000
            if deadline is not None:
                left = max(0.0, (deadline - now) * 1000)
                wait_ms = left if wait_ms is None else min(wait_ms, left)
            if not block:
                wait_ms = 0
            events = self._poller.poll(None if wait_ms is None else max(0, int(wait_ms) + 1))
            for sock, _ in events:
                if sock == self._wake_read:
                    self._drain_wake_pipe()
                    continue
                name = self._sockets.get(sock)
                if name is None:
                    continue  # unregistered by a reader earlier in this round
                reader = self._readers.get(sock)
                if reader is None:
                    self._receive_from(sock, name)
                    continue
                try:
                    reader(sock)
                except Exception as exc:  # pykka's loop must never see it
                    logger.opt(exception=exc).error("reading {} failed: {}", name, exc)
            if not events and not block:
                raise _Empty
            if deadline is not None and time.monotonic() >= deadline and self.empty():
                raise _Empty

    def _receive_from(self, sock: zmq.Socket, name: str) -> None:
        for _ in range(_RECV_BATCH):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            self._received.append(Delivery(Frames(name, frames)))

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_read, 65536):
                pass
        except (BlockingIOError, OSError):
            pass

    def __del__(self) -> None:
        # Closed only when nothing can reach the inbox any more: closing earlier would let a
        # late `put` write into whatever file reuses the descriptor number.
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass


class _Empty(Exception):
    """Raised by a non-blocking or timed `get` that found nothing (queue.Empty's role)."""
