"""SIGKILL the journal, the cash or the positions process in the middle of hundreds of fills.

The real group runs under runner.py, each books actor in its own process on ipc endpoints.
The test is the execution side: it sends a deposit and several hundred fills to
`journal.ingest`, resending each until it is acknowledged. Halfway, a burst of fills goes out
without waiting for answers, and as soon as the journal has acknowledged the first of them the
target process is killed with SIGKILL; the runner restarts it. Afterwards the books must
equal the pure fold of the same events applied once each, to the digit, and the journal must
hold every event exactly once under gap-free seqs: nothing lost, nothing doubled.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import zmq

from actors.core.accounting import CashLedger, PositionLedger
from actors.runtime.actor import RequestFailed
from actors.runtime.client import RemoteError, RequestClient
from console.replay import REPLAY_ENDPOINTS
from messages import (
    Acknowledgement,
    Acknowledgements,
    DeliveryRefused,
    EventBatch,
    ExecutionReport,
    GetPortfolioState,
    GetProcessHealth,
    OrderStatus,
    PortfolioState,
    ProcessHealth,
    ReplayEvents,
    Side,
    Transfer,
    decode,
    encode,
)
from service.config import ServiceConfig, decimal_context, load_config
from tests.support.factories import execution_report, transfer
from tests.support.group import RunningGroup, group_pids, wait_for, write_config

BOOKS_PROCESSES = {name: [name] for name in ("journal", "cash", "positions", "portfolio")}
FILLS = 360
BURST = 60
"""Fills sent at once, unconfirmed, right before the kill: the target dies mid-work."""
TS0 = 1_700_000_000_000_000_000
DEPOSIT = Decimal("5000000")

MID_PRICES = {
    "XBT/USD": Decimal("60000"),
    "ETH/USD": Decimal("3000"),
    "SOL/USD": Decimal("150"),
    "ETH/XBT": Decimal("0.05"),
}
PRICE_DECIMALS = {"XBT/USD": 1, "ETH/USD": 2, "SOL/USD": 2, "ETH/XBT": 5}
LARGEST_QTY_SATS = {  # the largest fill, in units of 1E-8 (Kraken's lot decimals are 8)
    "XBT/USD": 50_000_000,
    "ETH/USD": 1_000_000_000,
    "SOL/USD": 10_000_000_000,
    "ETH/XBT": 1_000_000_000,
}


# -- the events -------------------------------------------------------------------------------
def _scaled(units: int, decimals: int) -> Decimal:
    return Decimal(units).scaleb(-decimals)


def _price(rng: random.Random, pair: str) -> Decimal:
    """The mid price moved by up to ±5 %, on the pair's tick."""
    decimals = PRICE_DECIMALS[pair]
    mid_ticks = int(MID_PRICES[pair].scaleb(decimals))
    return _scaled(mid_ticks + rng.randint(-mid_ticks // 20, mid_ticks // 20), decimals)


def _fill(rng: random.Random, n: int) -> ExecutionReport:
    """Fill number `n`: a random pair and side, partial or full, fee in quote, base or none."""
    pair = rng.choice(sorted(MID_PRICES))
    base, quote = pair.split("/")
    quantity = _scaled(rng.randint(1, LARGEST_QTY_SATS[pair]), 8)
    fee_choice = rng.random()
    if fee_choice < 0.6:
        fee_currency, fee = quote, _scaled(rng.randint(1, 9_999), 2 if quote == "USD" else 8)
    elif fee_choice < 0.85:
        fee_currency, fee = base, _scaled(rng.randint(1, 9_999), 8)
    else:
        fee_currency, fee = quote, Decimal(0)
    return execution_report(
        exec_id=f"T{n:05d}-CRASH-SAFETY",
        order_id=f"O{n // 3:05d}-CRASH-SAFETY",
        pair=pair,
        side=rng.choice((Side.BUY, Side.SELL)),
        status=rng.choice((OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)),
        last_qty=quantity,
        last_price=_price(rng, pair),
        fee=fee,
        fee_currency=fee_currency,
        quote_rate=_price(rng, "XBT/USD") if quote == "XBT" else None,
        ts_event=TS0 + n,
    )


def book_events() -> list[ExecutionReport | Transfer]:
    """A deposit, then FILLS fills over four pairs (one a cross pair), buys and sells."""
    rng = random.Random(20_240_611)
    deposit = transfer(transfer_id="L00000-CRASH-DEPOSIT", amount=DEPOSIT, ts_event=TS0)
    return [deposit, *(_fill(rng, n) for n in range(1, FILLS + 1))]


def delivery_key(event: ExecutionReport | Transfer) -> str:
    """The key the journal deduplicates on (exec_id, transfer_id)."""
    return getattr(event, type(event).delivery_key)


# -- the group --------------------------------------------------------------------------------
@dataclass
class Group:
    """The running group, its config and one ZeroMQ context for the test's clients."""

    running: RunningGroup
    config: ServiceConfig
    context: zmq.Context

    def client(self, endpoint: str, timeout_ms: int = 500) -> RequestClient:
        return RequestClient(
            self.context,
            endpoint,
            self.config.endpoints[endpoint],
            self.config.transport,
            timeout_ms=timeout_ms,
            retries=0,
        )

    def health(self, process: str) -> ProcessHealth | None:
        """The process's answer on its control endpoint, or None while it does not answer."""
        with RequestClient(
            self.context,
            f"{process}.control",
            self.config.control_endpoint(process),
            self.config.transport,
            timeout_ms=1000,
            retries=0,
        ) as control:
            try:
                answer = control.request(GetProcessHealth(correlation_id="crash-test-health"))
            except (RequestFailed, RemoteError):
                return None
        return answer if isinstance(answer, ProcessHealth) else None


def write_books_config(directory: Path) -> Path:
    run = directory / "run"
    return write_config(
        directory,
        processes=BOOKS_PROCESSES,
        endpoints={name: f"ipc://{run}/{name}.sock" for name in REPLAY_ENDPOINTS},
        exchange_mode="live",  # no exchange-using actor runs, so no paper exchange starts
        # INFO keeps the children's console output (an unread pipe) small.
        extra={"actor_classes": {}, "service": {"log_level": "INFO"}},
    )


@pytest.fixture
def group(tmp_path) -> Iterator[Group]:
    path = write_books_config(tmp_path)
    running = RunningGroup(path)
    context = zmq.Context()
    try:
        running.wait_ready(timeout=40)
        yield Group(running, load_config(path), context)
    finally:
        context.destroy(linger=0)
        assert running.stop() == 0, "the group did not stop cleanly"
        assert group_pids(str(path)) == [], "a process of the group outlived the test"


# -- the execution side -----------------------------------------------------------------------
def deliver(journal: RequestClient, event: ExecutionReport | Transfer, deadline: float) -> int:
    """Send `event` until the journal acknowledges it; its seq.

    No answer, or an ErrorReply, means the journal is down, restarting or could not commit:
    the same event goes again, as the execution actor's reliable channel does.
    """
    key = delivery_key(event)
    while True:
        try:
            answer = journal.request(event, raise_on_error=False)
        except RequestFailed:
            answer = None
        if isinstance(answer, Acknowledgement):
            assert answer.key == key, f"acknowledgement for {answer.key} answered {key}"
            assert answer.seq is not None
            return answer.seq
        assert not isinstance(answer, DeliveryRefused), f"{key} refused: {answer.reason}"
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} was never acknowledged; last answer {answer!r}")


def send_burst_then_kill(group: Group, burst: list, pid: int) -> dict[str, int]:
    """Send `burst` without waiting; once the journal has answered the first, SIGKILL `pid`.

    Waiting for that first answer makes sure the journal is working through the burst (and
    the followers folding it) when the kill lands. Returns the seqs of the burst's events
    acknowledged before the kill: as a reliable sender would, the test trusts those and
    sends them no more.
    """
    sock = group.context.socket(zmq.DEALER)
    sock.linger = 0
    acknowledged: dict[str, int] = {}
    try:
        sock.connect(group.config.endpoints["journal.ingest"])
        for event in burst:
            sock.send_multipart([b"", encode(event)])
        if not sock.poll(10_000, zmq.POLLIN):
            raise AssertionError("the journal did not answer the burst within 10 s")
        os.kill(pid, signal.SIGKILL)
        while sock.poll(0, zmq.POLLIN):  # answers that were on their way before the kill
            answer = decode(sock.recv_multipart()[-1])
            for ack in answer.acks if isinstance(answer, Acknowledgements) else (answer,):
                if isinstance(ack, Acknowledgement) and ack.seq is not None:
                    acknowledged[ack.key] = ack.seq
    finally:
        sock.close(linger=0)
    return acknowledged


def portfolio_at(group: Group, seq: int, timeout: float = 30.0) -> PortfolioState:
    """Poll the portfolio until its snapshot is at exactly `seq`."""

    def reached() -> PortfolioState | None:
        with group.client("portfolio.query") as portfolio:
            try:
                state = portfolio.request(GetPortfolioState(correlation_id="crash-test-state"))
            except (RequestFailed, RemoteError):
                return None  # restarting, or catching up with cash and positions
        assert isinstance(state, PortfolioState)
        assert state.seq <= seq, f"the portfolio is at seq {state.seq}, beyond the log's {seq}"
        return state if state.seq == seq else None

    return wait_for(reached, timeout=timeout, interval=0.05)


def replay_log(group: Group) -> tuple[int, list]:
    """The journal's head seq and every event of the log, through `journal.replay`."""
    events: list = []
    deadline = time.monotonic() + 20
    with group.client("journal.replay", timeout_ms=2000) as journal:
        while True:
            batch = journal.request(
                ReplayEvents(
                    correlation_id=f"crash-test-replay-{len(events)}",
                    from_seq=len(events) + 1,
                    to_seq=None,
                    max_events=1000,
                )
            )
            assert isinstance(batch, EventBatch)
            events.extend(batch.events)
            if batch.complete and (not batch.events or events[-1].seq >= batch.head_seq):
                return batch.head_seq, events
            assert time.monotonic() < deadline, "replaying the journal took more than 20 s"


def fold(
    config: ServiceConfig, events_by_seq: dict[int, object]
) -> tuple[CashLedger, PositionLedger]:
    """The pure fold of the events, each once, in seq order: what the books must show."""
    accounting = config.accounting
    ledgers = tuple(
        ledger(
            cash_currencies=accounting.cash_currencies,
            valuation_currency=accounting.valuation_currency,
            context=decimal_context(config),
        )
        for ledger in (CashLedger, PositionLedger)
    )
    for seq in sorted(events_by_seq):
        for ledger in ledgers:
            ledger.apply(seq, events_by_seq[seq])
    return ledgers


def digits(value: Decimal) -> tuple[Decimal, str]:
    """A Decimal and its exact text: equal only if equal to the digit."""
    return value, str(value)


# -- the test ---------------------------------------------------------------------------------
@pytest.mark.timeout(90)
@pytest.mark.parametrize("target", ["journal", "cash", "positions"])
def test_a_sigkill_mid_stream_loses_nothing_and_doubles_nothing(group, target):
    events = book_events()
    half, three_quarters = len(events) // 2, len(events) * 3 // 4
    seqs: dict[str, int] = {}
    deadline = time.monotonic() + 45

    def send(part: list) -> None:
        for event in part:
            if delivery_key(event) not in seqs:  # acknowledged once is delivered for good
                seqs[delivery_key(event)] = deliver(journal, event, deadline)

    def restarted() -> ProcessHealth | None:
        health = group.health(target)
        return health if health and health.pid != before.pid and health.ready else None

    with group.client("journal.ingest", timeout_ms=300) as journal:
        send(events[:half])
        before = wait_for(lambda: group.health(target), timeout=10)
        seqs |= send_burst_then_kill(group, events[half : half + BURST], before.pid)
        send(events[half:three_quarters])  # while the target is down or coming back
        after = wait_for(restarted, timeout=20)
        send(events[three_quarters:])  # live to a process that may still be catching up
    assert [pong.actor for pong in after.actors] == [target]

    # Every event was acknowledged with its own seq, and the seqs are 1..N without a gap.
    assert sorted(seqs.values()) == list(range(1, len(events) + 1))
    head = len(events)

    # The journal holds each event exactly once, under the seq it acknowledged.
    replayed_head, logged = replay_log(group)
    assert replayed_head == head
    assert [entry.seq for entry in logged] == list(range(1, head + 1))
    keys = Counter(delivery_key(entry.event) for entry in logged)
    assert keys == Counter(delivery_key(event) for event in events)
    by_key = {delivery_key(event): event for event in events}
    for entry in logged:
        key = delivery_key(entry.event)
        assert seqs[key] == entry.seq and entry.event == by_key[key], f"seq {entry.seq}"

    # The books equal the pure fold of the same events applied once each, to the digit.
    state = portfolio_at(group, head)
    cash, positions = fold(group.config, {seqs[key]: event for key, event in by_key.items()})
    assert {c: digits(v) for c, v in state.cash.items()} == {
        c: digits(v) for c, v in cash.balances.items()
    }
    assert set(state.positions) == set(positions.positions) == {"XBT", "ETH", "SOL"}
    for asset, book in positions.positions.items():
        shown = state.positions[asset]
        assert digits(shown.quantity) == digits(book.quantity), asset
        assert digits(shown.average_cost) == digits(book.average_cost), asset
        assert digits(shown.realized_pnl) == digits(book.realized_pnl), asset
        assert digits(shown.fees) == digits(book.fees), asset
