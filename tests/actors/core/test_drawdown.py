"""Drawdown windows, peaks, flows and limit crossings."""

from __future__ import annotations

import decimal
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.drawdown import (
    Breached,
    BreachTracker,
    DrawdownError,
    DrawdownLimits,
    Drawdowns,
    DrawdownSettings,
    DrawdownState,
    Recovered,
    Window,
    drawdowns,
    flow,
    mark,
    view_at,
    window_start,
)

CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = 3_600_000_000_000
DAY = 24 * HOUR
UTC_MIDNIGHT = DrawdownSettings()  # daily at 00:00 UTC, weekly on Mondays


def ns(text: str) -> int:
    """Nanoseconds since the epoch of an ISO time with its offset ('...Z' for UTC)."""
    return (datetime.fromisoformat(text) - EPOCH) // timedelta(microseconds=1) * 1000


def D(value) -> Decimal:
    return Decimal(str(value))


def marks(points, settings=UTC_MIDNIGHT, state=None):
    state = state or DrawdownState()
    for when, equity in points:
        state = mark(state, D(equity), ns(when) if isinstance(when, str) else when, settings)
    return state


# --- window arithmetic -------------------------------------------------------------------


def test_a_daily_window_starts_exactly_at_the_reset_and_not_one_ns_before():
    reset = ns("2024-05-14T00:00:00Z")
    assert window_start(reset, reset_hour=0) == reset
    assert window_start(reset - 1, reset_hour=0) == reset - DAY
    assert window_start(reset + DAY - 1, reset_hour=0) == reset


def test_a_reset_hour_in_a_local_time_zone():
    # 17:00 in New York in May is 21:00 UTC (EDT, UTC−4).
    reset = ns("2024-05-14T21:00:00Z")
    for ts in (reset, reset + 1, reset + DAY - 1):
        assert window_start(ts, reset_hour=17, timezone="America/New_York") == reset
    assert window_start(reset - 1, reset_hour=17, timezone="America/New_York") == reset - DAY


def test_new_york_windows_follow_the_clock_across_daylight_saving_changes():
    def start(text):
        return window_start(ns(text), reset_hour=17, timezone="America/New_York")

    # Clocks went forward on 2024-03-10: 17:00 is 22:00 UTC before, 21:00 UTC after.
    assert start("2024-03-09T23:00:00Z") == ns("2024-03-09T22:00:00Z")
    assert start("2024-03-10T21:30:00Z") == ns("2024-03-10T21:00:00Z")
    # That day's window is 23 hours long.
    assert ns("2024-03-10T21:00:00Z") - ns("2024-03-09T22:00:00Z") == 23 * HOUR
    # Clocks went back on 2024-11-03: 17:00 is 22:00 UTC from then on.
    assert start("2024-11-03T21:59:59.999999Z") == ns("2024-11-02T21:00:00Z")
    assert start("2024-11-03T22:00:00Z") == ns("2024-11-03T22:00:00Z")


def test_a_reset_hour_skipped_by_daylight_saving_starts_when_the_clocks_jump():
    # Berlin, 2024-03-31: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:00 never happens.
    jump = ns("2024-03-31T01:00:00Z")
    assert window_start(jump, reset_hour=2, timezone="Europe/Berlin") == jump
    assert window_start(jump - 1, reset_hour=2, timezone="Europe/Berlin") == ns(
        "2024-03-30T01:00:00Z"
    )
    assert window_start(ns("2024-03-31T12:00:00Z"), reset_hour=2, timezone="Europe/Berlin") == (
        jump
    )


def test_a_reset_hour_repeated_by_daylight_saving_starts_at_its_first_occurrence():
    # Berlin, 2024-10-27: 02:00–03:00 happens twice, first in CEST (00:00 UTC), then in CET.
    first = ns("2024-10-27T00:00:00Z")
    second = ns("2024-10-27T01:00:00Z")
    for ts in (first, second, second + 1, ns("2024-10-28T00:59:59Z")):
        assert window_start(ts, reset_hour=2, timezone="Europe/Berlin") == first
    assert window_start(first - 1, reset_hour=2, timezone="Europe/Berlin") == ns(
        "2024-10-26T00:00:00Z"
    )
    # The next window starts at 02:00 CET, so this one lasted 25 hours.
    assert window_start(ns("2024-10-28T01:00:00Z"), reset_hour=2, timezone="Europe/Berlin") == (
        first + 25 * HOUR
    )


