"""The run directory through the real processes: one group per run directory, one paper
exchange per state file, private files whatever the umask, and a clean start after a crash."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from kraken.pid_lock import read_holder
from tests.support.group import (
    ROOT,
    RUNNER,
    RunningGroup,
    group_pids,
    health,
    one_error_line,
    run_runner,
    two_process_config,
    wait_for,
)
from tests.support.shipped import shipped_config, status


def paper_config(tmp_path):
    """Two small processes of test actors, on the paper exchange (the runner starts it) with
    its state file in the run directory."""
    return two_process_config(
        tmp_path,
        exchange_mode="paper",
        extra={"exchange": {"paper": {"state_file": "{run_dir}/paper-exchange.sqlite"}}},
    )


def start_paper_exchange(path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(RUNNER), "--config", str(path), "paper-exchange", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )


def test_a_second_group_on_the_same_run_dir_is_refused_naming_the_runner_pid(tmp_path):
    path = shipped_config(tmp_path)
    group = RunningGroup(path, "--no-view")
    try:
        group.wait_ready(timeout=60)
        before = sorted(group_pids(str(path)))
        second = run_runner(path, "--no-view", "--duration", "30", timeout=60)
        error = one_error_line(second)
        assert "service.run_dir" in error and f"pid {group.process.pid}" in error, error
        assert "Traceback" not in second.stderr and second.stdout == ""
        assert sorted(group_pids(str(path))) == before  # nothing started, nothing taken over
        # The paper exchange alone on the group's state file: refused, naming its holder.
        paper_pid = read_holder(tmp_path / "run" / "paper-exchange.sqlite.lock")
        assert paper_pid in before
        alone = run_runner(path, "paper-exchange", "--port", "0", timeout=60)
        error = one_error_line(alone)
        assert "exchange.paper.state_file" in error and f"pid {paper_pid}" in error, error
        assert "Traceback" not in alone.stderr
        # The first group still serves, every process of it ready; status takes no lock.
        shown = status(path)
        assert shown["processes"] and all(p.get("ready") for p in shown["processes"].values())
        assert sorted(group_pids(str(path))) == before
    finally:
        assert group.stop() == 0
    assert group_pids(str(path)) == []


def test_a_group_whose_runner_was_killed_leaves_no_process_and_a_new_one_starts(tmp_path):
    path = paper_config(tmp_path)
    first = RunningGroup(path)
    try:
        first.wait_ready()
        old = set(group_pids(str(path))) - {first.process.pid}
        assert len(old) == 3  # the paper exchange and the two processes
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        second = RunningGroup(path)
        try:
            second.wait_ready()
            assert not old & set(group_pids(str(path)))  # the killed group's processes exited
            assert [p.actor for p in health(path, "edge").actors] == ["follower", "feeder"]
            assert health(path, "books").pid in group_pids(str(path))
        finally:
            assert second.stop() == 0
    finally:
        first.stop()
    assert group_pids(str(path)) == []


def test_the_paper_exchange_alone_holds_its_state_file(tmp_path):
    path = paper_config(tmp_path)
    alone = start_paper_exchange(path)
    try:
        line = json.loads(alone.stdout.readline())
        assert "url" in line, line
        again = run_runner(path, "paper-exchange", "--port", "0", timeout=60)
        error = one_error_line(again)
        assert "exchange.paper.state_file" in error and f"pid {alone.pid}" in error, error
        # A group on that config stops at its paper exchange: one line, nothing else started.
        group = run_runner(path, "--duration", "30", timeout=60)
        error = one_error_line(group)
        assert "process paper-exchange could not start" in error, error
        assert f"pid {alone.pid}" in error and "Traceback" not in group.stderr
        assert "started process books" not in (tmp_path / "run/logs/runner.log").read_text()
        assert group_pids(str(path)) == [alone.pid]
    finally:
        alone.send_signal(signal.SIGTERM)
        assert alone.wait(timeout=20) == 0
        alone.stdout.close()
    # Freed when it stopped: a group starts on it.
    group = RunningGroup(path, "--duration", "1")
    group.wait_ready()
    assert group.process.wait(timeout=30) == 0
    group.stop()
    assert group_pids(str(path)) == []


def assert_private(run_dir) -> list[str]:
    """Every entry under `run_dir` is the owner's only; returns their relative names."""
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    names, wrong = [], []
    for entry in sorted(run_dir.rglob("*")):
        try:
            mode = entry.lstat().st_mode
        except FileNotFoundError:
            continue  # a temporary file renamed meanwhile
        name = str(entry.relative_to(run_dir))
        names.append(name)
        if stat.S_ISDIR(mode):
            expected = stat.S_IMODE(mode) == 0o700
        elif stat.S_ISSOCK(mode):
            expected = stat.S_IMODE(mode) & 0o077 == 0  # no access for group or others
        else:
            expected = stat.S_IMODE(mode) == 0o600
        if not expected:
            wrong.append(f"{name} {oct(stat.S_IMODE(mode))}")
    assert not wrong, wrong
    return names


