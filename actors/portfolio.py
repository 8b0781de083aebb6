"""The portfolio actor: the read model that answers `GetPortfolioState`.

It owns nothing of its own. It follows the cash and positions actors' change streams and
keeps each part in lockstep: a part's changes up to journal event `seq` are applied only when
the other part can reach that same `seq` too, so every snapshot it serves has every part at
exactly one `seq`. Changes come per event live and per replayed range while catching up; a
range applies whole. A gap in a stream (a lost message, a restarted actor) is
repaired by asking that actor for its full state; until both parts meet again at one seq,
queries get the last consistent snapshot, never a mix.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from actors.runtime.actor import (
    Connect,
    Inbound,
    RequestFailed,
    Serve,
    ServiceActor,
    SocketSpec,
    Subscribe,
    handles,
)
from messages import (
    CashChanged,
    CashState,
    ErrorCode,
    ErrorReply,
    GetCashState,
    GetPortfolioState,
    GetPositionsState,
    PortfolioState,
    PositionsChanged,
    PositionsState,
    PositionState,
)

MAX_PENDING_CHANGES = 10_000
"""Changes queued for a part that is ahead of the other; past this, it resyncs in full."""


class _Resync:
    """Timer message: check both parts are following, resync a silent one."""


@dataclass
class _Part:
    """One followed part (cash or positions): its values at `seq` and changes queued beyond."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    pending: deque = field(default_factory=deque)  # (first, last, changed), contiguous ranges
    resyncing: bool = False
    synced: bool = False  # a full state has been taken at least once

    @property
    def received(self) -> int:
        """The highest seq this part can reach with what has arrived."""
        return self.pending[-1][1] if self.pending else self.seq

    def queue(self, first_seq: int, seq: int, changed: dict[str, Any]) -> bool:
        """Queue the changes of events first_seq..seq; False when that leaves a gap, or
        when too much is queued (the part then needs a resync from the full state)."""
        if seq <= self.received:
            return True  # already have it
        if first_seq != self.received + 1 or len(self.pending) >= MAX_PENDING_CHANGES:
            return False
        self.pending.append((first_seq, seq, changed))
        return True

    def advance_to(self, target: int) -> None:
        """Apply queued ranges that end at or before `target` (a range applies whole)."""
        while self.pending and self.pending[0][1] <= target:
            _, seq, changed = self.pending.popleft()
            self.values.update(changed)
            self.seq = seq

    def reset(self, seq: int, values: dict[str, Any]) -> None:
        """Take a full state at `seq`; drop queued changes it already covers."""
        self.values = dict(values)
        self.seq = seq
        while self.pending and self.pending[0][1] <= seq:
            self.pending.popleft()
        if self.pending and self.pending[0][0] != seq + 1:
            self.pending.clear()  # what is queued does not follow on: wait for more


