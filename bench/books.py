"""Books benchmark: the books' speed and memory through the real process group, in one run.

    python bench/books.py [--quick] [--events N] [--fills N] [--round-trips N] [--window N]

The group is started by runner.py: journal, cash, positions and portfolio placed in processes
as config.yaml places them (journal; positions; books: cash and portfolio); process `sender`
hosts `FillSenderActor` (bench/books_support.py), which plays the
execution actor: `send_reliable("journal.ingest", ...)` of valid fills (buys and sells on
XBT/USD, ETH/USD, SOL/USD, fees in USD) after a USD deposit. journal.synchronous is FULL (the
shipped default) unless said otherwise; (a) is also given at NORMAL.

(a) fills/s from the sender's first send until the state query's seq reaches the last fill's
    seq (M fills as fast as the in-flight window allows, once the log holds 10,000 events;
    the median of 3 such runs, as is (d));
(b) GetPortfolioState round trip p50 / p99 from a RequestClient, idle and while the sender
    paces 2,000 fills/s (and 500 fills/s, a quarter of that load); beside each, as many
    round trips alternated one for one with a raw pyzmq echo of a state-sized frame, so
    that both see the same conditions; and again with the books process pinned to one CPU
    (`processes.books.cpus`) and the querying client on the same CPU, beside a raw echo
    pinned the same way, and (a) once more in that group (Linux, 2 CPUs or more);
(c) fill-to-visible latency at 1,000 fills/s: the first moment the state query answers with
    a seq at or past the fill's, minus the fill's ts_init (stamped at send);
(d) (a) again once the log holds N events (default 1,000,000), against (a) at 10,000;
(e) restart over those N events: the log is written beforehand through `JournalStore`, the
    group starts with no follower snapshot, and the time runs from launching runner.py until
    the state shows seq N; and again once the followers have saved their snapshots (at the
    end of (d)), as a restart of the shipped service does: snapshot, then the tail;
(f) RSS (VmRSS; VmHWM is the peak) of every process of the group and of runner.py, at the
    end of the big run.
Beside them, in the same run: the raw pyzmq DEALER/ROUTER round trip (bench/transport.py's
measurement) and a naive baseline (one class, an asyncio.Lock, the same pure fold, one
process) over the same fills, as ratios. The group's books are also checked against that
fold: the same events must give the same books, to the digit.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import decimal
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq
from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.core.accounting import CashLedger, PositionBook, PositionLedger  # noqa: E402
from actors.journal_store import JournalStore  # noqa: E402
from actors.runtime.actor import RequestFailed  # noqa: E402
from actors.runtime.client import RemoteError, RequestClient  # noqa: E402
from actors.runtime.host import set_affinity  # noqa: E402
from actors.translate import position_state  # noqa: E402
from bench.books_support import (  # noqa: E402
    SENDER_ENDPOINT,
    SenderControl,
    SenderStatus,
    bench_deposit,
    bench_fill,
    shipped_placement,
)
from bench.transport import RawEcho, RawServerError  # noqa: E402
from bench.transport import raw_pyzmq as raw_pyzmq_round_trips  # noqa: E402
from console.replay import REPLAY_ENDPOINTS  # noqa: E402
from messages import (  # noqa: E402
    EventBatch,
    ExecutionReport,
    GetPortfolioState,
    GetProcessHealth,
    PortfolioState,
    ProcessHealth,
    ReplayEvents,
    Transfer,
)
from messages.codec import encode  # noqa: E402
from service.config import ServiceConfig, load_config  # noqa: E402
from service.group import RunningGroup, write_config  # noqa: E402

DEPOSIT = Decimal("100000000")
"""USD deposited before the fills: far more than their fees and price moves ever take."""

WARM_LOG_EVENTS = 10_000
"""The log's size when (a) starts: the 'after 10,000 journaled events' side of (d)."""

LOADED_RATE = 2_000
"""Fills/s the sender paces while (b) is measured under load."""

LIGHT_RATE = 500
"""A quarter of that load: (b) again, to show how much of the slowdown the volume explains."""

LATENCY_RATE = 1_000
"""Fills/s the sender paces while (c) is measured."""

THROUGHPUT_POLL_SECONDS = 0.005
"""Between two state queries while (a) / (d) run: fine enough against runs of seconds, light
enough not to slow what it measures."""

BOOKS_ACTORS = ("journal", "cash", "positions", "portfolio")
"""The actors this benchmark loads, placed in processes as config.yaml places them (the
journal alone, the folds and the read model together); prices and drawdown live in another
process there, so they are not part of what it loads."""

BOOKS_PLACEMENT = shipped_placement(ROOT / "config.yaml", BOOKS_ACTORS)

SENDER_PROCESS = "sender"
SENDER_ACTOR = "bench_sender"

SHIPPED_TRANSPORT = {"request_timeout_ms": 1000, "request_retries": 3, "reliable_resend_ms": 1000}
"""config.yaml's transport defaults (the test helper's config shortens them)."""


class BenchError(RuntimeError):
    """A phase of the benchmark could not complete; the message says which and why."""


PHASE_FAILURES = (BenchError, RawServerError, RequestFailed, RemoteError, AssertionError)
"""What ends one group's measures (AssertionError: runner.py never said ready) while the
other groups still run and the report still shows what was measured."""


# -- small measures ------------------------------------------------------------------------------


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (nearest rank, p in 0..100) of `samples`."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(p / 100 * len(ordered))))]


