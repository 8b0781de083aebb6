"""Creating ZeroMQ sockets the one way the service does: options, CURVE, clear errors.

Every socket is made, used and closed by a single thread. Binding failures become
`EndpointError` naming the endpoint and the address, so a port in use is one clear line.

A publishing socket is an XPUB in manual mode: libzmq hands every subscription frame to the
owning actor, which maps it to subscribe-all for the peer that sent it (`SUBSCRIBE b""`), so
the topic a peer names never selects what it gets. libzmq 4.3.5 still keeps every distinct
topic a peer subscribed to (for the unsubscriptions it reports when the peer leaves), so the
actor also counts the topic bytes and reopens the socket past `SUBSCRIPTION_TOPIC_BUDGET`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from actors.runtime.settings import TransportSettings

SUBSCRIPTION_MAX_BYTES = 512
"""MAXMSGSIZE of a publishing socket: only subscriptions come in on it (a subscribe-all is
one byte); a larger frame drops that peer's connection. The ZMTP and CURVE handshake
commands pass the same limit (CURVE's INITIATE is some 300 bytes)."""

SUBSCRIPTION_HWM = 16
"""RCVHWM of a publishing socket: the subscription frames libzmq queues from one peer ahead
of the actor's reading (a subscriber sends one)."""

SUBSCRIPTION_TOPIC_BUDGET = 16 * 1024
"""Topic bytes subscribed on one publishing socket, over all its peers, before the actor
reopens it. libzmq keeps some 50 bytes of memory per topic byte while the peer stays, and
takes in a few hundred frames ahead of the actor's reading, so a flood costs the process
tens of MB at most, whatever its length; the service's own subscribers name no topic."""


class EndpointError(RuntimeError):
    """An endpoint could not be bound or connected; says which one and why."""

    def __init__(self, name: str, address: str, reason: str) -> None:
        super().__init__(f"endpoint {name} ({address}): {reason}")
        self.name = name
        self.address = address
        self.reason = reason


@dataclass(frozen=True)
class CurveKeys:
    """The group's CURVE key pair (a zmq.auth secret certificate)."""

    public: bytes
    secret: bytes

    @classmethod
    def load(cls, path: Path) -> CurveKeys:
        """Read a secret certificate written by `zmq.auth.create_certificates`."""
        try:
            public, secret = zmq.auth.load_certificate(str(path))
        except (OSError, ValueError) as exc:
            raise EndpointError("transport.curve_secret_key_file", str(path), str(exc)) from None
        if secret is None:
            raise EndpointError(
                "transport.curve_secret_key_file", str(path), "not a secret certificate"
            )
        return cls(public=public, secret=secret)


def _apply_options(sock: zmq.Socket, transport: TransportSettings) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    # ZeroMQ drops the whole connection on a message over MAXMSGSIZE, silently; the limit
    # here is only the last guard against memory exhaustion. Frames between the configured
    # size and this reach the codec, which refuses them with an answer and a count.
    sock.setsockopt(zmq.MAXMSGSIZE, 2 * transport.max_frame_bytes + 4096)
    sock.setsockopt(zmq.SNDHWM, transport.high_water_mark)
    sock.setsockopt(zmq.RCVHWM, transport.high_water_mark)


def _is_tcp(address: str) -> bool:
    return address.startswith("tcp://")


def bind_socket(
    context: zmq.Context,
    kind: int,
    name: str,
    address: str,
    transport: TransportSettings,
    curve: CurveKeys | None = None,
) -> zmq.Socket:
    """A socket of `kind` bound to `address`; raises EndpointError on failure."""
    sock = context.socket(kind)
    _apply_options(sock, transport)
    if kind == zmq.ROUTER:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
    if kind == zmq.XPUB:
        # Lossy (no XPUB_NODROP): a subscriber that does not keep up loses messages past
        # SNDHWM and catches up by replay; it never blocks the publisher.
        sock.setsockopt(zmq.XPUB_MANUAL, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, SUBSCRIPTION_MAX_BYTES)
        sock.setsockopt(zmq.RCVHWM, SUBSCRIPTION_HWM)
    if curve is not None and _is_tcp(address):
        sock.curve_server = True
        sock.curve_secretkey = curve.secret
        sock.curve_publickey = curve.public
    if address.startswith("ipc://"):
        Path(address[len("ipc://") :]).parent.mkdir(parents=True, exist_ok=True)
    try:
        sock.bind(address)
    except zmq.ZMQError as exc:
        sock.close(0)
        reason = "address already in use" if exc.errno == zmq.EADDRINUSE else exc.strerror
        raise EndpointError(name, address, reason) from None
    return sock


def connect_socket(
    context: zmq.Context,
    kind: int,
    name: str,
    address: str,
    transport: TransportSettings,
    curve: CurveKeys | None = None,
) -> zmq.Socket:
    """A socket of `kind` connected to `address`; raises EndpointError on a bad address."""
    sock = context.socket(kind)
    _apply_options(sock, transport)
    if kind == zmq.SUB:
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    if curve is not None and _is_tcp(address):
        sock.curve_serverkey = curve.public
        sock.curve_publickey = curve.public
        sock.curve_secretkey = curve.secret
    try:
        sock.connect(address)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise EndpointError(name, address, exc.strerror) from None
    return sock
