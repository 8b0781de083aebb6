"""The risk actor: reads the portfolio state often and answers `CheckOrder`.

It polls `portfolio.query` every `risk.poll_interval_ms` (a request with timeout and
retries, never blocking its mailbox) and decides from the last state it holds. It fails
closed: no state, a part of the books halted (an actor that could not fold a journal event,
named with its seq), a state older than `risk.max_state_age_ms`, a drawdown window at or over
its limit, a holding valued with a stale price or none (`risk.deny_on_stale_prices`), or an
order it cannot value is denied, with the reason.

The books must also be keeping up with the exchange: it asks the journal for its status on
the same poll (`GetJournalStatus`) and denies while the journal's commits fail or it has not
answered within `risk.max_state_age_ms`, and while the asker of a `CheckOrder` says one of
its execution reports has waited longer than `risk.max_report_backlog_ms` for the journal's
acknowledgement (`feed_gate`). No request goes from here to the execution actor, which asks
here: the backlog comes with its question.

Exposure of a position is |quantity × price| in the valuation currency: its market value
when the portfolio priced it, else quantity × average cost (its cost basis), as
`actors.core.valuation.exposure` defines it. An order's effect is judged at the order's
price: exposure after = |(quantity ± order quantity) × price|. All of it is computed in the
service's decimal context (`service.decimal_precision`), never the ambient one.
"""

from __future__ import annotations

import decimal
import time
from collections.abc import Iterable
from decimal import Decimal

from actors.core.accounting import split_pair
from actors.core.valuation import total_exposure
from actors.runtime.actor import (
    Connect,
    Inbound,
    RequestFailed,
    Serve,
    ServiceActor,
    SocketSpec,
    handles,
)
from actors.translate import position_exposure
from messages import (
    CheckOrder,
    GetJournalStatus,
    GetPortfolioState,
    GetRiskVerdict,
    JournalStatus,
    PortfolioState,
    RiskDecision,
    RiskVerdict,
    Side,
)
from service.config import decimal_context


class _Poll:
    """Timer message: read the portfolio state."""


