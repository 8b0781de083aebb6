"""Drawdown: peaks of equity and how far it has fallen from them. Pure: no clock, no I/O.

Three windows, each with its own peak:

- total: the highest equity since inception;
- daily: the highest equity since the current day's window started, at `daily_reset_hour`
  in `timezone` (default UTC);
- weekly: the highest equity since the current week's window started, at that hour on
  `weekly_reset_weekday` (0 = Monday).

Which window an instant belongs to is a pure function of the instant (`window_start`), so a
gap in the marks that spans one or more resets still resets correctly. A new window's peak
starts at the equity as of the window's start (the last mark at or before it) and is the
maximum of that and every mark inside the window.

drawdown % = (peak − equity) / peak × 100, with equity the last mark: 0 at a peak, positive
below it, never negative, 0 when there is no positive peak. It exceeds 100 only when equity
is negative.

Deposits and withdrawals are flows, not performance: `flow` scales every peak by
equity_after / equity_before, so every drawdown % is the same just after a flow as just
before it. Without a positive equity before the flow (the first deposit into an empty
account) or with a negative equity after it, there is no ratio to scale by, and the peaks
restart at the equity after the flow.

Local reset times that do not exist or exist twice (daylight-saving changes) are read as
PEP 495 `fold=0` reads them, that is with the UTC offset in force before the change:
- a reset hour skipped by a spring-forward change starts the window at the instant the
  clocks jump (Europe/Berlin, reset 02:00 on the last Sunday of March: 01:00 UTC, when the
  clocks go from 02:00 CET to 03:00 CEST);
- a reset hour repeated by a fall-back change starts the window at its first occurrence
  (Europe/Berlin, reset 02:00 on the last Sunday of October: 00:00 UTC, 02:00 CEST).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from messages.errors import ServiceFieldError
from messages.units import NS_PER_SECOND, NS_PER_US

ZERO = Decimal(0)
HUNDRED = Decimal(100)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_DAY = timedelta(days=1)
_ONE_WEEK = timedelta(days=7)


class DrawdownError(ServiceFieldError, ValueError):
    """A drawdown input is wrong; `field` names it (an out-of-order `ts_ns`, a bad setting)."""


class Window(StrEnum):
    """The drawdown windows: since inception, since the daily reset, since the weekly one."""

    TOTAL = "total"
    DAILY = "daily"
    WEEKLY = "weekly"


def _zone(timezone: object) -> ZoneInfo:
    if not isinstance(timezone, str) or not timezone:
        raise DrawdownError("timezone", f"expected an IANA time zone name, got {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise DrawdownError("timezone", f"unknown time zone {timezone!r}") from error


def _check_int(field: str, value: object, low: int | None = None, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DrawdownError(field, f"expected an integer, got {type(value).__name__}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise DrawdownError(field, f"must be in {low}..{high}, got {value}")
    return value


def _reset_ns(day: date, reset_hour: int, zone: ZoneInfo) -> int:
    """The instant (ns since the epoch) of `reset_hour`:00 local time on `day`, fold=0."""
    elapsed = datetime(day.year, day.month, day.day, reset_hour, tzinfo=zone) - _EPOCH
    seconds = elapsed.days * 86_400 + elapsed.seconds
    return seconds * NS_PER_SECOND + elapsed.microseconds * NS_PER_US


def window_start(
    ts_ns: int, *, reset_hour: int, timezone: str = "UTC", weekday: int | None = None
) -> int:
    """The start (ns since the epoch) of the window that contains the instant `ts_ns`.

    Daily when `weekday` is None: the latest instant <= ts_ns at which a day reached
    `reset_hour`:00 in `timezone`. Weekly otherwise: the latest such instant on a day whose
    weekday is `weekday` (0 = Monday). An instant exactly at a reset belongs to the window
    that reset opens; 1 ns before it, to the previous one. Non-existent and repeated reset
    times are read with fold=0 (see the module docstring).
    """
    _check_int("ts_ns", ts_ns)
    _check_int("reset_hour", reset_hour, 0, 23)
    if weekday is not None:
        _check_int("weekday", weekday, 0, 6)
    zone = _zone(timezone)
    # Start from the next local day: where clocks fall back across midnight, the next day
    # can reset before a repeated late hour of this day is read again.
    day = datetime.fromtimestamp(ts_ns // NS_PER_SECOND, zone).date() + _ONE_DAY
    step = _ONE_DAY
    if weekday is not None:
        day -= timedelta(days=(day.weekday() - weekday) % 7)
        step = _ONE_WEEK
    while (start := _reset_ns(day, reset_hour, zone)) > ts_ns:
        day -= step
    return start


@dataclass(frozen=True, slots=True, kw_only=True)
class DrawdownSettings:
    """Where the daily and weekly windows start: `daily_reset_hour` (0..23) in `timezone`,
    weekly on `weekly_reset_weekday` (0 = Monday .. 6 = Sunday) at that hour."""

    daily_reset_hour: int = 0
    timezone: str = "UTC"
    weekly_reset_weekday: int = 0

    def __post_init__(self) -> None:
        _check_int("daily_reset_hour", self.daily_reset_hour, 0, 23)
        _check_int("weekly_reset_weekday", self.weekly_reset_weekday, 0, 6)
        _zone(self.timezone)

    def daily_window_start(self, ts_ns: int) -> int:
        """The start of the daily window that contains `ts_ns`."""
        return window_start(ts_ns, reset_hour=self.daily_reset_hour, timezone=self.timezone)

    def weekly_window_start(self, ts_ns: int) -> int:
        """The start of the weekly window that contains `ts_ns`."""
        return window_start(
            ts_ns,
            reset_hour=self.daily_reset_hour,
            timezone=self.timezone,
            weekday=self.weekly_reset_weekday,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DrawdownState:
    """Peaks and windows as of the last mark (all None before the first mark).

    `peak_equity` is the highest equity since inception, `daily_peak` / `weekly_peak` the
    highest since `daily_window_start` / `weekly_window_start` (ns), all scaled by flows.
    `last_equity` is the equity of the last mark or flow, at `last_mark_ns`. Persist it as is:
    a restart that reloads it never resets a drawdown.
    """

    peak_equity: Decimal | None = None
    daily_peak: Decimal | None = None
    weekly_peak: Decimal | None = None
    daily_window_start: int | None = None
    weekly_window_start: int | None = None
    last_equity: Decimal | None = None
    last_mark_ns: int | None = None


class Drawdowns(NamedTuple):
    """Drawdown % per window: (peak − equity) / peak × 100, >= 0."""

    total_pct: Decimal
    daily_pct: Decimal
    weekly_pct: Decimal

    def of(self, window: Window) -> Decimal:
        """The drawdown % of `window`."""
        return {
            Window.TOTAL: self.total_pct,
            Window.DAILY: self.daily_pct,
            Window.WEEKLY: self.weekly_pct,
        }[window]


def _check_equity(field: str, value: object) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise DrawdownError(field, f"expected a finite Decimal, got {value!r}")
    return value


def _check_time(state: DrawdownState, ts_ns: object) -> int:
    ts = _check_int("ts_ns", ts_ns)
    if state.last_mark_ns is not None and ts < state.last_mark_ns:
        raise DrawdownError("ts_ns", f"{ts} is earlier than the last mark at {state.last_mark_ns}")
    return ts


def _window_peak(
    peak: Decimal | None,
    window: int | None,
    current_window: int,
    opening_equity: Decimal | None,
    equity: Decimal,
) -> Decimal:
    if window == current_window and peak is not None:
        return max(peak, equity)
    # A new window opens at the equity of the last mark before it, which the gap (if any)
    # did not change.
    return equity if opening_equity is None else max(opening_equity, equity)


def mark(
    state: DrawdownState, equity: Decimal, ts_ns: int, settings: DrawdownSettings
) -> DrawdownState:
    """The state after equity was `equity` at `ts_ns` (marked to market).

    Moves into the windows that contain `ts_ns` (however many resets passed since the last
    mark) and raises each peak to `equity` when it is higher. A mark earlier than the last
    one is refused (DrawdownError naming ts_ns). Marking the last equity again at a later
    time only moves the windows: use it to roll a window at its reset when nothing moved.
    """
    equity = _check_equity("equity", equity)
    ts = _check_time(state, ts_ns)
    daily_start = settings.daily_window_start(ts)
    weekly_start = settings.weekly_window_start(ts)
    return DrawdownState(
        peak_equity=equity if state.peak_equity is None else max(state.peak_equity, equity),
        daily_peak=_window_peak(
            state.daily_peak, state.daily_window_start, daily_start, state.last_equity, equity
        ),
        weekly_peak=_window_peak(
            state.weekly_peak, state.weekly_window_start, weekly_start, state.last_equity, equity
        ),
        daily_window_start=daily_start,
        weekly_window_start=weekly_start,
        last_equity=equity,
        last_mark_ns=ts,
    )


def flow(
    state: DrawdownState,
    equity_before: Decimal,
    equity_after: Decimal,
    ts_ns: int,
    settings: DrawdownSettings,
    context: decimal.Context,
) -> DrawdownState:
    """The state after a deposit or withdrawal at `ts_ns` took equity from before to after.

    `equity_before` is first marked (it is the performance up to the flow), then every peak
    is scaled: peak' = peak × equity_after / equity_before, so each drawdown % is unchanged
    by the flow. With equity_before <= 0 or equity_after < 0 there is no ratio: every peak
    restarts at equity_after (a first deposit into an empty account sets the peaks).
    """
    before = _check_equity("equity_before", equity_before)
    after = _check_equity("equity_after", equity_after)
    marked = mark(state, before, ts_ns, settings)
    assert marked.peak_equity is not None
    assert marked.daily_peak is not None and marked.weekly_peak is not None
    if before <= ZERO or after < ZERO:
        return replace(
            marked, peak_equity=after, daily_peak=after, weekly_peak=after, last_equity=after
        )

    def scaled(peak: Decimal) -> Decimal:
        return context.divide(context.multiply(peak, after), before)

    return replace(
        marked,
        peak_equity=scaled(marked.peak_equity),
        daily_peak=scaled(marked.daily_peak),
        weekly_peak=scaled(marked.weekly_peak),
        last_equity=after,
    )


def drawdown_pct(peak: Decimal | None, equity: Decimal | None, context: decimal.Context) -> Decimal:
    """(peak − equity) / peak × 100, floored at 0; 0 without a positive peak or an equity."""
    if peak is None or equity is None or peak <= ZERO:
        return ZERO
    pct = context.divide(context.multiply(context.subtract(peak, equity), HUNDRED), peak)
    return max(pct, ZERO)


def drawdowns(state: DrawdownState, context: decimal.Context) -> Drawdowns:
    """Total, daily and weekly drawdown % of the last equity against each window's peak."""
    equity = state.last_equity
    return Drawdowns(
        total_pct=drawdown_pct(state.peak_equity, equity, context),
        daily_pct=drawdown_pct(state.daily_peak, equity, context),
        weekly_pct=drawdown_pct(state.weekly_peak, equity, context),
    )


