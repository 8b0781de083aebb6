"""One event must not brick the group: the journal refuses what the folds cannot carry, and an
event that is in the log anyway halts the folds that cannot carry it, not the processes.

Both run the shipped layout under runner.py on the paper exchange (demo orders off, so only
the test moves the books). The first sends the journal events a valid message can hold but
no fold can: a fill of 1E+999 units, one stamped in 1970, a fee "in DOGE" on XBT/USD. The
second writes such a fill into the journal's database while the group is stopped (in the
stored format, through `JournalStore`), as a database from an older version or a tool might
hold it, and starts the group on it.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from actors.journal_store import JournalStore
from messages import (
    CashState,
    DeliveryRefused,
    ExecutionReport,
    GetCashState,
    GetRiskVerdict,
    RiskVerdict,
    encode,
)
from service.config import load_config
from tests.support import factories
from tests.support.factories import balance_adjusted, transfer
from tests.support.group import run_runner, wait_for
from tests.support.shipped import ShippedGroup, deposit, shipped_config, started_group

_numbers = itertools.count(1)


def fill(**changes) -> ExecutionReport:
    """A buy of 0.5 XBT/USD now, with an exec_id of its own, changed by `changes`."""
    n = next(_numbers)
    now = time.time_ns()
    fields = {
        "exec_id": f"TUNFOLD-{n:05d}-FILL",
        "order_id": "OUNFOLD-AAAAA-BBBBBB",
        "last_qty": "0.5",
        "last_price": "60000",
        "fee": "78",
        "ts_event": now,
        "ts_init": now,
    }
    return factories.fill(**fields | changes)


REFUSED = {  # what the journal is sent -> the field its refusal must name
    "a fill of 1E+999": (lambda: fill(last_qty=Decimal("1E+999")), "last_qty"),
    "a fill stamped in 1970": (lambda: fill(ts_event=1), "ts_event"),
    "a fill initialised a week ahead": (
        lambda: fill(ts_init=time.time_ns() + 7 * 86_400 * 10**9),
        "ts_init",
    ),
    "a zero fee in DOGE on XBT/USD": (
        lambda: fill(fee=Decimal(0), fee_currency="DOGE"),
        "fee_currency",
    ),
    "a price of more digits than the context carries": (
        lambda: fill(last_price=Decimal("60000." + "1" * 40)),
        "last_price",
    ),
    "a deposit of 1E+999": (
        lambda: transfer(
            transfer_id=f"LUNFOLD-{next(_numbers):05d}", amount="1E+999", ts_event=time.time_ns()
        ),
        "amount",
    ),
    "an adjustment to 1E+999": (
        lambda: balance_adjusted(
            adjustment_id=f"recon-unfold-{next(_numbers)}",
            before="100000",
            after="1E+999",
            reason="test",
            ts_event=time.time_ns(),
        ),
        "after",
    ),
}

PROCESSES = ("journal", "positions", "books", "market", "risk", "feed", "reconcile")


@pytest.fixture(scope="module")
def group(tmp_path_factory) -> Iterator[ShippedGroup]:
    path = shipped_config(
        tmp_path_factory.mktemp("unfoldable"), log_level="INFO", execution={"demo_orders": False}
    )
    for started in started_group(path):
        # the paper account's opening deposit comes in through reconciliation: let it land
        wait_for(lambda g=started: g.journal_head() >= 1, timeout=30, interval=0.1)
        yield started


def pids(group: ShippedGroup) -> dict[str, int]:
    return {process: group.pong(process, _first_actor(group, process)).pid for process in PROCESSES}


def _first_actor(group: ShippedGroup, process: str) -> str:
    return group.config.processes[process].actors[0]


def risk_verdict(group: ShippedGroup) -> RiskVerdict:
    with group.client("risk.query") as risk:
        verdict = risk.request(GetRiskVerdict(correlation_id="unfoldable-verdict"))
    assert isinstance(verdict, RiskVerdict)
    return verdict


@pytest.mark.parametrize("kind", list(REFUSED))
def test_an_event_the_folds_cannot_carry_is_refused_naming_the_field(group, kind):
    build, field = REFUSED[kind]
    before_pids = pids(group)
    before = group.portfolio_at(group.journal_head())
    refusals = group.pong("journal", "journal").counters["refused"]
    event = build()

    with group.client("journal.ingest") as journal:
        answer = journal.request(event)

    assert isinstance(answer, DeliveryRefused), answer
    assert answer.reason.startswith(f"{field}: "), answer.reason
    assert group.pong("journal", "journal").counters["refused"] == refusals + 1
    assert group.journal_head() == before.seq, "the refused event was journaled"
    after = group.portfolio_at(before.seq)
    assert (after.seq, after.cash, after.positions) == (before.seq, before.cash, before.positions)
    group.assert_books_keep_serving()
    assert pids(group) == before_pids, "a process restarted"


# -- an unfoldable event in the log -----------------------------------------------------------
OPENING = Decimal("100000")


def journal_with_an_unfoldable_fill(path: Path) -> None:
    """The journal of `path`'s group holds a deposit (seq 1), then a fill of 1E+999 XBT at
    60000 USD (seq 2): the cash it moves is beyond what any state message can carry."""
    config = load_config(path)
    now = time.time_ns()
    events = [
        transfer(transfer_id="LUNFOLD-OPENING", amount=OPENING, ts_event=now),
        fill(exec_id="TUNFOLD-HUGE", last_qty=Decimal("1E+999"), fee=Decimal(0)),
    ]
    store = JournalStore(config.journal.database, synchronous="NORMAL")
    try:
        for n, event in enumerate(events, start=1):
            key = getattr(event, type(event).delivery_key)
            assert store.append(key, now + n, encode(event)) == (n, True)
        store.commit()
    finally:
        store.close()


def halted_as_expected(group: ShippedGroup) -> RiskVerdict | None:
    verdict = risk_verdict(group)
    reason = verdict.reason
    expected = ("cash at seq 2", "drawdown at seq 2", "reconciliation at seq 2")
    if all(part in reason for part in expected):
        return verdict
    return None


def assert_halted_at_seq_2(group: ShippedGroup) -> None:
    verdict = wait_for(lambda: halted_as_expected(group), timeout=30, interval=0.2)
    assert not verdict.trading_allowed
    assert verdict.reason.startswith("the books are halted: ")
    assert "must be within 1E±999" in verdict.reason  # the reason the fold could not carry it

    state = group.portfolio()
    # Never a state past the halt: seq 1 if the parts met there, else seq 0 (positions
    # folded seq 2, which cash cannot, so they may never have been at one seq since start).
    assert state is not None and state.seq in (0, 1)
    assert state.cash == ({"USD": OPENING} if state.seq == 1 else {})
    assert state.positions == {}
    halted = {halt.actor: halt.seq for halt in state.halted}
    assert halted["cash"] == 2 and halted["drawdown"] == 2 and halted["reconciliation"] == 2

    with group.client("cash.query") as cash:
        answer = cash.request(GetCashState(correlation_id="unfoldable-cash"))
    assert isinstance(answer, CashState)
    assert answer.seq == 1 and answer.balances == {"USD": OPENING}
    assert answer.halted is not None and answer.halted.seq == 2
    assert group.pong("books", "cash").counters["halts"] == 1


def test_an_unfoldable_event_in_the_log_halts_the_folds_and_the_group_keeps_serving(tmp_path):
    path = shipped_config(tmp_path, log_level="INFO", execution={"demo_orders": False})
    journal_with_an_unfoldable_fill(path)
    runner_log = load_config(path).run_dir / "logs" / "runner.log"

    for start in ("first", "after a restart"):
        for group in started_group(path):
            first_pids = pids(group)
            assert_halted_at_seq_2(group)

            status = run_runner(path, "status", "--json")
            assert status.returncode == 0, status.stderr
            shown = json.loads(status.stdout)
            assert {(h["actor"], h["seq"]) for h in shown["halted"]} >= {
                ("cash", 2),
                ("drawdown", 2),
            }
            assert shown["risk"]["trading_allowed"] is False
            assert "the books are halted: " in shown["risk"]["reason"]
            text = run_runner(path, "status")
            assert "orders DENIED: the books are halted: cash at seq 2" in text.stdout, text.stdout

            # The journal still takes events, and the folds that can carry them go on.
            with group.client("journal.ingest") as journal:
                ack = journal.request(deposit("10"))
            assert ack.seq >= 3
            assert pids(group) == first_pids, f"a process restarted ({start})"
        assert "stopped unexpectedly" not in runner_log.read_text(), f"a crash ({start})"
