"""Prices benchmark: quotes → drawdown → portfolio under ticks, through the real group, in one run.

    python bench/prices.py [--quick] [--ticks N] [--paced-seconds S] [--round-trips N]

runner.py starts journal, positions, cash, portfolio, prices and drawdown placed as in
config.yaml (processes journal, positions, books and market), where "prices" is `TickSourceActor`
(bench/prices_support.py): the prices actor with its exchange feed replaced by ticks the
benchmark asks for. It quotes 51 pairs (XBT/USD, A00/USD .. A49/USD); one tick changes one
pair's quote, cycling over the pairs. Before the ticks the journal takes a USD deposit, a buy
of XBT and deposits in kind of A00 .. A18: twenty positions that every tick revalues.

The group runs twice: with the shipped `drawdown.mark_interval_seconds` and with 0 (every
tick marks equity). In each:
(1) sustained ticks/s: N ticks as fast as the source produces them; ticks/s = N / the time
    from the first tick until the state query shows the last tick's bid for its pair (the
    state is sampled every 5 ms). The source's own rate is shown beside it, and how many
    drawdown marks the run made (`drawdown.marks` of the state) and when the drawdown had
    caught up;
(2) CPU per tick: CPU seconds (/proc) of the market and books processes over a run paced at
    1,000 ticks/s, less what they burn idle over the same time, divided by the ticks; and
    how long after its last tick the state showed it;
(3) GetPortfolioState round trip p50 / p99 from a RequestClient here, idle and while ticking
    at 1,000/s (shipped interval only), against the raw pyzmq DEALER/ROUTER round trip of a
    payload of the same size, measured in the same run (bench/transport.py's measurement).
At the end of each group the state must show every pair's last bid, the books journaled,
and equity = cash + Σ quantity × bid computed here with Decimal, to the digit; if not, the
benchmark says what differs and exits 1.
"""

from __future__ import annotations

import argparse
import decimal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import zmq
from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.books import (  # noqa: E402
    PHASE_FAILURES,
    SHIPPED_TRANSPORT,
    BenchError,
    BooksGroup,
    cpu_seconds_of,
    memory_of,
    percentile,
    phase,
    state_round_trips,
    wait_until,
)
from bench.books_support import shipped_placement  # noqa: E402
from bench.prices_support import (  # noqa: E402
    TICK_PAIRS,
    TICKS_ENDPOINT,
    TickControl,
    TickStatus,
    expected_cash,
    expected_equity,
    expected_positions,
    setup_events,
    tick_bid,
    tick_pair,
)
from bench.transport import raw_pyzmq as raw_pyzmq_round_trips  # noqa: E402
from console.replay import REPLAY_ENDPOINTS  # noqa: E402
from messages import Acknowledgement, PortfolioState  # noqa: E402
from messages.codec import decode, encode  # noqa: E402
from service.config import load_config  # noqa: E402
from service.group import write_config  # noqa: E402

PACED_RATE = 1_000
"""Ticks/s of the paced runs of (2) and (3)."""

POLL_SECONDS = 0.005
"""Between two state queries while a run is watched: fine against runs of a second or more,
light enough not to slow what it measures much."""

BOOKS_PROCESS = "books"
MARKET_PROCESS = "market"
PROCESSES = shipped_placement(
    ROOT / "config.yaml", ("journal", "cash", "positions", "portfolio", "prices", "drawdown")
)
"""config.yaml's placement of these actors: journal; books (cash, positions, portfolio);
market (prices, drawdown)."""

SHIPPED_MARK_INTERVAL = load_config(ROOT / "config.yaml").drawdown.mark_interval_seconds


# -- the group ----------------------------------------------------------------------------------


