"""Time units. Every timestamp of the service is integer nanoseconds since the epoch; settings
and delays are in seconds (or ms where the name says so). One place for the factors."""

from __future__ import annotations

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND


def seconds_to_ns(seconds: float) -> int:
    """`seconds` as integer ns, truncated toward zero (as `int(seconds * 1e9)`)."""
    return int(seconds * NS_PER_SECOND)


def ns_to_seconds(ns: int) -> float:
    """`ns` as (float) seconds."""
    return ns / NS_PER_SECOND