def memory_of(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of process `pid`, in KiB, from /proc/PID/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds process `pid` has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND  # utime, stime


class CpuMeter:
    """Cores each process kept busy between `__init__` and `cores()` (1.0 = one full core)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._started = time.monotonic()
        self._cpu = {name: cpu_seconds_of(pid) for name, pid in pids.items()}

    def cores(self) -> dict[str, float]:
        """Per process: CPU seconds used since the start / wall seconds since the start."""
        wall = time.monotonic() - self._started
        return {
            name: (cpu_seconds_of(pid) - self._cpu[name]) / wall for name, pid in self._pids.items()
        }


def cores_text(cores: dict[str, float]) -> str:
    """'books 1.00, sender 0.35, ...' (cores busy per process)."""
    return ", ".join(f"{name} {busy:.2f}" for name, busy in cores.items())


def wait_until(
    what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.02
) -> Any:
    """Poll `predicate` until it returns something truthy; BenchError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)  # poll interval of a loop bounded by `deadline`
    raise BenchError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


# -- the naive baseline -------------------------------------------------------------------------


class NaiveBooks:
    """The baseline: one object owns cash and positions; an asyncio.Lock serializes changes.

    It folds events with the service's own pure ledgers (`CashLedger`, `PositionLedger`), so
    service / naive measures the service's machinery (wire, journal, processes), not its
    accounting. No durability, no validation, no process boundary.
    """

    def __init__(self, context: decimal.Context) -> None:
        self._lock = asyncio.Lock()
        settings = {"cash_currencies": ("USD",), "valuation_currency": "USD", "context": context}
        self.cash = CashLedger(**settings)
        self.positions = PositionLedger(**settings)

    async def apply(self, event: ExecutionReport | Transfer) -> int:
        """Fold the next event into both parts; returns its seq."""
        async with self._lock:
            seq = self.cash.seq + 1
            self.cash.apply(seq, event)
            self.positions.apply(seq, event)
            return seq

    async def state(self) -> tuple[int, dict[str, Decimal], dict[str, PositionBook]]:
        """One consistent copy: (seq, balances, positions)."""
        async with self._lock:
            return self.cash.seq, dict(self.cash.balances), dict(self.positions.positions)


@dataclass(frozen=True)
class NaiveResult:
    """The baseline over `fills` fills: fills/s, state read p50 (µs), and its final books."""

    fills: int
    fills_per_second: float
    state_read_p50_us: float
    seq: int
    cash: dict[str, Decimal]
    positions: dict[str, PositionBook]


def run_naive(fill_count: int, context: decimal.Context, reads: int = 2000) -> NaiveResult:
    """The deposit and fills 0..fill_count-1 (as the sender sends them) through NaiveBooks."""
    events = [bench_fill(i, prefix="N", ts_ns=i, context=context) for i in range(fill_count)]

    async def measure() -> NaiveResult:
        books = NaiveBooks(context)
        await books.apply(bench_deposit("N-D1", DEPOSIT, 0))
        started = time.perf_counter()
        for event in events:
            await books.apply(event)
        elapsed = time.perf_counter() - started
        samples = []
        for _ in range(reads):
            t0 = time.perf_counter_ns()
            await books.state()
            samples.append((time.perf_counter_ns() - t0) / 1000)
        seq, cash, positions = await books.state()
        return NaiveResult(
            fills=fill_count,
            fills_per_second=fill_count / elapsed,
            state_read_p50_us=statistics.median(samples),
            seq=seq,
            cash=cash,
            positions=positions,
        )

    return asyncio.run(measure())


@dataclass(frozen=True)
class ExpectedBooks:
    """What a fold of the same events in one process gives: seq, balances, positions."""

    seq: int
    cash: dict[str, Decimal]
    positions: dict[str, PositionBook]


def books_agree(state: PortfolioState, expected: ExpectedBooks | NaiveResult) -> str:
    """'' when the group's state equals the one-process fold to the digit, else what differs."""
    if state.seq != expected.seq:
        return f"seq {state.seq} != {expected.seq}"
    if state.cash != expected.cash:
        return f"cash {state.cash} != {expected.cash}"
    # Only what the books hold: market value and unrealized P&L depend on the quotes.
    booked = {
        asset: replace(position, market_value=None, unrealized_pnl=None)
        for asset, position in state.positions.items()
    }
    positions = {asset: position_state(asset, book) for asset, book in expected.positions.items()}
    if booked != positions:
        return f"positions {booked} != {positions}"
    return ""


# -- the group ----------------------------------------------------------------------------------


def books_group_config(
    directory: Path, synchronous: str, cpus: dict[str, list[int]] | None = None
) -> Path:
    """config.yaml for `books` + `sender` on ipc endpoints under `directory`, logs at WARNING;
    `cpus` pins processes by name (`processes.<name>.cpus`)."""
    run = directory / "run"
    endpoints = {name: f"ipc://{run}/{name}.sock" for name in REPLAY_ENDPOINTS}
    endpoints[SENDER_ENDPOINT] = f"ipc://{run}/{SENDER_ENDPOINT}.sock"
    return write_config(
        directory,
        processes={**BOOKS_PLACEMENT, SENDER_PROCESS: [SENDER_ACTOR]},
        endpoints=endpoints,
        cpus=cpus,
        extra={
            "actor_classes": {SENDER_ACTOR: "bench.books_support:FillSenderActor"},
            "service": {"log_level": "WARNING"},
            "transport": SHIPPED_TRANSPORT,
            "journal": {"synchronous": synchronous},
        },
    )


