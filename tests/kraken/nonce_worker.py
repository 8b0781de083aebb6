"""A separate process making private calls with a key shared with other processes.

Run as ``python -m tests.kraken.nonce_worker URL LOCK_DIR CALLS BARRIER_DIR NAME`` with the
key in ``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET``. It announces itself in BARRIER_DIR, waits
for ``go`` there (with a deadline), makes CALLS Balance calls with no retry, and prints a
JSON summary: ``{"ok": n, "errors": ["InvalidNonce: ...", ...]}``. Exit 0 when no call failed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from kraken.client import KrakenClient, RetryPolicy
from kraken.credentials import load_credentials
from kraken.errors import KrakenError
from kraken.names import KrakenNames
from kraken.nonce import NonceSource

_BARRIER_SECONDS = 20.0


def main(argv: list[str]) -> int:
    url, lock_dir, calls, barrier_dir, name = argv
    credentials = load_credentials()
    assert credentials is not None, "KRAKEN_API_KEY / KRAKEN_API_SECRET not set"
    barrier = Path(barrier_dir)
    (barrier / f"ready-{name}").touch()
    deadline = time.monotonic() + _BARRIER_SECONDS
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            print(json.dumps({"ok": 0, "errors": ["barrier: no go signal"]}))
            return 2
        time.sleep(0.005)
    nonce = NonceSource(credentials.key, Path(lock_dir))
    ok = 0
    errors: list[str] = []
    with KrakenClient(
        url,
        credentials,
        timeout_seconds=10,
        names=KrakenNames.bundled(),
        retry=RetryPolicy(max_attempts=1),
        nonce=nonce,
    ) as client:
        for _ in range(int(calls)):
            try:
                client.balance()
                ok += 1
            except KrakenError as error:
                errors.append(f"{type(error).__name__}: {error}")
    nonce.close()
    print(json.dumps({"ok": ok, "errors": errors}))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
