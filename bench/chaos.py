"""Chaos soak: the real group on the paper exchange, killed and faulted at seeded random times.

    python bench/chaos.py --minutes N [--seed S] [--out DIR]

Start: a temporary folder holds the config (config.yaml as shipped, with demo orders every
0.3 s, reconciliation every 5 s with `auto_update: true`, metrics on a free port, the paper
exchange on a port chosen now and kept) and the run directory. The paper exchange is started
alone once first, so that its credentials are in its state file and this harness can read
the account through `KrakenClient` later; then `python runner.py --no-view` starts the group.

Soak, for N minutes:
- kills: SIGKILL to one of the group's processes (journal, positions, books, market, risk,
  feed, reconcile), the paper exchange or runner.py itself, drawn with the seed. After each
  kill the harness polls every process's control endpoint (the reading `runner.py status`
  makes) and the exchange until all are back and ready: that is the kill's recovery time.
  Then it pauses 2-8 s (seeded) and kills again.
  When runner.py is killed, its children are expected to end on their own (they asked Linux
  for a SIGTERM when their parent dies); those still alive after the group's stop deadline
  + 5 s are killed here and reported as leftovers. Then runner.py is started again on the
  same config and run directory, and the recovery runs until its group is ready.
  A runner.py that exits on its own (a process crashing too often, a start-up failure) is
  reported, its leftovers are cleared the same way, and it is started again.
- faults: every 5-15 s (seeded) one fault through the paper exchange's admin API for 2-6 s:
  a share of requests answered `unavailable`, `rate_limit`, `internal`, `http_502`, `drop`,
  or delayed (`latency`), or Kraken's REST call counter at the `starter` tier.

Settle, then compare: faults cleared, the last kill recovered, the group stopped with SIGTERM
(a clean stop: every process must end, none left behind). The group is started once more
on the same run directory with the demo orders off, open orders are cancelled, so the account
no longer moves; the harness waits (with a deadline) until every trade at the exchange is in
the journal, the books show the journal's head, and reconciliation has completed
`confirm_runs + 1` runs since (so a difference it would confirm and adjust has been). Then,
to the digit:
- fills at the exchange (TradesHistory) and fills journaled (`ExecutionReport`s with a
  quantity, read from run/journal.sqlite and decoded with the codec);
- lost: trades at the exchange whose txid is not journaled;
- doubled: a txid journaled twice, a journaled fill no exchange trade has, or a pair whose
  journaled net quantity differs from the exchange's;
- adjustments: `BalanceAdjusted` events in the journal (each with its reason and the last
  kill before it);
- books vs exchange: the journal folded with the pure ledgers (actors/core/accounting.py)
  against the exchange's balances, per asset; and the running group's own state against
  that fold.
Exit 0 when 0 lost, 0 doubled, 0 adjustments, 0 discrepancies and every kill recovered
within 15 s; 1 otherwise. The run directory is kept (logs under run/logs) and printed;
summary.json goes to --out (default: that temporary folder).

Every wait has a deadline, and whatever happens the harness ends every process it can find
with its temporary folder in the command line or the environment.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.core.accounting import BooksLedger  # noqa: E402
from console.monitor import GroupMonitor, GroupSnapshot  # noqa: E402
from kraken.client import KrakenClient  # noqa: E402
from kraken.credentials import Credentials  # noqa: E402
from kraken.errors import KrakenError  # noqa: E402
from kraken.names import KrakenNames  # noqa: E402
from kraken.nonce import NonceSource  # noqa: E402
from messages import BalanceAdjusted, ExecutionReport  # noqa: E402
from messages.codec import decode  # noqa: E402
from service.config import ServiceConfig, decimal_context, load_config  # noqa: E402
from service.group import read_ready_line  # noqa: E402

RUNNER = ROOT / "runner.py"

RECOVERY_TARGET_SECONDS = 15.0
"""Every process must be back and ready within this of each kill."""

RECOVERY_DEADLINE_SECONDS = 90.0
"""A kill not recovered by then is recorded as not recovered, and the soak goes on."""

READY_DEADLINE_SECONDS = 90.0
"""runner.py must print its ready line within this (seven processes on a busy machine)."""

SETTLE_DEADLINE_SECONDS = 180.0
"""The settle phase must see every trade journaled and reconciliation run by then."""

KILL_PAUSE_SECONDS = (2.0, 8.0)
FAULT_PAUSE_SECONDS = (5.0, 15.0)
FAULT_SECONDS = (2.0, 6.0)
FAULT_KINDS = ("unavailable", "rate_limit", "internal", "http_502", "latency", "drop", "tier")
"""The admin API's fault kinds, and `tier`: Kraken's call counter at the starter tier."""

POLL_SECONDS = 0.25
"""Between two looks at the group while a kill recovers (bounded by the deadlines above)."""


class ChaosError(RuntimeError):
    """The soak cannot go on (the group does not start, the exchange cannot be read)."""


# -- the processes ---------------------------------------------------------------------------


def group_processes(marker: str) -> dict[int, list[str]]:
    """Live processes (pid → argv) with `marker` in their command line or environment."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            try:
                environ = (entry / "environ").read_bytes().decode(errors="replace")
            except OSError:
                environ = ""
        except OSError:
            continue
        if state != "Z" and (marker in " ".join(argv) or marker in environ):
            found[int(entry.name)] = [a for a in argv if a]
    return found