class BooksGroup:
    """runner.py running books + sender, with the clients the measures use; always stopped."""

    def __init__(self, config_path: Path, context: zmq.Context) -> None:
        self.config_path = config_path
        self.config: ServiceConfig = load_config(config_path)
        self.context = context
        self.launched = time.monotonic()
        self._group = RunningGroup(config_path)
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=50)
        self._drain: threading.Thread | None = None
        self.portfolio: RequestClient | None = None
        self.sender: SenderControl | None = None
        self._pids: dict[str, int] = {}

    def start(self, timeout: float = 60.0) -> float:
        """Wait for the ready line; returns the seconds since launch."""
        self._group.wait_ready(timeout)
        ready_after = time.monotonic() - self.launched
        # The runner's stderr is a pipe: keep it drained so a burst of warnings never blocks it.
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        self.portfolio = self._client("portfolio.query")
        self.sender = SenderControl(self.context, self.config)
        return ready_after

    def _drain_stderr(self) -> None:
        stream = self._group.process.stderr
        if stream is None:
            return
        for line in stream:
            self._stderr_tail.append(line.rstrip())

    def _client(self, endpoint: str) -> RequestClient:
        return RequestClient(
            self.context, endpoint, self.config.endpoints[endpoint], self.config.transport
        )

    def state(self) -> PortfolioState | None:
        """The portfolio state now; None while the portfolio is still catching up."""
        assert self.portfolio is not None
        try:
            answer = self.portfolio.request(GetPortfolioState(correlation_id="bench-state"))
        except (RemoteError, RequestFailed):
            return None
        return answer if isinstance(answer, PortfolioState) else None

    def state_at(self, seq: int, timeout: float) -> PortfolioState:
        """The state once it shows `seq` or later."""
        return wait_until(
            f"the portfolio showing seq {seq}",
            lambda: (s := self.state()) is not None and s.seq >= seq and s,
            timeout,
        )

    def settled_sender(self, timeout: float) -> SenderStatus:
        """The sender's status once it has nothing left to send and nothing unanswered."""
        assert self.sender is not None
        return wait_until(
            "the sender settling", lambda: (s := self.sender.status()).settled and s, timeout
        )

    def ts_init_by_seq(self, first: int, last: int) -> dict[int, int]:
        """ts_init of every execution report with first <= seq <= last, read back by replay."""
        found: dict[int, int] = {}
        with self._client("journal.replay") as journal:
            start = first
            while start <= last:
                batch = journal.request(
                    ReplayEvents(
                        correlation_id=f"bench-replay-{start}",
                        from_seq=start,
                        to_seq=last,
                        max_events=1000,
                    )
                )
                if not isinstance(batch, EventBatch) or not batch.events:
                    raise BenchError(f"journal.replay answered {type(batch).__name__} at {start}")
                for sequenced in batch.events:
                    if isinstance(sequenced.event, ExecutionReport):
                        found[sequenced.seq] = sequenced.event.ts_init
                start = batch.events[-1].seq + 1
        return found

    def pids(self) -> dict[str, int]:
        """The pid of each process of the group (from its health answer) and of runner.py."""
        if self._pids:
            return self._pids
        for process in self.config.processes:
            with RequestClient(
                self.context,
                f"{process}.control",
                self.config.control_endpoint(process),
                self.config.transport,
            ) as control:
                health = control.request(GetProcessHealth(correlation_id=f"bench-{process}"))
            if not isinstance(health, ProcessHealth):
                raise BenchError(f"{process}.control answered {type(health).__name__}")
            self._pids[process] = health.pid
        self._pids["runner.py"] = self._group.process.pid
        return self._pids

    def memory(self) -> dict[str, tuple[int, int]]:
        """(VmRSS, VmHWM) KiB of each process of the group and of runner.py."""
        return {process: memory_of(pid) for process, pid in self.pids().items()}

    def cpu_meter(self) -> CpuMeter:
        """Start counting the cores each process of the group keeps busy (and this one's)."""
        return CpuMeter({**self.pids(), "bench": os.getpid()})

    def stop(self) -> None:
        """Close the clients and stop the group (SIGTERM, then SIGKILL for stragglers)."""
        for closable in (self.portfolio, self.sender):
            if closable is not None:
                closable.close()
        self._group.stop()
        if self._drain is not None:
            self._drain.join(timeout=10)
        if self._group.process.returncode not in (0, None):
            logger.warning(
                "runner.py exited with {}; its last lines:\n{}",
                self._group.process.returncode,
                "\n".join(self._stderr_tail),
            )


# -- the measures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    """`fills` sent as fast as the window allows: to acknowledged and to visible."""

    fills: int
    seconds_to_visible: float
    seconds_to_acknowledged: float
    duplicates: int
    refused: int
    last_seq: int
    cores: dict[str, float]

    @property
    def visible_per_second(self) -> float:
        """Fills/s from the first send until the state query shows the last fill."""
        return self.fills / self.seconds_to_visible

    @property
    def acknowledged_per_second(self) -> float:
        """Fills/s from the first send until the journal acknowledged the last fill."""
        return self.fills / self.seconds_to_acknowledged


def send_fills(group: BooksGroup, count: int, window: int) -> Throughput:
    """Send `count` fills as fast as `window` allows; time them until the state shows them."""
    assert group.sender is not None
    before = group.sender.status()
    if not before.settled:
        raise BenchError("the sender is still busy before a throughput run")
    meter = group.cpu_meter()
    group.sender.run(count, rate=0, window=window)
    timeout = 120 + count / 200
    deadline = time.monotonic() + timeout
    seen: list[tuple[int, int]] = []  # (wall ns when the answer came, seq it showed)
    target: SenderStatus | None = None
    next_status = 0.0
    while True:
        state = group.state()
        if state is not None:
            seen.append((time.time_ns(), state.seq))
        if target is None and time.monotonic() >= next_status:
            status = group.sender.status()
            target = status if status.settled else None
            next_status = time.monotonic() + 0.05
        if target is not None and seen and seen[-1][1] >= target.acknowledged_seq:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"{count} fills were not visible within {timeout:.0f} s")
        time.sleep(THROUGHPUT_POLL_SECONDS)  # poll interval of a loop bounded by `deadline`
    cores = meter.cores()
    visible_ns = next(t for t, seq in seen if seq >= target.acknowledged_seq)
    first_ns = target.run_first_send_ns
    if target.refused != before.refused:
        raise BenchError(f"the journal refused {target.refused - before.refused} fills")
    return Throughput(
        fills=count,
        seconds_to_visible=(visible_ns - first_ns) / 1e9,
        seconds_to_acknowledged=(target.last_ack_ns - first_ns) / 1e9,
        duplicates=target.duplicates - before.duplicates,
        refused=target.refused - before.refused,
        last_seq=target.acknowledged_seq,
        cores=cores,
    )


