"""What the books benchmark runs inside the group: the fills it books and the actor that sends them.

- `bench_fill(index, ...)`: the fills of the benchmark, a pure function of their number. They
  alternate a buy and a sell of the same size on XBT/USD, ETH/USD, SOL/USD in turn, so every
  position returns to flat after each pair and the books stay bounded however many are sent;
  the price moves a few basis points from fill to fill so realized P&L moves too; the fee is
  charged in the quote currency.
- `FillSenderActor`: plays the execution actor. It sends those fills to the journal exactly
  as execution does, `send_reliable("journal.ingest", ...)`, at a requested rate or as fast as
  its in-flight window allows, stamping `ts_init` (wall time, ns) at the moment it sends.
- `SenderControl`: the benchmark's side of it, over the sender's own `bench.sender` endpoint.

The sender understands existing messages only (no wire message is added for a benchmark):
- a `Ping` whose correlation id starts with `bench:` is a command (`deposit`, `run`, `stop`;
  see `SenderCommand`), answered with a `Pong` once the command is taken; any other `Ping` is
  the ordinary liveness ping. A command carries a serial number `n`: a resent command (Lazy
  Pirate) with a serial already seen is answered again without being run twice;
- `GetPortfolioState` is answered with a `PortfolioState` whose `seq` is the highest journal
  seq acknowledged to the sender and whose `cash` holds the sender's counters by name (see
  `SenderStatus`).
"""

from __future__ import annotations

import decimal
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq

from actors.journal import INGEST_ENDPOINT
from actors.runtime.actor import Connect, Inbound, Serve, ServiceActor, SocketSpec, handles
from actors.runtime.client import RequestClient
from messages import (
    Acknowledgement,
    DeliveryRefused,
    ExecutionReport,
    GetPortfolioState,
    OrderStatus,
    Ping,
    Pong,
    PortfolioState,
    Side,
    Transfer,
)
from messages.base import Message
from service.config import ServiceConfig, decimal_context, load_config

__all__ = [
    "BENCH_PAIRS",
    "COMMAND_PREFIX",
    "DEPOSIT_CURRENCY",
    "FEE_RATE",
    "PACE_TICK_SECONDS",
    "SENDER_ENDPOINT",
    "BenchControl",
    "CommandError",
    "FillSenderActor",
    "SenderCommand",
    "SenderControl",
    "SenderStatus",
    "bench_deposit",
    "bench_fill",
    "command_text",
    "natural",
    "paced_due",
    "read_command",
    "shipped_placement",
]

SENDER_ENDPOINT = "bench.sender"
"""The sender's own request/reply endpoint: commands and status."""

COMMAND_PREFIX = "bench:"
"""A Ping whose correlation id starts with this is a command to the sender."""

DEPOSIT_CURRENCY = "USD"
"""The currency deposited before the fills (the valuation and only cash currency)."""

BENCH_PAIRS: tuple[tuple[str, Decimal, Decimal], ...] = (
    ("XBT/USD", Decimal("60000"), Decimal("0.01")),
    ("ETH/USD", Decimal("3000"), Decimal("0.2")),
    ("SOL/USD", Decimal("150"), Decimal("4")),
)
"""(pair, reference price, quantity of one fill): about 600 USD per fill on each pair."""

FEE_RATE = Decimal("0.0026")
"""The fee of a fill as a share of its cost (Kraken's taker fee), charged in the quote."""

_FEE_QUANTUM = Decimal("0.00001")
_PRICE_STEP = Decimal("0.0001")

PACE_TICK_SECONDS = 0.001
"""How often a paced sender looks at how many fills are due (the inbox wakes at ~1 ms)."""