class PortfolioActor(ServiceActor):
    """Serves the portfolio state on `portfolio.query` (request/reply)."""

    resync_interval_seconds = 1.0

    def sockets(self) -> Iterable[SocketSpec]:
        return (
            Subscribe("cash.events"),
            Subscribe("positions.events"),
            Connect("cash.query"),
            Connect("positions.query"),
            Serve("portfolio.query"),
        )

    def started(self) -> None:
        self.cash = _Part("cash")
        self.positions = _Part("positions")
        self._snapshot: PortfolioState | None = None
        self._snapshot_seq = -1
        self._last_change_at = time.monotonic()
        self._confirmed_at_ns = time.time_ns()
        self._resync(self.cash)
        self._resync(self.positions)
        self.schedule(self.resync_interval_seconds, _Resync())

    # -- following ------------------------------------------------------------------------------
    @handles(CashChanged, on="cash.events")
    def on_cash_changed(self, change: CashChanged, inbound: Inbound | None) -> None:
        """Queue a cash change; advance both parts in lockstep."""
        self._follow(self.cash, change.first_seq, change.seq, change.balances)

    @handles(PositionsChanged, on="positions.events")
    def on_positions_changed(self, change: PositionsChanged, inbound: Inbound | None) -> None:
        """Queue a positions change; advance both parts in lockstep."""
        self._follow(self.positions, change.first_seq, change.seq, change.positions)

    def _follow(self, part: _Part, first_seq: int, seq: int, changed: dict[str, Any]) -> None:
        self._last_change_at = time.monotonic()
        if not part.queue(first_seq, seq, changed):
            part.pending.clear()
            self._resync(part)
            return
        self._advance()

    def _advance(self) -> None:
        target = min(self.cash.received, self.positions.received)
        self.cash.advance_to(target)
        self.positions.advance_to(target)
        self._confirmed_at_ns = time.time_ns()

    @handles(_Resync)
    def on_resync_tick(self, tick: _Resync, inbound: Inbound | None) -> None:
        """When the streams are quiet, make sure both parts caught up with their actors."""
        if time.monotonic() - self._last_change_at >= self.resync_interval_seconds:
            self._resync(self.cash)
            self._resync(self.positions)
        self.schedule(self.resync_interval_seconds, _Resync())

    def _resync(self, part: _Part) -> None:
        if part.resyncing:
            return
        part.resyncing = True
        if part is self.cash:
            request: Any = GetCashState(correlation_id=self.next_correlation_id())
            endpoint = "cash.query"
        else:
            request = GetPositionsState(correlation_id=self.next_correlation_id())
            endpoint = "positions.query"
        self.request(
            endpoint,
            request,
            on_reply=self._resynced(part),
            on_failure=self._resync_failed(part),
        )

    def _resynced(self, part: _Part) -> Callable[[Any], None]:
        def take(state: Any) -> None:
            part.resyncing = False
            if isinstance(state, CashState):
                values: dict[str, Any] = dict(state.balances)
            elif isinstance(state, PositionsState):
                values = dict(state.positions)
            else:
                self.log.warning("{} resync answered with {}", part.name, type(state).__name__)
                return
            if state.seq >= part.received:
                part.reset(state.seq, values)
            part.synced = True
            self._advance()  # also stamps the confirmation time

        return take

    def _resync_failed(self, part: _Part) -> Callable[[RequestFailed], None]:
        def failed(failure: RequestFailed) -> None:
            part.resyncing = False

        return failed

    # -- serving --------------------------------------------------------------------------------
    def _consistent_snapshot(self) -> PortfolioState | None:
        if self.cash.seq == self.positions.seq and self.cash.seq != self._snapshot_seq:
            accounting = self.config.accounting
            cash: dict[str, Decimal] = dict(self.cash.values)
            positions: dict[str, PositionState] = dict(self.positions.values)
            equity = None
            if not positions and set(cash) <= {accounting.valuation_currency}:
                equity = cash.get(accounting.valuation_currency, Decimal(0))
            self._snapshot = PortfolioState(
                correlation_id="-",
                seq=self.cash.seq,
                as_of_ns=self._confirmed_at_ns,
                valuation_currency=accounting.valuation_currency,
                equity=equity,
                cash=cash,
                positions=positions,
            )
            self._snapshot_seq = self.cash.seq
        return self._snapshot

    @handles(GetPortfolioState, on="portfolio.query")
    def on_get_portfolio_state(
        self, request: GetPortfolioState, inbound: Inbound | None
    ) -> PortfolioState | ErrorReply:
        """The latest snapshot whose every part is at one seq, stamped when last confirmed.

        Until both parts have been read in full once (just after a start), the answer is an
        `ErrorReply(unavailable)`: an empty portfolio would be a silently wrong one.
        """
        if not (self.cash.synced and self.positions.synced):
            return ErrorReply(
                correlation_id=request.correlation_id,
                code=ErrorCode.UNAVAILABLE,
                detail="the portfolio is catching up with the cash and positions actors",
            )
        state = self._consistent_snapshot()
        assert state is not None
        as_of = (
            self._confirmed_at_ns
            if state.seq == self.cash.seq == self.positions.seq
            else state.as_of_ns
        )
        return PortfolioState(
            correlation_id=request.correlation_id,
            seq=state.seq,
            as_of_ns=as_of,
            valuation_currency=state.valuation_currency,
            equity=state.equity,
            cash=state.cash,
            positions=state.positions,
        )
