"""Strictly increasing nonces per API key, across threads and across processes on one host.

Kraken rejects a private call whose nonce is not above the last one it accepted for the key
(``EAPI:Invalid nonce``); krakenex's own nonce is the time in milliseconds, which repeats for
two calls in the same millisecond. Here a nonce is ``max(last + 1, now_µs)``: the time in
microseconds, bumped past the last nonce handed out for the key.

Requests must also *reach* Kraken in nonce order, so a caller holds the key's lock from
taking the nonce until the answer arrives (``NonceSource.exclusive``). Within a process the
lock is a ``threading.Lock`` shared by every ``NonceSource`` of the same key; with a
``lock_dir`` it is also an ``fcntl.flock`` on a small file there, which keeps the last nonce,
so processes sharing the key serialize too. The file name is a hash of the key, never the key.

Once a key has been used with microsecond nonces, clients with smaller nonce scales
(krakenex's milliseconds) are refused for that key forever: use one scale per key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from loguru import logger

from kraken.errors import NonceLockTimeout

__all__ = ["NonceSource"]

_POLL_SECONDS = 0.002
_MAX_NONCE_DIGITS = 20

# Per-key state shared by every NonceSource in this process: the lock and the last nonce.
_registry_lock = threading.Lock()
_key_locks: dict[str, threading.Lock] = {}
_last_nonces: dict[str, int] = {}


def _key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class NonceSource:
    """Nonces for one API key. Take them inside ``exclusive()``, which also serializes the
    key's private calls; ``take()`` is the shorthand for a single nonce.

    ``lock_dir`` None keeps the state in this process only; otherwise the directory (created
    if missing) holds ``nonce-<hash>.lock`` with the last nonce. ``clock_ns`` returns the
    time in integer nanoseconds; ``lock_timeout_seconds`` bounds every wait for the lock.
    """

    def __init__(
        self,
        key: str,
        lock_dir: Path | None = None,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        lock_timeout_seconds: float = 60.0,
    ) -> None:
        if not key:
            raise ValueError("key: an API key is needed to keep its nonces")
        if not lock_timeout_seconds > 0:
            raise ValueError(f"lock_timeout_seconds: must be positive, got {lock_timeout_seconds}")
        self._digest = _key_digest(key)
        self._clock_ns = clock_ns
        self.lock_timeout_seconds = lock_timeout_seconds
        with _registry_lock:
            self._thread_lock = _key_locks.setdefault(self._digest, threading.Lock())
        self._owner: int | None = None
        self._fd: int | None = None
        self.path: Path | None = None
        if lock_dir is not None:
            directory = Path(lock_dir)
            directory.mkdir(parents=True, exist_ok=True)
            self.path = directory / f"nonce-{self._digest}.lock"
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def __repr__(self) -> str:
        return f"NonceSource(key=<{self._digest[:12]}>, path={self.path})"

    def close(self) -> None:
        """Close the lock file. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @contextlib.contextmanager
    def exclusive(self, method: str = "") -> Iterator[None]:
        """Hold the key's lock (thread lock, then file lock) for the block.

        Raises NonceLockTimeout (naming ``method``) when the lock is not free within
        ``lock_timeout_seconds``. Not re-entrant.
        """
        deadline = time.monotonic() + self.lock_timeout_seconds
        if not self._thread_lock.acquire(timeout=self.lock_timeout_seconds):
            raise NonceLockTimeout(method, self.lock_timeout_seconds)
        try:
            if self._fd is not None:
                self._lock_file(self._fd, deadline, method)
            self._owner = threading.get_ident()
            try:
                yield
            finally:
                self._owner = None
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _lock_file(self, fd: int, deadline: float, method: str) -> None:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                # flock has no timed wait: poll until the deadline.
                if time.monotonic() >= deadline:
                    raise NonceLockTimeout(method, self.lock_timeout_seconds) from None
                time.sleep(_POLL_SECONDS)

    def next_nonce(self) -> int:
        """The next nonce, ``max(last + 1, now // 1000)`` (microseconds), recorded as the
        last one. Must be called inside ``exclusive()`` by the thread holding it."""
        if self._owner != threading.get_ident():
            raise RuntimeError("next_nonce: call it inside exclusive(), from the same thread")
        last = _last_nonces.get(self._digest, 0)
        if self._fd is not None:
            last = max(last, self._read_file(self._fd))
        nonce = max(last + 1, self._clock_ns() // 1000)
        if self._fd is not None:
            self._write_file(self._fd, nonce)
        _last_nonces[self._digest] = nonce
        return nonce

    def take(self) -> int:
        """One nonce, taking and releasing the lock around it."""
        with self.exclusive("nonce"):
            return self.next_nonce()

    def _read_file(self, fd: int) -> int:
        text = os.pread(fd, _MAX_NONCE_DIGITS + 2, 0).decode("ascii", "replace").strip()
        if not text:
            return 0
        if not text.isdigit():
            # A damaged file must not stop trading: the clock term still moves nonces forward.
            logger.warning("nonce file {} is damaged; continuing from the clock", self.path)
            return 0
        return int(text)

    def _write_file(self, fd: int, nonce: int) -> None:
        data = f"{nonce}\n".encode("ascii")
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
