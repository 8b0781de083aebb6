"""Nonces: strictly increasing per key across threads and processes; calls serialized."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kraken.errors import KrakenError, NonceLockTimeout
from kraken.nonce import NonceSource
from tests.kraken.conftest import NO_RETRY

REPO = Path(__file__).resolve().parents[2]
JOIN_SECONDS = 30.0


def _unique_key(name: str) -> str:
    # The in-process registry is per key: a fresh key keeps tests independent.
    return f"{name}-{time.time_ns()}"


def test_frozen_clock_still_gives_strictly_increasing_nonces():
    source = NonceSource(_unique_key("frozen"), clock_ns=lambda: 5_000_000)
    nonces = [source.take() for _ in range(5)]
    assert nonces == [5000, 5001, 5002, 5003, 5004]


def test_nonce_follows_the_clock_in_microseconds():
    now = [1_700_000_000_000_000_000]
    source = NonceSource(_unique_key("clock"), clock_ns=lambda: now[0])
    assert source.take() == 1_700_000_000_000_000
    now[0] += 3_000_000
    assert source.take() == 1_700_000_000_003_000


def test_sources_of_one_key_in_one_process_share_the_sequence():
    key = _unique_key("shared")
    first = NonceSource(key, clock_ns=lambda: 0)
    second = NonceSource(key, clock_ns=lambda: 0)
    assert [first.take(), second.take(), first.take()] == [1, 2, 3]


def test_many_threads_get_unique_increasing_nonces():
    source = NonceSource(_unique_key("threads"), clock_ns=lambda: 1_000)
    taken: list[int] = []

    def work() -> None:
        for _ in range(200):
            with source.exclusive("test"):
                taken.append(source.next_nonce())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
        assert not thread.is_alive()
    # Appended under the lock, in the order handed out: strictly increasing, no repeats.
    assert len(taken) == 1600
    assert all(later > earlier for earlier, later in itertools.pairwise(taken))


def test_next_nonce_outside_the_lock_is_refused():
    source = NonceSource(_unique_key("unlocked"))
    with pytest.raises(RuntimeError, match="exclusive"):
        source.next_nonce()


def test_lock_file_keeps_the_last_nonce_and_hides_the_key(tmp_path):
    key = _unique_key("file-secret-key")
    source = NonceSource(key, tmp_path, clock_ns=lambda: 9_000_000)
    assert source.take() == 9_000
    source.close()
    (lock_file,) = tmp_path.iterdir()
    assert key not in lock_file.name
    assert lock_file.read_text().strip() == "9000"
    assert lock_file.stat().st_mode & 0o077 == 0


def test_a_held_file_lock_times_out_with_a_typed_error(tmp_path):
    key = _unique_key("held")
    source = NonceSource(key, tmp_path, lock_timeout_seconds=0.05)
    assert source.path is not None
    # Another open file description stands for another process holding the lock.
    other = os.open(source.path, os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(NonceLockTimeout) as raised, source.exclusive("Balance"):
            pass
        assert raised.value.method == "Balance" and raised.value.retryable
        fcntl.flock(other, fcntl.LOCK_UN)
        assert source.take() > 0
    finally:
        os.close(other)
        source.close()


def test_concurrent_private_calls_from_many_threads_never_reuse_a_nonce(make_client):
    client = make_client(retry=NO_RETRY)
    failures: list[BaseException] = []
    successes: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(12):
            try:
                client.balance()
                with lock:
                    successes.append(1)
            except KrakenError as error:
                with lock:
                    failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
        assert not thread.is_alive()
    assert failures == []
    assert len(successes) == 96


def test_two_clients_of_one_key_in_one_process_share_nonces(make_client):
    first = make_client(retry=NO_RETRY)
    second = make_client(retry=NO_RETRY)
    failures: list[BaseException] = []

    def work(client) -> None:
        for _ in range(15):
            try:
                client.open_orders()
            except KrakenError as error:
                failures.append(error)

    threads = [threading.Thread(target=work, args=(c,)) for c in (first, second, first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
        assert not thread.is_alive()
    assert failures == []


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_two_processes_sharing_the_key_never_collide(server, tmp_path, make_client):
    lock_dir = tmp_path / "locks"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = dict(os.environ, KRAKEN_API_KEY=server.key, KRAKEN_API_SECRET=server.secret)
    env["PYTHONPATH"] = str(REPO)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.kraken.nonce_worker",
                server.url,
                str(lock_dir),
                "40",
                str(barrier),
                name,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    try:
        _wait_for(lambda: all((barrier / f"ready-{n}").exists() for n in ("a", "b")), 30, "workers")
        (barrier / "go").touch()
        outputs = [worker.communicate(timeout=60) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, (stdout, stderr[-2000:])
        assert json.loads(stdout.strip().splitlines()[-1]) == {"ok": 40, "errors": []}
    # A third party with a stopped clock continues after the workers' last nonce, read
    # from the shared file: without it, nonce 1 would be refused as stale.
    late = NonceSource(server.key, lock_dir, clock_ns=lambda: 0)
    try:
        client = make_client(retry=NO_RETRY, nonce=late)
        client.balance()
    finally:
        late.close()