def test_the_run_dir_and_every_file_in_it_are_private_under_umask_000(tmp_path):
    path = shipped_config(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o777)
    os.chmod(run_dir, 0o777)  # a run directory left open from before
    previous = os.umask(0)
    try:
        group = RunningGroup(path, "--no-view")
    finally:
        os.umask(previous)
    try:
        group.wait_ready(timeout=60)
        wait_for(lambda: (run_dir / "state" / "reconciliation.json").exists(), timeout=60)
        names = assert_private(run_dir)
        for expected in (
            "runner.lock",
            "journal-ingest.sock",
            "journal.sqlite",
            "journal.sqlite-wal",
            "journal.sqlite-shm",
            "paper-exchange.sqlite",
            "paper-exchange.sqlite-wal",
            "paper-exchange.sqlite.lock",
            "logs/runner.log",
            "logs/journal.log",
            "state/drawdown.sqlite",
            "state/reconciliation.json",
            "control/journal.sock",
        ):
            assert expected in names, expected
    finally:
        assert group.stop() == 0
    assert_private(run_dir)
    assert group_pids(str(path)) == []


# A stand-in runner: starts one process of the group with SIGTERM blocked (so the parent-death
# signal it asks for can never take effect), prints that process's pid and first line, then
# waits to be killed.
_STAND_IN_RUNNER = """
import os, signal, subprocess, sys, time
argv = [sys.executable, sys.argv[1], "--config", sys.argv[2], *sys.argv[3:], "--parent",
        str(os.getpid())]
child = subprocess.Popen(
    argv,
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}),
)
print(child.pid, flush=True)
print(child.stdout.readline().decode().strip(), flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize(
    "command", [("host", "books"), ("paper-exchange", "--port", "0")], ids=["host", "paper"]
)
def test_a_process_whose_runner_died_stops_even_without_the_parent_death_signal(tmp_path, command):
    path = paper_config(tmp_path)
    stand_in = subprocess.Popen(
        [sys.executable, "-c", _STAND_IN_RUNNER, str(RUNNER), str(path), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    child_pid = None
    try:
        child_pid = int(stand_in.stdout.readline())
        first_line = json.loads(stand_in.stdout.readline())
        assert "error" not in first_line, first_line
        stand_in.kill()
        stand_in.wait(timeout=10)
        # Reparented, never signalled: it must notice on its own, and stop.
        assert wait_for(lambda: child_pid not in group_pids(str(path)), timeout=30)
    finally:
        stand_in.kill()
        stand_in.wait(timeout=10)
        if child_pid is not None and child_pid in group_pids(str(path)):
            os.kill(child_pid, signal.SIGKILL)


def _burst(process: subprocess.Popen, sig: int, seconds: float = 3.0) -> None:
    """Send `sig` to `process` back to back for `seconds` or until it exits, from two
    threads (as a dying multithreaded parent sends the parent-death signal once per thread,
    or a user presses Ctrl-C again and again): some arrive while its handler runs."""

    def send() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and process.poll() is None:
            try:
                os.kill(process.pid, sig)
            except ProcessLookupError:
                return

    senders = [threading.Thread(target=send) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(seconds + 5)


def stopped_cleanly(log_dir, process: str) -> bool:
    """Whether the log of `process` ("host" meaning the books process) ends with its stop."""
    name = "books" if process == "host" else process
    lines = (log_dir / f"{name}.log").read_text().splitlines()
    return bool(lines) and lines[-1].endswith(
        ("process books stopped", "process edge stopped", "paper exchange stopped")
    )


@pytest.mark.parametrize(
    "command", [("host", "books"), ("paper-exchange", "--port", "0")], ids=["host", "paper"]
)
def test_a_burst_of_stop_signals_stops_a_process_cleanly(tmp_path, command):
    path = paper_config(tmp_path)
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), "--config", str(path), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        first_line = json.loads(process.stdout.readline())
        assert "error" not in first_line, first_line
        _burst(process, signal.SIGTERM)
        # Stopped cleanly; a signal still coming in while the interpreter exits ends it as
        # the signal's default would, after that.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert stopped_cleanly(tmp_path / "run/logs", command[0])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_a_burst_of_interrupts_stops_the_group_cleanly(tmp_path):
    path = paper_config(tmp_path)
    group = RunningGroup(path)
    try:
        group.wait_ready()
        _burst(group.process, signal.SIGINT)
        assert group.process.wait(timeout=40) in (0, -signal.SIGINT)
    finally:
        group.stop()
    assert group_pids(str(path)) == []
    for process in ("paper-exchange", "books", "edge"):
        assert stopped_cleanly(tmp_path / "run/logs", process), process