def test_a_repeated_midnight_reset_starts_at_its_first_occurrence():
    # Havana falls back at 01:00 CDT → 00:00 CST: the hour 00:00–01:00 on 2024-11-03 repeats.
    first = ns("2024-11-03T04:00:00Z")  # 00:00 CDT, the first time midnight is read
    repeated = ns("2024-11-03T05:30:00Z")  # 00:30 CST, the second time 00:30 is read
    assert window_start(repeated, reset_hour=0, timezone="America/Havana") == first
    assert window_start(first - 1, reset_hour=0, timezone="America/Havana") == ns(
        "2024-11-02T04:00:00Z"
    )


def test_a_fall_back_just_before_midnight_gives_a_25_hour_day():
    # Santiago, 2024-04-07: 24:00 CLST goes back to 23:00 CLT on Saturday; Sunday's midnight
    # comes at 04:00 UTC, and the repeated Saturday 23:30 still belongs to Saturday.
    saturday = ns("2024-04-06T03:00:00Z")
    sunday = ns("2024-04-07T04:00:00Z")
    for ts in (ns("2024-04-07T02:30:00Z"), ns("2024-04-07T03:30:00Z"), sunday - 1):
        assert window_start(ts, reset_hour=0, timezone="America/Santiago") == saturday
    assert window_start(sunday, reset_hour=0, timezone="America/Santiago") == sunday
    assert sunday - saturday == 25 * HOUR


def test_weekly_windows_roll_on_the_configured_weekday():
    # Sundays at 17:00 New York. 2024-05-12 is a Sunday.
    reset = ns("2024-05-12T21:00:00Z")
    weekly = {"reset_hour": 17, "timezone": "America/New_York", "weekday": 6}
    assert window_start(reset, **weekly) == reset
    assert window_start(reset - 1, **weekly) == reset - 7 * DAY
    assert window_start(reset + 7 * DAY - 1, **weekly) == reset
    assert window_start(reset + 7 * DAY, **weekly) == reset + 7 * DAY
    # Monday at midnight UTC: 2024-05-13 is a Monday.
    monday = ns("2024-05-13T00:00:00Z")
    assert window_start(ns("2024-05-19T23:59:59Z"), reset_hour=0, weekday=0) == monday


def test_windows_across_the_year_boundary():
    # 2025-12-29 is a Monday; the week runs into 2026.
    monday = ns("2025-12-29T00:00:00Z")
    assert window_start(ns("2026-01-01T00:00:00Z"), reset_hour=0, weekday=0) == monday
    assert window_start(ns("2026-01-04T23:59:59Z"), reset_hour=0, weekday=0) == monday
    assert window_start(ns("2026-01-05T00:00:00Z"), reset_hour=0, weekday=0) == ns(
        "2026-01-05T00:00:00Z"
    )
    assert window_start(ns("2026-01-01T00:00:00Z"), reset_hour=0) == ns("2026-01-01T00:00:00Z")
    assert window_start(ns("2026-01-01T00:00:00Z") - 1, reset_hour=0) == ns("2025-12-31T00:00:00Z")
    # Tokyo's 09:00 reset on New Year's Day is midnight UTC.
    assert window_start(ns("2026-01-01T00:00:00Z"), reset_hour=9, timezone="Asia/Tokyo") == ns(
        "2026-01-01T00:00:00Z"
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"daily_reset_hour": 24}, "daily_reset_hour"),
        ({"daily_reset_hour": -1}, "daily_reset_hour"),
        ({"weekly_reset_weekday": 7}, "weekly_reset_weekday"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"daily_reset_hour": 1.5}, "daily_reset_hour"),
    ],
)
def test_bad_window_settings_are_refused_naming_the_setting(kwargs, field):
    with pytest.raises(DrawdownError) as error:
        DrawdownSettings(**kwargs)
    assert error.value.field == field


# --- peaks and marks ---------------------------------------------------------------------


