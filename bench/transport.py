"""Transport benchmark: raw pyzmq against the actor runtime, measured in one run.

    python bench/transport.py [--round-trips N] [--messages N]

1. raw pyzmq DEALER/ROUTER across processes: round trip of a pre-encoded payload (an echo
   server that does not decode), and one-way messages/s of the same bytes;
2. the runtime across processes (runner.py starts a process hosting a real actor):
   typed request/reply (encode, send, decode, dispatch, handler, encode, reply, decode) and
   one-way typed ExecutionReports (encoded by the sender, decoded and dispatched by the actor);
3. the same runtime with the actor in this process over inproc://.
Prints p50 / p99 round trip, messages/s and the ratios runtime / raw.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.runtime.client import RequestClient  # noqa: E402
from actors.runtime.host import ActorHost  # noqa: E402
from messages import (  # noqa: E402
    ExecutionReport,
    GetPortfolioState,
    OrderStatus,
    Ping,
    Side,
)
from messages.codec import decode, encode  # noqa: E402
from service.config import load_config  # noqa: E402
from service.group import RunningGroup, write_config  # noqa: E402
from service.registry import ACTOR_CLASSES  # noqa: E402

REPORT = ExecutionReport(
    exec_id="TABCDE-FGHIJ-KLMNOP",
    order_id="OABCDE-FGHIJ-KLMNOP",
    pair="XBT/USD",
    side=Side.BUY,
    status=OrderStatus.PARTIALLY_FILLED,
    last_qty=Decimal("0.01250000"),
    last_price=Decimal("60123.4"),
    fee=Decimal("1.95401"),
    fee_currency="USD",
    quote_rate=None,
    ts_event=1_700_000_000_000_000_000,
    ts_init=1_700_000_000_000_000_001,
)


def raw_server(address: str, ready: Any) -> None:
    """A raw pyzmq ROUTER on `address` (a process's main): echoes every frame, counts
    `oneway` frames (and decodes `decode` ones) until `count`, ends on `stop`."""
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.bind(address)
    ready.set()
    count = 0
    while True:
        frames = sock.recv_multipart()
        body = frames[-1]
        if body == b"stop":
            break
        if body == b"count":
            sock.send_multipart([*frames[:-1], str(count).encode()])
            count = 0
        elif body.startswith(b"oneway"):
            count += 1
        elif body.startswith(b"decode"):
            decode(body[6:])
            count += 1
        else:
            sock.send_multipart(frames)
    sock.close(0)
    context.term()


def _percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class RawServerError(RuntimeError):
    """The raw echo server did not start."""


class RawEcho:
    """`raw_server` in a process of its own, and a DEALER to it: the raw round trip,
    measurable at any moment of a run (always closed)."""

    def __init__(self, address: str, payload: bytes, context: zmq.Context) -> None:
        ready = multiprocessing.Event()
        self._server = multiprocessing.Process(
            target=raw_server, args=(address, ready), daemon=True
        )
        self._server.start()
        if not ready.wait(10):
            self._server.kill()
            raise RawServerError("the raw echo server did not start within 10 s")
        self._payload = payload
        self._sock = context.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVTIMEO, 5000)
        self._sock.connect(address)

    def round_trip(self) -> float:
        """One echo of the payload (µs)."""
        t0 = time.perf_counter_ns()
        self._sock.send_multipart([b"", self._payload])
        self._sock.recv_multipart()  # RCVTIMEO: zmq.Again after 5 s
        return (time.perf_counter_ns() - t0) / 1000

    def round_trips(self, count: int) -> list[float]:
        """`count` echoes back to back (µs each)."""
        return [self.round_trip() for _ in range(count)]

    def send(self, body: bytes) -> None:
        """Send one frame to the server (`oneway...`, `decode...`, `count`)."""
        self._sock.send_multipart([b"", body])

    def receive(self) -> bytes:
        """The server's next answer."""
        return self._sock.recv_multipart()[-1]

    def close(self) -> None:
        """Stop the server (killed if it does not stop within 5 s) and close the socket."""
        try:
            self._sock.send_multipart([b"", b"stop"], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        self._sock.close(0)
        self._server.join(5)
        if self._server.is_alive():
            self._server.kill()
            self._server.join(5)


def raw_pyzmq(address: str, round_trips: int, messages: int, payload: bytes) -> dict:
    context = zmq.Context()
    echo = RawEcho(address, payload, context)
    try:
        echo.round_trips(200)
        samples = echo.round_trips(round_trips)
        oneway = b"oneway" + payload
        t0 = time.perf_counter()
        for _ in range(messages):
            echo.send(oneway)
        echo.send(b"count")
        got = int(echo.receive())
        elapsed = time.perf_counter() - t0
        assert got == messages, (got, messages)
        t0 = time.perf_counter()
        for _ in range(messages):
            echo.send(b"decode" + encode(REPORT))
        echo.send(b"count")
        got = int(echo.receive())
        coded_elapsed = time.perf_counter() - t0
        assert got == messages, (got, messages)
    finally:
        echo.close()
        context.term()
    return {"rtt": samples, "rate": messages / elapsed, "coded_rate": messages / coded_elapsed}


def _runtime(context: zmq.Context, config, round_trips: int, messages: int) -> dict:
    address = config.endpoints["bench.sink"]
    with RequestClient(context, "bench.sink", address, config.transport, timeout_ms=5000) as client:
        for i in range(200):
            client.request(Ping(correlation_id=f"w{i}", sent_ns=0))
        samples = []
        for i in range(round_trips):
            ping = Ping(correlation_id=f"p{i}", sent_ns=i)
            t0 = time.perf_counter_ns()
            client.request(ping)
            samples.append((time.perf_counter_ns() - t0) / 1000)
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.connect(address)
        before = client.request(GetPortfolioState(correlation_id="c0")).seq
        t0 = time.perf_counter()
        for _ in range(messages):
            sock.send_multipart([b"", encode(REPORT)])
        while client.request(GetPortfolioState(correlation_id="c1")).seq < before + messages:
            pass
        elapsed = time.perf_counter() - t0
        sock.close(0)
    return {"rtt": samples, "rate": messages / elapsed}


def _summary(name: str, result: dict) -> str:
    rtt = result["rtt"]
    return (
        f"{name:<34} p50 {statistics.median(rtt):8.1f} µs   p99 {_percentile(rtt, 99):8.1f} µs"
        f"   one-way {result['rate']:10,.0f} msg/s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=50000)
    args = parser.parse_args()
    payload = encode(Ping(correlation_id="p1", sent_ns=1))
    assert decode(payload)
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as tmp:
        tmp_path = Path(tmp)
        raw = raw_pyzmq(
            f"ipc://{tmp_path}/raw.sock", args.round_trips, args.messages, encode(REPORT)
        )
        classes = {"sink": "bench.actors:SinkActor"}
        path = write_config(
            tmp_path,
            processes={"sink": ["sink"]},
            endpoints={"bench.sink": f"ipc://{tmp_path}/run/sink.sock"},
            extra={"actor_classes": classes, "service": {"log_level": "WARNING"}},
        )
        group = RunningGroup(path)
        try:
            group.wait_ready()
            context = zmq.Context()
            try:
                apart = _runtime(context, load_config(path), args.round_trips, args.messages)
            finally:
                context.destroy(linger=0)
        finally:
            group.stop()
        (tmp_path / "inproc").mkdir()
        path = write_config(
            tmp_path / "inproc",
            processes={"sink": ["sink"]},
            endpoints={"bench.sink": "inproc://bench.sink"},
            extra={"actor_classes": classes, "service": {"log_level": "WARNING"}},
        )
        config = load_config(path)
        context = zmq.Context()
        from loguru import logger

        logger.remove()
        host = ActorHost(config, "sink", registry=ACTOR_CLASSES, context=context)
        host.start()
        try:
            together = _runtime(context, config, args.round_trips, args.messages)
        finally:
            host.stop()
            context.destroy(linger=0)
    print(f"transport benchmark ({args.round_trips} round trips, {args.messages} one-way messages)")
    print(_summary("raw pyzmq, 2 processes (ipc)", raw))
    coded_label = "raw pyzmq + encode/decode, 2 proc."
    print(f"{coded_label:<34} {'':>44}one-way {raw['coded_rate']:10,.0f} msg/s")
    print(_summary("runtime, 2 processes (ipc)", apart))
    print(_summary("runtime, 1 process (inproc)", together))
    raw_p50 = statistics.median(raw["rtt"])
    print("ratios (runtime / raw pyzmq, same run):")
    print(f"  round trip p50, 2 processes: {statistics.median(apart['rtt']) / raw_p50:.2f}x")
    print(f"  round trip p50, 1 process:   {statistics.median(together['rtt']) / raw_p50:.2f}x")
    coded = raw["coded_rate"]
    print(f"  one-way msg/s, 2 processes:  {apart['rate'] / coded:.0%} of raw with encode/decode")
    print(
        f"  one-way msg/s, 1 process:    {together['rate'] / coded:.0%} of raw with encode/decode"
    )
    print(f"  (raw with encode/decode is {coded / raw['rate']:.0%} of raw bytes alone)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