def prices_group_config(directory: Path, mark_interval: float) -> Path:
    """config.yaml for books + market, ticks for prices, on ipc endpoints under `directory`."""
    run = directory / "run"
    endpoints = {name: f"ipc://{run}/{name}.sock" for name in (*REPLAY_ENDPOINTS, TICKS_ENDPOINT)}
    return write_config(
        directory,
        processes=PROCESSES,
        endpoints=endpoints,
        extra={
            "actor_classes": {"prices": "bench.prices_support:TickSourceActor"},
            "service": {"log_level": "WARNING"},
            "transport": SHIPPED_TRANSPORT,
            "prices": {"pairs": list(TICK_PAIRS)},
            "drawdown": {"mark_interval_seconds": mark_interval},
        },
    )


class TickGroup(BooksGroup):
    """runner.py running books + market with the tick source; the clients the measures use."""

    def __init__(self, config_path: Path, context: zmq.Context) -> None:
        super().__init__(config_path, context)
        self.ticks: TickControl | None = None

    def start(self, timeout: float = 60.0) -> float:
        """Wait for the ready line; returns the seconds since launch."""
        self._group.wait_ready(timeout)
        ready_after = time.monotonic() - self.launched
        # The runner's stderr is a pipe: keep it drained so a burst of warnings never blocks it.
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        self.portfolio = self._client("portfolio.query")
        self.ticks = TickControl(self.context, self.config)
        return ready_after

    def stop(self) -> None:
        """Close the clients and stop the group (SIGTERM, then SIGKILL for stragglers)."""
        if self.ticks is not None:
            self.ticks.close()
        super().stop()

    def control(self) -> TickControl:
        """The tick source's control (once started)."""
        assert self.ticks is not None
        return self.ticks

    def shows_tick(self, k: int) -> PortfolioState | None:
        """The state, when it shows tick `k`'s bid (or a later one) for its pair; else None."""
        state = self.state()
        if state is None:
            return None
        view = state.prices.get(tick_pair(k))
        if view is None or view.bid is None or view.bid < tick_bid(k):
            return None  # a pair's bid only rises from tick to tick
        return state

    def marks(self) -> int:
        """The drawdown actor's mark count, as the state shows it (0 before any)."""
        state = self.state()
        return state.drawdown.marks if state is not None and state.drawdown is not None else 0

    def settled_ticks(self, timeout: float) -> TickStatus:
        """The source's status once its run has published everything."""
        ticks = self.control()
        return wait_until(
            "the tick run ending", lambda: (s := ticks.status()).running is False and s, timeout
        )

    def journal(self, prefix: str) -> int:
        """Journal `setup_events`, each acknowledged before the next; returns the last seq."""
        last = 0
        with self._client("journal.ingest") as ingest:
            for event in setup_events(prefix, time.time_ns()):
                answer = ingest.request(event)
                if not isinstance(answer, Acknowledgement) or answer.duplicate or not answer.seq:
                    raise BenchError(f"the journal answered {answer!r} to {event!r}")
                last = answer.seq
        return last


# -- the measures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sustained:
    """(1): N ticks at full speed, until visible; the source's rate; the drawdown's marks."""

    ticks: int
    seconds_to_visible: float
    source_seconds: float
    marks: int
    drawdown_seconds: float | None  # until the marks settled (None: they did not in time)

    @property
    def visible_per_second(self) -> float:
        """Ticks/s from the first tick until the state shows the last one."""
        return self.ticks / self.seconds_to_visible

    @property
    def source_per_second(self) -> float:
        """Ticks/s the source published (first to last tick)."""
        return (self.ticks - 1) / self.source_seconds if self.source_seconds > 0 else 0.0