# --- limits ------------------------------------------------------------------------------


def _check_limit(field: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite() or value <= ZERO:
        raise DrawdownError(field, f"expected a Decimal percentage > 0 or None, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DrawdownLimits:
    """The largest drawdown % allowed per window; None: no limit on that window."""

    max_total_drawdown_pct: Decimal | None = None
    max_daily_drawdown_pct: Decimal | None = None
    max_weekly_drawdown_pct: Decimal | None = None

    def __post_init__(self) -> None:
        _check_limit("max_total_drawdown_pct", self.max_total_drawdown_pct)
        _check_limit("max_daily_drawdown_pct", self.max_daily_drawdown_pct)
        _check_limit("max_weekly_drawdown_pct", self.max_weekly_drawdown_pct)

    def of(self, window: Window) -> Decimal | None:
        """The limit of `window`."""
        return {
            Window.TOTAL: self.max_total_drawdown_pct,
            Window.DAILY: self.max_daily_drawdown_pct,
            Window.WEEKLY: self.max_weekly_drawdown_pct,
        }[window]


@dataclass(frozen=True, slots=True)
class WindowsView:
    """The drawdown of one equity in every window, as a reader shows it: the state marked with
    that equity, each window's %, and the windows at or past their limit."""

    state: DrawdownState
    pcts: Drawdowns
    breached: tuple[Window, ...]


def view_at(
    state: DrawdownState,
    equity: Decimal | None,
    at_ns: int,
    settings: DrawdownSettings,
    limits: DrawdownLimits,
    context: decimal.Context,
    *,
    breached: Iterable[str] = (),
) -> WindowsView:
    """Each window's drawdown of `equity` at `at_ns` from the peaks of `state`: a mark on a
    copy (it moves into the windows that contain `at_ns`, never before the last mark, and
    raises a peak the equity passed). `breached` names windows already held breached (the
    tracker's); a window whose % reaches its limit is added. Without an equity the state is
    shown as it is."""
    if equity is not None:
        state = mark(state, equity, max(at_ns, state.last_mark_ns or 0), settings)
    pcts = drawdowns(state, context)
    held = set(breached)
    for window in Window:
        limit = limits.of(window)
        if limit is not None and pcts.of(window) >= limit:
            held.add(window.value)
    return WindowsView(state, pcts, tuple(w for w in Window if w.value in held))


@dataclass(frozen=True, slots=True)
class Breached:
    """A window's drawdown reached its limit: pct >= limit (once per crossing)."""

    window: Window
    pct: Decimal
    limit: Decimal


@dataclass(frozen=True, slots=True)
class Recovered:
    """A breached window is back under its limit: pct < limit (None: the limit was removed)."""

    window: Window
    pct: Decimal
    limit: Decimal | None


@dataclass(frozen=True, slots=True)
class BreachTracker:
    """Which windows are in breach of their limits; `observe` reports crossings only.

    A window breaches when its drawdown % reaches its limit (pct >= limit) and recovers when
    it is back under (pct < limit). Each crossing is reported once: a window that stays in
    breach reports nothing more until it recovers. Persist `breached` with the drawdown state
    so a restart neither repeats a breach nor forgets one.
    """

    limits: DrawdownLimits
    breached: frozenset[Window] = frozenset()

    def observe(self, current: Drawdowns) -> tuple[BreachTracker, tuple[Breached | Recovered, ...]]:
        """The tracker after seeing `current`, and the crossings it made (total, daily, weekly)."""
        events: list[Breached | Recovered] = []
        breached = set(self.breached)
        for window in Window:
            pct = current.of(window)
            limit = self.limits.of(window)
            in_breach = limit is not None and pct >= limit
            if in_breach and window not in breached:
                assert limit is not None
                breached.add(window)
                events.append(Breached(window, pct, limit))
            elif not in_breach and window in breached:
                breached.discard(window)
                events.append(Recovered(window, pct, limit))
        if not events:
            return self, ()
        return BreachTracker(self.limits, frozenset(breached)), tuple(events)