THROUGHPUT_RUNS = 3
"""(a) and (d) are each the median of this many runs: one run of a few seconds on a shared
machine moves by ±10% on its own, as much as (d)'s whole tolerance."""


def median_throughput(group: BooksGroup, count: int, window: int) -> Throughput:
    """`send_fills` `THROUGHPUT_RUNS` times; the run with the median fills/s to visible."""
    runs = sorted(
        (send_fills(group, count, window) for _ in range(THROUGHPUT_RUNS)),
        key=lambda run: run.visible_per_second,
    )
    return runs[len(runs) // 2]


def state_round_trip(client: RequestClient, correlation_id: str) -> float:
    """One GetPortfolioState round trip (µs)."""
    request = GetPortfolioState(correlation_id=correlation_id)
    t0 = time.perf_counter_ns()
    client.request(request)
    return (time.perf_counter_ns() - t0) / 1000


def state_round_trips(group: BooksGroup, count: int) -> list[float]:
    """`count` GetPortfolioState round trips (µs) from one RequestClient, back to back."""
    assert group.portfolio is not None
    client = group.portfolio
    for i in range(200):
        client.request(GetPortfolioState(correlation_id=f"warm-{i}"))
    return [state_round_trip(client, f"rt-{i}") for i in range(count)]


def alternated_round_trips(
    group: BooksGroup, raw: RawEcho, count: int
) -> tuple[list[float], list[float]]:
    """`count` pairs of one raw echo and one GetPortfolioState round trip, back to back:
    (raw µs, state µs), both taken under the same conditions."""
    assert group.portfolio is not None
    client = group.portfolio
    raw_samples: list[float] = []
    state_samples: list[float] = []
    for i in range(count):
        raw_samples.append(raw.round_trip())
        state_samples.append(state_round_trip(client, f"alt-{i}"))
    return raw_samples, state_samples


@dataclass(frozen=True)
class LoadedRoundTrips:
    """Round trips (µs) while the sender paced fills, and the rate it reached meanwhile;
    then raw echoes and state round trips alternated under the same load."""

    samples: list[float]
    achieved_rate: float
    lag_at_end: int
    raw_alternated: list[float]
    state_alternated: list[float]


def round_trips_under_load(
    group: BooksGroup, count: int, rate: int, window: int, raw: RawEcho
) -> LoadedRoundTrips:
    """`count` round trips while the sender paces `rate` fills/s (after 1 s of warm-up),
    then `count` raw echoes alternated with as many round trips, still under that load."""
    sender = group.sender
    assert sender is not None
    sender.run(rate * 600, rate=rate, window=window)  # stopped below, long before
    try:
        wait_until("the paced sender warming up", lambda: sender.status().run_sent >= rate, 30)
        first = sender.status()
        t0 = time.monotonic()
        samples = state_round_trips(group, count)
        elapsed = time.monotonic() - t0
        last = sender.status()
        state = group.state()
        raw_alternated, state_alternated = alternated_round_trips(group, raw, count)
    finally:
        sender.stop()
    lag = last.acknowledged_seq - (state.seq if state is not None else 0)
    status = group.settled_sender(60)
    group.state_at(status.acknowledged_seq, 60)
    return LoadedRoundTrips(
        samples=samples,
        raw_alternated=raw_alternated,
        state_alternated=state_alternated,
        achieved_rate=(last.run_sent - first.run_sent) / elapsed,
        lag_at_end=lag,
    )


@dataclass(frozen=True)
class Visibility:
    """Fill-to-visible latencies (ms), and the state query's sampling gap (µs, median)."""

    latencies_ms: list[float]
    sample_gap_us: float
    achieved_rate: float


def fill_to_visible(group: BooksGroup, rate: int, seconds: float, window: int) -> Visibility:
    """Pace `rate` fills/s for `seconds`, querying the state back to back meanwhile.

    A fill is visible at the first answer (its arrival time) whose seq is at or past the
    fill's; its latency is that moment minus its ts_init, both wall-clock ns on this host.
    """
    assert group.sender is not None
    count = int(rate * seconds)
    start_state = group.state_at(0, 10)
    group.sender.run(count, rate=rate, window=window)
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + seconds + 60
    target: SenderStatus | None = None
    next_status = time.monotonic() + seconds
    while True:
        state = group.state()
        if state is not None:
            seen.append((time.time_ns(), state.seq))
        if target is None and time.monotonic() >= next_status:
            status = group.sender.status()
            target = status if status.settled else None
            next_status = time.monotonic() + 0.05
        if target is not None and seen and seen[-1][1] >= target.acknowledged_seq:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"{count} paced fills were not visible in time")
    stamps = group.ts_init_by_seq(start_state.seq + 1, target.acknowledged_seq)
    latencies = []
    index = 0
    for seq in sorted(stamps):
        while seen[index][1] < seq:
            index += 1
        latencies.append((seen[index][0] - stamps[seq]) / 1e6)
    gaps = [(b[0] - a[0]) / 1000 for a, b in itertools.pairwise(seen)]
    sent_seconds = (target.run_last_send_ns - target.run_first_send_ns) / 1e9
    return Visibility(
        latencies_ms=latencies,
        sample_gap_us=statistics.median(gaps),
        achieved_rate=(count - 1) / sent_seconds if sent_seconds > 0 else 0.0,
    )


def warm_log(group: BooksGroup, events: int, window: int) -> int:
    """Deposit, then fills until the log holds `events` events; returns the fills sent."""
    assert group.sender is not None
    group.sender.deposit(DEPOSIT)
    fills = events - 1
    group.sender.run(fills, rate=0, window=window)
    status = group.settled_sender(120 + fills / 200)
    group.state_at(status.acknowledged_seq, 60)
    return fills