def watch_until_visible(group: TickGroup, last_tick: int, timeout: float) -> int:
    """Query the state every POLL_SECONDS until it shows `last_tick`; the wall ns it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if group.shows_tick(last_tick) is not None:
            return time.time_ns()
        time.sleep(POLL_SECONDS)  # poll interval of a loop bounded by `deadline`
    raise BenchError(f"tick {last_tick} not visible in the state within {timeout:.0f} s")


def marks_settled(group: TickGroup, floor: int, quiet: float, timeout: float) -> tuple[int, float]:
    """Wait until the mark count reaches `floor` (when > 0), or is unchanged for `quiet`
    seconds: the throttle's last mark is made, or the drawdown skips the marks left (it
    never marks with quotes older than `prices.max_age_seconds`, and a backlog ages them).

    Returns (marks, the monotonic time the count reached the floor or last moved, or the
    call's time if it did not move after it); BenchError past `timeout`.
    """
    deadline = time.monotonic() + timeout
    count, moved = group.marks(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)  # poll interval of a loop bounded by `deadline`
        now = group.marks()
        if floor and now >= floor:
            return now, time.monotonic()  # every mark asked for is made: no need to wait on
        if now != count:
            count, moved = now, time.monotonic()
        elif time.monotonic() - moved >= quiet:
            return count, moved
    raise BenchError(
        f"drawdown marks did not settle within {timeout:.0f} s (at {count}, {floor} expected)"
    )


def monotonic_of(wall_ns: int) -> float:
    """The monotonic time of a wall-clock instant (ns) of this host, for spans across both."""
    return time.monotonic() - (time.time_ns() - wall_ns) / 1e9


def sustained(group: TickGroup, count: int, mark_interval: float) -> Sustained:
    """(1): `count` ticks as fast as the source goes; see the module doc."""
    ticks = group.control()
    before = ticks.status()
    if before.running:
        raise BenchError("the tick source is still running before a sustained run")
    marks_before = group.marks()
    ticks.run(count, rate=0)
    visible_ns = watch_until_visible(group, before.ticks + count - 1, 120 + count / 100)
    status = group.settled_ticks(30)
    first = monotonic_of(status.run_first_ns)
    # At interval 0 every tick marks (floor: all of them); otherwise wait for the throttle's
    # last mark, made when its interval ends.
    floor = marks_before + count if mark_interval == 0 else 0
    try:
        marks, moved = marks_settled(group, floor, mark_interval + 1.0, 60 + count / 1000)
        drawdown_seconds: float | None = moved - first
    except BenchError:
        marks, drawdown_seconds = group.marks(), None
    return Sustained(
        ticks=count,
        seconds_to_visible=(visible_ns - status.run_first_ns) / 1e9,
        source_seconds=(status.run_last_ns - status.run_first_ns) / 1e9,
        marks=marks - marks_before,
        drawdown_seconds=drawdown_seconds,
    )


@dataclass(frozen=True)
class Paced:
    """(2): a run paced at `rate`: its ticks, the CPU it cost, and how far the state lagged."""

    rate: int
    ticks: int
    seconds: float  # wall time from the run's start until the state showed its last tick
    achieved_rate: float
    cpu_seconds: dict[str, float]
    idle_cores: dict[str, float]
    lag_ms: float  # the state showing the last tick, minus the time it was published
    marks: int

    def net_cpu_us_per_tick(self, process: str) -> float:
        """(CPU seconds − idle cores × wall seconds) / ticks, in µs."""
        net = self.cpu_seconds[process] - self.idle_cores[process] * self.seconds
        return net / self.ticks * 1e6

    def cores(self, process: str) -> float:
        """Cores the process kept busy over the run (1.0 = one full core)."""
        return self.cpu_seconds[process] / self.seconds


def cpu_now(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each process."""
    return {name: cpu_seconds_of(pid) for name, pid in pids.items()}


def paced_cpu(
    group: TickGroup, rate: int, seconds: float, idle_seconds: float, mark_interval: float
) -> Paced:
    """(2): idle CPU over `idle_seconds`, then `rate` ticks/s for `seconds`; see the module doc.

    The state is not queried while the run lasts (queries cost the books process CPU too);
    the source's status is read every 0.1 s, and the state once the run has ended.
    """
    ticks = group.control()
    pids = {name: group.pids()[name] for name in PROCESSES}
    idle_from, idle_started = cpu_now(pids), time.monotonic()
    time.sleep(idle_seconds)  # the idle measurement's window, not a synchronization
    idle_wall = time.monotonic() - idle_started
    idle_to = cpu_now(pids)
    idle_cores = {name: (idle_to[name] - idle_from[name]) / idle_wall for name in pids}
    count = int(rate * seconds)
    before = ticks.status()
    marks_before = group.marks()
    cpu_from, started = cpu_now(pids), time.monotonic()
    ticks.run(count, rate=rate)
    # Coarse polls of the source until its last tenth of a second, then the state at the
    # fine interval: the lag is measured closely without querying during the whole run.
    wait_until(
        "the paced run nearing its end",
        lambda: ticks.status().run_sent >= count - rate // 10,
        seconds + 60,
        interval=0.1,
    )
    visible_ns = watch_until_visible(group, before.ticks + count - 1, 60)
    status = group.settled_ticks(30)
    if mark_interval == 0:
        wait_until(
            "the drawdown marking every paced tick",
            lambda: group.marks() >= marks_before + count,
            60,
            interval=0.05,
        )
    wall = time.monotonic() - started
    cpu_to = cpu_now(pids)
    sent_seconds = (status.run_last_ns - status.run_first_ns) / 1e9
    return Paced(
        rate=rate,
        ticks=count,
        seconds=wall,
        achieved_rate=(count - 1) / sent_seconds if sent_seconds > 0 else 0.0,
        cpu_seconds={name: cpu_to[name] - cpu_from[name] for name in pids},
        idle_cores=idle_cores,
        lag_ms=(visible_ns - status.run_last_ns) / 1e6,
        marks=group.marks() - marks_before,
    )


@dataclass(frozen=True)
class LoadedRoundTrips:
    """(3) under load: round trips (µs) while the source paced ticks, and the rate it kept."""

    samples: list[float]
    achieved_rate: float


def round_trips_while_ticking(group: TickGroup, count: int, rate: int) -> LoadedRoundTrips:
    """`count` state round trips while the source paces `rate` ticks/s (after 1 s of it)."""
    ticks = group.control()
    ticks.run(rate * 600, rate=rate)  # stopped below, long before
    try:
        wait_until("the paced source warming up", lambda: ticks.status().run_sent >= rate, 30)
        first = ticks.status()
        started = time.monotonic()
        samples = state_round_trips(group, count)
        elapsed = time.monotonic() - started
        last = ticks.status()
    finally:
        ticks.stop()
    return LoadedRoundTrips(
        samples=samples, achieved_rate=(last.run_sent - first.run_sent) / elapsed
    )


def run_ticks(group: TickGroup, count: int) -> PortfolioState:
    """`count` ticks at full speed; the state once it shows the last of them."""
    ticks = group.control()
    first = ticks.status().ticks
    ticks.run(count, rate=0)
    group.settled_ticks(30)
    last = first + count - 1
    return wait_until(f"the state showing tick {last}", lambda: group.shows_tick(last), 30)


def books_check(group: TickGroup, context: decimal.Context) -> tuple[str, PortfolioState]:
    """('' when the state agrees with this side's own Decimal computation, else what
    differs; the state checked).

    Once the last tick shows: cash = deposit − XBT cost − fee; each position's quantity as
    journaled and its market value = quantity × its pair's last bid; every pair's bid the
    last tick's; nothing stale or unpriced; equity = cash + Σ quantity × bid.
    """
    # A fresh cycle over every pair first: no quote is stale for having waited on the bench.
    run_ticks(group, len(TICK_PAIRS))
    status = group.settled_ticks(30)
    last = status.ticks - 1
    state = wait_until(f"the state showing tick {last}", lambda: group.shows_tick(last), 30)
    equity, bids = expected_equity(status.ticks, context)
    problems = []
    cash = {"USD": expected_cash(context)}
    if state.cash != cash:
        problems.append(f"cash {state.cash} != {cash}")
    quantities = {asset: p.quantity for asset, p in state.positions.items()}
    if quantities != expected_positions():
        problems.append(f"positions {quantities} != {expected_positions()}")
    for asset, position in state.positions.items():
        value = context.multiply(position.quantity, bids[f"{asset}/USD"])
        if position.market_value != value:
            problems.append(f"{asset} market value {position.market_value} != {value}")
    shown = {pair: view.bid for pair, view in state.prices.items()}
    if shown != bids:
        wrong = sorted(pair for pair in bids if shown.get(pair) != bids[pair])
        problems.append(f"bids of {', '.join(wrong) or 'extra pairs'} are not the last ticks'")
    if state.stale or state.unpriced:
        problems.append(f"stale {state.stale}, unpriced {state.unpriced}")
    if state.equity != equity:
        problems.append(f"equity {state.equity} != cash + Σ quantity × bid = {equity}")
    return "; ".join(problems), state


def codec_timing(state: PortfolioState, repeats: int = 500) -> tuple[float, float]:
    """Median µs to encode `state` and to decode its frame, in this process."""
    frame = encode(state)
    encodes, decodes = [], []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        encode(state)
        t1 = time.perf_counter_ns()
        decode(frame)
        t2 = time.perf_counter_ns()
        encodes.append((t1 - t0) / 1000)
        decodes.append((t2 - t1) / 1000)
    return statistics.median(encodes), statistics.median(decodes)


# -- the run ------------------------------------------------------------------------------------


@dataclass
class GroupResults:
    """The figures of one group (one mark interval)."""

    label: str
    mark_interval: float
    ready_seconds: float = 0.0
    sustained: Sustained | None = None
    paced: Paced | None = None
    idle: list[float] | None = None
    loaded: LoadedRoundTrips | None = None
    check: str = "not run"
    equity: Decimal | None = None
    ticks: int = 0
    state: PortfolioState | None = None
    memory: dict[str, tuple[int, int]] | None = None


@dataclass
class Results:
    """Every figure of one run."""

    mode: str = ""
    groups: list[GroupResults] = field(default_factory=list)
    raw: dict | None = None
    raw_payload_bytes: int = 0
    codec_us: tuple[float, float] | None = None
    failures: list[str] = field(default_factory=list)


def measure_group(
    folder: Path,
    context: zmq.Context,
    args: argparse.Namespace,
    results: GroupResults,
    *,
    round_trips: bool,
) -> None:
    """Every measure of one group, into `results`; the group is always stopped."""
    group = TickGroup(prices_group_config(folder, results.mark_interval), context)
    decimal_context = decimal.Context(prec=group.config.service.decimal_precision)
    try:
        results.ready_seconds = group.start()
        phase(f"[{results.label}] a quote for every pair, then the books journaled")
        run_ticks(group, len(TICK_PAIRS))
        seq = group.journal(f"P{folder.name}")
        group.state_at(seq, 30)
        run_ticks(group, 2 * len(TICK_PAIRS))
        if round_trips:
            phase(f"[{results.label}] (3) {args.round_trips:,} state round trips, idle")
            results.idle = state_round_trips(group, args.round_trips)
        phase(
            f"[{results.label}] (2) {PACED_RATE:,} ticks/s for {args.paced_seconds:g} s "
            f"(after {args.idle_seconds:g} s idle)"
        )
        results.paced = paced_cpu(
            group, PACED_RATE, args.paced_seconds, args.idle_seconds, results.mark_interval
        )
        phase(f"[{results.label}] (1) {args.ticks:,} ticks at full speed")
        results.sustained = sustained(group, args.ticks, results.mark_interval)
        if round_trips:
            phase(f"[{results.label}] (3) {args.round_trips:,} round trips at {PACED_RATE:,}/s")
            results.loaded = round_trips_while_ticking(group, args.round_trips, PACED_RATE)
        phase(f"[{results.label}] checking the books and the equity")
        problems, state = books_check(group, decimal_context)
        results.check = problems or "equity = cash + Σ quantity × last bid, to the digit"
        results.equity = state.equity
        results.ticks = group.control().status().ticks
        results.state = state
        results.memory = {name: memory_of(group.pids()[name]) for name in PROCESSES}
        if problems:
            raise BenchError(f"[{results.label}] the books do not add up: {problems}")
    finally:
        group.stop()


def interval_label(seconds: float) -> str:
    """'mark interval 1 s (shipped)' / 'mark interval 0 (every tick)'."""
    if seconds == 0:
        return "mark interval 0 (every tick)"
    shipped = " (shipped)" if seconds == SHIPPED_MARK_INTERVAL else ""
    return f"mark interval {seconds:g} s{shipped}"


def report(results: Results) -> str:
    """The results as a Markdown table (one column per mark interval), then the notes."""
    raw = results.raw or {}
    raw_p50 = statistics.median(raw["rtt"]) if raw else float("nan")
    raw_p99 = percentile(raw["rtt"], 99) if raw else float("nan")
    groups = results.groups
    lines = [
        f"prices benchmark, {results.mode}: {len(TICK_PAIRS)} pairs, 20 positions; "
        "processes "
        + ", ".join(f"{name} [{', '.join(actors)}]" for name, actors in PROCESSES.items())
        + " as in config.yaml (prices: the tick source)",
        "",
        "| measure | " + " | ".join(interval_label(g.mark_interval) for g in groups) + " |",
        "|---|" + "---:|" * len(groups),
    ]

    def row(measure: str, cell) -> None:
        cells = []
        for group in groups:
            try:
                cells.append(cell(group))
            except (TypeError, AttributeError, ValueError, ZeroDivisionError):
                cells.append("–")  # not measured in this group
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")

    row(
        "(1) sustained ticks/s: N at full speed, first tick → state shows the last",
        lambda g: f"{g.sustained.visible_per_second:,.0f}/s ({g.sustained.ticks:,} ticks)",
    )
    row("    the tick source's own rate", lambda g: f"{g.sustained.source_per_second:,.0f}/s")
    row(
        "    drawdown marks made during (1)",
        lambda g: f"{g.sustained.marks:,} for {g.sustained.ticks:,} ticks",
    )
    row(
        "    first tick → drawdown's last mark of (1) (every tick marks)",
        lambda g: (
            f"{g.sustained.drawdown_seconds:.2f} s "
            f"({g.sustained.marks / g.sustained.drawdown_seconds:,.0f} marks/s)"
            if g.mark_interval == 0
            else "–"
        ),
    )
    row(
        f"(2) CPU per tick at {PACED_RATE:,}/s, market process (net of idle)",
        lambda g: f"{g.paced.net_cpu_us_per_tick(MARKET_PROCESS):,.0f} µs",
    )
    row(
        f"    CPU per tick at {PACED_RATE:,}/s, books process (net of idle)",
        lambda g: f"{g.paced.net_cpu_us_per_tick(BOOKS_PROCESS):,.0f} µs",
    )
    row(
        "    cores busy over the run: market / books",
        lambda g: f"{g.paced.cores(MARKET_PROCESS):.2f} / {g.paced.cores(BOOKS_PROCESS):.2f}",
    )
    row(
        "    idle cores: market / books",
        lambda g: (
            f"{g.paced.idle_cores[MARKET_PROCESS]:.3f} / {g.paced.idle_cores[BOOKS_PROCESS]:.3f}"
        ),
    )
    row(
        "    rate reached, ticks; drawdown marks",
        lambda g: f"{g.paced.achieved_rate:,.0f}/s, {g.paced.ticks:,}; {g.paced.marks:,}",
    )
    row("    last paced tick → shown by the state", lambda g: f"{g.paced.lag_ms:.1f} ms")
    row(
        "(3) GetPortfolioState round trip p50, idle",
        lambda g: (
            f"{statistics.median(g.idle):,.0f} µs ({statistics.median(g.idle) / raw_p50:.2f}× raw)"
        ),
    )
    row(
        "    p99, idle",
        lambda g: f"{percentile(g.idle, 99):,.0f} µs ({percentile(g.idle, 99) / raw_p99:.2f}× raw)",
    )
    row(
        f"    p50 while ticking at {PACED_RATE:,}/s",
        lambda g: (
            f"{statistics.median(g.loaded.samples):,.0f} µs "
            f"({statistics.median(g.loaded.samples) / raw_p50:.2f}× raw)"
        ),
    )
    row(
        f"    p99 while ticking at {PACED_RATE:,}/s",
        lambda g: (
            f"{percentile(g.loaded.samples, 99):,.0f} µs "
            f"({percentile(g.loaded.samples, 99) / raw_p99:.2f}× raw)"
        ),
    )
    row("    rate the source kept meanwhile", lambda g: f"{g.loaded.achieved_rate:,.0f}/s")
    row(
        "RSS market / books at the end",
        lambda g: (
            f"{g.memory[MARKET_PROCESS][0] / 1024:.1f} / {g.memory[BOOKS_PROCESS][0] / 1024:.1f} MB"
        ),
    )
    lines.append("")
    if raw:
        lines.append(
            f"raw pyzmq DEALER/ROUTER round trip, 2 processes (ipc), the state's "
            f"{results.raw_payload_bytes:,} bytes echoed: p50 {raw_p50:,.0f} µs, "
            f"p99 {raw_p99:,.0f} µs"
        )
    if results.codec_us:
        encode_us, decode_us = results.codec_us
        lines.append(
            f"the state's codec in one process (median): encode {encode_us:,.0f} µs, "
            f"decode {decode_us:,.0f} µs (the client decodes every answer)"
        )
    for group in groups:
        lines.append(
            f"{interval_label(group.mark_interval)}: ready after {group.ready_seconds:.1f} s; "
            f"check after {group.ticks:,} ticks: {group.check}"
            + (f" (equity {group.equity} USD)" if group.equity is not None else "")
        )
    for failure in results.failures:
        lines.append(f"NOT MEASURED / FAILED: {failure}")
    return "\n".join(lines)


def main() -> int:
    """Run both groups and the raw baseline, print the table; exit 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (under ~40 s)")
    parser.add_argument("--ticks", type=int, default=None, help="ticks of (1)")
    parser.add_argument("--paced-seconds", type=float, default=None, help="length of (2)")
    parser.add_argument("--idle-seconds", type=float, default=None, help="idle CPU window")
    parser.add_argument("--round-trips", type=int, default=None, help="state queries of (3)")
    args = parser.parse_args()
    quick = args.quick
    args.ticks = args.ticks or (5_000 if quick else 20_000)
    args.paced_seconds = args.paced_seconds or (3.0 if quick else 10.0)
    args.idle_seconds = args.idle_seconds or (1.0 if quick else 2.0)
    args.round_trips = args.round_trips or (1_000 if quick else 5_000)
    if args.ticks < 1 or args.paced_seconds <= 0 or args.round_trips < 1:
        parser.error("--ticks, --paced-seconds and --round-trips must be positive")
    logger.remove()
    logger.add(sys.stderr, level="INFO", format="{time:HH:mm:ss} {message}")

    results = Results(mode=f"{'--quick' if quick else 'default'} run")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-prices-") as tmp:
        folder = Path(tmp)
        context = zmq.Context()
        try:
            for name, interval, round_trips in (
                ("shipped", SHIPPED_MARK_INTERVAL, True),
                ("every-tick", 0.0, False),
            ):
                group = GroupResults(label=name, mark_interval=interval)
                results.groups.append(group)
                (folder / name).mkdir()
                try:
                    measure_group(folder / name, context, args, group, round_trips=round_trips)
                except PHASE_FAILURES as exc:
                    logger.error("the {} group's measures stopped: {}", name, exc)
                    results.failures.append(f"{name} group: {exc}")
                if name == "shipped" and group.state is not None:
                    # Between the groups, so nothing else runs; a payload of the state's size.
                    phase("raw pyzmq round trip (bench/transport.py's measurement)")
                    payload = encode(group.state)
                    results.raw_payload_bytes = len(payload)
                    results.codec_us = codec_timing(group.state)
                    results.raw = raw_pyzmq_round_trips(
                        f"ipc://{folder}/raw.sock", args.round_trips, 1000, payload
                    )
        finally:
            context.destroy(linger=0)
    phase(f"done in {time.monotonic() - started:.0f} s")
    print(report(results))
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
