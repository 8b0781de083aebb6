"""An exclusive lock on a file that names the pid holding it (flock, released by the kernel).

`PidLock.acquire(path)` takes the lock at once or raises `LockHeld` naming the pid written in
the file by whoever holds it. The lock lives as long as the open file description: it is
released when every process holding the descriptor has closed it or died, so a SIGKILLed
holder never leaves it stuck. The descriptor is close-on-exec; a process that starts
children which must keep the lock hands it to them explicitly (`fd`, e.g. `pass_fds`).
The file is never removed (removing it would let two processes lock two different files).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LockHeld(RuntimeError):
    """Another process holds the lock on `path`; `pid` is the one it wrote (None: unknown)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"{path} is locked by {holder}")
        self.path = path
        self.pid = pid


def read_holder(path: Path) -> int | None:
    """The pid written in the lock file `path`, or None (absent, empty, garbage)."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class PidLock:
    """A held lock on `path`; `release()` (or the holder's death) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path | str, pid: int | None = None) -> PidLock:
        """Lock `path` (created 0600 if absent) and write `pid` (default: ours) into it;
        raise LockHeld at once if another process holds it."""
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(path, read_holder(path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid() if pid is None else pid}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    @property
    def fd(self) -> int:
        """The locked descriptor (to hand to children that must keep the lock)."""
        if self._fd is None:
            raise RuntimeError(f"the lock on {self.path} is released")
        return self._fd

    def release(self) -> None:
        """Close our descriptor (idempotent): the lock is free once no child holds it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