@dataclass(frozen=True)
class BuiltLog:
    """A journal written beforehand: its events, the seconds it took, its size on disk, and
    the books its events fold to (for checking the restarted group)."""

    events: int
    seconds: float
    size_bytes: int
    expected: ExpectedBooks


def build_journal(path: Path, events: int, context: decimal.Context) -> BuiltLog:
    """Write a deposit and `events` − 1 bench fills straight into the journal's store.

    The same frames the journal would have stored (the codec's encoding of each event),
    committed in large transactions with synchronous NORMAL: the speed of writing it is not
    what is measured. Each event is folded on the way, so the restarted group can be checked.
    """
    started = time.monotonic()
    base_ns = time.time_ns() - events * 1000
    settings = {"cash_currencies": ("USD",), "valuation_currency": "USD", "context": context}
    cash, positions = CashLedger(**settings), PositionLedger(**settings)

    def append(key: str, ts_ns: int, event: ExecutionReport | Transfer) -> None:
        seq, new = store.append(key, ts_ns, encode(event))
        if not new:
            raise BenchError(f"{key} is journaled twice")
        cash.apply(seq, event)
        positions.apply(seq, event)

    with JournalStore(path, synchronous="NORMAL") as store:
        if store.head_seq != 0:
            raise BenchError(f"{path} already holds events")
        append("P-D1", base_ns, bench_deposit("P-D1", DEPOSIT, base_ns))
        for index in range(events - 1):
            ts_ns = base_ns + (index + 1) * 1000
            fill = bench_fill(index, prefix="P", ts_ns=ts_ns, context=context)
            append(fill.exec_id, ts_ns, fill)
            if index % 50_000 == 0:
                store.commit()
        store.commit()
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return BuiltLog(
        events=events,
        seconds=time.monotonic() - started,
        size_bytes=size,
        expected=ExpectedBooks(cash.seq, dict(cash.balances), dict(positions.positions)),
    )


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Results:
    """Every figure of one run, filled in phase by phase."""

    events: int = 0
    mode: str = ""
    failures: list[str] = field(default_factory=list)
    raw: dict[str, Any] | None = None
    naive: NaiveResult | None = None
    throughput_full: Throughput | None = None
    throughput_normal: Throughput | None = None
    idle: list[float] | None = None
    idle_alternated: tuple[list[float], list[float]] | None = None
    loaded: LoadedRoundTrips | None = None
    light: LoadedRoundTrips | None = None
    visibility: Visibility | None = None
    small_state: PortfolioState | None = None
    books_check: str = "not run"
    built: BuiltLog | None = None
    restart_seconds: float = 0.0
    restart_ready_seconds: float = 0.0
    restart_cores: dict[str, float] | None = None
    snapshot_restart_seconds: float = 0.0
    snapshot_restart_seq: int = 0
    memory_after_restart: dict[str, tuple[int, int]] | None = None
    restart_check: str = "not run"
    throughput_big: Throughput | None = None
    memory: dict[str, tuple[int, int]] | None = None
    memory_small: dict[str, tuple[int, int]] | None = None
    pinned_cpu: int | None = None
    pinned_note: str = ""
    pinned_raw: list[float] | None = None
    pinned_idle: list[float] | None = None
    pinned_loaded: LoadedRoundTrips | None = None
    pinned_throughput: Throughput | None = None


def representative_state() -> PortfolioState:
    """A state shaped like the benchmark's answers (USD cash, three positions): raw's payload."""
    context = decimal.Context(prec=34)
    books = NaiveBooks(context)

    async def fold() -> None:
        await books.apply(bench_deposit("R-D1", DEPOSIT, 0))
        for index in range(5):
            await books.apply(bench_fill(index, prefix="R", ts_ns=index, context=context))

    asyncio.run(fold())
    return PortfolioState(
        correlation_id="bench-state",
        seq=books.cash.seq,
        as_of_ns=time.time_ns(),
        valuation_currency="USD",
        equity=None,
        cash=dict(books.cash.balances),
        positions={a: position_state(a, b) for a, b in books.positions.positions.items()},
    )


def phase(text: str) -> None:
    """Say on stderr what the benchmark is doing now."""
    logger.info(text)


def measure_small_group(
    folder: Path, context: zmq.Context, args: argparse.Namespace, results: Results
) -> int:
    """(a), (b), (c) on a fresh group at FULL; returns how many fills the sender sent."""
    group = BooksGroup(books_group_config(folder, "FULL"), context)
    raw: RawEcho | None = None
    try:
        group.start()
        phase(f"journal.synchronous FULL: log warmed to {WARM_LOG_EVENTS:,} events")
        warm_log(group, WARM_LOG_EVENTS, args.window)
        phase(f"(b) {args.round_trips:,} state round trips, idle")
        results.idle = state_round_trips(group, args.round_trips)
        raw = RawEcho(f"ipc://{folder}/raw-echo.sock", encode(representative_state()), context)
        results.idle_alternated = alternated_round_trips(group, raw, args.round_trips)
        phase(
            f"(a) {THROUGHPUT_RUNS} × {args.fills:,} fills as fast as a window of "
            f"{args.window:,} allows"
        )
        results.throughput_full = median_throughput(group, args.fills, args.window)
        phase(f"(b) {args.round_trips:,} state round trips at {LOADED_RATE:,} fills/s")
        results.loaded = round_trips_under_load(
            group, args.round_trips, LOADED_RATE, args.window, raw
        )
        phase(f"(b) {args.round_trips:,} state round trips at {LIGHT_RATE:,} fills/s")
        results.light = round_trips_under_load(
            group, args.round_trips, LIGHT_RATE, args.window, raw
        )
        phase(f"(c) fill-to-visible at {LATENCY_RATE:,} fills/s for {args.latency_seconds:g} s")
        results.visibility = fill_to_visible(group, LATENCY_RATE, args.latency_seconds, args.window)
        status = group.settled_sender(60)
        results.small_state = group.state_at(status.acknowledged_seq, 60)
        results.memory_small = group.memory()
        return status.sent - 1  # every first send but the deposit
    finally:
        if raw is not None:
            raw.close()
        group.stop()


