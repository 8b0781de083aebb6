"""The base of every actor of the service: a pykka ThreadingActor that owns its sockets.

An actor declares its sockets (`Serve`, `Publish`, `Subscribe`, `Connect`) by endpoint name;
the runtime binds or connects them from config in the actor's own thread, decodes what
arrives, and dispatches each message to the handler registered for its type with
`@handles(..., on=...)`. A handler takes messages only from the sockets it names in `on`
(and always from the actor itself: timers, tells); a message of the right type on another
socket is refused, so nobody can inject a journal event through a query endpoint. Handlers
see typed messages only, never a socket. Three patterns are built in:

- request / reply: a request on a `Serve` socket gets the handler's return value as reply;
  `request()` asks another actor from inside an actor without blocking its mailbox (timeout,
  retries, then a `RequestFailed` to the failure callback);
- publish / subscribe: `publish()` on a `Publish` socket, handlers for what a `Subscribe`
  socket receives; every subscriber gets every message (topics are not used), and what a
  peer can make a publishing socket hold is bounded (see `_read_subscriptions`);
- reliable send: `send_reliable()` keeps each message until an `Acknowledgement` with its
  delivery key comes back (alone, or among the `Acknowledgements` of one frame), resending
  on a timer (the receiver deduplicates).

A handler that raises is logged with its traceback and counted; a request gets an
`ErrorReply`; the actor keeps serving. A malformed frame is refused the same way.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import pykka
import zmq
from loguru import logger

from actors.runtime.inbox import Frames, SocketInbox
from actors.runtime.settings import ActorConfig
from actors.runtime.sockets import (
    SUBSCRIPTION_TOPIC_BUDGET,
    CurveKeys,
    EndpointError,
    bind_socket,
    connect_socket,
)
from messages import (
    Acknowledgement,
    Acknowledgements,
    DeliveryRefused,
    ErrorCode,
    ErrorReply,
    Ping,
    Pong,
)
from messages.base import Message
from messages.codec import CodecError, decode, encode


@dataclass(frozen=True)
class Serve:
    """Bind a ROUTER: requests in, the handler's return value back as the reply."""

    endpoint: str


@dataclass(frozen=True)
class Publish:
    """Bind an XPUB: `publish()` sends to every subscriber, whatever topic it names."""

    endpoint: str


@dataclass(frozen=True)
class Subscribe:
    """Connect a SUB: everything published there is dispatched to handlers."""

    endpoint: str


@dataclass(frozen=True)
class Connect:
    """Connect a DEALER: for `request()` and `send_reliable()` to a `Serve` endpoint."""

    endpoint: str


SocketSpec = Serve | Publish | Subscribe | Connect

_KINDS = {Serve: zmq.ROUTER, Publish: zmq.XPUB, Subscribe: zmq.SUB, Connect: zmq.DEALER}

_SUBSCRIPTION_BATCH = 1024
"""Subscription frames read from one publishing socket per wake-up, before other work."""