def bench_fill(index: int, *, prefix: str, ts_ns: int, context: decimal.Context) -> ExecutionReport:
    """Fill number `index` (0, 1, 2, ...) of the benchmark, with `ts_event = ts_init = ts_ns`.

    Pair: BENCH_PAIRS[(index // 2) % 3]. Side: buy for an even index, sell for the odd one
    that follows, of the same quantity, so each pair of fills leaves the position flat.
    Price: reference × (1 + ((index mod 11) − 5) × 0.0001), quote per base.
    Fee (quote currency, unsigned): quantity × price × FEE_RATE, to 5 decimals (half even).
    `exec_id` is `prefix` and the index (unique as long as the prefix is); `order_id` is shared
    by the two fills of a pair.
    """
    pair, reference, quantity = BENCH_PAIRS[(index // 2) % len(BENCH_PAIRS)]
    offset = context.multiply(Decimal((index % 11) - 5), _PRICE_STEP)
    price = context.multiply(reference, context.add(Decimal(1), offset))
    cost = context.multiply(quantity, price)
    fee = context.quantize(context.multiply(cost, FEE_RATE), _FEE_QUANTUM)
    return ExecutionReport(
        exec_id=f"{prefix}-{index:010d}",
        order_id=f"{prefix}-O{index // 2:010d}",
        pair=pair,
        side=Side.BUY if index % 2 == 0 else Side.SELL,
        status=OrderStatus.FILLED,
        last_qty=quantity,
        last_price=price,
        fee=fee,
        fee_currency=pair.partition("/")[2],
        quote_rate=None,
        ts_event=ts_ns,
        ts_init=ts_ns,
    )


def bench_deposit(transfer_id: str, amount: Decimal, ts_ns: int) -> Transfer:
    """A deposit of `amount` USD (> 0) that pays for the fills' fees and price moves."""
    return Transfer(
        transfer_id=transfer_id,
        asset=DEPOSIT_CURRENCY,
        amount=amount,
        ts_event=ts_ns,
        ts_init=ts_ns,
    )


# -- commands --------------------------------------------------------------------------------


class CommandError(ValueError):
    """A command to a benchmark actor cannot be read or run; `field` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


_COMMAND_FIELDS = {
    "deposit": ("n", "amount"),
    "run": ("n", "count", "rate", "window"),
    "stop": ("n",),
}


@dataclass(frozen=True, kw_only=True)
class SenderCommand:
    """One command, written `bench:<kind>:<name>=<value>:...` in a Ping's correlation id.

    - `deposit` (`n`, `amount`): send one USD deposit of `amount`;
    - `run` (`n`, `count`, `rate`, `window`): send `count` fills at `rate` fills/s (0: as
      fast as the window allows), never more than `window` unacknowledged at once;
    - `stop` (`n`): send no more fills of the current run (those in flight are still
      acknowledged).
    `n` is the command's serial number, unique within one control session.
    """

    kind: str
    serial: int
    count: int = 0
    rate: int = 0
    window: int = 0
    amount: Decimal = Decimal(0)

    def encode(self) -> str:
        """The correlation id that carries this command."""
        return command_text(
            self.kind,
            {
                "n": self.serial,
                "count": self.count,
                "rate": self.rate,
                "window": self.window,
                "amount": self.amount,
            },
            _COMMAND_FIELDS,
        )

    @classmethod
    def decode(cls, text: str) -> SenderCommand:
        """Read a command; CommandError names the bad part."""
        kind, values = read_command(text, _COMMAND_FIELDS)
        command = cls(
            kind=kind,
            serial=natural(values, "n", minimum=1),
            count=natural(values, "count", minimum=1) if "count" in values else 0,
            rate=natural(values, "rate", minimum=0) if "rate" in values else 0,
            window=natural(values, "window", minimum=1) if "window" in values else 0,
            amount=_positive_decimal(values, "amount") if "amount" in values else Decimal(0),
        )
        return command


def shipped_placement(config_path: Path, actors: Iterable[str]) -> dict[str, list[str]]:
    """The processes of the configuration at `config_path` (config.yaml) that host any of
    `actors`, each with those of `actors` it hosts, in the configuration's order: a benchmark
    runs them placed as shipped."""
    wanted = set(actors)
    placement = {}
    for process, settings in load_config(config_path).processes.items():
        hosted = [actor for actor in settings.actors if actor in wanted]
        if hosted:
            placement[process] = hosted
    return placement


def paced_due(count: int, rate: int, started: float, *, unpaced: int) -> int:
    """How many of a run's `count` items are due now when paced at `rate`/s from `started`
    (time.monotonic()), the first at once; `unpaced` (at most `count`) when `rate` is 0."""
    if not rate:
        return min(count, unpaced)
    return min(count, int((time.monotonic() - started) * rate) + 1)


def command_text(kind: str, values: dict[str, Any], fields: dict[str, tuple[str, ...]]) -> str:
    """`bench:<kind>:<name>=<value>:...` with the fields `kind` takes, in their order."""
    parts = [f"{name}={values[name]}" for name in fields[kind]]
    return COMMAND_PREFIX + ":".join([kind, *parts])


def read_command(text: str, fields: dict[str, tuple[str, ...]]) -> tuple[str, dict[str, str]]:
    """The kind and the `name=value` texts of a command written by `command_text`; every
    field of its kind present, no other. CommandError names the bad part."""
    if not text.startswith(COMMAND_PREFIX):
        raise CommandError("command", f"does not start with {COMMAND_PREFIX!r}")
    kind, *parts = text[len(COMMAND_PREFIX) :].split(":")
    expected = fields.get(kind)
    if expected is None:
        raise CommandError("command", f"unknown kind {kind!r} (known: {', '.join(fields)})")
    values: dict[str, str] = {}
    for part in parts:
        name, equals, value = part.partition("=")
        if not equals or name not in expected:
            raise CommandError(
                "command", f"{kind}: unexpected part {part!r} (takes {', '.join(expected)})"
            )
        values[name] = value
    missing = [name for name in expected if name not in values]
    if missing:
        raise CommandError(missing[0], f"{kind} needs it")
    return kind, values


def natural(values: dict[str, str], name: str, *, minimum: int) -> int:
    """Field `name` of a read command as a whole number of at least `minimum`."""
    text = values[name]
    if not text.isdigit():
        raise CommandError(name, f"expected a whole number, got {text!r}")
    number = int(text)
    if number < minimum:
        raise CommandError(name, f"must be at least {minimum}, got {number}")
    return number


def _positive_decimal(values: dict[str, str], name: str) -> Decimal:
    text = values[name]
    try:
        amount = Decimal(text)
    except decimal.InvalidOperation:
        raise CommandError(name, f"expected a decimal amount, got {text!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise CommandError(name, f"must be a finite amount > 0, got {text!r}")
    return amount


# -- status ----------------------------------------------------------------------------------

_STATUS_COUNTERS = (
    "sent",
    "acknowledged",
    "duplicates",
    "refused",
    "in_flight",
    "running",
    "run_sent",
    "run_count",
    "run_first_send_ns",
    "run_last_send_ns",
    "last_ack_ns",
)


@dataclass(frozen=True, kw_only=True)
class SenderStatus:
    """The sender's counters, as its status answer carries them.

    `sent` counts first sends of fills and deposits over the actor's life; `acknowledged`
    counts acknowledgements (of which `duplicates` said the journal already held the event);
    `refused` counts `DeliveryRefused`; `in_flight` is what still waits for an answer.
    `running` is true while the current run has fills left to send; `run_sent` / `run_count`
    are that run's progress; `run_first_send_ns` / `run_last_send_ns` bound its sends (wall
    time, ns; 0 before its first send); `last_ack_ns` is the wall time of the last
    acknowledgement; `acknowledged_seq` the highest journal seq acknowledged.
    """

    sent: int
    acknowledged: int
    duplicates: int
    refused: int
    in_flight: int
    running: bool
    run_sent: int
    run_count: int
    run_first_send_ns: int
    run_last_send_ns: int
    last_ack_ns: int
    acknowledged_seq: int

    @property
    def settled(self) -> bool:
        """Nothing left to send and nothing waiting for the journal's answer."""
        return not self.running and self.in_flight == 0

    def as_state(self, correlation_id: str) -> PortfolioState:
        """The status in the wire form the sender answers with."""
        return counters_state(
            self, _STATUS_COUNTERS, correlation_id=correlation_id, seq=self.acknowledged_seq
        )

    @classmethod
    def from_state(cls, state: Message) -> SenderStatus:
        """Read the sender's status answer; CommandError names what is missing."""
        values = counters_of(state, _STATUS_COUNTERS, CommandError)
        assert isinstance(state, PortfolioState)
        return cls(acknowledged_seq=state.seq, **values)


def counters_state(
    status: Any, names: tuple[str, ...], *, correlation_id: str, seq: int = 0
) -> PortfolioState:
    """A benchmark actor's status as a `PortfolioState` (no wire message is added for a
    benchmark): each counter `name` of `status` as a whole number under `cash[name]`."""
    return PortfolioState(
        correlation_id=correlation_id,
        seq=seq,
        as_of_ns=time.time_ns(),
        valuation_currency=DEPOSIT_CURRENCY,
        equity=None,
        cash={name: Decimal(int(getattr(status, name))) for name in names},
        positions={},
    )


def counters_of(
    state: Message, names: tuple[str, ...], error: Callable[[str, str], Exception]
) -> dict[str, Any]:
    """The counters `counters_state` put in `state` (`running` as a bool); `error(name,
    detail)` is raised for a missing or fractional one, or when `state` is no PortfolioState."""
    if not isinstance(state, PortfolioState):
        raise error("status", f"expected a PortfolioState, got {state!r}")
    values: dict[str, Any] = {}
    for name in names:
        value = state.cash.get(name)
        if value is None or value != value.to_integral_value():
            raise error(name, f"missing or not a whole number: {value!r}")
        values[name] = bool(value) if name == "running" else int(value)
    return values


# -- the actor -------------------------------------------------------------------------------


class _PaceTick:
    """Timer message: send the fills that are due."""


@dataclass
class _Run:
    count: int
    rate: int
    window: int
    started: float  # monotonic seconds
    sent: int = 0
    first_send_ns: int = 0
    last_send_ns: int = 0


class FillSenderActor(ServiceActor):
    """Sends the benchmark's fills to the journal over the reliable channel, as execution does.

    One run at a time. A paced run (`rate` > 0) sends, at every tick, the fills due by then:
    ⌊elapsed × rate⌋ + 1 in all, capped by `count` and by the in-flight window; a run at rate
    0 keeps the window full, topping it up at every acknowledgement.
    """

    def sockets(self) -> Iterable[SocketSpec]:
        return (Serve(SENDER_ENDPOINT), Connect(INGEST_ENDPOINT))

    def clock(self) -> int:
        """Now, in integer ns since the epoch (UTC): the source of `ts_init`, which the
        benchmark compares with the wall time at which the state shows the fill."""
        return time.time_ns()

    def started(self) -> None:
        self._decimal = decimal_context(self.config)
        self._prefix = f"S{os.getpid()}"
        self._next_index = 0
        self._deposits = 0
        self._run: _Run | None = None
        self._last_run: _Run | None = None
        self._tick_scheduled = False
        self._answers: dict[int, Pong] = {}
        self._sent = 0
        self._acknowledged = 0
        self._duplicates = 0
        self._refused = 0
        self._acknowledged_seq = 0
        self._last_ack_ns = 0

    # -- requests ---------------------------------------------------------------------------
    @handles(Ping, on=SENDER_ENDPOINT)
    def on_ping(self, ping: Ping, inbound: Inbound | None) -> Pong:
        """A command (`bench:...`) is run once per serial; any other Ping is a liveness ping."""
        if ping.correlation_id.startswith(COMMAND_PREFIX):
            command = SenderCommand.decode(ping.correlation_id)
            answered = self._answers.get(command.serial)
            if answered is not None:
                return answered  # a resend of a command already run
            self._run_command(command)
            answer = self._pong(ping)
            self._answers[command.serial] = answer
            return answer
        return self._pong(ping)

    @handles(GetPortfolioState, on=SENDER_ENDPOINT)
    def on_status(self, request: GetPortfolioState, inbound: Inbound | None) -> PortfolioState:
        """The sender's counters (see `SenderStatus`)."""
        return self.status().as_state(request.correlation_id)

    def status(self) -> SenderStatus:
        """The counters now."""
        run = self._run or self._last_run
        return SenderStatus(
            sent=self._sent,
            acknowledged=self._acknowledged,
            duplicates=self._duplicates,
            refused=self._refused,
            in_flight=self.unacknowledged(INGEST_ENDPOINT),
            running=self._run is not None,
            run_sent=run.sent if run else 0,
            run_count=run.count if run else 0,
            run_first_send_ns=run.first_send_ns if run else 0,
            run_last_send_ns=run.last_send_ns if run else 0,
            last_ack_ns=self._last_ack_ns,
            acknowledged_seq=self._acknowledged_seq,
        )

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
        )

    def _run_command(self, command: SenderCommand) -> None:
        if command.kind == "deposit":
            self._deposits += 1
            transfer_id = f"{self._prefix}-D{self._deposits}"
            deposit = bench_deposit(transfer_id, command.amount, self.clock())
            self.send_reliable(INGEST_ENDPOINT, deposit)
            self._sent += 1
        elif command.kind == "run":
            if self._run is not None:
                raise CommandError("run", "a run is still sending; stop it first")
            self._run = _Run(
                count=command.count,
                rate=command.rate,
                window=command.window,
                started=time.monotonic(),
            )
            self._pump()
        elif command.kind == "stop" and self._run is not None:
            self._last_run, self._run = self._run, None

    # -- sending -----------------------------------------------------------------------------
    @handles(_PaceTick)
    def on_pace_tick(self, tick: _PaceTick, inbound: Inbound | None) -> None:
        """Send what is due; keep ticking while the run lasts."""
        self._tick_scheduled = False
        self._pump()

    def _pump(self) -> None:
        run = self._run
        if run is None:
            return
        due = paced_due(run.count, run.rate, run.started, unpaced=run.count)
        room = run.window - self.unacknowledged(INGEST_ENDPOINT)
        for _ in range(min(due - run.sent, room)):
            ts_ns = self.clock()
            fill = bench_fill(
                self._next_index, prefix=self._prefix, ts_ns=ts_ns, context=self._decimal
            )
            self.send_reliable(INGEST_ENDPOINT, fill)
            self._next_index += 1
            self._sent += 1
            run.sent += 1
            run.first_send_ns = run.first_send_ns or ts_ns
            run.last_send_ns = ts_ns
        if run.sent >= run.count:
            self._last_run, self._run = run, None
        elif not self._tick_scheduled:
            # Paced runs need the clock; a full window also waits on it, in case an answer
            # is lost and the runtime's resend is what brings the next acknowledgement.
            self._tick_scheduled = True
            self.schedule(PACE_TICK_SECONDS, _PaceTick())

    def acknowledged(self, endpoint: str, ack: Acknowledgement, message: Message) -> None:
        self._acknowledged += 1
        self._duplicates += ack.duplicate
        self._acknowledged_seq = max(self._acknowledged_seq, ack.seq or 0)
        self._last_ack_ns = self.clock()
        if self._run is not None and self._run.rate == 0:
            self._pump()

    def refused(self, endpoint: str, refusal: DeliveryRefused, message: Message) -> None:
        self._refused += 1
        self._last_ack_ns = self.clock()


