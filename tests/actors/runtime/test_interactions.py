"""The runtime's patterns, between real actors, placed together (inproc) or apart (ipc).

The same tests run against both placements: that placement is configuration and nothing
else is the runtime's promise.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import zmq

from actors.runtime.actor import RequestFailed
from actors.runtime.client import RemoteError, RequestClient
from actors.runtime.host import ActorHost
from messages import (
    ErrorCode,
    ErrorReply,
    GetPortfolioState,
    Ping,
    Pong,
    ReplayEvents,
)
from service.config import load_config
from service.registry import ACTOR_CLASSES
from tests.support.factories import execution_report
from tests.support.group import RunningGroup, wait_for, write_config


@dataclass
class Placement:
    context: zmq.Context
    config: object

    def client(self, endpoint: str) -> RequestClient:
        return RequestClient(
            self.context, endpoint, self.config.endpoints[endpoint], self.config.transport
        )


ENDPOINT_NAMES = ("test.ingest", "test.events", "test.replay", "follower.query", "feeder.control")


def _endpoints(scheme: str, tmp_path) -> dict[str, str]:
    if scheme == "inproc":
        return {name: f"inproc://{name}" for name in ENDPOINT_NAMES} | {
            "test.replay": "inproc://test.ingest"
        }
    run = tmp_path / "run"
    return {name: f"ipc://{run}/{name}.sock" for name in ENDPOINT_NAMES} | {
        "test.replay": f"ipc://{run}/test.ingest.sock"
    }


@pytest.fixture(params=["inproc", "ipc"])
def placement(request, tmp_path) -> Iterator[Placement]:
    if request.param == "inproc":
        path = write_config(
            tmp_path,
            processes={"all": ["ingest", "follower", "feeder"]},
            endpoints=_endpoints("inproc", tmp_path),
        )
        config = load_config(path)
        context = zmq.Context()
        host = ActorHost(config, "all", registry=ACTOR_CLASSES, context=context)
        host.start()
        try:
            yield Placement(context, config)
        finally:
            host.stop()
            context.destroy(linger=0)
    else:
        path = write_config(
            tmp_path,
            processes={"ingest": ["ingest"], "follower": ["follower"], "feeder": ["feeder"]},
            endpoints=_endpoints("ipc", tmp_path),
        )
        group = RunningGroup(path)
        try:
            group.wait_ready()
            context = zmq.Context()
            try:
                yield Placement(context, load_config(path))
            finally:
                context.destroy(linger=0)
        finally:
            assert group.stop() == 0


def seq_of(placement: Placement, endpoint: str) -> int:
    with placement.client(endpoint) as client:
        return client.request(GetPortfolioState(correlation_id=client.new_correlation_id())).seq


def wait_seq(placement: Placement, endpoint: str, expected: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = seq_of(placement, endpoint)
        if seen == expected:
            return
        time.sleep(0.02)
    raise AssertionError(f"{endpoint} at seq {seen}, expected {expected}")


def test_request_reply_answers_ping_with_the_actors_counters(placement):
    with placement.client("test.ingest") as client:
        pong = client.request(Ping(correlation_id="p-1", sent_ns=123))
    assert isinstance(pong, Pong)
    assert pong.actor == "ingest" and pong.correlation_id == "p-1" and pong.sent_ns == 123


def test_reliable_channel_delivers_each_report_once_and_subscribers_follow(placement):
    with placement.client("feeder.control") as feeder:
        for n in range(1, 51):
            feeder.request(execution_report(n=n))
        # The reliable channel keeps one entry per delivery key in flight, so the same trade
        # is sent again only once its first send is acknowledged.
        wait_seq(placement, "feeder.control", 50)
        # the same trade again: acknowledged, not sequenced twice
        feeder.request(execution_report(n=7))
    wait_seq(placement, "follower.query", 50)
    wait_seq(placement, "feeder.control", 51)  # every send acknowledged, the duplicate too
    with placement.client("test.replay") as replay:
        batch = replay.request(
            ReplayEvents(correlation_id="r-1", from_seq=1, to_seq=None, max_events=100)
        )
    assert [e.seq for e in batch.events] == list(range(1, 51))
    assert [e.event.exec_id for e in batch.events] == [
        execution_report(n=n).exec_id for n in range(1, 51)
    ]
    assert batch.head_seq == 50 and batch.complete


def test_reliable_sends_answered_together_in_one_frame_are_each_acknowledged(placement):
    with placement.client("feeder.control") as feeder:
        for n in range(1, 4):  # the ingest holds these and answers them in one frame
            feeder.request(execution_report(n=n, pair="ETH/USD"))
    wait_seq(placement, "feeder.control", 3)  # every one acknowledged...
    with placement.client("test.ingest") as ingest:
        pong = ingest.request(Ping(correlation_id="p-acks", sent_ns=1))
    assert pong.counters["duplicates"] == 0  # ...by that one frame, none sent again


def test_a_failing_handler_is_answered_counted_and_the_actor_keeps_serving(placement):
    with placement.client("test.ingest") as client:
        with pytest.raises(RemoteError) as failure:
            client.request(execution_report(n=1, pair="BOOM/USD"))
        assert failure.value.reply.code is ErrorCode.HANDLER_FAILED
        assert "this pair makes the handler fail" in failure.value.reply.detail
        ack = client.request(execution_report(n=2))
        assert ack.seq == 1
        pong = client.request(Ping(correlation_id="p-2", sent_ns=1))
    assert pong.failed == 1 and pong.handled >= 1


@pytest.mark.parametrize("garbage", [b"", b"\x00\x01garbage", b"\x93\xa4Nope\x01\x80"])
def test_malformed_frames_are_refused_counted_and_the_actor_keeps_serving(placement, garbage):
    sock = placement.context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(placement.config.endpoints["test.ingest"])
    try:
        sock.send_multipart([b"", garbage])
        assert sock.poll(5000), "no answer to a malformed frame"
        from messages.codec import decode

        answer = decode(sock.recv_multipart()[-1])
    finally:
        sock.close(0)
    assert isinstance(answer, ErrorReply) and answer.code is ErrorCode.MALFORMED
    with placement.client("test.ingest") as client:
        pong = client.request(Ping(correlation_id="p-3", sent_ns=1))
    assert pong.malformed == 1


def test_a_subscriber_that_sees_a_gap_asks_for_a_replay_and_catches_up(placement):
    with placement.client("test.ingest") as ingest:
        for n in range(1, 6):
            ingest.request(execution_report(n=n))
    wait_seq(placement, "follower.query", 5)
    with placement.client("follower.query") as follower:
        forgot = follower.request(
            ReplayEvents(correlation_id="f-1", from_seq=2, to_seq=None, max_events=1)
        )
    assert forgot.seq == 1
    with placement.client("test.ingest") as ingest:
        ingest.request(execution_report(n=6))  # seq 6 arrives while the follower is at 1: a gap
    wait_seq(placement, "follower.query", 6)


def test_a_frame_over_the_configured_size_is_refused_and_the_actor_keeps_serving(tmp_path):
    path = write_config(
        tmp_path,
        processes={"all": ["ingest"]},
        endpoints={"test.ingest": "inproc://ingest", "test.events": "inproc://events"},
        extra={"transport": {"max_frame_bytes": 4096}},
    )
    config = load_config(path)
    context = zmq.Context()
    host = ActorHost(config, "all", registry=ACTOR_CLASSES, context=context)
    host.start()
    try:
        big = context.socket(zmq.DEALER)
        big.setsockopt(zmq.LINGER, 0)
        big.connect(config.endpoints["test.ingest"])
        big.send_multipart([b"", b"\x00" * 10_000])
        assert big.poll(5000), "an oversized frame gets an answer"
        from messages.codec import decode

        refusal = decode(big.recv_multipart()[-1])
        big.close(0)
        assert isinstance(refusal, ErrorReply) and refusal.code is ErrorCode.MALFORMED
        assert "exceeds the limit of 4096" in refusal.detail
        client = RequestClient(
            context, "test.ingest", config.endpoints["test.ingest"], config.transport
        )
        with client:
            pong = client.request(Ping(correlation_id="after", sent_ns=1))
        assert pong.malformed == 1 and pong.actor == "ingest"
    finally:
        host.stop()
        context.destroy(linger=0)


def test_curve_secures_a_tcp_endpoint_beyond_loopback(tmp_path):
    import socket

    import zmq.auth

    from actors.runtime.sockets import CurveKeys

    _, server_secret = zmq.auth.create_certificates(str(tmp_path), "group")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "group.key").write_bytes((tmp_path / "group.key").read_bytes())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://0.0.0.0:{port}"
    path = write_config(
        tmp_path,
        processes={"all": ["ingest"]},
        endpoints={"test.ingest": address, "test.events": "inproc://events"},
        extra={
            "transport": {
                "curve_secret_key_file": server_secret,
                "curve_public_keys_dir": str(allowed),
            }
        },
    )
    config = load_config(path)
    context = zmq.Context()
    host = ActorHost(config, "all", registry=ACTOR_CLASSES, context=context)
    host.start()
    try:
        target = f"tcp://127.0.0.1:{port}"
        keys = CurveKeys.load(tmp_path / "group.key_secret")
        with RequestClient(context, "test.ingest", target, config.transport, curve=keys) as client:
            assert client.request(Ping(correlation_id="curve", sent_ns=1)).actor == "ingest"
        plain = RequestClient(context, "test.ingest", target, config.transport, retries=0)
        with plain, pytest.raises(RequestFailed):
            plain.request(Ping(correlation_id="plain", sent_ns=1))
    finally:
        host.stop()
        context.destroy(linger=0)


def _subscriber(context: zmq.Context, address: str, kind: int = zmq.SUB, topic: bytes = b""):
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if kind == zmq.SUB:
        sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.connect(address)
    return sock


def _received_seqs(sock: zmq.Socket, quiet_ms: int = 300) -> list[int]:
    """The seqs of the events published to `sock` until nothing more comes for `quiet_ms`."""
    from messages.codec import decode

    seqs = []
    while sock.poll(quiet_ms, zmq.POLLIN):
        seqs.append(decode(sock.recv()).seq)
    return seqs


def _publish_until_received(placement: Placement, subscribers: list[zmq.Socket]) -> int:
    """Ingest reports until every subscriber got one (a subscription takes effect once the
    publisher has read it); the seq of the last, after which each gets every event."""
    deadline = time.monotonic() + 10
    waiting = list(subscribers)
    n = 9000
    with placement.client("test.ingest") as ingest:
        while waiting and time.monotonic() < deadline:
            n += 1
            last = ingest.request(execution_report(n=n)).seq
            waiting = [sock for sock in waiting if not sock.poll(50, zmq.POLLIN)]
    assert not waiting, "a subscriber never received an event"
    for sock in subscribers:
        _received_seqs(sock, quiet_ms=100)
    return last


def test_a_publisher_delivers_every_event_once_to_each_subscriber_of_everything(placement):
    address = placement.config.endpoints["test.events"]
    plain = _subscriber(placement.context, address)
    also_topics = _subscriber(placement.context, address)
    for n in range(50):  # each one a subscribe-all for the publisher: one entry, not 51
        also_topics.setsockopt(zmq.SUBSCRIBE, f"topic {n}".encode())
    try:
        last = _publish_until_received(placement, [plain, also_topics])
        with placement.client("test.ingest") as ingest:
            for n in range(1, 21):
                ingest.request(execution_report(n=n))
        expected = list(range(last + 1, last + 21))
        assert _received_seqs(plain) == expected
        assert _received_seqs(also_topics) == expected
    finally:
        plain.close(0)
        also_topics.close(0)
    with placement.client("test.ingest") as client:
        pong = client.request(Ping(correlation_id="p-subs", sent_ns=1))
    assert pong.counters["subscriptions"] >= 52 and pong.counters["subscription_resets"] == 0


def test_frames_on_a_publishing_socket_that_are_no_subscription_are_counted_and_ignored(placement):
    address = placement.config.endpoints["test.events"]
    garbage = _subscriber(placement.context, address, kind=zmq.XSUB)
    plain = _subscriber(placement.context, address)
    try:
        for frame in (b"", b"\x02not a subscription", b"\x93\xa4Nope\x01\x80"):
            garbage.send(frame)
        garbage.send(b"\x00never subscribed")  # an unsubscription: ignored, not counted

        def malformed() -> int:
            with placement.client("test.ingest") as client:
                return client.request(Ping(correlation_id="p-garbage", sent_ns=1)).malformed

        wait_for(lambda: malformed() >= 3)
        assert malformed() == 3
        last = _publish_until_received(placement, [plain])
        with placement.client("test.ingest") as ingest:
            for n in range(1, 6):
                ingest.request(execution_report(n=n))
        assert _received_seqs(plain) == list(range(last + 1, last + 6))
    finally:
        garbage.close(0)
        plain.close(0)


def test_a_publisher_past_its_topic_budget_is_reopened_and_subscribers_come_back(placement):
    import os

    from actors.runtime.sockets import SUBSCRIPTION_TOPIC_BUDGET

    address = placement.config.endpoints["test.events"]
    plain = _subscriber(placement.context, address)
    flood = _subscriber(placement.context, address, kind=zmq.XSUB)

    def counters() -> dict[str, int]:
        with placement.client("test.ingest") as client:
            return client.request(Ping(correlation_id="p-resets", sent_ns=1)).counters

    try:
        _publish_until_received(placement, [plain])
        subscribed = counters()["subscriptions"]
        flood_size = SUBSCRIPTION_TOPIC_BUDGET // 200 + 1
        for _ in range(flood_size):
            flood.send(b"\x01" + os.urandom(200))
        if address.startswith("inproc://"):
            # only this process reaches it, and inproc peers would not come back: kept open
            wait_for(lambda: counters()["subscriptions"] >= subscribed + flood_size)
            assert counters()["subscription_resets"] == 0
        else:
            wait_for(lambda: counters()["subscription_resets"] >= 1)
        flood.close(0)
        last = _publish_until_received(placement, [plain])  # it reconnected by itself
        with placement.client("test.ingest") as ingest:
            for n in range(1, 6):
                ingest.request(execution_report(n=n))
        assert _received_seqs(plain) == list(range(last + 1, last + 6))
    finally:
        flood.close(0)
        plain.close(0)


def test_a_subscriber_with_curve_keys_receives_from_a_publisher_beyond_loopback(tmp_path):
    import socket

    import zmq.auth

    _, server_secret = zmq.auth.create_certificates(str(tmp_path), "group")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "group.key").write_bytes((tmp_path / "group.key").read_bytes())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = write_config(
        tmp_path,
        processes={"all": ["ingest"]},
        endpoints={"test.ingest": "inproc://ingest", "test.events": f"tcp://0.0.0.0:{port}"},
        extra={
            "transport": {
                "curve_secret_key_file": server_secret,
                "curve_public_keys_dir": str(allowed),
            }
        },
    )
    config = load_config(path)
    context = zmq.Context()
    host = ActorHost(config, "all", registry=ACTOR_CLASSES, context=context)
    host.start()
    try:
        public, secret = zmq.auth.load_certificate(str(tmp_path / "group.key_secret"))
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.curve_serverkey, sub.curve_publickey, sub.curve_secretkey = public, public, secret
        sub.connect(f"tcp://127.0.0.1:{port}")
        try:  # the CURVE handshake fits the publishing socket's small frame limit
            _publish_until_received(Placement(context, config), [sub])
        finally:
            sub.close(0)
    finally:
        host.stop()
        context.destroy(linger=0)
