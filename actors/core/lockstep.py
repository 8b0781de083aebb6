"""The lockstep join: several change streams of the journal met at one seq. Pure: no I/O.

Each part (cash, positions, drawdown) comes as a stream of changes, each the values a part
changed over journal events `first_seq`..`seq` (one event live, a range while replaying).
The join applies a part's changes up to `seq` only when every other part can reach that
same `seq` too, so the view it hands (`seq`, `values`) has every part at exactly one seq,
never a mix. A range applies whole.

It does not ask for anything itself: it says when a part needs a resync (its full state
read again) and takes that state with `reset`:

- `change` returns False when the range does not follow on what the part has received (a
  gap: a lost message, an actor restarted; or a range that comes out of order), or when too
  many ranges are queued for a part ahead of the others. What was queued is dropped: the
  full state replaces it.
- `mark` takes a part's new values at a seq without a journal event (the drawdown actor
  marks equity on a price move): they replace the values at that seq. A mark beyond what
  the part has received is a gap (False); one behind it is superseded and ignored.
- `reset` takes a full state at `seq`, unless the part already received beyond it.

`version` counts the changes of the joined view, so a reader rebuilds what it derives from
it only when it changed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_PENDING_CHANGES = 10_000
"""Changes queued for a part that is ahead of another; past this, it resyncs in full."""


@dataclass
class _Part:
    """One followed part: its values at `seq` and the ranges queued beyond it."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    pending: deque[tuple[int, int, dict[str, Any]]] = field(default_factory=deque)
    synced: bool = False  # a full state has been taken at least once

    @property
    def received(self) -> int:
        """The highest seq this part can reach with what has arrived."""
        return self.pending[-1][1] if self.pending else self.seq


class LockstepJoin:
    """Parts of the books kept at one journal seq (see the module docstring)."""

    def __init__(self, names: Iterable[str], *, max_pending: int = MAX_PENDING_CHANGES) -> None:
        self._parts = {name: _Part(name) for name in names}
        if not self._parts:
            raise ValueError("names: a join needs at least one part")
        self._max_pending = max_pending
        self.version = 0

    # -- what comes in ----------------------------------------------------------------------
    def change(self, name: str, first_seq: int, seq: int, values: Mapping[str, Any]) -> bool:
        """Take the changes of part `name` over events `first_seq`..`seq` and advance.

        True when taken (or already had: a range ending at or before what was received);
        False when the part needs a resync: the range leaves a gap or comes out of order, or
        too much is queued. Its queued ranges are then dropped.
        """
        part = self._parts[name]
        if seq <= part.received:
            return True
        if first_seq != part.received + 1 or len(part.pending) >= self._max_pending:
            part.pending.clear()
            return False
        part.pending.append((first_seq, seq, dict(values)))
        self._advance()
        return True

    def mark(self, name: str, seq: int, values: Mapping[str, Any]) -> bool:
        """New values of part `name` at `seq` without a journal event: they replace those at
        `seq` (queued, when `seq` is not applied yet). False when `seq` is beyond what the
        part received (a gap before the mark: resync); a mark behind it is ignored."""
        part = self._parts[name]
        if seq > part.received:
            return False
        if seq == part.received:
            if part.pending:
                first, last, changed = part.pending[-1]
                part.pending[-1] = (first, last, {**changed, **values})
            else:
                part.values.update(values)
                self.version += 1
        return True

    def reset(self, name: str, seq: int, values: Mapping[str, Any]) -> bool:
        """Part `name`'s full state at `seq` (a resync answered) and advance. Taken (True)
        unless the part received beyond `seq` meanwhile; either way it counts as synced."""
        part = self._parts[name]
        part.synced = True
        taken = seq >= part.received
        if taken:
            part.values = dict(values)
            part.seq = seq
            part.pending.clear()  # all of it at or before `seq`: the state covers it
            self.version += 1
        self._advance()
        return taken

    def _advance(self) -> None:
        target = min(part.received for part in self._parts.values())
        for part in self._parts.values():
            while part.pending and part.pending[0][1] <= target:
                _, seq, changed = part.pending.popleft()
                part.values.update(changed)
                part.seq = seq
                self.version += 1

    # -- the joined view --------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._parts)

    @property
    def at_one_seq(self) -> bool:
        """Whether every part is at the same seq (the view is a consistent one)."""
        seqs = {part.seq for part in self._parts.values()}
        return len(seqs) == 1

    @property
    def seq(self) -> int:
        """The seq of the first part (every part's, when `at_one_seq`)."""
        return next(iter(self._parts.values())).seq

    def seq_of(self, name: str) -> int:
        """The seq part `name` is at."""
        return self._parts[name].seq

    def received(self, name: str) -> int:
        """The highest seq part `name` can reach with what has arrived."""
        return self._parts[name].received

    def values(self, name: str) -> Mapping[str, Any]:
        """Part `name`'s values at its seq (read-only by contract: do not change them)."""
        return self._parts[name].values

    @property
    def synced(self) -> bool:
        """Whether every part has been read in full at least once."""
        return all(part.synced for part in self._parts.values())

    def waiting(self) -> tuple[str, ...]:
        """The parts not read in full yet."""
        return tuple(part.name for part in self._parts.values() if not part.synced)
