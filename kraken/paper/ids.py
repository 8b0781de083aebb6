"""Kraken-style identifiers: ``OQCLML-BW3P3-BUCMWZ`` (prefix letter, then 6-5-6 characters).

Each id is drawn from a generator seeded with (seed, prefix, counter), so ids look random,
are reproducible from the counter alone (which is what persistence keeps), and collide with
probability about n² / 36**17, i.e. never in practice.
"""

from __future__ import annotations

import random

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: The position id Kraken puts on every plain spot fill.
SPOT_POSTXID = "TKH2SE-M7IF5-CFI7LT"


def kraken_id(prefix: str, counter: int, seed: int) -> str:
    """The ``counter``-th id with ``prefix`` (``O`` orders, ``T`` trades, ``L`` ledgers)."""
    if len(prefix) != 1 or not prefix.isupper():
        raise ValueError(f"prefix: one uppercase letter expected, got {prefix!r}")
    draw = random.Random(f"{seed}:{prefix}:{counter}")
    body = prefix + "".join(draw.choice(_ALPHABET) for _ in range(16))
    return f"{body[:6]}-{body[6:11]}-{body[11:]}"