def test_peaks_per_window_and_drawdown_percentages():
    state = marks(
        [
            ("2024-05-13T10:00:00Z", 1000),  # Monday
            ("2024-05-13T12:00:00Z", 1200),
            ("2024-05-14T09:00:00Z", 1100),  # Tuesday: new day, same week
            ("2024-05-14T10:00:00Z", 900),
        ]
    )
    assert state.peak_equity == 1200
    assert state.weekly_peak == 1200
    assert state.daily_peak == 1200  # the day opened at 1200, the last equity before it
    assert state.daily_window_start == ns("2024-05-14T00:00:00Z")
    assert state.weekly_window_start == ns("2024-05-13T00:00:00Z")
    assert drawdowns(state, CONTEXT) == (Decimal(25), Decimal(25), Decimal(25))

    state = marks([("2024-05-15T08:00:00Z", 950), ("2024-05-15T09:00:00Z", 930)], state=state)
    # Wednesday opened at 900 and peaked at 950.
    assert state.daily_peak == 950
    total, daily, weekly = drawdowns(state, CONTEXT)
    assert (total, weekly) == (Decimal("22.5"), Decimal("22.5"))
    assert daily == CONTEXT.divide(Decimal(20 * 100), Decimal(950))


def test_a_new_week_starts_its_peak_at_the_equity_it_opened_with():
    state = marks(
        [
            ("2024-05-17T10:00:00Z", 2000),  # Friday
            ("2024-05-17T11:00:00Z", 1500),
            ("2024-05-20T10:00:00Z", 1400),  # the next Monday
        ]
    )
    assert state.peak_equity == 2000
    assert state.weekly_peak == 1500
    assert state.daily_peak == 1500
    assert drawdowns(state, CONTEXT) == (Decimal(30), *(CONTEXT.divide(100 * 100, 1500),) * 2)


def test_a_gap_over_several_resets_still_resets_every_window():
    state = marks([("2024-05-13T10:00:00Z", 1000), ("2024-05-13T11:00:00Z", 800)])
    state = marks([("2024-05-23T10:00:00Z", 700)], state=state)  # ten days later
    assert state.daily_window_start == ns("2024-05-23T00:00:00Z")
    assert state.weekly_window_start == ns("2024-05-20T00:00:00Z")
    assert state.daily_peak == 800 and state.weekly_peak == 800
    assert state.peak_equity == 1000


def test_a_mark_exactly_at_the_reset_opens_the_new_window():
    state = marks([("2024-05-13T10:00:00Z", 1000)])
    state = marks([(ns("2024-05-14T00:00:00Z") - 1, 1100)], state=state)
    assert state.daily_window_start == ns("2024-05-13T00:00:00Z")
    state = marks([("2024-05-14T00:00:00Z", 1050)], state=state)
    assert state.daily_window_start == ns("2024-05-14T00:00:00Z")
    assert state.daily_peak == 1100  # opened at 1100, the last mark before the reset


def test_re_marking_the_last_equity_rolls_the_window_without_moving_peaks():
    state = marks([("2024-05-13T10:00:00Z", 1000), ("2024-05-13T11:00:00Z", 900)])
    rolled = mark(state, state.last_equity, ns("2024-05-14T00:00:00Z"), UTC_MIDNIGHT)
    assert rolled.daily_peak == 900
    assert drawdowns(rolled, CONTEXT).daily_pct == 0
    assert drawdowns(rolled, CONTEXT).total_pct == 10


def test_a_mark_earlier_than_the_last_is_refused_and_the_same_time_is_accepted():
    state = marks([("2024-05-13T10:00:00Z", 1000)])
    again = mark(state, D(990), ns("2024-05-13T10:00:00Z"), UTC_MIDNIGHT)
    assert again.last_equity == 990
    with pytest.raises(DrawdownError) as error:
        mark(state, D(1000), ns("2024-05-13T10:00:00Z") - 1, UTC_MIDNIGHT)
    assert error.value.field == "ts_ns"
    assert str(ns("2024-05-13T10:00:00Z") - 1) in str(error.value)
    with pytest.raises(DrawdownError) as error:
        flow(state, D(1000), D(2000), ns("2024-05-13T09:00:00Z"), UTC_MIDNIGHT, CONTEXT)
    assert error.value.field == "ts_ns"


@pytest.mark.parametrize("equity", [None, 1000.0, Decimal("NaN"), Decimal("-Infinity")])
def test_a_malformed_equity_is_refused(equity):
    with pytest.raises(DrawdownError) as error:
        mark(DrawdownState(), equity, 0, UTC_MIDNIGHT)
    assert error.value.field == "equity"


def test_no_marks_means_no_drawdown():
    assert drawdowns(DrawdownState(), CONTEXT) == (0, 0, 0)


def test_drawdown_is_never_negative_and_zero_without_a_positive_peak():
    state = marks([("2024-05-13T10:00:00Z", -50), ("2024-05-13T11:00:00Z", -80)])
    assert drawdowns(state, CONTEXT) == (0, 0, 0)
    state = marks([("2024-05-13T10:00:00Z", 100), ("2024-05-13T11:00:00Z", -50)])
    assert drawdowns(state, CONTEXT).total_pct == 150  # a negative equity lost more than all


