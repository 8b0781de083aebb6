"""The positions actor: quantity, average cost, realized P&L and fees per non-cash asset.

A fold of the journal. Publishes `PositionsChanged(first_seq, seq, changed positions)` once
per group commit of the journal it applies (and once per replayed range; empty when its events
touch no position) and answers `GetPositionsState`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from actors.core.accounting import PositionLedger
from actors.journal_follower import JournalFollower, check_positions
from actors.runtime.actor import Inbound, Publish, Serve, SocketSpec, handles
from actors.translate import position_book, position_state
from messages import (
    GetPositionsState,
    PositionsChanged,
    PositionsState,
    PositionState,
    SequencedEvent,
)
from messages.base import Message


class PositionsActor(JournalFollower):
    """Owns the positions."""

    ledger_class = PositionLedger
    events_endpoint = "positions.events"

    def follower_sockets(self) -> Iterable[SocketSpec]:
        return (Publish("positions.events"), Serve("positions.query"))

    def restore(self, seq: int, state: Message) -> None:
        assert isinstance(state, PositionsState)
        self.ledger.positions = {asset: position_book(p) for asset, p in state.positions.items()}
        self.ledger.seq = seq

    def _all(self) -> dict[str, PositionState]:
        return {asset: position_state(asset, book) for asset, book in self.ledger.positions.items()}

    def current_state(self) -> PositionsState:
        return PositionsState(correlation_id="snapshot", seq=self.ledger.seq, positions=self._all())

    def fold(self, event: SequencedEvent) -> dict[str, Any]:
        changed = self.ledger.apply(event.seq, event.event)
        check_positions(changed)
        return changed

    def publish_changes(self, first_seq: int, seq: int, changed: dict[str, Any]) -> None:
        self.publish(
            "positions.events",
            PositionsChanged(
                first_seq=first_seq,
                seq=seq,
                positions={asset: position_state(asset, book) for asset, book in changed.items()},
            ),
        )

    @handles(GetPositionsState, on="positions.query")
    def on_get_positions_state(
        self, request: GetPositionsState, inbound: Inbound | None
    ) -> PositionsState:
        """Every position at the current seq (and where the fold halted, if it did)."""
        return PositionsState(
            correlation_id=request.correlation_id,
            seq=self.ledger.seq,
            positions=self._all(),
            halted=self.halted,
        )