PINNED_PROCESS = "books"
"""The process (the portfolio's) pinned to one CPU with the querying client in (b) pinned."""


def measure_pinned(
    folder: Path, context: zmq.Context, args: argparse.Namespace, results: Results
) -> int:
    """(b) again with `processes.books.cpus` pinning the books process to one CPU and this
    process (the querying client) pinned to the same one; journal, positions and sender are
    left to the scheduler. The raw echo beside it is pinned the same way."""
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if len(usable) < 2:
        results.pinned_note = "not measured: needs Linux and 2 CPUs or more"
        return 0
    cpu = min(usable)
    results.pinned_cpu = cpu
    group = BooksGroup(books_group_config(folder, "FULL", {PINNED_PROCESS: [cpu]}), context)
    raw: RawEcho | None = None
    try:
        group.start()
        phase(f"(b) pinned: the {PINNED_PROCESS} process and this one on CPU {cpu}")
        warm_log(group, WARM_LOG_EVENTS, args.window)
        set_affinity({cpu})  # every thread of this process, ZeroMQ's included
        raw = RawEcho(f"ipc://{folder}/raw-echo.sock", encode(representative_state()), context)
        raw.round_trips(200)  # its server inherits the pinning: fork keeps the affinity
        results.pinned_raw = raw.round_trips(args.round_trips)
        results.pinned_idle = state_round_trips(group, args.round_trips)
        results.pinned_loaded = round_trips_under_load(
            group, args.round_trips, LOADED_RATE, args.window, raw
        )
        phase("(a) again with the books process pinned, what pinning costs ingest")
        results.pinned_throughput = median_throughput(group, args.fills, args.window)
        return 0
    finally:
        try:
            if raw is not None:
                raw.close()
            group.stop()
        finally:
            set_affinity(usable)


def measure_normal(
    folder: Path, context: zmq.Context, args: argparse.Namespace, results: Results
) -> int:
    """(a) again with journal.synchronous NORMAL."""
    group = BooksGroup(books_group_config(folder, "NORMAL"), context)
    try:
        group.start()
        phase("journal.synchronous NORMAL: (a) again")
        warm_log(group, WARM_LOG_EVENTS, args.window)
        results.throughput_normal = median_throughput(group, args.fills, args.window)
        return args.fills
    finally:
        group.stop()


def measure_big_log(
    folder: Path, context: zmq.Context, args: argparse.Namespace, results: Results
) -> int:
    """(e) restart over `args.events` events, then (d) and (f) on that group."""
    config_path = books_group_config(folder, "FULL")
    config = load_config(config_path)
    phase(f"writing a journal of {args.events:,} events through JournalStore")
    results.built = build_journal(config.journal.database, args.events, decimal.Context(prec=34))
    if (config.run_dir / "state").exists():
        raise BenchError("follower snapshots exist; the restart would not replay everything")
    phase(f"(e) starting the group on {args.events:,} events, no follower snapshot")
    group = BooksGroup(config_path, context)
    try:
        results.restart_ready_seconds = group.start()
        meter = group.cpu_meter()
        state = wait_until(
            f"the portfolio showing seq {args.events:,} after the restart",
            lambda: (s := group.state()) is not None and s.seq >= args.events and s,
            args.restart_timeout,
            interval=0.05,
        )
        results.restart_seconds = time.monotonic() - group.launched
        results.restart_cores = meter.cores()
        results.memory_after_restart = group.memory()
        results.restart_check = books_agree(state, results.built.expected) or "same books"
        phase(f"(d) {THROUGHPUT_RUNS} × {args.fills:,} fills on a log of {args.events:,} events")
        results.throughput_big = median_throughput(group, args.fills, args.window)
        results.memory = group.memory()
        head = group.settled_sender(60).acknowledged_seq
        group.state_at(head, 60)
    finally:
        group.stop()  # the followers save their snapshots as they stop
    phase(f"(e) restarting on {head:,} events with the followers' snapshots")
    group = BooksGroup(config_path, context)
    try:
        group.start()
        wait_until(
            f"the portfolio showing seq {head:,} after the second restart",
            lambda: (s := group.state()) is not None and s.seq >= head,
            args.restart_timeout,
            interval=0.05,
        )
        results.snapshot_restart_seconds = time.monotonic() - group.launched
        results.snapshot_restart_seq = head
        return args.fills
    finally:
        group.stop()