# --- flows -------------------------------------------------------------------------------


def test_a_first_deposit_into_an_empty_account_sets_the_peaks():
    state = flow(DrawdownState(), D(0), D(10000), ns("2024-05-13T10:00:00Z"), UTC_MIDNIGHT, CONTEXT)
    assert (state.peak_equity, state.daily_peak, state.weekly_peak) == (10000, 10000, 10000)
    assert state.last_equity == 10000
    assert drawdowns(state, CONTEXT) == (0, 0, 0)
    state = marks([("2024-05-13T11:00:00Z", 9000)], state=state)
    assert drawdowns(state, CONTEXT) == (10, 10, 10)


def test_a_withdrawal_is_not_a_drawdown_and_keeps_the_percentages():
    state = marks([("2024-05-13T10:00:00Z", 10000), ("2024-05-13T11:00:00Z", 9000)])
    before = drawdowns(state, CONTEXT)
    after_flow = flow(state, D(9000), D(8100), ns("2024-05-13T12:00:00Z"), UTC_MIDNIGHT, CONTEXT)
    assert drawdowns(after_flow, CONTEXT) == before == (10, 10, 10)
    assert after_flow.peak_equity == 9000  # 10000 × 8100 / 9000
    assert after_flow.last_equity == 8100


def test_a_deposit_keeps_the_percentages_and_raises_the_peaks():
    state = marks([("2024-05-13T10:00:00Z", 1000), ("2024-05-13T11:00:00Z", 800)])
    state = marks([("2024-05-14T10:00:00Z", 900), ("2024-05-14T11:00:00Z", 850)], state=state)
    before = drawdowns(state, CONTEXT)
    after_flow = flow(state, D(850), D(1700), ns("2024-05-14T12:00:00Z"), UTC_MIDNIGHT, CONTEXT)
    assert drawdowns(after_flow, CONTEXT) == before
    assert (after_flow.peak_equity, after_flow.daily_peak) == (2000, 1800)


def test_a_flow_that_crosses_a_reset_opens_the_window_at_the_equity_before_it():
    state = marks([("2024-05-13T10:00:00Z", 1000), ("2024-05-13T11:00:00Z", 800)])
    after_flow = flow(state, D(820), D(1640), ns("2024-05-14T12:00:00Z"), UTC_MIDNIGHT, CONTEXT)
    assert after_flow.daily_window_start == ns("2024-05-14T00:00:00Z")
    assert after_flow.daily_peak == 1640  # the day opened at 800, rose to 820, then doubled
    assert after_flow.peak_equity == 2000


def test_withdrawing_everything_then_depositing_starts_afresh():
    state = marks([("2024-05-13T10:00:00Z", 1000), ("2024-05-13T11:00:00Z", 500)])
    emptied = flow(state, D(500), D(0), ns("2024-05-13T12:00:00Z"), UTC_MIDNIGHT, CONTEXT)
    assert drawdowns(emptied, CONTEXT) == (0, 0, 0)
    refilled = flow(emptied, D(0), D(300), ns("2024-05-13T13:00:00Z"), UTC_MIDNIGHT, CONTEXT)
    assert refilled.peak_equity == 300
    assert drawdowns(refilled, CONTEXT) == (0, 0, 0)


# --- breaches ----------------------------------------------------------------------------

LIMITS = DrawdownLimits(
    max_total_drawdown_pct=D(20), max_daily_drawdown_pct=D(5), max_weekly_drawdown_pct=None
)


def dd(total, daily, weekly=0):
    return Drawdowns(D(total), D(daily), D(weekly))


def test_a_breach_is_reported_once_per_crossing_and_recovery_once():
    tracker = BreachTracker(LIMITS)
    tracker, events = tracker.observe(dd(1, 4.9))
    assert events == ()
    tracker, events = tracker.observe(dd(2, 5))  # reaching the limit is a breach
    assert events == (Breached(Window.DAILY, D(5), D(5)),)
    tracker, events = tracker.observe(dd(3, 7))
    assert events == ()
    assert tracker.breached == {Window.DAILY}
    tracker, events = tracker.observe(dd(3, 4.99))
    assert events == (Recovered(Window.DAILY, D("4.99"), D(5)),)
    tracker, events = tracker.observe(dd(3, 1))
    assert events == ()
    tracker, events = tracker.observe(dd(3, 6))
    assert events == (Breached(Window.DAILY, D(6), D(5)),)


