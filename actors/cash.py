"""The cash actor: balance per cash currency, a fold of the journal.

Publishes `CashChanged(first_seq, seq, changed balances)` once per group commit of the
journal it applies (and once per replayed range), covering every event of it (empty when they
move no cash), so readers can follow it in lockstep with the journal, and answers
`GetCashState` with every balance at its current seq.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from actors.core.accounting import CashLedger
from actors.journal_follower import JournalFollower, check_balances
from actors.runtime.actor import Inbound, Publish, Serve, SocketSpec, handles
from messages import CashChanged, CashState, GetCashState, SequencedEvent
from messages.base import Message


class CashActor(JournalFollower):
    """Owns the cash balances."""

    ledger_class = CashLedger
    events_endpoint = "cash.events"

    def follower_sockets(self) -> Iterable[SocketSpec]:
        return (Publish("cash.events"), Serve("cash.query"))

    def restore(self, seq: int, state: Message) -> None:
        assert isinstance(state, CashState)
        self.ledger.balances = dict(state.balances)
        self.ledger.seq = seq

    def current_state(self) -> CashState:
        return CashState(
            correlation_id="snapshot", seq=self.ledger.seq, balances=dict(self.ledger.balances)
        )

    def fold(self, event: SequencedEvent) -> dict[str, Any]:
        changed = self.ledger.apply(event.seq, event.event)
        check_balances(changed)
        return changed

    def publish_changes(self, first_seq: int, seq: int, changed: dict[str, Any]) -> None:
        self.publish("cash.events", CashChanged(first_seq=first_seq, seq=seq, balances=changed))

    @handles(GetCashState, on="cash.query")
    def on_get_cash_state(self, request: GetCashState, inbound: Inbound | None) -> CashState:
        """Every balance at the current seq (and where the fold halted, if it did)."""
        return CashState(
            correlation_id=request.correlation_id,
            seq=self.ledger.seq,
            balances=dict(self.ledger.balances),
            halted=self.halted,
        )
