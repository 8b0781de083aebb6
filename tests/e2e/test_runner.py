"""runner.py as a user runs it: ready line, supervision, clean stops, clear failures.

Every test checks that no process of the group outlives the runner.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.group import (
    ROOT,
    RUNNER,
    RunningGroup,
    edit_config,
    group_pids,
    health,
    ipc_endpoints,
    one_error_line,
    run_runner,
    two_process_config,
    wait_for,
    write_config,
)


def test_duration_runs_then_stops_cleanly_with_exit_0(tmp_path):
    path = two_process_config(tmp_path)
    group = RunningGroup(path, "--duration", "1")
    ready = group.wait_ready()
    assert ready["processes"] == {"books": ["ingest"], "edge": ["follower", "feeder"]}
    assert ready["endpoints"]["test.ingest"].startswith("ipc://")
    assert group.process.wait(timeout=30) == 0
    assert group_pids(str(path)) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_every_process_and_exits_0(tmp_path, sig):
    path = two_process_config(tmp_path)
    group = RunningGroup(path)
    group.wait_ready()
    children = group_pids(str(path))
    assert len(children) == 3  # the runner and its two processes
    group.process.send_signal(sig)
    assert group.process.wait(timeout=30) == 0
    assert group_pids(str(path)) == []
    log = (tmp_path / "run" / "logs" / "books.log").read_text()
    assert "process books stopped" in log


def test_a_killed_process_is_restarted_and_the_group_keeps_serving(tmp_path):
    path = two_process_config(tmp_path)
    group = RunningGroup(path)
    try:
        group.wait_ready()
        first = health(path, "edge")
        os.kill(first.pid, signal.SIGKILL)

        def restarted():
            try:
                answer = health(path, "edge")
            except Exception:
                return None
            return answer if answer.pid != first.pid and answer.ready else None

        again = wait_for(restarted, timeout=20)
        assert [pong.actor for pong in again.actors] == ["follower", "feeder"]
    finally:
        assert group.stop() == 0
    assert "killed by SIGKILL" in (tmp_path / "run" / "logs" / "runner.log").read_text()
    assert group_pids(str(path)) == []


def seconds_up(pid: int) -> float:
    """How long process `pid` has been running, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        boot_seconds = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return 0.0
    return boot_seconds - int(fields[19]) / os.sysconf("SC_CLK_TCK")


def test_a_process_that_ran_stably_restarts_after_the_first_delay_again(tmp_path):
    # The test config's delays: 0.1 s, doubling up to 0.5 s; stable after 1 s up.
    path = two_process_config(tmp_path, extra={"supervisor": {"restart_backoff_reset_seconds": 1}})
    group = RunningGroup(path)
    try:
        group.wait_ready()
        pid = health(path, "edge").pid
        for _ in range(3):
            wait_for(lambda up=pid: seconds_up(up) >= 2.5, timeout=30, interval=0.1)
            os.kill(pid, signal.SIGKILL)

            def restarted(old=pid):
                try:
                    answer = health(path, "edge")
                except Exception:
                    return None
                return answer.pid if answer.pid != old and answer.ready else None

            pid = wait_for(restarted, timeout=30)
    finally:
        assert group.stop() == 0
    log = (tmp_path / "run" / "logs" / "runner.log").read_text()
    restarts = re.findall(
        r"process edge stopped unexpectedly \(killed by SIGKILL\) after ([\d.]+) s; "
        r"restarting in ([\d.]+) s",
        log,
    )
    assert len(restarts) == 3, log
    assert all(float(up) >= 1 for up, _ in restarts), restarts
    assert [delay for _, delay in restarts] == ["0.1", "0.1", "0.1"]  # not 0.1, 0.2, 0.4
    assert group_pids(str(path)) == []


def test_a_process_that_keeps_crashing_stops_the_group_non_zero(tmp_path):
    path = write_config(
        tmp_path,
        processes={"books": ["ingest"], "bad": ["crasher"]},
        endpoints=ipc_endpoints(tmp_path),
    )
    result = run_runner(path)
    assert result.returncode != 0
    assert "process bad" in result.stderr and "stopping the group" in result.stderr
    assert group_pids(str(path)) == []


def test_a_port_in_use_is_one_line_naming_the_endpoint(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        endpoints = ipc_endpoints(tmp_path) | {"test.ingest": f"tcp://127.0.0.1:{port}"}
        endpoints["test.replay"] = endpoints["test.ingest"]
        path = write_config(tmp_path, processes={"books": ["ingest"]}, endpoints=endpoints)
        result = run_runner(path)
    error = one_error_line(result)
    assert "test.ingest" in error and "address already in use" in error
    assert group_pids(str(path)) == []


def test_a_mistyped_setting_is_one_line_naming_it(tmp_path):
    path = two_process_config(tmp_path)
    edit_config(path, lambda raw: raw["supervisor"].update(max_restarts="many"))
    result = run_runner(path, "status", timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "supervisor.max_restarts" in result.stderr


def allowed_cpus(pid: int) -> dict[int, str]:
    """Each thread of `pid` and the CPUs it may run on (Cpus_allowed_list)."""
    allowed = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        status = (Path(f"/proc/{pid}/task/{tid}/status")).read_text()
        line = next(x for x in status.splitlines() if x.startswith("Cpus_allowed_list:"))
        allowed[int(tid)] = line.split(":", 1)[1].strip()
    return allowed


def pinned_config(tmp_path, cpus: list[int]):
    return two_process_config(tmp_path, cpus={"edge": cpus})


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux's")
def test_a_pinned_process_runs_every_thread_on_its_cpus(tmp_path):
    cpu = max(os.sched_getaffinity(0))
    path = pinned_config(tmp_path, [cpu])
    group = RunningGroup(path)
    try:
        group.wait_ready()
        edge = allowed_cpus(health(path, "edge").pid)
        books = allowed_cpus(health(path, "books").pid)
    finally:
        assert group.stop() == 0
    # The actors' threads and ZeroMQ's I/O thread alike; the unpinned process is left alone.
    assert len(edge) >= 3 and set(edge.values()) == {str(cpu)}
    assert set(books.values()) == {allowed_cpus(os.getpid())[os.getpid()]}
    assert group_pids(str(path)) == []


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux's")
def test_a_cpu_the_machine_lacks_is_one_line_naming_the_setting(tmp_path):
    missing = max(os.sched_getaffinity(0)) + 1
    path = pinned_config(tmp_path, [missing])
    result = run_runner(path)
    error = one_error_line(result)
    assert "processes.edge.cpus" in error and f"CPU {missing} is not available" in error
    assert group_pids(str(path)) == []


def test_the_paper_exchange_command_serves_kraken_rest_to_krakenex(tmp_path):
    import json

    import krakenex

    path = two_process_config(tmp_path)
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), "--config", str(path), "paper-exchange", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = json.loads(process.stdout.readline())
        api = krakenex.API(key=line["key"], secret=line["secret"])
        api.uri = line["url"]
        assert api.query_public("Time", timeout=5)["error"] == []
        balance = api.query_private("Balance", timeout=5)
        assert balance["error"] == [] and balance["result"]["ZUSD"] == "100000.0000"
        api.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert line["secret"] not in process.stderr.read()
