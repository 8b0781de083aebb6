"""The supervisor's restart backoff, on a test clock: it doubles over quick crashes and starts
over after a stable run."""

from __future__ import annotations

from actors.runtime.supervisor import RestartBackoff
from service.config import SupervisorSettings

SETTINGS = SupervisorSettings(
    restart_backoff_initial_seconds=0.5,
    restart_backoff_max_seconds=10.0,
    restart_backoff_reset_seconds=60.0,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_then_crash(backoff: RestartBackoff, clock: Clock, seconds: float) -> float:
    backoff.started()
    clock.now += seconds
    return backoff.crashed()


def test_quick_crashes_double_the_delay_up_to_the_cap():
    clock = Clock()
    backoff = RestartBackoff(SETTINGS, clock)
    delays = [run_then_crash(backoff, clock, 1.0) for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert backoff.ran_seconds == 1.0


def test_a_stable_run_starts_the_delay_over():
    clock = Clock()
    backoff = RestartBackoff(SETTINGS, clock)
    quick = [run_then_crash(backoff, clock, 2.0) for _ in range(4)]
    assert quick == [0.5, 1.0, 2.0, 4.0]
    assert run_then_crash(backoff, clock, 208.0) == 0.5  # up 208 s: not 8 s but the first delay
    assert run_then_crash(backoff, clock, 1.0) == 1.0  # and doubling again from there
    assert run_then_crash(backoff, clock, 60.0) == 0.5  # exactly the reset time is stable


def test_a_run_just_short_of_the_reset_time_keeps_doubling():
    clock = Clock()
    backoff = RestartBackoff(SETTINGS, clock)
    assert run_then_crash(backoff, clock, 59.9) == 0.5
    assert run_then_crash(backoff, clock, 59.9) == 1.0
    assert run_then_crash(backoff, clock, 59.9) == 2.0


def test_the_time_before_the_first_start_does_not_count():
    clock = Clock()
    backoff = RestartBackoff(SETTINGS, clock)
    run_then_crash(backoff, clock, 1.0)
    clock.now += 500.0  # waiting to be restarted is not running
    assert run_then_crash(backoff, clock, 1.0) == 1.0