def report(results: Results) -> str:
    """The results as a table: each measure, its target, whether it is met, and ratios."""
    lines: list[str] = []
    raw = results.raw or {}
    raw_p50 = statistics.median(raw["rtt"]) if raw else float("nan")
    raw_p99 = percentile(raw["rtt"], 99) if raw else float("nan")
    naive = results.naive

    def row(measure: str, value: str, target: str = "", met: bool | None = None, note: str = ""):
        verdict = "" if met is None else ("met" if met else "MISSED")
        lines.append(f"{measure:<46} {value:>16}  {target:<13} {verdict:<7} {note}")

    lines.append(
        f"books benchmark: journal.synchronous FULL (the shipped default) unless marked NORMAL; "
        f"{results.mode}"
    )

    def alternated_row(measure: str, raw_samples: list[float], states: list[float]) -> None:
        raw_median, state_median = statistics.median(raw_samples), statistics.median(states)
        row(
            measure,
            f"{state_median:,.0f} µs",
            "",
            None,
            f"{state_median / raw_median:.2f}× the raw echo's p50 beside it ({raw_median:,.0f} µs)",
        )

    row("measure", "result", "target", None, "ratios / notes")
    row("-" * 46, "-" * 16, "-" * 13, None, "-" * 30)
    full = results.throughput_full
    if full:
        ratio = (
            f"service / naive {full.visible_per_second / naive.fills_per_second:.3f}"
            if naive
            else ""
        )
        row(
            f"(a) fills/s to the state query ({THROUGHPUT_RUNS} × {full.fills:,})",
            f"{full.visible_per_second:,.0f}/s",
            "≥ 20,000/s",
            full.visible_per_second >= 20_000,
            ratio,
        )
        row("    acknowledged by the journal", f"{full.acknowledged_per_second:,.0f}/s")
    normal = results.throughput_normal
    if normal:
        row(
            "    same, journal.synchronous NORMAL",
            f"{normal.visible_per_second:,.0f}/s",
            "≥ 20,000/s",
            normal.visible_per_second >= 20_000,
            f"acknowledged {normal.acknowledged_per_second:,.0f}/s",
        )
    if results.idle:
        p50, p99 = statistics.median(results.idle), percentile(results.idle, 99)
        row(
            "(b) state round trip p50, idle",
            f"{p50:,.0f} µs",
            "≤ 1.5× raw",
            p50 <= 1.5 * raw_p50,
            f"{p50 / raw_p50:.2f}× raw p50",
        )
        row("    p99, idle", f"{p99:,.0f} µs", "", None, f"{p99 / raw_p99:.2f}× raw p99")
    if results.idle_alternated:
        alternated_row("    p50 alternated with a raw echo, idle", *results.idle_alternated)
    if results.loaded:
        samples = results.loaded.samples
        p50, p99 = statistics.median(samples), percentile(samples, 99)
        row(
            f"    p50 at {LOADED_RATE:,} fills/s",
            f"{p50:,.0f} µs",
            "≤ 1.5× raw",
            p50 <= 1.5 * raw_p50,
            f"{p50 / raw_p50:.2f}× raw p50; sender reached {results.loaded.achieved_rate:,.0f}/s, "
            f"state {results.loaded.lag_at_end:,} fills behind at the end",
        )
        row(
            f"    p99 at {LOADED_RATE:,} fills/s",
            f"{p99:,.0f} µs",
            "≤ 1 ms",
            p99 <= 1000,
            f"{p99 / raw_p99:.2f}× raw p99; max {max(samples):,.0f} µs",
        )
        alternated_row(
            "    p50 alternated with a raw echo, same load",
            results.loaded.raw_alternated,
            results.loaded.state_alternated,
        )
    if results.light:
        light = results.light
        p50, p99 = statistics.median(light.samples), percentile(light.samples, 99)
        row(
            f"    p50 / p99 at {LIGHT_RATE:,} fills/s",
            f"{p50:,.0f} / {p99:,.0f} µs",
            "",
            None,
            f"{p50 / raw_p50:.2f}× raw p50; sender reached {light.achieved_rate:,.0f}/s",
        )
        alternated_row(
            f"    p50 alternated with a raw echo, {LIGHT_RATE:,} fills/s",
            light.raw_alternated,
            light.state_alternated,
        )
    if results.pinned_note:
        row("(b) pinned", results.pinned_note)
    if results.pinned_raw and results.pinned_idle and results.pinned_loaded:
        pinned_raw = statistics.median(results.pinned_raw)
        beside = f"the raw echo pinned the same way: p50 {pinned_raw:,.0f} µs"
        p50 = statistics.median(results.pinned_idle)
        row(
            f"(b) pinned, books + client on CPU {results.pinned_cpu}: p50 idle",
            f"{p50:,.0f} µs",
            "",
            None,
            f"{p50 / pinned_raw:.2f}× {beside}; {p50 / raw_p50:.2f}× the unpinned raw",
        )
        samples = results.pinned_loaded.samples
        p50, p99 = statistics.median(samples), percentile(samples, 99)
        row(
            f"    p50 at {LOADED_RATE:,} fills/s",
            f"{p50:,.0f} µs",
            "",
            None,
            f"{p50 / pinned_raw:.2f}× the pinned raw; {p50 / raw_p50:.2f}× the unpinned raw; "
            f"sender reached {results.pinned_loaded.achieved_rate:,.0f}/s",
        )
        row(
            f"    p99 at {LOADED_RATE:,} fills/s",
            f"{p99:,.0f} µs",
            "≤ 1 ms",
            p99 <= 1000,
            f"max {max(samples):,.0f} µs",
        )
        alternated_row(
            "    p50 alternated with a raw echo, same load",
            results.pinned_loaded.raw_alternated,
            results.pinned_loaded.state_alternated,
        )
    pinned_run = results.pinned_throughput
    if pinned_run:
        row(
            "    (a) with the books process pinned",
            f"{pinned_run.visible_per_second:,.0f}/s",
            "≥ 20,000/s",
            pinned_run.visible_per_second >= 20_000,
            "against (a) unpinned above"
            + (f": {pinned_run.visible_per_second / full.visible_per_second:.2f}×" if full else ""),
        )
    vis = results.visibility
    if vis:
        row(
            f"(c) fill-to-visible p50 at {LATENCY_RATE:,} fills/s",
            f"{statistics.median(vis.latencies_ms):.2f} ms",
            "",
            None,
            f"{len(vis.latencies_ms):,} fills; sender reached {vis.achieved_rate:,.0f}/s",
        )
        p99 = percentile(vis.latencies_ms, 99)
        row(
            "    p99",
            f"{p99:.2f} ms",
            "≤ 5 ms",
            p99 <= 5,
            f"max {max(vis.latencies_ms):.2f} ms; state sampled every "
            f"{vis.sample_gap_us:,.0f} µs (median)",
        )
    big = results.throughput_big
    if big and full:
        change = big.visible_per_second / full.visible_per_second - 1
        row(
            f"(d) fills/s after {results.events:,} events",
            f"{big.visible_per_second:,.0f}/s",
            "within 10%",
            abs(change) <= 0.10,
            f"{change:+.1%} against {full.visible_per_second:,.0f}/s after "
            f"{WARM_LOG_EVENTS:,}; service / naive "
            + (f"{big.visible_per_second / naive.fills_per_second:.3f}" if naive else "-"),
        )
    if results.restart_seconds:
        row(
            f"(e) restart over {results.events:,} events",
            f"{results.restart_seconds:,.1f} s",
            "≤ 30 s",
            results.restart_seconds <= 30,
            f"ready after {results.restart_ready_seconds:.1f} s; "
            f"{results.events / results.restart_seconds:,.0f} events/s replayed",
        )
    if results.snapshot_restart_seconds:
        row(
            "    the same with the followers' snapshots",
            f"{results.snapshot_restart_seconds:,.1f} s",
            "≤ 30 s",
            results.snapshot_restart_seconds <= 30,
            f"log of {results.snapshot_restart_seq:,} events; snapshot, then the tail",
        )
    if results.memory:
        for process, (rss, hwm) in results.memory.items():
            rss_mb = rss / 1024
            row(
                f"(f) RSS {process}",
                f"{rss_mb:,.1f} MB",
                "≤ 80 MB",
                rss_mb <= 80,
                f"peak (VmHWM) {hwm / 1024:,.1f} MB",
            )
    lines.append("")
    lines.append("beside, in the same run:")
    if raw:
        lines.append(
            f"  raw pyzmq DEALER/ROUTER round trip, 2 processes (ipc): p50 {raw_p50:,.0f} µs, "
            f"p99 {raw_p99:,.0f} µs"
        )
    if naive:
        lines.append(
            f"  naive baseline (one class, asyncio.Lock, same fold, one process): "
            f"{naive.fills_per_second:,.0f} fills/s over {naive.fills:,} fills; "
            f"state read p50 {naive.state_read_p50_us:.1f} µs"
        )
    for label, run in (("(a) FULL", full), ("(a) NORMAL", normal), ("(d)", big)):
        if run:
            lines.append(
                f"  {label}: cores busy {cores_text(run.cores)}; "
                f"{run.duplicates} duplicate acknowledgements (resends)"
            )
    if results.restart_cores:
        lines.append(f"  (e) replay: cores busy {cores_text(results.restart_cores)}")
    if results.built:
        built = results.built
        lines.append(
            f"  journal of {built.events:,} events written (and folded) in {built.seconds:.1f} s "
            f"({built.size_bytes / 1e6:,.0f} MB on disk)"
        )
    lines.append(f"  books check, small group against the naive fold: {results.books_check}")
    lines.append(
        f"  books check, restarted group against the fold of its log: {results.restart_check}"
    )
    for label, memory in (
        ("RSS at the end of the small group", results.memory_small),
        ("RSS once the restart has replayed the big log", results.memory_after_restart),
    ):
        if memory:
            figures = ", ".join(f"{p} {rss / 1024:.1f} MB" for p, (rss, _) in memory.items())
            lines.append(f"  {label}: {figures}")
    for failure in results.failures:
        lines.append(f"  NOT MEASURED: {failure}")
    return "\n".join(lines)


