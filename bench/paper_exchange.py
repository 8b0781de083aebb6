"""Throughput of the paper exchange as krakenex sees it.

Starts ``python -m kraken.paper --tick 0`` as its own process (so client and server do not
share an interpreter), then measures from one krakenex client over one keep-alive connection:

1. private calls/s: sequential ``Balance`` calls, each signed with a fresh nonce;
2. AddOrder→fill/s: sequential market orders, each counted once its fill is seen in
   ``TradesHistory`` (the order call plus at least one history call per order).

Run: ``python bench/paper_exchange.py [--calls N] [--orders N]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import krakenex

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 10.0


class CountingKraken(krakenex.API):
    """krakenex with a strictly increasing nonce (its ms nonce collides at this speed)."""

    _nonces = itertools.count(time.time_ns())

    def _nonce(self) -> int:
        return next(self._nonces)


def start_exchange() -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [sys.executable, "-m", "kraken.paper", "--tick", "0"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=30):
            process.kill()
            raise SystemExit("the paper exchange did not start")
    return process, json.loads(process.stdout.readline())


def checked(answer: dict) -> dict:
    if answer["error"]:
        raise SystemExit(f"unexpected error: {answer['error']}")
    return answer["result"]


def bench_balance(client: krakenex.API, calls: int) -> float:
    for _ in range(20):  # warm up the connection and the interpreter
        checked(client.query_private("Balance", timeout=TIMEOUT))
    started = time.perf_counter()
    for _ in range(calls):
        checked(client.query_private("Balance", timeout=TIMEOUT))
    return calls / (time.perf_counter() - started)


def bench_orders(client: krakenex.API, orders: int) -> tuple[float, int]:
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.0001"}
    history_calls = 0
    started = time.perf_counter()
    for _ in range(orders):
        txid = checked(client.query_private("AddOrder", dict(order), timeout=TIMEOUT))["txid"][0]
        deadline = time.monotonic() + TIMEOUT
        while True:
            history_calls += 1
            trades = checked(client.query_private("TradesHistory", timeout=TIMEOUT))["trades"]
            if any(trade["ordertxid"] == txid for trade in trades.values()):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"order {txid} never showed a fill")
    return orders / (time.perf_counter() - started), history_calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args()
    process, line = start_exchange()
    client = CountingKraken(line["key"], line["secret"])
    client.uri = line["url"]
    try:
        balance_rate = bench_balance(client, args.calls)
        print(
            f"private calls/s: {balance_rate:,.0f}  ({args.calls} sequential Balance calls, "
            "one krakenex client, one keep-alive connection, server in its own process)"
        )
        fill_rate, history_calls = bench_orders(client, args.orders)
        print(
            f"AddOrder->fill/s: {fill_rate:,.0f}  ({args.orders} sequential market orders, each "
            f"counted when its fill is listed by TradesHistory; {history_calls} history calls)"
        )
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=TIMEOUT)
        process.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
