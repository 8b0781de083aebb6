"""The journal's storage: one SQLite table of encoded events, in seq order, deduplicated by key.

The table is the event log itself:

    events(seq INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, ts_journal INTEGER, frame BLOB)

Beside it, `identity(journal_id)` holds one random id, created with the database (or, for a
database made before the id existed, when it is first opened): the followers keep it with
their snapshots, so a journal that is not the one they folded (deleted and made again,
replaced by another file) is told apart from theirs even when its seqs look plausible.

`seq` is 1, 2, 3, ... with no gap: the store hands out `head_seq + 1` for each appended event
and takes it back on a rollback. `key` is the event's delivery key (an execution report's
`exec_id`, a transfer's `transfer_id`); its UNIQUE index answers "already journaled?" as the
event is inserted, so deduplication costs no extra lookup and no memory that grows with the
log. `frame` is the event as the codec encodes it; the store never looks inside.

Appends go into one open transaction until `commit()` (group commit: one fsync for many
events). The database runs in WAL mode with `synchronous` FULL (every commit reaches the disk
before it returns: survives a power cut) or NORMAL (survives a process crash; the last
commits may be lost on a power cut). The page cache is bounded, so the store's memory does
not grow with the number of events either.

Not thread-safe: one store is opened, used and closed by one thread (the journal actor's).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["JournalFileLost", "JournalStore", "JournalStoreError", "StoredEvent"]

Synchronous = Literal["NORMAL", "FULL"]

PAGE_CACHE_KIB = 8192
"""Upper bound of SQLite's page cache for the journal (KiB): memory stays flat as it grows."""

BUSY_TIMEOUT_SECONDS = 5.0
"""How long a statement waits for a lock another connection holds before it fails."""

WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
"""The write-ahead log is truncated back to this size after a checkpoint."""

_COLUMNS = ("seq", "key", "ts_journal", "frame")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    key TEXT UNIQUE NOT NULL,
    ts_journal INTEGER NOT NULL,
    frame BLOB NOT NULL
)
"""

_IDENTITY_SCHEMA = "CREATE TABLE IF NOT EXISTS identity (journal_id TEXT NOT NULL)"


class JournalStoreError(RuntimeError):
    """The journal database cannot be opened or used as the journal; the message says why."""


class JournalFileLost(JournalStoreError):
    """The database file open here was deleted or replaced by another file: what is committed
    from now on would go to a file nobody will ever open again."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the log: the event's seq, journal time (ns since the epoch) and frame."""

    seq: int
    ts_journal: int
    frame: bytes


