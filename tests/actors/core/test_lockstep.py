"""The lockstep join: every part of a view at one seq, gaps and disorder resynced, marks."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.lockstep import LockstepJoin


def joined(join: LockstepJoin) -> dict[str, dict]:
    return {name: dict(join.values(name)) for name in join.names}


# --- in order -------------------------------------------------------------------------------


def test_changes_apply_when_every_part_reached_the_seq():
    join = LockstepJoin(["cash", "positions"])
    assert join.change("cash", 1, 1, {"USD": 100})
    assert join.seq_of("cash") == 0, "cash waits for positions to reach seq 1"
    assert not join.values("cash")
    assert join.change("positions", 1, 1, {})
    assert join.at_one_seq and join.seq == 1
    assert joined(join) == {"cash": {"USD": 100}, "positions": {}}


def test_a_part_ahead_keeps_its_changes_queued_and_the_view_stays_consistent():
    join = LockstepJoin(["cash", "positions"])
    for seq in (1, 2, 3):
        assert join.change("cash", seq, seq, {"USD": seq * 10})
    assert join.change("positions", 1, 1, {"XBT": 1})
    assert join.at_one_seq and join.seq == 1
    assert joined(join) == {"cash": {"USD": 10}, "positions": {"XBT": 1}}
    assert join.received("cash") == 3


def test_a_range_applies_whole():
    join = LockstepJoin(["cash", "positions"])
    assert join.change("cash", 1, 3, {"USD": 30})
    assert join.change("positions", 1, 1, {"XBT": 1})
    assert join.change("positions", 2, 2, {"XBT": 2})
    assert (join.seq_of("cash"), join.seq_of("positions")) == (0, 2)
    assert not join.at_one_seq, "cash cannot stop inside its range 1..3"
    assert join.change("positions", 3, 3, {"XBT": 3})
    assert join.at_one_seq and join.seq == 3
    assert joined(join) == {"cash": {"USD": 30}, "positions": {"XBT": 3}}


def test_a_range_already_received_is_taken_as_had():
    join = LockstepJoin(["cash"])
    assert join.change("cash", 1, 2, {"USD": 2})
    version = join.version
    assert join.change("cash", 2, 2, {"USD": 999})
    assert join.change("cash", 1, 1, {"USD": 999})
    assert dict(join.values("cash")) == {"USD": 2}
    assert join.version == version


# --- gaps, disorder, resync -----------------------------------------------------------------


def test_a_gap_asks_for_a_resync_and_drops_what_was_queued():
    join = LockstepJoin(["cash", "positions"])
    assert join.change("cash", 1, 1, {"USD": 1})
    assert not join.change("cash", 3, 3, {"USD": 3}), "seq 2 is missing"
    assert join.received("cash") == 0, "the queued range is dropped: the full state replaces it"
    assert join.reset("cash", 3, {"USD": 3})
    assert join.change("positions", 1, 3, {"XBT": 1})
    assert join.at_one_seq and join.seq == 3
    assert joined(join) == {"cash": {"USD": 3}, "positions": {"XBT": 1}}


def test_out_of_order_parts_ask_for_a_resync():
    join = LockstepJoin(["cash"])
    assert not join.change("cash", 2, 2, {"USD": 2}), "2 before 1"
    assert join.seq_of("cash") == 0
    assert join.reset("cash", 2, {"USD": 2})
    assert join.change("cash", 1, 1, {"USD": 1}), "1 after the state at 2: already had"
    assert join.seq == 2 and dict(join.values("cash")) == {"USD": 2}


def test_too_many_queued_changes_ask_for_a_resync():
    join = LockstepJoin(["cash", "positions"], max_pending=3)
    for seq in (1, 2, 3):
        assert join.change("cash", seq, seq, {"USD": seq})
    assert not join.change("cash", 4, 4, {"USD": 4})
    assert join.received("cash") == 0


def test_a_reset_replaces_the_values_and_what_was_queued_before_it():
    join = LockstepJoin(["cash", "positions"])
    for seq in (1, 2, 3):
        assert join.change("cash", seq, seq, {"USD": seq})
    assert join.reset("cash", 3, {"EUR": 5})
    assert join.received("cash") == 3
    assert join.change("positions", 1, 3, {})
    assert join.seq == 3 and dict(join.values("cash")) == {"EUR": 5}
    assert join.change("cash", 4, 4, {"USD": 4}), "the stream follows on from the state"


def test_a_reset_behind_what_was_received_is_not_taken_but_counts_as_synced():
    join = LockstepJoin(["cash", "positions"])
    assert join.waiting() == ("cash", "positions") and not join.synced
    assert join.change("cash", 1, 2, {"USD": 2})
    assert not join.reset("cash", 1, {"USD": 1})
    assert join.received("cash") == 2
    assert join.waiting() == ("positions",)
    assert join.reset("positions", 2, {"XBT": 1})
    assert join.synced and join.at_one_seq and join.seq == 2
    assert joined(join) == {"cash": {"USD": 2}, "positions": {"XBT": 1}}


def test_a_join_needs_a_part():
    with pytest.raises(ValueError, match="names"):
        LockstepJoin([])


# --- a mark between events ------------------------------------------------------------------


def test_a_mark_between_events_replaces_the_values_at_its_seq():
    join = LockstepJoin(["cash", "drawdown"])
    join.change("cash", 1, 1, {"USD": 1})
    join.change("drawdown", 1, 1, {"figures": "at 1"})
    version = join.version
    assert join.mark("drawdown", 1, {"figures": "marked at 1"})
    assert join.at_one_seq and join.seq == 1
    assert dict(join.values("drawdown")) == {"figures": "marked at 1"}
    assert join.version != version, "same seq, new figures: the view changed"


def test_a_mark_on_a_part_ahead_replaces_its_queued_values():
    join = LockstepJoin(["cash", "drawdown"])
    join.change("drawdown", 1, 1, {"figures": "at 1"})
    assert join.mark("drawdown", 1, {"figures": "marked at 1"})
    assert join.seq_of("drawdown") == 0, "still waiting for cash"
    join.change("cash", 1, 1, {"USD": 1})
    assert join.at_one_seq and dict(join.values("drawdown")) == {"figures": "marked at 1"}


def test_a_mark_beyond_what_was_received_is_a_gap():
    join = LockstepJoin(["drawdown"])
    assert not join.mark("drawdown", 1, {"figures": "marked at 1"})
    assert join.seq == 0 and not join.values("drawdown")


def test_a_mark_behind_what_was_received_is_superseded():
    join = LockstepJoin(["cash", "drawdown"])
    join.change("drawdown", 1, 2, {"figures": "at 2"})
    assert join.mark("drawdown", 1, {"figures": "marked at 1"})
    join.change("cash", 1, 2, {})
    assert dict(join.values("drawdown")) == {"figures": "at 2"}


def test_a_mark_at_the_start_before_any_event():
    join = LockstepJoin(["cash", "drawdown"])
    assert join.mark("drawdown", 0, {"figures": "marked at 0"})
    assert join.at_one_seq and join.seq == 0
    assert dict(join.values("drawdown")) == {"figures": "marked at 0"}


# --- properties -----------------------------------------------------------------------------

PARTS = ("cash", "positions", "drawdown")
EVENTS = 12


def reference(changes: dict[str, list[dict]], name: str, seq: int) -> dict:
    """Part `name`'s values after events 1..seq."""
    values: dict = {}
    for changed in changes[name][:seq]:
        values.update(changed)
    return values


