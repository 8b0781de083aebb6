"""The layout is the architecture: who may import whom, read from every module's imports.

Units: the actors (`actors`), their pure logic (`actors.core`), the actor runtime
(`actors.runtime`), the wiring of the app (`service`), what the operator touches
(`console`), Kraken's client, paper exchange and file readers (`kraken`) and the typed
messages (`messages`). Every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("actors", "service", "console", "kraken", "messages")
SUBPACKAGES = ("actors.core", "actors.runtime")
ACTORS = frozenset(
    {
        "journal",
        "cash",
        "positions",
        "prices",
        "drawdown",
        "reconciliation",
        "portfolio",
        "risk",
        "execution",
    }
)
EXCHANGE_SIDE = frozenset({"execution", "exchange_feed", "reconciliation", "prices"})
# Clocks, threads, files, sockets, processes, randomness: what pure logic must not reach.
IMPURE = frozenset(
    {
        "kraken",
        "zmq",
        "pykka",
        "loguru",
        "requests",
        "urllib3",
        "krakenex",
        "sqlite3",
        "threading",
        "time",
        "os",
        "io",
        "socket",
        "select",
        "selectors",
        "signal",
        "subprocess",
        "multiprocessing",
        "asyncio",
        "queue",
        "random",
        "uuid",
        "logging",
        "urllib",
        "http",
        "tempfile",
        "shutil",
    }
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(*roots: str) -> dict[str, Path]:
    """Every module under the given top-level folders, by dotted name."""
    found: dict[str, Path] = {}
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def imports(name: str, path: Path) -> Iterator[str]:
    """The dotted names `path` imports (relative imports resolved), anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from actors import journal` imports the module actors.journal
            yield from (f"{base}.{alias.name}" for alias in node.names)


def unit(dotted: str) -> str | None:
    """The unit a module belongs to (None: stdlib or third party)."""
    for sub in SUBPACKAGES:
        if dotted == sub or dotted.startswith(sub + "."):
            return sub
    top = dotted.split(".")[0]
    return top if top in PACKAGES else None


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {u: set() for u in (*PACKAGES, *SUBPACKAGES)}
    for name, path in modules(*PACKAGES).items():
        here = unit(name)
        for target in imports(name, path):
            there = unit(target)
            if there is not None and there != here and _is_module(target):
                edges[here].add(there)
    return edges


def _is_module(dotted: str) -> bool:
    """True when `dotted` is a module or package of the tree (not a name inside one)."""
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def _top(dotted: str) -> str:
    return dotted.split(".")[0]


def test_no_import_cycle_between_packages():
    assert cycles(graph()) == []


def test_the_core_is_pure():
    # The core may read the messages (the wire vocabulary): messages is checked pure below.
    bad = []
    for name, path in modules("actors/core").items():
        for target in imports(name, path):
            top = _top(target)
            allowed = target.startswith("actors.core") or top in ("messages", "__future__")
            stdlib = top in sys.stdlib_module_names and top not in IMPURE
            if not (allowed or stdlib):
                bad.append(f"{name} imports {target}")
    assert bad == []


def test_the_messages_do_no_io():
    # msgpack encodes; threading only guards the registry of message types with a lock.
    bad = []
    for name, path in modules("messages").items():
        for target in imports(name, path):
            top = _top(target)
            if top == "messages" or top in ("__future__", "msgpack", "threading"):
                continue
            if top not in sys.stdlib_module_names or top in IMPURE:
                bad.append(f"{name} imports {target}")
    assert bad == []


def test_the_runtime_imports_nothing_of_the_service():
    bad = []
    for name, path in modules("actors/runtime").items():
        for target in imports(name, path):
            if unit(target) in ("actors", "service", "console", "kraken"):
                bad.append(f"{name} imports {target}")
    assert bad == []


def test_actors_import_only_the_core_runtime_messages_service_and_shared_shells():
    bad = []
    for name, path in modules("actors").items():
        if unit(name) != "actors" or name == "actors":
            continue
        leaf = name.split(".")[-1]
        for target in imports(name, path):
            there = unit(target)
            if there is None or there in ("actors.core", "actors.runtime", "messages", "service"):
                continue
            if there == "kraken" and (leaf in EXCHANGE_SIDE or target.startswith("kraken.names")):
                continue  # the exchange side talks to Kraken; every actor may name pairs
            if there == "actors":
                other = target.split(".")[1] if target.count(".") else ""
                if other and other not in ACTORS:
                    continue  # a shared shell (journal_follower, exchange_feed, translate…)
            bad.append(f"{name} imports {target}")
    assert bad == []


def test_bench_does_not_import_the_tests():
    bad = [
        f"{name} imports {target}"
        for name, path in modules("bench").items()
        for target in imports(name, path)
        if _top(target) == "tests"
    ]
    assert bad == []


def test_runner_imports_no_actor_directly():
    # runner.py parses the command line; the group is started by the runtime from the registry.
    bad = [
        target
        for target in imports("runner", ROOT / "runner.py")
        if unit(target) in ("actors", "actors.core")
    ]
    assert bad == []


def test_the_cycle_check_finds_a_cycle():
    """The check itself: the runtime ⇄ config cycle of the old tree is found, a chain is not."""
    assert cycles({"actors.runtime": {"service"}, "service": {"actors.runtime"}}) == [
        ["actors.runtime", "service"]
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