def main() -> int:
    """Run every measure, print the table; exit 1 if a group's measures could not finish."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events, smaller runs")
    parser.add_argument("--events", type=int, default=None, help="events in the big log")
    parser.add_argument("--fills", type=int, default=None, help="fills of (a) and (d)")
    parser.add_argument("--round-trips", type=int, default=None, help="state queries for (b)")
    parser.add_argument("--latency-seconds", type=float, default=None, help="length of (c)")
    parser.add_argument("--window", type=int, default=2000, help="sender's in-flight window")
    parser.add_argument("--restart-timeout", type=float, default=900.0, help="seconds for (e)")
    args = parser.parse_args()
    quick = args.quick
    default_events = 100_000 if quick else 1_000_000
    args.events = args.events or default_events
    args.fills = args.fills or (20_000 if quick else 100_000)
    args.round_trips = args.round_trips or (2000 if quick else 5000)
    args.latency_seconds = args.latency_seconds or (5.0 if quick else 10.0)
    if args.events < WARM_LOG_EVENTS or args.window < 1 or args.fills < 1:
        parser.error(f"--events must be at least {WARM_LOG_EVENTS:,}; --window, --fills >= 1")
    logger.remove()
    logger.add(sys.stderr, level="INFO", format="{time:HH:mm:ss} {message}")

    results = Results(events=args.events)
    kind = "--quick" if quick else "default"
    events_note = "" if args.events == default_events else f", --events {args.events:,}"
    results.mode = (
        f"{kind} run{events_note}: {args.events:,} events in the big log, "
        f"sender window {args.window:,}"
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-books-") as tmp:
        folder = Path(tmp)
        phase("raw pyzmq round trip (bench/transport.py's measurement)")
        payload = encode(representative_state())
        results.raw = raw_pyzmq_round_trips(
            f"ipc://{folder}/raw.sock", args.round_trips, 1000, payload
        )
        context = zmq.Context()
        try:
            fills_sent = WARM_LOG_EVENTS - 1 + args.fills
            for name, measure in (
                ("small", measure_small_group),
                ("pinned", measure_pinned),
                ("normal", measure_normal),
                ("big", measure_big_log),
            ):
                (folder / name).mkdir()
                try:
                    sent = measure(folder / name, context, args, results)
                except PHASE_FAILURES as exc:
                    logger.error("the {} group's measures stopped: {}", name, exc)
                    results.failures.append(f"{name} group: {exc}")
                    continue
                if name == "small":
                    fills_sent = sent or fills_sent
                    phase(f"naive baseline over the same {fills_sent:,} fills")
                    results.naive = run_naive(fills_sent, decimal.Context(prec=34))
                    if results.small_state is not None:
                        agreement = books_agree(results.small_state, results.naive)
                        results.books_check = agreement or "same books"
        finally:
            context.destroy(linger=0)
    phase(f"done in {time.monotonic() - started:.0f} s")
    print(report(results))
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