# -- the benchmark's side --------------------------------------------------------------------


class BenchControl:
    """Commands and status of a benchmark actor over its own request/reply `endpoint`:
    a command goes as a `Ping` carrying it, the status comes as a `PortfolioState`."""

    def __init__(self, context: zmq.Context, config: ServiceConfig, endpoint: str) -> None:
        self._client = RequestClient(
            context, endpoint, config.endpoints[endpoint], config.transport
        )
        self._serial = 0

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _send(self, kind: str, text: str) -> Pong:
        """Send the command `text`; CommandError unless the actor took it."""
        answer = self._client.request(Ping(correlation_id=text, sent_ns=time.time_ns()))
        if not isinstance(answer, Pong):
            raise CommandError(kind, f"{self._client.endpoint_name} answered {answer!r}")
        return answer

    def _status_state(self) -> Message:
        return self._client.request(
            GetPortfolioState(correlation_id=f"bench-{self._next_serial()}")
        )

    def close(self) -> None:
        """Close the socket."""
        self._client.close()

    def __enter__(self) -> BenchControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SenderControl(BenchControl):
    """Commands and status of a running `FillSenderActor`, over its `bench.sender` endpoint."""

    def __init__(self, context: zmq.Context, config: ServiceConfig) -> None:
        super().__init__(context, config, SENDER_ENDPOINT)

    def _command(self, kind: str, **fields: Any) -> Pong:
        command = SenderCommand(kind=kind, serial=self._next_serial(), **fields)
        return self._send(kind, command.encode())

    def deposit(self, amount: Decimal) -> None:
        """Have the sender deposit `amount` USD (journaled before the fills that follow)."""
        self._command("deposit", amount=amount)

    def run(self, count: int, *, rate: int, window: int) -> None:
        """Start sending `count` fills at `rate` fills/s (0: as fast as `window` allows)."""
        self._command("run", count=count, rate=rate, window=window)

    def stop(self) -> None:
        """End the current run (fills in flight are still acknowledged)."""
        self._command("stop")

    def status(self) -> SenderStatus:
        """The sender's counters now."""
        return SenderStatus.from_state(self._status_state())