def test_several_windows_cross_in_one_observation():
    tracker, events = BreachTracker(LIMITS).observe(dd(25, 10, 99))
    assert events == (
        Breached(Window.TOTAL, D(25), D(20)),
        Breached(Window.DAILY, D(10), D(5)),
    )
    tracker, events = tracker.observe(dd(19, 0, 99))
    assert events == (
        Recovered(Window.TOTAL, D(19), D(20)),
        Recovered(Window.DAILY, D(0), D(5)),
    )
    assert tracker.breached == frozenset()


def test_a_restored_tracker_does_not_repeat_a_breach():
    restored = BreachTracker(LIMITS, breached=frozenset({Window.TOTAL}))
    _, events = restored.observe(dd(30, 0))
    assert events == ()


def test_removing_a_limit_recovers_its_window():
    tracker = BreachTracker(DrawdownLimits(), breached=frozenset({Window.WEEKLY}))
    tracker, events = tracker.observe(dd(0, 0, 50))
    assert events == (Recovered(Window.WEEKLY, D(50), None),)
    assert tracker.breached == frozenset()


@pytest.mark.parametrize("limit", [D(0), D(-1), 5, D("NaN")])
def test_a_bad_limit_is_refused_naming_it(limit):
    with pytest.raises(DrawdownError) as error:
        DrawdownLimits(max_daily_drawdown_pct=limit)
    assert error.value.field == "max_daily_drawdown_pct"


def test_breaches_follow_marks_end_to_end():
    tracker = BreachTracker(LIMITS)
    state = DrawdownState()
    seen = []
    for when, equity in [
        ("2024-05-13T10:00:00Z", 1000),
        ("2024-05-13T11:00:00Z", 940),  # 6% down: daily breach
        ("2024-05-13T12:00:00Z", 960),  # 4%: recovered
        ("2024-05-14T12:00:00Z", 930),  # new day opened at 960: 3.125%, no breach
    ]:
        state = mark(state, D(equity), ns(when), UTC_MIDNIGHT)
        tracker, events = tracker.observe(drawdowns(state, CONTEXT))
        seen.extend(type(event).__name__ for event in events)
    assert seen == ["Breached", "Recovered"]


# --- properties --------------------------------------------------------------------------

BERLIN = DrawdownSettings(daily_reset_hour=2, timezone="Europe/Berlin", weekly_reset_weekday=6)
START = ns("2024-03-25T00:00:00Z")  # a week around Berlin's spring-forward change

equities = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2)
steps = st.one_of(
    st.integers(min_value=0, max_value=6 * HOUR),
    st.integers(min_value=0, max_value=4 * DAY),  # gaps over one or more resets
)
mark_lists = st.lists(st.tuples(steps, equities), min_size=1, max_size=30)


def timeline(points):
    ts = START
    out = []
    for step, equity in points:
        ts += step
        out.append((ts, equity))
    return out


def states(points, settings=BERLIN):
    """The state after each of the marks."""
    state = DrawdownState()
    out = []
    for ts, equity in points:
        state = mark(state, equity, ts, settings)
        out.append(state)
    return out


def fold(points, settings=BERLIN):
    return states(points, settings)[-1]


@settings(max_examples=200, deadline=None)
@given(points=mark_lists, flows=st.lists(st.tuples(st.integers(0, 29), equities), max_size=5))
def test_drawdown_stays_between_0_and_100_for_positive_equities(points, flows):
    flows_at = dict(flows)
    state = DrawdownState()
    for index, (ts, equity) in enumerate(timeline(points)):
        state = mark(state, equity, ts, BERLIN)
        if index in flows_at:
            state = flow(state, equity, flows_at[index], ts, BERLIN, CONTEXT)
        for pct in drawdowns(state, CONTEXT):
            assert 0 <= pct <= 100


@settings(max_examples=200, deadline=None)
@given(points=mark_lists)
def test_every_peak_is_the_maximum_of_its_window_and_its_opening_equity(points):
    points = timeline(points)
    for count, state in enumerate(states(points), 1):
        seen = points[:count]
        now = seen[-1][0]
        assert state.peak_equity == max(equity for _, equity in seen)
        for start, peak in (
            (BERLIN.daily_window_start(now), state.daily_peak),
            (BERLIN.weekly_window_start(now), state.weekly_peak),
        ):
            inside = [equity for ts, equity in seen if ts >= start]
            # A window opens at the last mark before its start (a mark exactly at the start is
            # inside it): see test_a_mark_exactly_at_the_reset_opens_the_new_window.
            opening = [equity for ts, equity in seen if ts < start][-1:]
            assert peak == max(inside + opening)


