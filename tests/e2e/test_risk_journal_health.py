"""Risk denies while the books cannot keep up with the exchange, end to end through runner.py.

Two ways the journal stops taking what the execution actor sends, made real: its disk fills
up (the journal's database on a small tmpfs, filled by the test), and its process freezes
(SIGSTOP, for a bounded time, SIGCONT in a `finally`). Meanwhile the paper exchange keeps
trading, and the risk verdict must say orders are denied and why; afterwards it recovers.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from actors.risk import feed_gate
from messages import JournalStatus
from tests.support.group import RunningGroup, group_pids, wait_for
from tests.support.shipped import admin, shipped_config, status, wait_portfolio


def _config(tmp_path: Path, **changes) -> Path:
    return shipped_config(
        tmp_path,
        execution={"order_interval_seconds": 0.5, "poll_interval_seconds": 0.2},
        risk={"max_report_backlog_ms": 1000, "max_reconciliation_age_seconds": None},
        **changes,
    )


def _risk_reason(path: Path) -> str:
    verdict = status(path).get("risk") or {}
    if verdict.get("trading_allowed"):
        return "ALLOWED"
    return str(verdict.get("reason") or verdict.get("error") or "")


def _denied_for(path: Path, words: str) -> str | None:
    """The verdict's reason when it names `words`, else None."""
    reason = _risk_reason(path)
    return reason if words in reason else None


def _fill(directory: Path) -> Path:
    """A file that takes every free byte of the file system under `directory`."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 16, 1 << 12, 1):  # down to the last byte
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs under tmp_path, unmounted afterwards; skipped where it cannot be made."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip() or made.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_risk_denies_while_journal_commits_fail_and_allows_once_they_succeed(tmp_path, small_disk):
    path = _config(tmp_path, journal={"database": str(small_disk / "journal.sqlite")})
    group = RunningGroup(path)
    filler = None
    try:
        url = group.wait_ready(timeout=60)["exchange"]
        wait_portfolio(path, lambda s: s["seq"] >= 3, timeout=60)
        wait_for(lambda: _risk_reason(path) == "ALLOWED", timeout=60, interval=0.2)
        filler = _fill(small_disk)
        admin(url, "trade", {"pair": "XBT/USD", "side": "buy", "volume": "0.01"})
        reason = wait_for(
            lambda: _denied_for(path, "journal cannot commit"),
            timeout=60,
            interval=0.2,
        )
        assert "full" in reason, reason  # SQLite's own words: database or disk is full
        filler.unlink()
        filler = None
        wait_for(lambda: _risk_reason(path) == "ALLOWED", timeout=60, interval=0.2)
        # what waited while the disk was full reached the books
        wait_portfolio(path, lambda s: "XBT" in s["positions"], timeout=60)
    finally:
        if filler is not None:
            filler.unlink()
        assert group.stop() == 0
    assert group_pids(str(path)) == []


def test_risk_denies_while_the_journal_is_frozen_and_reports_wait(tmp_path):
    path = _config(tmp_path)
    group = RunningGroup(path)
    try:
        url = group.wait_ready(timeout=60)["exchange"]
        state = wait_portfolio(path, lambda s: s["seq"] >= 3, timeout=60)
        wait_for(lambda: _risk_reason(path) == "ALLOWED", timeout=60, interval=0.2)
        journal = state["processes"]["journal"]["pid"]
        os.kill(journal, signal.SIGSTOP)
        try:
            admin(url, "trade", {"pair": "XBT/USD", "side": "buy", "volume": "0.01"})
            reason = wait_for(
                lambda: _denied_for(path, "acknowledgement"),
                timeout=30,
                interval=0.2,
            )
            assert "execution reports wait for the journal" in reason, reason
        finally:
            os.kill(journal, signal.SIGCONT)
        wait_for(lambda: _risk_reason(path) == "ALLOWED", timeout=60, interval=0.2)
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []


# -- the pure rule -----------------------------------------------------------------------------
def _journal(**changes) -> JournalStatus:
    fields = {
        "correlation_id": "j",
        "journal_id": "abc",
        "committed_seq": 9,
        "commit_failures": 0,
        "failing_since_ns": None,
        "last_error": "",
    }
    return JournalStatus(**(fields | changes))


LIMITS = {"max_journal_age_ms": 2000, "max_report_backlog_ms": 1000}


def test_the_feed_gate_allows_a_journal_that_commits_with_no_report_waiting_long():
    assert feed_gate(_journal(), 150, oldest_unacknowledged_ms=999, **LIMITS) == (True, "")


def test_the_feed_gate_names_what_denies_most_telling_first():
    failing = _journal(commit_failures=3, last_error="database or disk is full")
    allowed, reason = feed_gate(
        failing, 5000, unacknowledged_reports=4, oldest_unacknowledged_ms=5000, **LIMITS
    )
    assert not allowed and "cannot commit: database or disk is full (3 failed" in reason
    allowed, reason = feed_gate(
        _journal(), 5000, unacknowledged_reports=4, oldest_unacknowledged_ms=1001, **LIMITS
    )
    assert not allowed and "4 execution reports wait" in reason and "1001 ms" in reason
    allowed, reason = feed_gate(_journal(), 2001, **LIMITS)
    assert not allowed and "has not answered for 2001 ms" in reason
    assert feed_gate(None, 0, **LIMITS) == (False, "no status from the journal yet")
