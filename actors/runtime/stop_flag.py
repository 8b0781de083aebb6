"""A stop request that a signal handler may make."""

from __future__ import annotations

import time
from types import FrameType


class StopFlag:
    """Set by a signal handler (or any thread), read and waited on by a main loop.

    A signal handler runs in the main thread wherever that thread was interrupted, and can run
    again before it returns: Linux sends the parent-death signal once for each thread of a
    dying parent, and a user may press Ctrl-C twice. `threading.Event.set` takes a lock, so an
    Event set from a handler can deadlock the main thread on a lock it already holds. Setting
    this flag is a plain attribute write, and `wait` sleeps in short slices up to its deadline.
    """

    SLICE_SECONDS = 0.05
    """How long `wait` sleeps between two looks at the flag (the latency of a stop)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """Request the stop."""
        self._set = True

    def handler(self, signum: int, frame: FrameType | None) -> None:
        """A signal handler that requests the stop (`signal.signal(SIGTERM, flag.handler)`)."""
        self._set = True

    def is_set(self) -> bool:
        """Whether the stop was requested."""
        return self._set

    def wait(self, timeout: float) -> bool:
        """Wait until the stop is requested or `timeout` seconds passed; True if requested."""
        deadline = time.monotonic() + timeout
        while not self._set:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(self.SLICE_SECONDS, left))
        return True