class JournalStore:
    """The event log in one SQLite file: append in a transaction, commit, look up, read."""

    def __init__(self, path: Path, *, synchronous: Synchronous = "FULL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise JournalStoreError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are opened and closed here explicitly.
            self._db = sqlite3.connect(
                str(path), isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalStoreError(f"cannot open the journal database {path}: {exc}") from exc
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalStoreError(
                    f"{path}: SQLite refused WAL mode (got {mode!r}); the journal needs WAL"
                )
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(_SCHEMA)
            self._db.execute(_IDENTITY_SCHEMA)
            ids = [row[0] for row in self._db.execute("SELECT journal_id FROM identity")]
            if not ids:
                ids = [uuid.uuid4().hex]
                self._db.execute("INSERT INTO identity (journal_id) VALUES (?)", ids)
            self._db.execute("COMMIT")
            if len(ids) != 1 or not ids[0]:
                raise JournalStoreError(f"{path}: table identity must hold one id, has {ids}")
            self.journal_id: str = ids[0]  # made once with the database, never changed
            self._files = _file_identities(path)
            columns = [row[1] for row in self._db.execute("PRAGMA table_info(events)")]
            if columns != list(_COLUMNS):
                raise JournalStoreError(
                    f"{path}: table events has columns {columns}, expected {list(_COLUMNS)}"
                )
            first, head = self._db.execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
            if first not in (None, 1):
                raise JournalStoreError(f"{path}: the log starts at seq {first}, not 1")
        except sqlite3.Error as exc:
            self._db.close()
            raise JournalStoreError(f"{path} is not usable as the journal: {exc}") from exc
        except JournalStoreError:
            self._db.close()
            raise
        head = head or 0
        self._committed_seq = head
        self._head_seq = head
        last_ts = self._db.execute("SELECT ts_journal FROM events WHERE seq = ?", (head,))
        found = last_ts.fetchone()
        self._last_ts_journal = found[0] if found else 0
        self._open = True

    # -- state ---------------------------------------------------------------------------
    @property
    def head_seq(self) -> int:
        """The seq of the last event appended, committed or not (0 for an empty log)."""
        return self._head_seq

    @property
    def committed_seq(self) -> int:
        """The seq of the last event known to be committed (0 for an empty log)."""
        return self._committed_seq

    @property
    def last_ts_journal(self) -> int:
        """The journal time of the last event appended (0 for an empty log)."""
        return self._last_ts_journal

    @property
    def pending(self) -> int:
        """How many appended events wait for `commit()`."""
        return self._head_seq - self._committed_seq

    def check_file(self) -> None:
        """Raise `JournalFileLost` when the database file (or its write-ahead log) open here
        is no longer the one at its path: deleted, or replaced by another file."""
        for name, identity in self._files.items():
            try:
                now = os.stat(name)
            except FileNotFoundError:
                raise JournalFileLost(f"{name} was deleted while the journal had it open") from None
            except OSError as exc:
                raise JournalFileLost(f"{name} cannot be checked: {exc.strerror}") from None
            if (now.st_dev, now.st_ino) != identity:
                raise JournalFileLost(
                    f"{name} was replaced by another file while the journal had it open"
                )

    # -- writing -------------------------------------------------------------------------
    def append(self, key: str, ts_journal: int, frame: bytes) -> tuple[int, bool]:
        """Add an event under the next seq in the open transaction (opened if needed):
        (that seq, True). When `key` is already in the log (committed or pending) nothing is
        appended: (the seq it holds, False); the key's unique index answers that in the same
        statement.
        """
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        seq = self._head_seq + 1
        try:
            self._db.execute(
                "INSERT INTO events (seq, key, ts_journal, frame) VALUES (?, ?, ?, ?)",
                (seq, key, ts_journal, frame),
            )
        except sqlite3.IntegrityError:
            # Only this statement failed; the open transaction keeps what it holds.
            known = self.seq_of(key)
            if known is None:
                raise
            return known, False
        self._head_seq = seq
        self._last_ts_journal = ts_journal
        return seq, True

    def commit(self) -> int:
        """Make every appended event durable; returns the committed head seq.

        With synchronous FULL the events are on disk when this returns.
        """
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        elif self.pending:
            # SQLite rolls a transaction back by itself on some errors (disk full, I/O):
            # the appended events are gone, and claiming them committed would lose them.
            lost = self.pending
            self.rollback()
            raise JournalStoreError(
                f"the open transaction was rolled back by SQLite; {lost} events not committed"
            )
        self._committed_seq = self._head_seq
        return self._committed_seq

    def rollback(self) -> None:
        """Drop every event appended since the last commit; their seqs are handed out again."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._head_seq = self._committed_seq
        found = self._db.execute(
            "SELECT ts_journal FROM events WHERE seq = ?", (self._committed_seq,)
        ).fetchone()
        self._last_ts_journal = found[0] if found else 0

    # -- reading -------------------------------------------------------------------------
    def seq_of(self, key: str) -> int | None:
        """The seq of the event journaled under `key` (committed or pending), or None."""
        row = self._db.execute("SELECT seq FROM events WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def read(
        self,
        from_seq: int,
        to_seq: int,
        *,
        max_events: int,
        max_bytes: int,
        overhead_per_event: int = 0,
    ) -> list[StoredEvent]:
        """The events with `from_seq` <= seq <= `to_seq`, in seq order, within two bounds.

        At most `max_events` events, and as many as fit in `max_bytes` counting each as
        `len(frame) + overhead_per_event`; the first event is returned even if it alone
        is larger, so a reader always makes progress.
        """
        if max_events <= 0 or to_seq < from_seq:
            return []
        rows = self._db.execute(
            "SELECT seq, ts_journal, frame FROM events WHERE seq >= ? AND seq <= ? "
            "ORDER BY seq LIMIT ?",
            (from_seq, to_seq, max_events),
        )
        chosen: list[StoredEvent] = []
        used = 0
        for seq, ts_journal, frame in rows:
            size = len(frame) + overhead_per_event
            if chosen and used + size > max_bytes:
                break
            used += size
            chosen.append(StoredEvent(seq, ts_journal, bytes(frame)))
        return chosen

    # -- closing -------------------------------------------------------------------------
    def close(self) -> None:
        """Commit what is pending and close the database; later calls do nothing."""
        if not self._open:
            return
        self._open = False
        try:
            self.commit()
        finally:
            self._db.close()

    def __enter__(self) -> JournalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _file_identities(path: Path) -> dict[str, tuple[int, int]]:
    """(device, inode) of the database file and of its write-ahead log, by file name (the
    log only when it exists: SQLite makes it on the first read in WAL mode)."""
    found: dict[str, tuple[int, int]] = {}
    for name in (str(path), f"{path}-wal"):
        try:
            stat = os.stat(name)
        except FileNotFoundError:
            continue
        found[name] = (stat.st_dev, stat.st_ino)
    return found