@settings(max_examples=300, deadline=None)
@given(
    before=mark_lists,
    gap=st.integers(min_value=1, max_value=10 * DAY),
    after=mark_lists,
)
def test_a_gap_in_marks_gives_the_state_of_marks_that_saw_nothing_change(before, gap, after):
    # A process that was down between two marks must end where one that stayed up would have,
    # had equity not moved meanwhile: the same equity marked again at every reset in the gap.
    before = timeline(before)
    last_ts, last_equity = before[-1]
    after = [(ts - START + last_ts + gap, equity) for ts, equity in timeline(after)]
    fillers = []
    reset = BERLIN.daily_window_start(last_ts)
    # A local day lasts 23 to 25 hours: 25 hours on is always inside the next day.
    while (reset := BERLIN.daily_window_start(reset + 25 * HOUR)) < after[0][0]:
        fillers.append((reset, last_equity))
    with_gap = states(before + after)[-len(after) :]
    kept_up = states(before + fillers + after)[-len(after) :]
    assert with_gap == kept_up


@settings(max_examples=200, deadline=None)
@given(points=mark_lists, after=equities, step=st.integers(min_value=0, max_value=2 * DAY))
def test_a_flow_leaves_every_drawdown_unchanged(points, after, step):
    points = timeline(points)
    state = fold(points)
    before = drawdowns(state, CONTEXT)
    # The flow comes after a quiet spell (maybe over a reset) with equity where it was.
    ts = points[-1][0] + step
    rolled = drawdowns(mark(state, state.last_equity, ts, BERLIN), CONTEXT)
    moved = drawdowns(flow(state, state.last_equity, after, ts, BERLIN, CONTEXT), CONTEXT)
    assert rolled.total_pct == before.total_pct
    for pct_after, pct_before in zip(moved, rolled, strict=True):
        assert abs(pct_after - pct_before) < Decimal("1e-25")


# --- a reader's view of the windows ------------------------------------------------------

LIMITS = DrawdownLimits(
    max_total_drawdown_pct=D(20), max_daily_drawdown_pct=D(5), max_weekly_drawdown_pct=None
)


def test_a_view_marks_a_copy_and_names_each_window_at_or_past_its_limit():
    state = marks([("2026-03-02T10:00:00+00:00", 1000)])

    view = view_at(state, D(950), ns("2026-03-02T11:00:00+00:00"), UTC_MIDNIGHT, LIMITS, CONTEXT)

    assert view.pcts == Drawdowns(total_pct=D(5), daily_pct=D(5), weekly_pct=D(5))
    assert view.breached == (Window.DAILY,)  # 5% reaches the daily limit; weekly has none
    assert view.state.last_equity == D(950)
    assert state.last_equity == D(1000)  # the state given is left as it was


def test_a_view_moves_into_the_window_of_its_time_and_never_before_the_last_mark():
    state = marks([("2026-03-02T23:00:00+00:00", 1000)])

    next_day = view_at(
        state, D(990), ns("2026-03-03T01:00:00+00:00"), UTC_MIDNIGHT, LIMITS, CONTEXT
    )
    earlier = view_at(state, D(990), ns("2026-03-02T22:00:00+00:00"), UTC_MIDNIGHT, LIMITS, CONTEXT)

    # A new day: its peak opens at the equity the day opened with, the last mark's.
    assert next_day.state.daily_peak == D(1000)
    assert next_day.state.daily_window_start == ns("2026-03-03T00:00:00+00:00")
    assert earlier.state.last_mark_ns == ns("2026-03-02T23:00:00+00:00")
    assert earlier.pcts.daily_pct == D(1)


def test_a_view_without_equity_shows_the_state_and_keeps_the_breaches_held():
    state = marks([("2026-03-02T10:00:00+00:00", 1000), ("2026-03-02T11:00:00+00:00", 700)])

    view = view_at(
        state,
        None,
        ns("2026-03-02T12:00:00+00:00"),
        UTC_MIDNIGHT,
        LIMITS,
        CONTEXT,
        breached=("weekly",),
    )

    assert view.state == state
    assert view.pcts.total_pct == D(30)
    assert view.breached == (Window.TOTAL, Window.DAILY, Window.WEEKLY)