_REBIND_RETRY_SECONDS = 0.02
"""A publishing socket that cannot be bound again yet (its old listener is still closing)
is tried again after this."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """Where a message came from: the endpoint name and, for requests, the reply route;
    `frame` is the frame the message was decoded from (None when it came otherwise)."""

    socket: str
    route: tuple[bytes, ...] | None
    frame: bytes | None = None


class RequestFailed(RuntimeError):
    """A request got no answer after all its attempts."""

    def __init__(self, endpoint: str, request: Message, attempts: int, waited_ms: int) -> None:
        super().__init__(
            f"no reply from {endpoint} to {type(request).__name__} after {attempts} attempts "
            f"({waited_ms} ms)"
        )
        self.endpoint = endpoint
        self.request = request
        self.attempts = attempts


class StartRefused(RuntimeError):
    """An actor will not start, or not go on, with what it found (a journal that is not the
    one its snapshot came from, a database file gone); the message says what, in one line."""


@dataclass
class StartupReport:
    """Filled in by the actor's thread when it is ready (`on_start` finished, or the actor
    said `ready()` later), so a host can wait on it; `refused` is set when the actor stopped
    after that because it cannot go on (`refuse`): its process must not be restarted."""

    done: threading.Event
    error: BaseException | None = None
    refused: str | None = None

    @classmethod
    def new(cls) -> StartupReport:
        """An empty report."""
        return cls(done=threading.Event())


def handles(*message_types: type, on: str | Iterable[str] = ()) -> Callable:
    """Mark a method `(self, message, inbound)` as the handler of these message types.

    `on` names the endpoints (as in `sockets()`) the messages may arrive on; without it the
    handler serves the actor itself only (timers, `tell`, `ask`). What it returns is the
    answer to a request: a message, or the bytes of one already encoded (`encode_nesting`).
    """
    endpoints = frozenset((on,) if isinstance(on, str) else on)

    def mark(method: Callable) -> Callable:
        method._handles = message_types  # type: ignore[attr-defined]
        method._handles_on = endpoints  # type: ignore[attr-defined]
        return method

    return mark


@dataclass(frozen=True, slots=True)
class _Timer:
    kind: str
    key: Any = None


@dataclass
class _PendingRequest:
    endpoint: str
    request: Message
    frame: bytes
    on_reply: Callable[[Message], None]
    on_failure: Callable[[RequestFailed], None]
    timeout_s: float
    attempts_left: int
    attempts: int
    started: float


class ServiceActor(pykka.ThreadingActor):
    """Base class: sockets from config, typed dispatch, counters, the three patterns."""

    _handler_table: ClassVar[dict[type, tuple[Callable, frozenset[str]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, tuple[Callable, frozenset[str]]] = {}
        for base in reversed(cls.__mro__[1:]):
            table.update(getattr(base, "_handler_table", {}))
        for attribute in cls.__dict__.values():
            for message_type in getattr(attribute, "_handles", ()):
                table[message_type] = (attribute, attribute._handles_on)
        cls._handler_table = table

    @staticmethod
    def _create_actor_inbox() -> SocketInbox:  # type: ignore[override]
        return SocketInbox()

    def __init__(
        self,
        *,
        name: str,
        config: ActorConfig,
        context: zmq.Context,
        process: str = "",
        startup: StartupReport | None = None,
        curve: CurveKeys | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        # The service's whole config: the runtime reads only what `ActorConfig` names, the
        # actors their own sections.
        self.config: Any = config
        self.process = process
        self.log = logger.bind(actor=name)
        self.handled = 0
        self.failed = 0
        self.malformed = 0
        self._context = context
        self._curve = curve
        self._startup = startup or StartupReport.new()
        self._sockets: dict[str, zmq.Socket] = {}
        self._socket_kinds: dict[str, int] = {}
        self._pending_requests: dict[str, _PendingRequest] = {}
        self._unacked: dict[str, OrderedDict[str, list]] = {}
        self._backlog: dict[str, deque[tuple[Message, float]]] = {}
        self._correlation = itertools.count(1)
        self._resend_scheduled = False
        self._ready_deferred = False
        self._subscriptions = 0
        self._subscription_resets = 0
        self._topic_bytes: dict[str, int] = {}
        self._ignored_frames: dict[str, int] = {}
        self._unbound: set[str] = set()
        self._reopenable: set[str] = set()

    # -- what subclasses declare and override -------------------------------------------------
    def sockets(self) -> Iterable[SocketSpec]:
        """The sockets this actor uses, by endpoint name (override)."""
        return ()

    def started(self) -> None:
        """Called in the actor's thread once its sockets are open (override)."""

    def stopping(self) -> None:
        """Called in the actor's thread before its sockets close (override)."""

    def counters(self) -> dict[str, int]:
        """The actor's own named counts, reported in its `Pong` (override)."""
        return {}

    def acknowledged(self, endpoint: str, ack: Acknowledgement, message: Message) -> None:
        """A reliable send was acknowledged (override to react)."""

    def refused(self, endpoint: str, refusal: DeliveryRefused, message: Message) -> None:
        """A reliable send was refused for good; it is not resent (override to react)."""

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def inbox(self) -> SocketInbox:
        """This actor's inbox (only its own thread may register sockets or timers)."""
        return self.actor_inbox  # type: ignore[return-value]

    def on_start(self) -> None:
        try:
            for spec in self.sockets():
                self._open(spec)
            self.started()
        except BaseException as exc:
            self._startup.error = exc
            self._startup.done.set()
            self._close_sockets()
            raise
        if not self._ready_deferred:
            self._startup.done.set()
        self.log.debug("started with sockets {}", sorted(self._sockets))

    def defer_ready(self) -> None:
        """Called in `started()`: the actor is not ready when `started()` returns, but when
        it calls `ready()` (or `refuse()`) later, from its own thread; its host waits for that
        within its start deadline."""
        self._ready_deferred = True

    def ready(self) -> None:
        """The actor is ready (after `defer_ready()`; harmless otherwise)."""
        self._startup.done.set()

    def refuse(self, reason: str) -> None:
        """This actor cannot go on, and a restart would not help: before it is ready, its
        start fails with `reason`; once ready, it stops and its process tells the runner
        `reason` and exits without being restarted (the group stops)."""
        self.log.error("{}", reason)
        if not self._startup.done.is_set():
            self._startup.error = StartRefused(reason)
            self._startup.done.set()
        elif self._startup.refused is None:
            self._startup.refused = reason
        self.stop()

    def on_stop(self) -> None:
        try:
            self.stopping()
        finally:
            self._close_sockets()
            self.log.debug("stopped")

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._close_sockets()

    def _open(self, spec: SocketSpec) -> None:
        name = spec.endpoint
        address = self.config.endpoints.get(name)
        if address is None:
            raise EndpointError(name, "?", "no address for it under endpoints in config.yaml")
        kind = _KINDS[type(spec)]
        transport = self.config.transport
        if isinstance(spec, Serve | Publish):
            sock = bind_socket(self._context, kind, name, address, transport, self._curve)
        else:
            sock = connect_socket(self._context, kind, name, address, transport, self._curve)
        key = name if name not in self._sockets else f"{name}#{kind}"
        self._add_socket(key, kind, sock)

    def _add_socket(self, key: str, kind: int, sock: zmq.Socket) -> None:
        self._sockets[key] = sock
        self._socket_kinds[key] = kind
        if kind == zmq.XPUB:
            self.inbox.register(sock, key, functools.partial(self._read_subscriptions, key))
            # Only this process reaches an inproc endpoint, and its peers would not come
            # back after a reopening (inproc does not reconnect): it is never reopened.
            if not self.config.endpoints[key.split("#")[0]].startswith("inproc://"):
                self._reopenable.add(key)
        else:
            self.inbox.register(sock, key)

    def _close_sockets(self) -> None:
        for sock in self._sockets.values():
            try:
                self.inbox.unregister(sock)
            except Exception:
                pass
            sock.close(linger=100)
        self._sockets.clear()
        self._unbound.clear()

    # -- timers ----------------------------------------------------------------------------
    def schedule(self, delay_seconds: float, message: Any) -> None:
        """Deliver `message` to this actor's handlers after `delay_seconds`."""
        self.inbox.schedule(delay_seconds, message)

    # -- dispatch --------------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Frames):
            return self._on_frames(message)
        if isinstance(message, _Timer):
            return self._on_timer(message)
        return self._dispatch(message, None)

    def _on_frames(self, received: Frames) -> None:
        kind = self._socket_kinds.get(received.socket)
        frames = received.frames
        route = tuple(frames[:-1]) if kind == zmq.ROUTER else None
        try:
            message = decode(frames[-1], max_bytes=self.config.transport.max_frame_bytes)
        except CodecError as exc:
            self.malformed += 1
            self.log.warning("refused a malformed frame on {}: {}", received.socket, exc)
            if route is not None:
                self._send_reply(
                    received.socket,
                    route,
                    ErrorReply(correlation_id=None, code=ErrorCode.MALFORMED, detail=str(exc)),
                )
            return
        if kind == zmq.DEALER:
            self._on_answer(received.socket, message)
            return
        self._dispatch(message, Inbound(received.socket, route, frames[-1]))

    def _dispatch(self, message: Any, inbound: Inbound | None) -> Any:
        entry = self._handler_table.get(type(message))
        if entry is None and isinstance(message, Ping):
            return self._answer(self._pong(message), inbound)
        if entry is None:
            detail = f"{self.name} does not handle {type(message).__name__}"
        elif inbound is not None and inbound.socket.split("#")[0] not in entry[1]:
            detail = f"{self.name} does not take {type(message).__name__} on {inbound.socket}"
        else:
            detail = None
        if detail is not None:
            self.failed += 1
            self.log.warning("refused: {}", detail)
            return self._answer(
                ErrorReply(
                    correlation_id=getattr(message, "correlation_id", None),
                    code=ErrorCode.REFUSED,
                    detail=detail,
                ),
                inbound,
            )
        try:
            result = entry[0](self, message, inbound)  # type: ignore[index]
        except Exception as exc:
            self.failed += 1
            self.log.opt(exception=exc).error(
                "handler for {} failed: {}", type(message).__name__, exc
            )
            return self._answer(
                ErrorReply(
                    correlation_id=getattr(message, "correlation_id", None),
                    code=ErrorCode.HANDLER_FAILED,
                    detail=f"{type(exc).__name__}: {exc}",
                ),
                inbound,
            )
        self.handled += 1
        if result is not None:
            return self._answer(result, inbound)
        return None

    def _answer(self, reply: Message | bytes, inbound: Inbound | None) -> Message | bytes:
        if inbound is not None and inbound.route is not None:
            self._send_reply(inbound.socket, inbound.route, reply)
        return reply

    def _pong(self, ping: Ping) -> Pong:
        return Pong(
            correlation_id=ping.correlation_id,
            actor=self.name,
            process=self.process,
            pid=os.getpid(),
            handled=self.handled,
            failed=self.failed,
            malformed=self.malformed,
            sent_ns=ping.sent_ns,
            counters={**self._runtime_counters(), **self.counters()},
        )

    def _runtime_counters(self) -> dict[str, int]:
        if zmq.XPUB not in self._socket_kinds.values():
            return {}
        return {
            "subscriptions": self._subscriptions,
            "subscription_resets": self._subscription_resets,
        }

    # -- request / reply -------------------------------------------------------------------
    def reply(self, inbound: Inbound, message: Message) -> None:
        """Answer a request later than its handler's return (e.g. after a group commit)."""
        if inbound.route is None:
            raise ValueError("this message did not come as a request; there is no one to answer")
        self._send_reply(inbound.socket, inbound.route, message)

    def _send_reply(self, socket: str, route: tuple[bytes, ...], message: Message | bytes) -> None:
        sock = self._sockets.get(socket)
        if sock is None:
            return
        try:
            frame = message if type(message) is bytes else encode(message)  # type: ignore[arg-type]
        except CodecError as exc:
            # An answer that cannot be sent must not take the actor down: say why instead.
            self.failed += 1
            self.log.opt(exception=exc).error("could not encode the answer: {}", exc)
            frame = encode(
                ErrorReply(
                    correlation_id=getattr(message, "correlation_id", None),
                    code=ErrorCode.HANDLER_FAILED,
                    detail=f"the answer could not be encoded: {exc}"[:1000],
                )
            )
        try:
            sock.send_multipart([*route, frame], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            self.log.warning("could not answer on {}: {}", socket, exc.strerror)

    def next_correlation_id(self) -> str:
        """A correlation id unique within this actor's life."""
        return f"{self.name}-{os.getpid()}-{next(self._correlation)}"

    def request(
        self,
        endpoint: str,
        message: Message,
        *,
        on_reply: Callable[[Message], None],
        on_failure: Callable[[RequestFailed], None],
        timeout_ms: int | None = None,
        retries: int | None = None,
    ) -> None:
        """Send a request on the `Connect` socket `endpoint`; the answer comes to `on_reply`.

        Without an answer within `timeout_ms` it is sent again, up to `retries` more times;
        then `on_failure` gets a `RequestFailed`. Answers are matched by `correlation_id`, so
        a late answer to an earlier attempt is still accepted once and never twice.
        """
        transport = self.config.transport
        correlation_id = message.correlation_id  # type: ignore[attr-defined]
        pending = _PendingRequest(
            endpoint=endpoint,
            request=message,
            frame=encode(message),
            on_reply=on_reply,
            on_failure=on_failure,
            timeout_s=(timeout_ms or transport.request_timeout_ms) / 1000,
            attempts_left=transport.request_retries if retries is None else retries,
            attempts=0,
            started=time.monotonic(),
        )
        self._pending_requests[correlation_id] = pending
        self._send_request(correlation_id, pending)

    def _send_request(self, correlation_id: str, pending: _PendingRequest) -> None:
        pending.attempts += 1
        self._send_frame(pending.endpoint, pending.frame)
        self.schedule(pending.timeout_s, _Timer("request", (correlation_id, pending.attempts)))

    def _send_frame(self, endpoint: str, frame: bytes) -> None:
        sock = self._sockets[endpoint]
        try:
            sock.send_multipart([b"", frame], zmq.NOBLOCK)
        except zmq.Again:
            self.log.warning("{} is not keeping up; will resend", endpoint)

    def _on_answer(self, socket: str, message: Message) -> None:
        if isinstance(message, Acknowledgement | DeliveryRefused):
            self._on_acknowledgement(socket, message)
            return
        if isinstance(message, Acknowledgements):
            for ack in message.acks:
                self._on_acknowledgement(socket, ack)
            return
        correlation_id = getattr(message, "correlation_id", None)
        pending = self._pending_requests.pop(correlation_id, None) if correlation_id else None
        if pending is None:
            self.log.debug("late or unknown answer on {}: {}", socket, type(message).__name__)
            return
        try:
            pending.on_reply(message)
            self.handled += 1
        except Exception as exc:
            self.failed += 1
            self.log.opt(exception=exc).error("reply handler failed: {}", exc)

    def _on_timer(self, timer: _Timer) -> None:
        if timer.kind == "request":
            correlation_id, attempt = timer.key
            pending = self._pending_requests.get(correlation_id)
            if pending is None or pending.attempts != attempt:
                return
            if pending.attempts_left > 0:
                pending.attempts_left -= 1
                self._send_request(correlation_id, pending)
                return
            del self._pending_requests[correlation_id]
            waited = int((time.monotonic() - pending.started) * 1000)
            failure = RequestFailed(pending.endpoint, pending.request, pending.attempts, waited)
            self.log.warning("{}", failure)
            try:
                pending.on_failure(failure)
            except Exception as exc:
                self.failed += 1
                self.log.opt(exception=exc).error("failure handler failed: {}", exc)
        elif timer.kind == "resend":
            self._resend_scheduled = False
            self._resend_due()
        elif timer.kind == "rebind":
            self._bind_publisher(timer.key)

    # -- publish / subscribe ---------------------------------------------------------------
    def publish(self, endpoint: str, message: Message) -> None:
        """Send `message` to every subscriber of the `Publish` socket `endpoint`."""
        self.publish_frame(endpoint, encode(message))

    def publish_frame(self, endpoint: str, frame: bytes) -> None:
        """Publish a message already encoded (by `encode` or `encode_nesting`) as it is."""
        sock = self._sockets.get(endpoint)
        if sock is None:
            if endpoint in self._unbound:
                return  # being bound again: it has no subscriber to send to
            raise KeyError(f"{endpoint} is not a socket of {self.name}")
        sock.send(frame, zmq.NOBLOCK)

    def _read_subscriptions(self, key: str, sock: zmq.Socket) -> None:
        """Read what the peers of the publishing socket `key` sent: subscriptions only.

        Each subscription, whatever its topic, subscribes its peer to everything (one entry
        per peer, however often it subscribes); unsubscriptions are ignored (a peer that
        leaves is forgotten by libzmq). Any other frame is counted as malformed and ignored.
        libzmq still keeps every distinct topic a peer names while it stays connected, so
        once the topics on this socket exceed `SUBSCRIPTION_TOPIC_BUDGET` bytes the socket is
        reopened (ipc, tcp): every peer is dropped with what it made libzmq hold, and the
        subscribers reconnect by themselves, as after a restart of this process.
        """
        for _ in range(_SUBSCRIPTION_BATCH):
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            # SUBSCRIBE applies to the peer of the last subscription libzmq handed out, and a
            # frame that is not a subscription can shift that pairing by one: answering every
            # frame gives each subscribing peer its subscribe-all all the same.
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            if frame[:1] == b"\x01":
                self._subscriptions += 1
                if len(frame) > 1:
                    topics = self._topic_bytes.get(key, 0) + len(frame) - 1
                    self._topic_bytes[key] = topics
                    if topics > SUBSCRIPTION_TOPIC_BUDGET and key in self._reopenable:
                        self._reopen_publisher(key, sock, topics)
                        return
            elif frame[:1] != b"\x00":
                self.malformed += 1
                ignored = self._ignored_frames.get(key, 0) + 1
                self._ignored_frames[key] = ignored
                if ignored & (ignored - 1) == 0:  # the 1st, 2nd, 4th, 8th...: no flood of lines
                    self.log.warning(
                        "ignored a frame on {} that is no subscription ({} so far): {!r}",
                        key,
                        ignored,
                        frame[:40],
                    )

    def _reopen_publisher(self, key: str, sock: zmq.Socket, topics: int) -> None:
        self.log.warning(
            "peers of {} subscribed to {} bytes of topics (more than {}): closing it, which "
            "drops every subscriber, and binding it again",
            key,
            topics,
            SUBSCRIPTION_TOPIC_BUDGET,
        )
        self._subscription_resets += 1
        self._topic_bytes[key] = 0
        self.inbox.unregister(sock)
        del self._sockets[key]
        sock.close(linger=0)
        self._unbound.add(key)
        self._bind_publisher(key)

    def _bind_publisher(self, key: str) -> None:
        if key not in self._unbound:
            return  # stopped meanwhile
        name = key.split("#")[0]
        address = self.config.endpoints[name]
        try:
            sock = bind_socket(
                self._context, zmq.XPUB, name, address, self.config.transport, self._curve
            )
        except EndpointError as exc:
            # The closed socket's listener lets go of a tcp address a moment later; until
            # then this endpoint publishes to nobody.
            self.log.debug("{} not bound again yet: {}", key, exc.reason)
            self.schedule(_REBIND_RETRY_SECONDS, _Timer("rebind", key))
            return
        self._unbound.discard(key)
        self._add_socket(key, zmq.XPUB, sock)
        self.log.info("{} bound again", key)

    # -- reliable send ---------------------------------------------------------------------
    def send_reliable(self, endpoint: str, message: Message) -> None:
        """Send `message` on `endpoint` and keep resending it until it is acknowledged.

        The message type names its delivery key (`delivery_key`, e.g. "exec_id"); the
        receiver answers `Acknowledgement(key=...)` once the message is safe on its side and
        deduplicates resends by that key.
        """
        unacked = self._unacked.setdefault(endpoint, OrderedDict())
        if len(unacked) >= self.config.transport.reliable_max_in_flight:
            self._backlog.setdefault(endpoint, deque()).append((message, time.monotonic()))
            return
        self._send_tracked(endpoint, unacked, message)

    def _send_tracked(
        self, endpoint: str, unacked: OrderedDict, message: Message, queued: float | None = None
    ) -> None:
        key = getattr(message, type(message).delivery_key)  # type: ignore[attr-defined]
        frame = encode(message)
        now = time.monotonic()
        # [message, frame, last sent, first queued]: resends move the third, never the fourth
        unacked[key] = [message, frame, now, now if queued is None else queued]
        self._send_frame(endpoint, frame)
        if not self._resend_scheduled:
            self._resend_scheduled = True
            self.schedule(self.config.transport.reliable_resend_ms / 1000, _Timer("resend"))

    def unacknowledged(self, endpoint: str) -> int:
        """How many reliable messages on `endpoint` still wait for their acknowledgement."""
        return len(self._unacked.get(endpoint, ())) + len(self._backlog.get(endpoint, ()))

    def oldest_unacknowledged_seconds(self, endpoint: str) -> float:
        """How long the oldest reliable message on `endpoint` has waited for its
        acknowledgement since it was first sent or queued (0.0: none waits)."""
        unacked = self._unacked.get(endpoint, {})
        oldest = [entry[3] for entry in itertools.islice(unacked.values(), 1)]
        oldest += [queued for _, queued in itertools.islice(self._backlog.get(endpoint, ()), 1)]
        return max(0.0, time.monotonic() - min(oldest)) if oldest else 0.0

    def _on_acknowledgement(self, endpoint: str, answer: Acknowledgement | DeliveryRefused) -> None:
        unacked = self._unacked.get(endpoint)
        entry = unacked.pop(answer.key, None) if unacked is not None else None
        if entry is None:
            return  # an answer to a resend whose first answer already arrived
        backlog = self._backlog.get(endpoint)
        if backlog:
            self._send_tracked(endpoint, unacked, *backlog.popleft())
        try:
            if isinstance(answer, DeliveryRefused):
                self.log.warning("{} refused {}: {}", endpoint, answer.key, answer.reason)
                self.refused(endpoint, answer, entry[0])
            else:
                self.acknowledged(endpoint, answer, entry[0])
        except Exception as exc:
            self.failed += 1
            self.log.opt(exception=exc).error("delivery callback failed: {}", exc)

    def _resend_due(self) -> None:
        resend_after = self.config.transport.reliable_resend_ms / 1000
        now = time.monotonic()
        waiting = False
        for endpoint, unacked in self._unacked.items():
            resent = 0
            for entry in unacked.values():
                waiting = True
                if now - entry[2] >= resend_after:
                    entry[2] = now
                    self._send_frame(endpoint, entry[1])
                    resent += 1
            if resent:
                self.log.info("resent {} unacknowledged messages on {}", resent, endpoint)
        if waiting and not self._resend_scheduled:
            self._resend_scheduled = True
            self.schedule(resend_after / 2, _Timer("resend"))
