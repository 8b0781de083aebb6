"""The one time-units module: its factors and helpers, and no second copy of them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from messages.units import (
    NS_PER_DAY,
    NS_PER_MS,
    NS_PER_SECOND,
    NS_PER_US,
    ns_to_seconds,
    seconds_to_ns,
)

ROOT = Path(__file__).resolve().parents[2]
UNIT_NAME = re.compile(r"^_?(NS|NANOS)_PER_")


def test_the_factors():
    assert (NS_PER_US, NS_PER_MS, NS_PER_SECOND) == (10**3, 10**6, 10**9)
    assert NS_PER_DAY == 86_400 * 10**9


def test_seconds_to_ns_truncates_as_int_did():
    assert seconds_to_ns(1.5) == 1_500_000_000
    assert seconds_to_ns(0.1) == int(0.1 * 1e9)
    assert seconds_to_ns(-0.25) == -250_000_000
    assert seconds_to_ns(3) == 3 * NS_PER_SECOND
    assert ns_to_seconds(2_500_000_000) == 2.5


def test_no_module_defines_its_own_time_unit():
    defined = []
    for folder in ("actors", "service", "console", "kraken", "messages"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "messages" / "units.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                targets = node.targets if isinstance(node, ast.Assign) else []
                if isinstance(node, ast.AnnAssign):
                    targets = [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and UNIT_NAME.match(target.id):
                        defined.append(f"{path.relative_to(ROOT)}: {target.id}")
    assert defined == []
