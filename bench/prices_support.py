"""What the prices benchmark runs inside the group: its quotes, its books and its tick source.

- `TICK_PAIRS`: XBT/USD and fifty made-up assets quoted in USD, A00/USD .. A49/USD. The
  prices, drawdown and portfolio actors take any "BASE/QUOTE" name.
- `tick_quote(k, ...)`: tick number `k` (0, 1, 2, ...) is a pure function of `k`. It changes
  the quote of one pair, `TICK_PAIRS[k mod P]` (P pairs), in cycles over the pairs, and its
  bid rises by one step every cycle, so every tick is a change (the prices actor publishes
  changes only) and no bid of a pair is ever repeated: a bid seen in the state names the
  tick that set it.
- `setup_events(...)`: the books the ticks value: a USD deposit, a buy of XBT/USD and
  deposits in kind of A00 .. A18 (twenty positions). The journal takes fills only on pairs
  Kraken lists (its bundled names table), so the made-up assets come in as deposits with
  their unit price, which books them exactly as a buy at that price would, less the cash.
- `TickSourceActor`: the prices actor with its exchange feed replaced by these ticks, at a
  requested rate or as fast as it can produce them, through the actor's own latest-wins and
  publish path (`PricesUpdated` on `prices.events`).
- `TickControl`: the benchmark's side of it, over the source's own `bench.ticks` endpoint.

The tick source understands existing messages only (no wire message is added for a
benchmark): a `Ping` whose correlation id starts with `bench:` is a command (`run`, `stop`;
see `TickCommand`), answered with a `Pong` once taken, and run once per serial number even
if resent; `GetPortfolioState` is answered with a `PortfolioState` whose `cash` holds the
source's counters by name (see `TickStatus`).
"""

from __future__ import annotations

import decimal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

import zmq

from actors.prices import PricesActor
from actors.runtime.actor import Inbound, Serve, SocketSpec, handles
from bench.books_support import (
    COMMAND_PREFIX,
    BenchControl,
    CommandError,
    command_text,
    counters_of,
    counters_state,
    natural,
    paced_due,
    read_command,
)
from messages import (
    ExecutionReport,
    GetPortfolioState,
    OrderStatus,
    Ping,
    Pong,
    PortfolioState,
    PriceQuote,
    PricesUpdated,
    Side,
    Transfer,
)
from messages.base import Message
from service.config import ServiceConfig

__all__ = [
    "DEPOSIT",
    "POSITION_ASSETS",
    "TICKS_ENDPOINT",
    "TICK_PAIRS",
    "XBT_BUY_FEE",
    "XBT_BUY_PRICE",
    "XBT_BUY_QUANTITY",
    "TickCommand",
    "TickControl",
    "TickSourceActor",
    "TickStatus",
    "deposit_quantity",
    "expected_cash",
    "expected_equity",
    "expected_positions",
    "last_bids",
    "setup_events",
    "tick_bid",
    "tick_pair",
    "tick_quote",
]

TICKS_ENDPOINT = "bench.ticks"
"""The tick source's own request/reply endpoint: commands and status."""

"""A Ping whose correlation id starts with this is a command to the tick source."""

VALUATION_CURRENCY = "USD"

TICK_PAIRS: tuple[str, ...] = ("XBT/USD", *(f"A{i:02d}/USD" for i in range(50)))
"""Every pair the source quotes: XBT/USD, then A00/USD .. A49/USD."""

_REFERENCE: dict[str, Decimal] = {"XBT/USD": Decimal("60000")} | {
    f"A{i:02d}/USD": Decimal(10 + i) for i in range(50)
}
_STEP: dict[str, Decimal] = {"XBT/USD": Decimal("0.1")} | {
    f"A{i:02d}/USD": Decimal("0.001") for i in range(50)
}
_SPREAD: dict[str, Decimal] = {"XBT/USD": Decimal("10")} | {
    f"A{i:02d}/USD": Decimal("0.01") for i in range(50)
}

DEPOSIT = Decimal("1000000")
"""USD deposited first."""

XBT_BUY_QUANTITY = Decimal("0.5")
XBT_BUY_PRICE = Decimal("60000")
XBT_BUY_FEE = Decimal("78")
"""The one fill: 0.5 XBT bought at 60,000 USD, 78 USD fee (0.26 %) charged in USD."""