def process_name(argv: list[str]) -> str:
    """'journal' for `runner.py ... host journal ...`, 'paper-exchange', 'runner', or argv."""
    if "host" in argv and argv.index("host") + 1 < len(argv):
        return argv[argv.index("host") + 1]
    if "paper-exchange" in argv:
        return "paper-exchange"
    if any(a.endswith("runner.py") for a in argv):
        return "runner"
    return " ".join(argv)[:80]


def wait_gone(marker: str, timeout: float) -> tuple[float, dict[int, list[str]]]:
    """Wait until no process carries `marker`; (seconds waited, the ones still alive)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        left = group_processes(marker)
        if not left:
            return time.monotonic() - started, {}
        time.sleep(0.1)  # poll interval of a loop bounded by `timeout`
    return time.monotonic() - started, group_processes(marker)


def proc_status(pid: int) -> str:
    """What Linux says of a process: state, parent, pending and caught signals, threads."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "gone"
    keep = ("State", "PPid", "Threads", "SigPnd", "ShdPnd", "SigCgt")
    return ", ".join(" ".join(line.split()) for line in lines if line.split(":")[0] in keep)


def last_log_line(run_dir: Path, name: str) -> str:
    try:
        lines = (run_dir / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
    except OSError:
        return "none"
    return lines[-1][:200] if lines else "none"


def kill_all(pids: dict[int, list[str]]) -> None:
    """SIGKILL every pid given (those already gone are skipped)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Runner:
    """`runner.py --no-view` as a subprocess: started, killed, stopped; stderr to one file."""

    def __init__(self, config_path: Path, stderr_path: Path) -> None:
        self.config_path = config_path
        self.stderr_path = stderr_path
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> float:
        """Start it and wait for its ready line; the seconds that took. ChaosError if none."""
        started = time.monotonic()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()  # the previous runner.py's, ended by now
        with self.stderr_path.open("a") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(RUNNER), "--config", str(self.config_path), "--no-view"],
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                text=True,
            )
        self.starts += 1
        if read_ready_line(self.process, READY_DEADLINE_SECONDS) is not None:
            return time.monotonic() - started
        code = self.stop(timeout=10)
        raise ChaosError(f"runner.py did not say ready (exit {code}): {self.last_error()}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exited(self) -> int | None:
        """Its exit code once it has ended, else None."""
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self, timeout: float) -> int | None:
        """SIGTERM and wait; SIGKILL past `timeout`. Its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def last_error(self) -> str:
        """The last `error:` line it wrote on stderr, or its last line."""
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [line for line in lines if line.startswith("error:")]
        return (errors or lines or [""])[-1][:300]


# -- the exchange ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def admin(url: str, path: str, body: dict[str, Any] | None = None, timeout: float = 2.0) -> dict:
    """One admin request (POST with `body`, else GET); its JSON answer. OSError if it fails."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


def exchange_up(url: str) -> bool:
    try:
        return bool(admin(url, "/admin/state", timeout=1.0))
    except (OSError, ValueError):
        return False


def paper_credentials(config_path: Path, port: int) -> Credentials:
    """Start the paper exchange alone once (it saves its key in its state file, which the
    group's exchange then reuses); its key and secret."""
    argv = [sys.executable, str(RUNNER), "--config", str(config_path), "paper-exchange"]
    process = subprocess.Popen(
        [*argv, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        text=True,
    )
    try:
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=READY_DEADLINE_SECONDS)
        selector.close()
        line = json.loads(process.stdout.readline() or "{}") if ready else {}
        if "key" not in line:
            raise ChaosError(f"the paper exchange did not start: {line}")
        return Credentials(key=line["key"], secret=line["secret"])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()


# -- the records -----------------------------------------------------------------------------


@dataclass
class Kill:
    """One SIGKILL and how the group came back."""

    number: int
    target: str
    pid: int | None
    at_s: float
    at_ns: int
    recovered_s: float | None = None
    children_gone_s: float | None = None
    runner_ready_s: float | None = None
    leftovers: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Fault:
    """One fault injected through the admin API."""

    at_s: float
    kind: str
    rate: float
    seconds: float
    latency_ms: int | None = None
    error: str = ""


# -- the soak --------------------------------------------------------------------------------


def is_ready(snapshot: GroupSnapshot, config: ServiceConfig) -> bool:
    """Every process answered its health, ready, with all its actors."""
    for process, health in snapshot.processes.items():
        actors = health.get("actors") or ()
        if "error" in health or not health.get("ready"):
            return False
        if len(actors) != len(config.processes[process].actors):
            return False
    return True


class Soak:
    """The whole run: prepare, soak, settle, compare. `run()` returns the summary."""

    def __init__(self, minutes: float, seed: int, folder: Path) -> None:
        self.minutes = minutes
        self.seed = seed
        self.folder = folder
        self.marker = str(folder)
        self.kill_rng = random.Random(f"chaos-kills-{seed}")
        self.fault_rng = random.Random(f"chaos-faults-{seed}")
        self.port = free_port()
        self.exchange = f"http://127.0.0.1:{self.port}"
        self.config_path = folder / "config.yaml"
        self.write_config(demo_orders=True)
        self.config = load_config(self.config_path)
        self.runner = Runner(self.config_path, folder / "runner.stderr")
        self.monitor: GroupMonitor | None = None
        self.started = time.monotonic()
        self.kills: list[Kill] = []
        self.faults: list[Fault] = []
        self.findings: list[str] = []
        self.runner_exits = 0
        self.credentials: Credentials | None = None
        self.first_ready_s: float | None = None

    def write_config(self, *, demo_orders: bool) -> None:
        """config.yaml as shipped, with the soak's settings."""
        config = yaml.safe_load((ROOT / "config.yaml").read_text())
        config["service"]["run_dir"] = str(self.folder / "run")
        config["view"]["enabled"] = False
        config["metrics"]["port"] = 0
        config["exchange"]["mode"] = "paper"
        config["exchange"]["paper"]["port"] = self.port
        config["exchange"]["paper"]["seed"] = self.seed
        config["execution"].update(
            order_interval_seconds=0.3, demo_orders=demo_orders, seed=self.seed
        )
        config["reconciliation"].update(interval_seconds=5, auto_update=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def look(self) -> GroupSnapshot:
        if self.monitor is None:
            self.monitor = GroupMonitor(self.config, timeout_ms=500)
        return self.monitor.poll()

    def all_back(self) -> bool:
        """runner.py alive, the exchange answering, every process ready."""
        if self.runner.exited() is not None or not exchange_up(self.exchange):
            return False
        return is_ready(self.look(), self.config)

    def wait_back(self, since: float, deadline: float) -> float | None:
        """Seconds from `since` until all_back(), or None past `deadline` seconds."""
        while time.monotonic() - since < deadline:
            if self.all_back():
                return time.monotonic() - since
            if self.runner.exited() is not None:
                return None
            time.sleep(POLL_SECONDS)  # poll interval of a loop bounded by `deadline`
        return None

    def clear_leftovers(self, what: str) -> tuple[float, list[str]]:
        """After runner.py ended: wait for its children to end; kill and report the rest."""
        grace = self.config.supervisor.stop_timeout_seconds + 5
        waited, left = wait_gone(self.marker, grace)
        names = sorted(process_name(argv) for argv in left.values())
        if left:
            details = "; ".join(
                f"{process_name(argv)} (pid {pid}: {proc_status(pid)}; its last log line: "
                f"{last_log_line(self.config.run_dir, process_name(argv))})"
                for pid, argv in left.items()
            )
            self.findings.append(
                f"{what}: still running {grace:g} s later (killed here): {details}"
            )
            kill_all(left)
            _, still = wait_gone(self.marker, 10)
            kill_all(still)
        return waited, names

    # -- kills -------------------------------------------------------------------------------

    def pid_of(self, target: str) -> int | None:
        if target == "runner":
            return self.runner.pid
        for pid, argv in group_processes(self.marker).items():
            if process_name(argv) == target:
                return pid
        return None

    def kill_one(self) -> Kill:
        targets = [*self.config.processes, "paper-exchange", "runner"]
        target = self.kill_rng.choice(targets)
        pid = self.pid_of(target)
        kill = Kill(len(self.kills) + 1, target, pid, round(self.elapsed(), 2), time.time_ns())
        self.kills.append(kill)
        since = time.monotonic()
        if pid is None:
            kill.note = "no such process at the time"
        elif target == "runner":
            self.runner.kill()
            kill.children_gone_s, kill.leftovers = self.clear_leftovers(
                f"kill #{kill.number} (runner.py)"
            )
            kill.children_gone_s = round(kill.children_gone_s, 2)
            kill.runner_ready_s = round(self.restart_runner(), 2)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                kill.note = "already gone"
        recovered = self.wait_back(since, RECOVERY_DEADLINE_SECONDS)
        kill.recovered_s = None if recovered is None else round(recovered, 2)
        print(
            f"  {kill.at_s:7.1f} s  kill #{kill.number:<3} {target:<15} "
            + (f"back in {recovered:5.1f} s" if recovered is not None else "NOT BACK")
            + (f"  leftovers: {', '.join(kill.leftovers)}" if kill.leftovers else "")
            + (f"  ({kill.note})" if kill.note else ""),
            flush=True,
        )
        if recovered is None:
            self.findings.append(
                f"kill #{kill.number} ({target}): not back within {RECOVERY_DEADLINE_SECONDS:g} s"
            )
        return kill

    def restart_runner(self) -> float:
        """Start runner.py again; the seconds until its ready line."""
        try:
            return self.runner.start()
        except ChaosError as exc:
            # One more try, after clearing whatever the failed start left.
            self.findings.append(f"restarting runner.py failed once: {exc}")
            self.clear_leftovers("a failed restart of runner.py")
            return self.runner.start()

    def check_runner(self) -> None:
        """A runner.py that ended by itself: report it, clear its leftovers, start it again."""
        code = self.runner.exited()
        if code is None:
            return
        self.runner_exits += 1
        error = self.runner.last_error()
        self.findings.append(
            f"runner.py exited by itself at {self.elapsed():.0f} s (exit {code}): {error}"
        )
        print(
            f"  {self.elapsed():7.1f} s  runner.py exited by itself ({code}): {error}", flush=True
        )
        self.clear_leftovers("runner.py's own exit")
        self.restart_runner()

    # -- faults ------------------------------------------------------------------------------

    def inject_fault(self) -> float | None:
        """Inject one fault; the monotonic time a `tier` fault must be undone, else None."""
        rng = self.fault_rng
        kind = rng.choice(FAULT_KINDS)
        seconds = round(rng.uniform(*FAULT_SECONDS), 1)
        rate = round(rng.uniform(0.3, 1.0), 2)
        fault = Fault(round(self.elapsed(), 2), kind, rate, seconds)
        if kind == "latency":
            fault.latency_ms = rng.randint(200, 3000)
        self.faults.append(fault)
        try:
            if kind == "tier":
                admin(self.exchange, "/admin/rate_limit", {"tier": "starter"})
                return time.monotonic() + seconds
            body: dict[str, Any] = {"kind": kind, "rate": rate, "seconds": seconds}
            if fault.latency_ms is not None:
                body["latency_ms"] = fault.latency_ms
            admin(self.exchange, "/admin/fault", body)
        except (OSError, ValueError) as exc:
            fault.error = f"not injected: {exc}"
        return None

    def clear_faults(self) -> None:
        """End every fault (the exchange may be restarting: retried within a deadline)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                admin(self.exchange, "/admin/fault/clear", {})
                admin(self.exchange, "/admin/rate_limit", {"tier": "off"})
                return
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise ChaosError("cannot clear the exchange's faults") from None
                time.sleep(0.5)  # poll interval of a loop bounded by `deadline`

    # -- the phases --------------------------------------------------------------------------

    def soak(self) -> None:
        end = self.started + self.minutes * 60
        next_kill = time.monotonic() + self.kill_rng.uniform(*KILL_PAUSE_SECONDS)
        next_fault = time.monotonic() + self.fault_rng.uniform(*FAULT_PAUSE_SECONDS)
        undo_tier: float | None = None
        while time.monotonic() < end:
            self.check_runner()
            now = time.monotonic()
            if undo_tier is not None and now >= undo_tier:
                try:
                    admin(self.exchange, "/admin/rate_limit", {"tier": "off"})
                    undo_tier = None
                except (OSError, ValueError):
                    undo_tier = now + 1  # the exchange is restarting: its counter is off then
            if now >= next_fault:
                undo_tier = self.inject_fault() or undo_tier
                next_fault = now + self.fault_rng.uniform(*FAULT_PAUSE_SECONDS)
            if now >= next_kill:
                self.kill_one()
                next_kill = time.monotonic() + self.kill_rng.uniform(*KILL_PAUSE_SECONDS)
            time.sleep(POLL_SECONDS)  # the loop ends at `end`

    def stop_group(self, what: str) -> dict[str, Any]:
        """SIGTERM runner.py; a clean stop ends every process within the stop deadline."""
        started = time.monotonic()
        code = self.runner.stop(timeout=self.config.supervisor.stop_timeout_seconds + 10)
        seconds = time.monotonic() - started
        _, leftovers = self.clear_leftovers(what)
        if code != 0:
            self.findings.append(f"{what}: runner.py exited {code}: {self.runner.last_error()}")
        return {"exit_code": code, "seconds": round(seconds, 2), "leftovers": leftovers}

    def client(self) -> KrakenClient:
        assert self.credentials is not None
        nonce = NonceSource(self.credentials.key, self.config.run_dir / "state")
        return KrakenClient(
            self.exchange,
            self.credentials,
            timeout_seconds=10,
            names=KrakenNames.bundled(),
            nonce=nonce,
        )

    def settle(self) -> dict[str, Any]:
        """The quiet group: demo orders off, no open order; wait for the journal and
        reconciliation to catch up; what the exchange and the group then say."""
        self.write_config(demo_orders=False)
        ready_s = self.runner.start()
        with self.client() as client:
            client.cancel_all()
            quiet_ns = time.time_ns()
            deadline = time.monotonic() + SETTLE_DEADLINE_SECONDS
            runs: set[int] = set()
            wanted = self.config.reconciliation.confirm_runs + 1
            waiting = "nothing"
            trades: tuple = ()
            while time.monotonic() < deadline:
                trades = client.trades_history()
                journaled = {e.exec_id for _, _, e in read_journal(self.config) if is_fill(e)}
                snapshot = self.look()
                state = snapshot.state
                status = state.reconciliation if state is not None else None
                if status is not None and (status.last_success_ns or 0) > quiet_ns:
                    runs.add(status.last_success_ns)
                missing = [t.txid for t in trades if t.txid not in journaled]
                head = journal_head(self.config)
                if missing:
                    waiting = f"{len(missing)} trades not journaled"
                elif state is None or state.seq != head:
                    waiting = f"the books at seq {state and state.seq}, the journal at {head}"
                elif len(runs) < wanted:
                    waiting = f"{len(runs)} of {wanted} reconciliation runs"
                else:
                    waiting = ""
                    break
                time.sleep(1.0)  # poll interval of a loop bounded by `deadline`
            if waiting:
                self.findings.append(
                    f"settle: not settled within {SETTLE_DEADLINE_SECONDS:g} s: {waiting}"
                )
            balances: dict[str, Decimal] = collections.defaultdict(Decimal)
            for line in client.balance():
                if not line.is_variant:
                    balances[line.asset] += line.balance
        return {
            "ready_s": round(ready_s, 2),
            "settled": not waiting,
            "trades": trades,
            "balances": dict(balances),
            "state": state,
            "reconciliation": status,
        }

    def run(self) -> dict[str, Any]:
        print(f"chaos soak: {self.minutes:g} min, seed {self.seed}, folder {self.folder}")
        self.credentials = paper_credentials(self.config_path, self.port)
        first_ready = self.first_ready_s = self.runner.start()
        if self.wait_back(time.monotonic(), RECOVERY_DEADLINE_SECONDS) is None:
            raise ChaosError("the group did not become ready after its start")
        print(f"  group ready in {first_ready:.1f} s; soaking", flush=True)
        self.soak()
        self.check_runner()
        self.clear_faults()
        if not self.all_back() and self.wait_back(time.monotonic(), 60) is None:
            self.findings.append("the group was not back before the clean stop")
        clean_stop = self.stop_group("the clean stop after the soak")
        print(f"  clean stop in {clean_stop['seconds']:.1f} s; settling", flush=True)
        settled = self.settle()
        final_stop = self.stop_group("the clean stop after settling")
        return self.compare(settled, clean_stop, final_stop)

    def close(self) -> None:
        """Leave nothing behind: the runner, then anything with the folder in it."""
        if self.monitor is not None:
            self.monitor.close()
        self.runner.stop(timeout=20)
        _, left = wait_gone(self.marker, 15)
        kill_all(left)
        _, left = wait_gone(self.marker, 10)
        if left:
            print(f"warning: could not end {sorted(left)}", file=sys.stderr)

    # -- the comparison ----------------------------------------------------------------------

    def compare(
        self, settled: dict[str, Any], clean_stop: dict, final_stop: dict
    ) -> dict[str, Any]:
        config = self.config
        events = read_journal(config)
        fills = [(seq, ts, e) for seq, ts, e in events if is_fill(e)]
        trades = {t.txid: t for t in settled["trades"]}
        journaled = collections.Counter(e.exec_id for _, _, e in fills)
        lost = sorted(set(trades) - set(journaled))
        twice = sorted(txid for txid, n in journaled.items() if n > 1)
        unknown = sorted(set(journaled) - set(trades))
        net_exchange: dict[str, Decimal] = collections.defaultdict(Decimal)
        for t in trades.values():
            net_exchange[t.symbol] += t.volume if t.side == "buy" else -t.volume
        net_journal: dict[str, Decimal] = collections.defaultdict(Decimal)
        for _, _, e in fills:
            net_journal[e.pair] += e.last_qty if e.side.value == "buy" else -e.last_qty
        pairs_differ = sorted(
            p for p in set(net_exchange) | set(net_journal) if net_exchange[p] != net_journal[p]
        )
        adjustments = [
            {
                "seq": seq,
                "asset": e.asset,
                "before": str(e.before),
                "after": str(e.after),
                "reason": e.reason,
                "last_kill_before": last_kill_before(self.kills, ts),
            }
            for seq, ts, e in events
            if isinstance(e, BalanceAdjusted)
        ]
        books = fold(config, events)
        exchange = settled["balances"]
        assets = sorted(a for a in set(books) | set(exchange) if books.get(a) or exchange.get(a))
        per_asset = {
            a: {
                "exchange": str(exchange.get(a, Decimal(0))),
                "books": str(books.get(a, Decimal(0))),
                "agree": exchange.get(a, Decimal(0)) == books.get(a, Decimal(0)),
            }
            for a in assets
        }
        discrepancies = sorted(a for a, row in per_asset.items() if not row["agree"])
        state = settled["state"]
        group_vs_fold = group_differences(state, books, config)
        status = settled["reconciliation"]
        recoveries = [k.recovered_s for k in self.kills]
        longest = max((r for r in recoveries if r is not None), default=None)
        slow = [
            f"#{k.number} {k.target} {k.recovered_s if k.recovered_s is not None else 'never'}"
            for k in self.kills
            if k.recovered_s is None or k.recovered_s > RECOVERY_TARGET_SECONDS
        ]
        leftovers = (
            [name for k in self.kills for name in k.leftovers]
            + clean_stop["leftovers"]
            + final_stop["leftovers"]
        )
        targets = {
            "lost": not lost,
            "doubled": not (twice or unknown or pairs_differ),
            "adjustments": not adjustments,
            "discrepancies": not discrepancies and not group_vs_fold,
            "recovery": not slow,
        }
        return {
            "seed": self.seed,
            "minutes": self.minutes,
            "folder": str(self.folder),
            "kills": [asdict(k) for k in self.kills],
            "kills_by_target": dict(collections.Counter(k.target for k in self.kills)),
            "faults": [asdict(f) for f in self.faults],
            "longest_recovery_s": longest,
            "recoveries_over_target": slow,
            "runner_kills": sum(k.target == "runner" for k in self.kills),
            "runner_exits_by_itself": self.runner_exits,
            "children_gone_after_runner_kill_s": [
                k.children_gone_s for k in self.kills if k.target == "runner"
            ],
            "leftover_processes": leftovers,
            "clean_stop": clean_stop,
            "final_stop": final_stop,
            "first_ready_s": round(self.first_ready_s or 0, 2),
            "settle_ready_s": settled["ready_s"],
            "settled": settled["settled"],
            "fills_at_exchange": len(trades),
            "fills_journaled": len(fills),
            "lost": lost,
            "doubled": twice,
            "journaled_fills_unknown_at_exchange": unknown,
            "pairs_whose_net_quantity_differs": pairs_differ,
            "adjustments": adjustments,
            "reconciliation_recovered_fills": status.recovered_fills if status else None,
            "reconciliation_open_discrepancies": (
                [d.asset for d in status.open_discrepancies] if status else None
            ),
            "books_vs_exchange": per_asset,
            "discrepancies": discrepancies,
            "group_state_vs_journal_fold": group_vs_fold,
            "journal_events": len(events),
            "findings": self.findings,
            "targets": targets,
            "passed": all(targets.values()),
        }


# -- the journal and the books ---------------------------------------------------------------


def read_journal(config: ServiceConfig) -> list[tuple[int, int, Any]]:
    """Every event of the journal, decoded: (seq, ts_journal, event), in seq order."""
    path = config.journal.database
    if not Path(path).exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT seq, ts_journal, frame FROM events ORDER BY seq").fetchall()
    finally:
        db.close()
    return [(seq, ts, decode(bytes(frame), max_bytes=len(frame))) for seq, ts, frame in rows]


def journal_head(config: ServiceConfig) -> int:
    db = sqlite3.connect(f"file:{config.journal.database}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    finally:
        db.close()


def is_fill(event: Any) -> bool:
    return isinstance(event, ExecutionReport) and event.last_qty > 0


def fold(config: ServiceConfig, events: list[tuple[int, int, Any]]) -> dict[str, Decimal]:
    """The journal folded with the pure ledgers: the balance of every asset, cash and not."""
    ledger = BooksLedger(
        cash_currencies=config.accounting.cash_currencies,
        valuation_currency=config.accounting.valuation_currency,
        context=decimal_context(config),
    )
    for seq, _, event in events:
        ledger.apply(seq, event)
    balances = dict(ledger.cash.balances)
    balances.update({a: book.quantity for a, book in ledger.positions.positions.items()})
    return balances


def group_differences(state: Any, books: dict[str, Decimal], config: ServiceConfig) -> list[str]:
    """Where the running group's state (as it was settled) differs from the journal's fold."""
    if state is None:
        return ["the group's state did not answer"]
    shown = dict(state.cash)
    shown.update({a: p.quantity for a, p in state.positions.items()})
    return [
        f"{a}: group {shown.get(a, 0)} vs fold {books.get(a, 0)}"
        for a in sorted(set(shown) | set(books))
        if shown.get(a, Decimal(0)) != books.get(a, Decimal(0))
    ]


def last_kill_before(kills: list[Kill], ts_ns: int) -> str:
    """The last three kills before `ts_ns`: '#8 books 1.7 s, #7 reconcile 8.0 s, ...'."""
    before = [k for k in kills if k.at_ns <= ts_ns][-3:]
    return (
        ", ".join(
            f"#{k.number} {k.target} {(ts_ns - k.at_ns) / 1e9:.1f} s" for k in reversed(before)
        )
        or "none"
    )


# -- the report ------------------------------------------------------------------------------


def print_report(summary: dict[str, Any]) -> None:
    def row(measure: str, result: Any, target: str = "", ok: bool | None = None) -> None:
        mark = "" if ok is None else ("ok" if ok else "MISSED")
        print(f"| {measure:<46} | {result!s:<44} | {target:<10} | {mark:<6} |")

    targets = summary["targets"]
    print()
    print(f"| {'measure':<46} | {'result':<44} | {'target':<10} | {'':<6} |")
    print(f"|{'-' * 48}|{'-' * 46}|{'-' * 12}|{'-' * 8}|")
    row("kills", len(summary["kills"]))
    for target, count in sorted(summary["kills_by_target"].items()):
        row(f"  of {target}", count)
    row("faults injected", len([f for f in summary["faults"] if not f["error"]]))
    row(
        "longest recovery after a kill",
        f"{summary['longest_recovery_s']} s",
        f"<= {RECOVERY_TARGET_SECONDS:g} s",
        targets["recovery"],
    )
    row("kills not back within 15 s", "; ".join(summary["recoveries_over_target"]) or 0)
    row("runner.py exits by itself", summary["runner_exits_by_itself"])
    gone = summary["children_gone_after_runner_kill_s"]
    row("children gone after a runner kill (s)", ", ".join(map(str, gone)) or "-")
    row("the group's first start: ready line after (s)", summary["first_ready_s"])
    ready = [k["runner_ready_s"] for k in summary["kills"] if k["target"] == "runner"]
    row("restarted runner.py's ready line after (s)", ", ".join(map(str, ready)) or "-")
    row("leftover processes (killed by the harness)", len(summary["leftover_processes"]), "0")
    row("fills at the exchange", summary["fills_at_exchange"])
    row("fills journaled", summary["fills_journaled"])
    row("lost (at the exchange, not journaled)", len(summary["lost"]), "0", targets["lost"])
    doubled = (
        len(summary["doubled"])
        + len(summary["journaled_fills_unknown_at_exchange"])
        + len(summary["pairs_whose_net_quantity_differs"])
    )
    row("doubled (twice / unknown txid / net differs)", doubled, "0", targets["doubled"])
    row("adjustments journaled", len(summary["adjustments"]), "0", targets["adjustments"])
    row("reconciliation recovered fills", summary["reconciliation_recovered_fills"])
    for asset, line in summary["books_vs_exchange"].items():
        row(
            f"{asset}: exchange / books",
            f"{line['exchange']} / {line['books']}",
            "equal",
            line["agree"],
        )
    row("group state vs journal fold", len(summary["group_state_vs_journal_fold"]), "0")
    print()
    for adjustment in summary["adjustments"]:
        print(
            f"adjustment seq {adjustment['seq']} {adjustment['asset']} "
            f"{adjustment['before']} -> {adjustment['after']} "
            f"(kills before: {adjustment['last_kill_before']}): {adjustment['reason']}"
        )
    for finding in summary["findings"]:
        print(f"finding: {finding}")
    print(
        "PASSED"
        if summary["passed"]
        else "FAILED: " + ", ".join(name for name, ok in targets.items() if not ok)
    )


def main(argv: list[str] | None = None) -> int:
    logger.remove()  # the harness's own KrakenClient calls: only its warnings
    logger.add(sys.stderr, level="WARNING")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="how long to soak")
    parser.add_argument("--seed", type=int, default=1, help="draws of kills and faults")
    parser.add_argument("--out", type=Path, default=None, help="folder for summary.json")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    soak = Soak(args.minutes, args.seed, folder)
    try:
        summary = soak.run()
    except (ChaosError, KrakenError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        summary = None
    finally:
        soak.close()
    out = args.out or folder
    out.mkdir(parents=True, exist_ok=True)
    if summary is None:
        (out / "summary.json").write_text(
            json.dumps({"error": True, "findings": soak.findings}, indent=2)
        )
        return 1
    print_report(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"summary: {out / 'summary.json'}; run directory and logs: {folder / 'run'}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
