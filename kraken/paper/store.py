"""Durable state of the paper exchange: SQLite in WAL mode, one transaction per mutation.

The exchange hands over what a mutation changed (a ``StateBatch``) and this module commits it
before the exchange answers, so a restart, or a SIGKILL at any moment, finds every
acknowledged change. Rows hold JSON documents; the schema is deliberately plain.

One exchange per state file: the store holds an exclusive lock on ``<state file>.lock`` (with
its pid in it) while open, so a second exchange on the same file is refused at once
(``StateFileInUse``) instead of diverging from the first on the same account.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kraken.pid_lock import LockHeld, PidLock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, amount TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (txid TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trades (txid TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledgers (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
"""

# A busy database (another process holding a lock) is waited for this long, then an error.
_BUSY_TIMEOUT_SECONDS = 5.0


class StateFileInUse(RuntimeError):
    """Another paper exchange (pid `pid`, None: unknown) has the state file `path` open."""

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"state file {path} is in use by another paper exchange ({holder})")
        self.path = path
        self.pid = pid


def lock_path(state_file: Path) -> Path:
    """The lock file beside `state_file`."""
    return state_file.with_name(state_file.name + ".lock")


@dataclass(kw_only=True)
class StateBatch:
    """What one mutation changed: JSON-ready documents keyed by their ids."""

    meta: dict[str, Any] = field(default_factory=dict)
    balances: dict[str, str] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    ledgers: list[dict[str, Any]] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when nothing changed."""
        return not (self.meta or self.balances or self.orders or self.trades or self.ledgers)


@dataclass(kw_only=True)
class StoredState:
    """Everything loaded back, rows in ``seq`` order."""

    meta: dict[str, Any]
    balances: dict[str, str]
    orders: list[dict[str, Any]]
    trades: list[dict[str, Any]]
    ledgers: list[dict[str, Any]]

    @property
    def is_new(self) -> bool:
        """True for a file that has never held an account."""
        return not self.meta


class StateStore:
    """A SQLite file holding the exchange's state.

    Used under the exchange's lock only, from whichever thread holds it, so one connection
    is shared across threads (``check_same_thread=False``).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock = PidLock.acquire(lock_path(self.path))
        except LockHeld as held:
            raise StateFileInUse(self.path, held.pid) from None
        try:
            self._open()
        except BaseException:
            self._lock.release()
            raise

    def _open(self) -> None:
        if not self.path.exists():
            # The file keeps the API secret: readable by its owner only.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._connection = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a process kill (it is in the OS's hands);
        # only a power loss could drop the last commits.
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(_SCHEMA)

    def load(self) -> StoredState:
        """Read the whole state back."""
        cursor = self._connection.cursor()
        meta = {
            key: json.loads(value) for key, value in cursor.execute("SELECT key, value FROM meta")
        }
        balances = dict(cursor.execute("SELECT asset, amount FROM balances"))
        return StoredState(
            meta=meta,
            balances=balances,
            orders=self._documents("orders"),
            trades=self._documents("trades"),
            ledgers=self._documents("ledgers"),
        )

    def write(self, batch: StateBatch) -> None:
        """Commit one batch atomically; nothing is written if any part fails."""
        if batch.is_empty():
            return
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(key, json.dumps(value)) for key, value in batch.meta.items()],
            )
            connection.executemany(
                "INSERT OR REPLACE INTO balances (asset, amount) VALUES (?, ?)",
                list(batch.balances.items()),
            )
            connection.executemany(
                "INSERT OR REPLACE INTO orders (txid, seq, doc) VALUES (?, ?, ?)",
                [(txid, doc["seq"], json.dumps(doc)) for txid, doc in batch.orders.items()],
            )
            connection.executemany(
                "INSERT OR REPLACE INTO trades (txid, seq, doc) VALUES (?, ?, ?)",
                [(doc["txid"], doc["seq"], json.dumps(doc)) for doc in batch.trades],
            )
            connection.executemany(
                "INSERT OR REPLACE INTO ledgers (id, seq, doc) VALUES (?, ?, ?)",
                [(doc["id"], doc["seq"], json.dumps(doc)) for doc in batch.ledgers],
            )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        """Close the connection and free the state file (idempotent)."""
        try:
            self._connection.close()
        except sqlite3.ProgrammingError:
            pass
        self._lock.release()

    def _documents(self, table: str) -> list[dict[str, Any]]:
        rows = self._connection.execute(f"SELECT doc FROM {table} ORDER BY seq")
        return [json.loads(doc) for (doc,) in rows]
