"""The journal's identity, end to end through runner.py on the paper exchange.

A journal whose file is deleted while the group runs stops the group instead of acknowledging
into a file nobody can open again; a journal that is not the one the followers' snapshots
were folded from (deleted and made anew, replaced by another), or one behind them, is refused
at start in one line, and nothing is left running.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from actors.journal_follower import SnapshotStore
from actors.journal_store import JournalFileLost, JournalStore
from messages import encode
from tests.support.factories import transfer
from tests.support.group import RunningGroup, group_pids, one_error_line, run_runner, wait_for
from tests.support.shipped import shipped_config, status, wait_portfolio

TS0 = 1_700_000_000_000_000_000


def _config(tmp_path: Path) -> Path:
    return shipped_config(
        tmp_path,
        execution={"order_interval_seconds": 0.5, "poll_interval_seconds": 0.2},
        reconciliation={"interval_seconds": 2},
    )


def _journal_files(path: Path) -> list[Path]:
    run = path.parent / "run"
    return sorted(run.glob("journal.sqlite*"))


def _run_then_stop(path: Path, min_seq: int = 3) -> tuple[int, int]:
    """Run the group until its books hold `min_seq` events, stop it cleanly; the journal's
    last seq and the seq of the positions actor's snapshot."""
    group = RunningGroup(path)
    try:
        group.wait_ready(timeout=60)
        wait_portfolio(path, lambda s: s["seq"] >= min_seq, timeout=60)
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []
    run = path.parent / "run"
    with sqlite3.connect(run / "journal.sqlite") as db:
        head = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    with sqlite3.connect(run / "state" / "positions.sqlite") as db:
        snapshot = db.execute("SELECT seq FROM snapshot").fetchone()[0]
    assert snapshot >= min_seq
    return head, snapshot


def _runner_error(group: RunningGroup, timeout: float) -> str:
    """The one `error:` line of a runner that stopped by itself within `timeout`."""
    try:
        group.process.wait(timeout=timeout)
    except Exception:
        raise AssertionError(
            f"the group kept running; stderr:\n{group.stderr_text()[-3000:]}"
        ) from None
    text = group.stderr_text()
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert group.process.returncode != 0, text[-3000:]
    assert len(errors) == 1, text[-3000:]
    assert "Traceback" not in text
    return errors[0]


@pytest.mark.parametrize("then", ["nothing", "kill -9 the journal"])
def test_a_journal_file_deleted_while_running_stops_the_group_in_one_line(tmp_path, then):
    path = _config(tmp_path)
    group = RunningGroup(path)
    try:
        group.wait_ready(timeout=60)
        state = wait_portfolio(path, lambda s: s["seq"] >= 3, timeout=60)
        journal_pid = state["processes"]["journal"]["pid"]
        files = _journal_files(path)
        assert files, "the journal has its database under run/"
        for file in files:
            file.unlink()
        if then != "nothing":
            os.kill(journal_pid, signal.SIGKILL)  # it may come back on a new, empty file
        line = _runner_error(group, timeout=60)
    finally:
        group.stop()
    assert "journal.sqlite" in line
    if then == "nothing":
        assert "deleted" in line
    assert group_pids(str(path)) == []


def _other_journal(database: Path, events: int) -> None:
    """A journal of another account at `database`: `events` deposits, its own id."""
    with JournalStore(database, synchronous="NORMAL") as store:
        for n in range(1, events + 1):
            deposit = transfer(transfer_id=f"other-{n}", amount=n, ts_event=TS0)
            store.append(deposit.transfer_id, TS0 + n, encode(deposit))
        store.commit()


@pytest.mark.parametrize("replacement", ["an empty journal", "another journal, further on"])
def test_a_journal_replaced_while_stopped_is_refused_at_start_in_one_line(tmp_path, replacement):
    path = _config(tmp_path)
    _, seq = _run_then_stop(path)
    for file in _journal_files(path):
        file.unlink()
    if replacement != "an empty journal":
        _other_journal(path.parent / "run" / "journal.sqlite", seq + 1000)
    result = run_runner(path, "--no-view", "--duration", "15", timeout=120)
    line = one_error_line(result)
    assert "Traceback" not in result.stderr
    assert "journal.sqlite" in line and "is not the one" in line, line
    assert f"at seq {seq}" in line, line  # the snapshot's seq, beside the journal's
    assert group_pids(str(path)) == []


def test_a_snapshot_ahead_of_its_journal_is_refused_at_start_in_one_line(tmp_path):
    path = _config(tmp_path)
    seq, _ = _run_then_stop(path)
    snapshots = path.parent / "run" / "state" / "positions.sqlite"
    with sqlite3.connect(snapshots) as db:
        db.execute("UPDATE snapshot SET seq = 999999")
    result = run_runner(path, "--no-view", "--duration", "15", timeout=120)
    line = one_error_line(result)
    assert "Traceback" not in result.stderr
    assert "positions" in line and "999999" in line, line
    assert f"ends at seq {seq}" in line and "journal.sqlite" in line, line
    assert group_pids(str(path)) == []


def test_the_same_journal_after_a_restart_is_followed_on(tmp_path):
    path = _config(tmp_path)
    seq, _ = _run_then_stop(path)
    group = RunningGroup(path)
    try:
        group.wait_ready(timeout=60)
        wait_for(lambda: status(path).get("seq", 0) > seq, timeout=60)
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []


# -- the pure parts: the store's id and file check, the snapshot store's id -------------------
def test_the_store_makes_its_id_once_and_keeps_it(tmp_path):
    with JournalStore(tmp_path / "j.sqlite") as store:
        made = store.journal_id
    with JournalStore(tmp_path / "j.sqlite") as reopened:
        assert reopened.journal_id == made
    with JournalStore(tmp_path / "other.sqlite") as other:
        assert other.journal_id != made


def test_a_database_made_before_ids_gets_one_and_keeps_its_events(tmp_path):
    path = tmp_path / "j.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL,"
            " ts_journal INTEGER NOT NULL, frame BLOB NOT NULL)"
        )
        db.execute("INSERT INTO events VALUES (1, 'k1', 1, x'00')")
    with JournalStore(path) as store:
        assert store.committed_seq == 1 and len(store.journal_id) == 32
        made = store.journal_id
    with JournalStore(path) as reopened:
        assert reopened.journal_id == made


@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_the_store_notices_its_file_deleted_or_replaced(tmp_path, change):
    path = tmp_path / "j.sqlite"
    store = JournalStore(path)
    try:
        store.check_file()  # still the file it opened
        if change == "deleted":
            path.unlink()
        else:
            (tmp_path / "new.sqlite").write_bytes(path.read_bytes())
            os.replace(tmp_path / "new.sqlite", path)
        with pytest.raises(JournalFileLost, match=change):
            store.check_file()
    finally:
        store.close()


def test_a_snapshot_file_made_before_ids_loads_without_one_then_keeps_it(tmp_path):
    path = tmp_path / "positions.sqlite"
    state = transfer(transfer_id="t", amount=1, ts_event=TS0)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE snapshot (name TEXT PRIMARY KEY, seq INTEGER, state BLOB)")
        db.execute("INSERT INTO snapshot VALUES ('positions', 7, ?)", (encode(state),))
    store = SnapshotStore(path)
    try:
        assert store.load("positions") == (7, state, None)
        store.save("positions", 8, state, "abc")
        assert store.load("positions") == (8, state, "abc")
    finally:
        store.close()