@st.composite
def streams(draw):
    """Each part's changes per event, its stream cut into ranges, and an interleaving."""
    changes = {
        name: [
            draw(st.dictionaries(st.sampled_from("abc"), st.integers(0, 9), max_size=2))
            for _ in range(EVENTS)
        ]
        for name in PARTS
    }
    ranges = {}
    for name in PARTS:
        cuts = sorted(draw(st.sets(st.integers(1, EVENTS - 1), max_size=EVENTS - 1)))
        bounds = [0, *cuts, EVENTS]
        ranges[name] = [(lo + 1, hi) for lo, hi in itertools.pairwise(bounds)]
    order = draw(st.permutations([name for name in PARTS for _ in ranges[name]]))
    return changes, ranges, order


def range_change(changes, name, first, last):
    merged: dict = {}
    for changed in changes[name][first - 1 : last]:
        merged.update(changed)
    return merged


def check_consistent(join: LockstepJoin, changes, *, resynced: bool = False) -> None:
    """Each part is its log at its seq; a view at one seq is the log at that seq. Without a
    resync (a full state taken where it is), no change applies before every part can
    reach its seq."""
    reachable = min(join.received(name) for name in PARTS)
    for name in PARTS:
        assert resynced or join.seq_of(name) <= reachable, "applied before all can reach it"
        assert dict(join.values(name)) == reference(changes, name, join.seq_of(name))
    if join.at_one_seq:
        for name in PARTS:
            assert dict(join.values(name)) == reference(changes, name, join.seq)