def _pct(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def decide(
    order: CheckOrder,
    state: PortfolioState | None,
    state_age_ms: int,
    *,
    max_state_age_ms: int,
    max_position_exposure: Decimal,
    max_total_exposure: Decimal,
    context: decimal.Context,
    deny_on_stale_prices: bool = True,
    max_reconciliation_age_ms: int | None = None,
    deny_on_discrepancy: bool = True,
    now_ns: int = 0,
) -> tuple[bool, str]:
    """Approve or deny `order` against `state`; pure, so every rule is tested directly.
    Exposure is computed in `context` (the service's decimal context)."""
    allowed, reason = trading_gate(
        state,
        state_age_ms,
        max_state_age_ms=max_state_age_ms,
        deny_on_stale_prices=deny_on_stale_prices,
        max_reconciliation_age_ms=max_reconciliation_age_ms,
        deny_on_discrepancy=deny_on_discrepancy,
        now_ns=now_ns,
    )
    if not allowed:
        return False, reason
    assert state is not None
    base, quote = split_pair(order.pair)
    if quote != state.valuation_currency:
        return False, f"cannot value {order.pair}: quote is not {state.valuation_currency}"
    held = state.positions.get(base)
    quantity = held.quantity if held is not None else Decimal(0)
    change = order.quantity if order.side is Side.BUY else context.minus(order.quantity)
    after = context.abs(context.multiply(context.add(quantity, change), order.price))
    if after > max_position_exposure:
        return False, f"{base} exposure after the order {after} > limit {max_position_exposure}"
    others = total_exposure(
        (position_exposure(p, context) for asset, p in state.positions.items() if asset != base),
        context,
    )
    total = context.add(others, after)
    if total > max_total_exposure:
        return False, f"total exposure after the order {total} > limit {max_total_exposure}"
    return True, ""


def trading_gate(
    state: PortfolioState | None,
    state_age_ms: int,
    *,
    max_state_age_ms: int,
    deny_on_stale_prices: bool = True,
    max_reconciliation_age_ms: int | None = None,
    deny_on_discrepancy: bool = True,
    now_ns: int = 0,
) -> tuple[bool, str]:
    """Whether any order may go out at all, whatever its size: the rules that do not depend
    on the order (a halted part of the books, the state's age, drawdown limits,
    reconciliation, price freshness)."""
    if state is None:
        return False, "no portfolio state yet"
    if state.halted:
        shown = "; ".join(f"{h.actor} at seq {h.seq} ({h.reason})" for h in state.halted)
        return False, f"the books are halted: {shown}"
    if state_age_ms > max_state_age_ms:
        return False, f"portfolio state is {state_age_ms} ms old (limit {max_state_age_ms} ms)"
    drawdown = state.drawdown
    if drawdown is not None and drawdown.breached:
        limits = {
            "total": (drawdown.total_pct, drawdown.max_total_pct),
            "daily": (drawdown.daily_pct, drawdown.max_daily_pct),
            "weekly": (drawdown.weekly_pct, drawdown.max_weekly_pct),
        }
        shown = ", ".join(
            f"{window} {_pct(limits[window][0])}% (limit {limits[window][1]}%)"
            for window in drawdown.breached
        )
        return False, f"drawdown limit breached: {shown}"
    recon = state.reconciliation
    if recon is not None:
        if max_reconciliation_age_ms is not None:
            if recon.last_success_ns is None:
                return False, "the books have not been reconciled with the exchange yet"
            age_ms = (now_ns - recon.last_success_ns) // 1_000_000
            if age_ms > max_reconciliation_age_ms:
                return False, (
                    f"the last successful reconciliation is {age_ms // 1000} s old "
                    f"(limit {max_reconciliation_age_ms // 1000} s)"
                )
        if deny_on_discrepancy and recon.open_discrepancies:
            shown = ", ".join(
                f"{d.asset} (books {d.books}, exchange {d.exchange})"
                for d in recon.open_discrepancies
            )
            return False, f"reconciliation discrepancies are open: {shown}"
    if deny_on_stale_prices and (state.stale or state.unpriced):
        parts = []
        if state.unpriced:
            parts.append(f"unpriced: {', '.join(state.unpriced)}")
        if state.stale:
            parts.append(f"stale prices: {', '.join(state.stale)}")
        return False, f"holdings cannot be valued with fresh prices ({'; '.join(parts)})"
    return True, ""


def feed_gate(
    journal: JournalStatus | None,
    journal_age_ms: int,
    *,
    max_journal_age_ms: int,
    unacknowledged_reports: int = 0,
    oldest_unacknowledged_ms: int = 0,
    max_report_backlog_ms: int,
) -> tuple[bool, str]:
    """Whether what happens on the exchange reaches the books: the journal answers and
    commits, and no execution report has waited too long for its acknowledgement. While
    either fails the books lag behind the exchange, however fresh the state looks. The most
    telling reason first: failing commits, then the backlog, then a journal gone silent."""
    if journal is not None and journal.commit_failures:
        return False, (
            f"the journal cannot commit: {journal.last_error} "
            f"({journal.commit_failures} failed in a row)"
        )
    if oldest_unacknowledged_ms > max_report_backlog_ms:
        return False, (
            f"{unacknowledged_reports} execution reports wait for the journal's "
            f"acknowledgement, the oldest for {oldest_unacknowledged_ms} ms "
            f"(limit {max_report_backlog_ms} ms)"
        )
    if journal is None:
        return False, "no status from the journal yet"
    if journal_age_ms > max_journal_age_ms:
        return False, (
            f"the journal has not answered for {journal_age_ms} ms (limit {max_journal_age_ms} ms)"
        )
    return True, ""


class RiskActor(ServiceActor):
    """Answers `CheckOrder` on `risk.query` from the last portfolio state it read."""

    def sockets(self) -> Iterable[SocketSpec]:
        return (Connect("portfolio.query"), Connect("journal.replay"), Serve("risk.query"))

    def started(self) -> None:
        self.context = decimal_context(self.config)
        self.state: PortfolioState | None = None
        self.state_received = 0.0
        self.polling = False
        self.denied = 0
        self.approved = 0
        self.journal: JournalStatus | None = None
        self.journal_received = 0.0
        self.journal_polling = False
        self._backlog: tuple[int, int, float] | None = None  # the last asker's, received at
        self.schedule(0, _Poll())

    @handles(_Poll)
    def on_poll(self, tick: _Poll, inbound: Inbound | None) -> None:
        """Ask for the portfolio state (one request at a time), then schedule the next poll."""
        if not self.polling:
            self.polling = True
            self.request(
                "portfolio.query",
                GetPortfolioState(correlation_id=self.next_correlation_id()),
                on_reply=self._got_state,
                on_failure=self._poll_failed,
            )
        if not self.journal_polling:
            self.journal_polling = True
            self.request(
                "journal.replay",
                GetJournalStatus(correlation_id=self.next_correlation_id()),
                on_reply=self._got_journal_status,
                on_failure=self._journal_poll_failed,
            )
        self.schedule(self.config.risk.poll_interval_ms / 1000, _Poll())

    def _got_state(self, answer: object) -> None:
        self.polling = False
        if isinstance(answer, PortfolioState):
            self.state = answer
            self.state_received = time.monotonic()
        else:
            self.log.warning("portfolio answered {}", answer)

    def _poll_failed(self, failure: RequestFailed) -> None:
        self.polling = False

    def _got_journal_status(self, answer: object) -> None:
        self.journal_polling = False
        if isinstance(answer, JournalStatus):
            self.journal = answer
            self.journal_received = time.monotonic()
        else:
            self.log.warning("journal answered {}", answer)

    def _journal_poll_failed(self, failure: RequestFailed) -> None:
        self.journal_polling = False

    def _feed_verdict(self, reports: int, oldest_ms: int) -> tuple[bool, str]:
        age_ms = (
            int((time.monotonic() - self.journal_received) * 1000)
            if self.journal is not None
            else 1 << 31
        )
        return feed_gate(
            self.journal,
            age_ms,
            max_journal_age_ms=self.config.risk.max_state_age_ms,
            unacknowledged_reports=reports,
            oldest_unacknowledged_ms=oldest_ms,
            max_report_backlog_ms=self.config.risk.max_report_backlog_ms,
        )

    def _last_backlog(self) -> tuple[int, int]:
        """The backlog the last `CheckOrder` reported, aged since, while it is recent (an
        asker that stopped asking tells nothing more)."""
        if self._backlog is None:
            return 0, 0
        reports, oldest_ms, received = self._backlog
        waited_ms = int((time.monotonic() - received) * 1000)
        if waited_ms > self.config.risk.max_state_age_ms:
            return 0, 0
        return reports, oldest_ms + waited_ms if reports else 0

    def counters(self) -> dict[str, int]:
        return {"approved": self.approved, "denied": self.denied}

    def _state_age_ms(self) -> int:
        if self.state is None:
            return 1 << 31
        received_ms = int((time.monotonic() - self.state_received) * 1000)
        confirmed_ms = (time.time_ns() - self.state.as_of_ns) // 1_000_000
        return max(received_ms, confirmed_ms, 0)

    def _rules(self) -> dict:
        risk = self.config.risk
        return {
            "max_state_age_ms": risk.max_state_age_ms,
            "deny_on_stale_prices": risk.deny_on_stale_prices,
            "max_reconciliation_age_ms": None
            if risk.max_reconciliation_age_seconds is None
            else int(risk.max_reconciliation_age_seconds * 1000),
            "deny_on_discrepancy": risk.deny_on_discrepancy,
            "now_ns": time.time_ns(),
        }

    @handles(GetRiskVerdict, on="risk.query")
    def on_get_verdict(self, request: GetRiskVerdict, inbound: Inbound | None) -> RiskVerdict:
        """Whether orders may go out now at all (the order-independent rules), and why not."""
        age_ms = self._state_age_ms()
        allowed, reason = self._feed_verdict(*self._last_backlog())
        if allowed:
            allowed, reason = trading_gate(self.state, age_ms, **self._rules())
        return RiskVerdict(
            correlation_id=request.correlation_id,
            trading_allowed=allowed,
            reason=reason,
            state_seq=self.state.seq if self.state else 0,
            state_age_ms=age_ms,
            approved=self.approved,
            denied=self.denied,
        )

    @handles(CheckOrder, on="risk.query")
    def on_check_order(self, order: CheckOrder, inbound: Inbound | None) -> RiskDecision:
        """Approve or deny, fail closed."""
        risk = self.config.risk
        age_ms = self._state_age_ms()
        self._backlog = (
            order.unacknowledged_reports,
            order.oldest_unacknowledged_ms,
            time.monotonic(),
        )
        approved, reason = self._feed_verdict(
            order.unacknowledged_reports, order.oldest_unacknowledged_ms
        )
        if approved:
            approved, reason = decide(
                order,
                self.state,
                age_ms,
                max_position_exposure=risk.max_position_exposure,
                max_total_exposure=risk.max_total_exposure,
                context=self.context,
                **self._rules(),
            )
        if approved:
            self.approved += 1
        else:
            self.denied += 1
            self.log.info("denied {} {} {}: {}", order.side, order.quantity, order.pair, reason)
        return RiskDecision(
            correlation_id=order.correlation_id,
            approved=approved,
            reason=reason,
            state_seq=self.state.seq if self.state else 0,
            state_age_ms=age_ms,
        )