POSITION_ASSETS: tuple[str, ...] = ("XBT", *(f"A{i:02d}" for i in range(19)))
"""The twenty positions: XBT (bought) and A00 .. A18 (deposited in kind)."""

PACE_SECONDS = 0.001
"""How often a paced run looks at how many ticks are due (the inbox wakes at ~1 ms)."""

TICKS_PER_TURN = 200
"""Ticks an unpaced run publishes per turn of the mailbox, so requests are answered between."""


# -- the ticks (pure) -------------------------------------------------------------------------


def tick_pair(k: int) -> str:
    """The pair tick `k` changes: `TICK_PAIRS[k mod P]`."""
    return TICK_PAIRS[k % len(TICK_PAIRS)]


def tick_bid(k: int) -> Decimal:
    """The bid tick `k` sets: reference + step × (k div P + 1), quote per base.

    One step more every cycle over the pairs: a pair's bid never repeats, so it tells which
    tick set it. Exact (a reference and a step with few digits).
    """
    pair = tick_pair(k)
    return _REFERENCE[pair] + _STEP[pair] * (k // len(TICK_PAIRS) + 1)


def tick_quote(k: int, received_ns: int) -> PriceQuote:
    """Tick `k` as a quote: its pair, bid `tick_bid(k)`, ask = bid + the pair's spread,
    last = bid, received at `received_ns` (the feed gives no exchange time)."""
    pair = tick_pair(k)
    bid = tick_bid(k)
    return PriceQuote(
        pair=pair,
        bid=bid,
        ask=bid + _SPREAD[pair],
        last=bid,
        exchange_ns=None,
        received_ns=received_ns,
    )


def last_bids(ticks: int) -> dict[str, Decimal]:
    """The bid each pair holds once ticks 0 .. `ticks` − 1 are taken (pairs never ticked are
    left out)."""
    count = len(TICK_PAIRS)
    bids = {}
    for index, pair in enumerate(TICK_PAIRS):
        if ticks > index:
            last = index + count * ((ticks - 1 - index) // count)
            bids[pair] = tick_bid(last)
    return bids


# -- the books (pure) -------------------------------------------------------------------------


def deposit_quantity(asset: str) -> Decimal:
    """Units of A`nn` deposited in kind: nn + 1 hundred (100 of A00, ..., 1,900 of A18)."""
    return Decimal(100 * (int(asset[1:]) + 1))


def setup_events(prefix: str, ts_ns: int) -> list[ExecutionReport | Transfer]:
    """The events journaled before the ticks: USD deposit, XBT buy, A00..A18 in kind.

    A deposit in kind comes in at its pair's reference price (`unit_price`), its cost basis.
    Ids start with `prefix`, so a second group never takes them for duplicates.
    """
    events: list[ExecutionReport | Transfer] = [
        Transfer(
            transfer_id=f"{prefix}-usd",
            asset=VALUATION_CURRENCY,
            amount=DEPOSIT,
            ts_event=ts_ns,
            ts_init=ts_ns,
        ),
        ExecutionReport(
            exec_id=f"{prefix}-xbt",
            order_id=f"{prefix}-oxbt",
            pair="XBT/USD",
            side=Side.BUY,
            status=OrderStatus.FILLED,
            last_qty=XBT_BUY_QUANTITY,
            last_price=XBT_BUY_PRICE,
            fee=XBT_BUY_FEE,
            fee_currency=VALUATION_CURRENCY,
            quote_rate=None,
            ts_event=ts_ns,
            ts_init=ts_ns,
        ),
    ]
    for asset in POSITION_ASSETS[1:]:
        events.append(
            Transfer(
                transfer_id=f"{prefix}-{asset}",
                asset=asset,
                amount=deposit_quantity(asset),
                unit_price=_REFERENCE[f"{asset}/{VALUATION_CURRENCY}"],
                ts_event=ts_ns,
                ts_init=ts_ns,
            )
        )
    return events


def expected_cash(context: decimal.Context) -> Decimal:
    """USD after `setup_events`: deposit − XBT quantity × price − fee (a buy spends cash)."""
    cost = context.multiply(XBT_BUY_QUANTITY, XBT_BUY_PRICE)
    return context.subtract(DEPOSIT, context.add(cost, XBT_BUY_FEE))


def expected_positions() -> dict[str, Decimal]:
    """The quantity of each of the twenty positions after `setup_events`."""
    quantities = {"XBT": XBT_BUY_QUANTITY}
    quantities.update({asset: deposit_quantity(asset) for asset in POSITION_ASSETS[1:]})
    return quantities


def expected_equity(ticks: int, context: decimal.Context) -> tuple[Decimal, dict[str, Decimal]]:
    """Equity after `setup_events` and ticks 0 .. `ticks` − 1, and the bids it uses.

    equity = USD cash + Σ quantity × bid (longs at the bid, all in USD), where cash =
    deposit − XBT quantity × price − fee and each bid is the pair's last tick's.
    """
    bids = last_bids(ticks)
    cash = expected_cash(context)
    equity = context.add(cash, context.multiply(XBT_BUY_QUANTITY, bids["XBT/USD"]))
    for asset in POSITION_ASSETS[1:]:
        value = context.multiply(deposit_quantity(asset), bids[f"{asset}/{VALUATION_CURRENCY}"])
        equity = context.add(equity, value)
    return equity, bids


# -- commands ---------------------------------------------------------------------------------


_COMMAND_FIELDS = {"run": ("n", "count", "rate"), "stop": ("n",)}


@dataclass(frozen=True, kw_only=True)
class TickCommand:
    """One command, written `bench:<kind>:<name>=<value>:...` in a Ping's correlation id.

    - `run` (`n`, `count`, `rate`): publish the next `count` ticks at `rate` ticks/s (0: as
      fast as the source can);
    - `stop` (`n`): publish no more ticks of the current run.
    `n` is the command's serial number, unique within one control session.
    """

    kind: str
    serial: int
    count: int = 0
    rate: int = 0

    def encode(self) -> str:
        """The correlation id that carries this command."""
        values = {"n": self.serial, "count": self.count, "rate": self.rate}
        return command_text(self.kind, values, _COMMAND_FIELDS)

    @classmethod
    def decode(cls, text: str) -> TickCommand:
        """Read a command; CommandError names the bad part."""
        kind, values = read_command(text, _COMMAND_FIELDS)
        return cls(
            kind=kind,
            serial=natural(values, "n", minimum=1),
            count=natural(values, "count", minimum=1) if "count" in values else 0,
            rate=natural(values, "rate", minimum=0) if "rate" in values else 0,
        )


# -- status -----------------------------------------------------------------------------------

_STATUS_COUNTERS = (
    "ticks",
    "running",
    "run_count",
    "run_sent",
    "run_first_ns",
    "run_last_ns",
)


@dataclass(frozen=True, kw_only=True)
class TickStatus:
    """The source's counters, as its status answer carries them.

    `ticks` counts the ticks published over the actor's life (tick numbers 0 .. ticks − 1);
    `running` is true while the current run has ticks left; `run_count` / `run_sent` are that
    run's (or the last run's) size and progress; `run_first_ns` / `run_last_ns` the wall
    time (ns) of its first and last tick (0 before its first).
    """

    ticks: int
    running: bool
    run_count: int
    run_sent: int
    run_first_ns: int
    run_last_ns: int

    def as_state(self, correlation_id: str) -> PortfolioState:
        """The status in the wire form the source answers with."""
        return counters_state(self, _STATUS_COUNTERS, correlation_id=correlation_id)

    @classmethod
    def from_state(cls, state: Message) -> TickStatus:
        """Read the source's status answer; CommandError names what is missing."""
        return cls(**counters_of(state, _STATUS_COUNTERS, CommandError))


# -- the actor --------------------------------------------------------------------------------


class _PumpDue:
    """Timer message: publish the ticks that are due."""


@dataclass
class _Run:
    count: int
    rate: int
    started: float  # monotonic seconds
    sent: int = 0
    first_ns: int = 0
    last_ns: int = 0


class TickSourceActor(PricesActor):
    """The prices actor fed by benchmark ticks instead of an exchange; see the module doc.

    One run at a time. A paced run (`rate` > 0) publishes, every `PACE_SECONDS`, the ticks
    due by then: ⌊elapsed × rate⌋ + 1 in all, capped by `count`. An unpaced run publishes
    `TICKS_PER_TURN` ticks per turn and comes back through a zero-delay timer, which the
    inbox serves after the frames waiting, so status requests are answered during the run.
    Each tick goes through `on_prices_injected`, the path every injected quote takes (latest
    wins, validated, published when it changed).
    """

    feed_enabled: ClassVar[bool] = False

    def sockets(self) -> Iterable[SocketSpec]:
        return (*super().sockets(), Serve(TICKS_ENDPOINT))

    def started(self) -> None:
        super().started()
        self._ticks = 0
        self._run: _Run | None = None
        self._last_run: _Run | None = None
        self._pump_scheduled = False
        self._answers: dict[int, Pong] = {}

    @handles(Ping, on=(TICKS_ENDPOINT, "prices.query"))
    def on_ping(self, ping: Ping, inbound: Inbound | None) -> Pong:
        """A command (`bench:...`, on `bench.ticks` only) is run once per serial; any other
        Ping is a liveness ping."""
        on_ticks = inbound is None or inbound.socket == TICKS_ENDPOINT
        if not (on_ticks and ping.correlation_id.startswith(COMMAND_PREFIX)):
            return self._pong(ping)
        command = TickCommand.decode(ping.correlation_id)
        answered = self._answers.get(command.serial)
        if answered is not None:
            return answered  # a resend of a command already run
        if command.kind == "run":
            if self._run is not None:
                raise CommandError("run", "a run is still ticking; stop it first")
            self._run = _Run(count=command.count, rate=command.rate, started=time.monotonic())
            self._pump()
        elif self._run is not None:
            self._last_run, self._run = self._run, None
        answer = self._pong(ping)
        self._answers[command.serial] = answer
        return answer

    @handles(GetPortfolioState, on=TICKS_ENDPOINT)
    def on_status(self, request: GetPortfolioState, inbound: Inbound | None) -> PortfolioState:
        """The source's counters (see `TickStatus`)."""
        return self.status().as_state(request.correlation_id)

    def status(self) -> TickStatus:
        """The counters now."""
        run = self._run or self._last_run
        return TickStatus(
            ticks=self._ticks,
            running=self._run is not None,
            run_count=run.count if run else 0,
            run_sent=run.sent if run else 0,
            run_first_ns=run.first_ns if run else 0,
            run_last_ns=run.last_ns if run else 0,
        )

    @handles(_PumpDue)
    def on_pump_due(self, due: _PumpDue, inbound: Inbound | None) -> None:
        """Publish what is due; keep pumping while the run lasts."""
        self._pump_scheduled = False
        self._pump()

    def _pump(self) -> None:
        run = self._run
        if run is None:
            return
        due = paced_due(run.count, run.rate, run.started, unpaced=run.sent + TICKS_PER_TURN)
        for _ in range(due - run.sent):
            now_ns = self.clock()
            self.on_prices_injected(PricesUpdated(quotes=(tick_quote(self._ticks, now_ns),)), None)
            self._ticks += 1
            run.sent += 1
            run.first_ns = run.first_ns or now_ns
            run.last_ns = now_ns
        if run.sent >= run.count:
            self._last_run, self._run = run, None
        elif not self._pump_scheduled:
            self._pump_scheduled = True
            self.schedule(PACE_SECONDS if run.rate else 0.0, _PumpDue())


# -- the benchmark's side ---------------------------------------------------------------------


class TickControl(BenchControl):
    """Commands and status of a running `TickSourceActor`, over its `bench.ticks` endpoint."""

    def __init__(self, context: zmq.Context, config: ServiceConfig) -> None:
        super().__init__(context, config, TICKS_ENDPOINT)

    def _command(self, kind: str, **fields: int) -> None:
        command = TickCommand(kind=kind, serial=self._next_serial(), **fields)
        self._send(kind, command.encode())

    def run(self, count: int, *, rate: int) -> None:
        """Start publishing the next `count` ticks at `rate` ticks/s (0: as fast as it can)."""
        self._command("run", count=count, rate=rate)

    def stop(self) -> None:
        """End the current run."""
        self._command("stop")

    def status(self) -> TickStatus:
        """The source's counters now."""
        return TickStatus.from_state(self._status_state())