@settings(max_examples=200, deadline=None)
@given(streams())
def test_every_view_at_one_seq_is_the_log_at_that_seq(drawn):
    changes, ranges, order = drawn
    join = LockstepJoin(PARTS)
    taken = dict.fromkeys(PARTS, 0)
    seen = 0
    for name in order:
        first, last = ranges[name][taken[name]]
        taken[name] += 1
        assert join.change(name, first, last, range_change(changes, name, first, last))
        check_consistent(join, changes)
        reachable = min(join.received(part) for part in PARTS)
        for part in PARTS:  # each part went as far as it can without passing another
            ends = [hi for lo, hi in ranges[part] if hi <= reachable]
            assert join.seq_of(part) == max(ends, default=0)
        if join.at_one_seq:
            assert join.seq >= seen, "the view never goes back"
            seen = join.seq
    assert join.at_one_seq and join.seq == EVENTS


@settings(max_examples=200, deadline=None)
@given(streams(), st.data())
def test_lost_duplicated_and_reordered_ranges_are_repaired_by_resyncs(drawn, data):
    changes, ranges, order = drawn
    join = LockstepJoin(PARTS)
    published = dict.fromkeys(PARTS, 0)  # how far each part's actor got
    taken = dict.fromkeys(PARTS, 0)
    held: list[tuple[str, int, int]] = []  # ranges delayed, to come later out of order
    deliveries: list[tuple[str, int, int]] = []
    for name in order:
        first, last = ranges[name][taken[name]]
        taken[name] += 1
        published[name] = last
        fate = data.draw(st.sampled_from(["deliver", "deliver", "lose", "twice", "delay"]))
        if fate == "delay":
            held.append((name, first, last))
            continue
        if fate != "lose":
            deliveries.append((name, first, last))
        if fate == "twice":
            deliveries.append((name, first, last))
        if held and data.draw(st.booleans()):
            deliveries.append(held.pop(0))
        for part, lo, hi in deliveries:
            if not join.change(part, lo, hi, range_change(changes, part, lo, hi)):
                at = published[part]
                join.reset(part, at, reference(changes, part, at))  # the resync answered
            check_consistent(join, changes, resynced=True)
        deliveries.clear()
    for part, lo, hi in held:
        if not join.change(part, lo, hi, range_change(changes, part, lo, hi)):
            join.reset(part, published[part], reference(changes, part, published[part]))
        check_consistent(join, changes, resynced=True)
    for part in PARTS:  # the quiet streams' resync tick
        join.reset(part, EVENTS, reference(changes, part, EVENTS))
        check_consistent(join, changes, resynced=True)
    assert join.at_one_seq and join.seq == EVENTS
    assert joined(join) == {name: reference(changes, name, EVENTS) for name in PARTS}
