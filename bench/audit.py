"""Audit ledger benchmark: append rate through the real API and verify time for 1M events.

Appends: N events through ``AuditLedger.append`` (one BEGIN IMMEDIATE transaction each, payload guard,
hashing) — the rate a pipeline sees. Verify: a 1,000,000-event chain, built with the same hash function
in bulk (it is the verify time being measured, not how the rows got there), then ``AuditLedger.verify``.

Run: .venv/bin/python bench/audit.py [--events 1000000] [--appends 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from appliance.audit.chain import canonical_json, event_hash
from appliance.audit.ledger import AuditLedger
from appliance.db import connect, migrate, transaction, utc_now


def bulk_chain(led: AuditLedger, n: int) -> None:
    seq0, prev = led.head()
    rows = []
    with transaction(led.db) as conn:
        for i in range(1, n + 1):
            seq = seq0 + i
            ts = utc_now()
            payload = canonical_json({"batch": "b-0001", "i": i, "kept": i % 7, "sha256": "ab" * 32})
            h = event_hash(prev, seq, ts, "bench", "bench.bulk", payload)
            rows.append((seq, ts, "bench", "bench.bulk", payload, prev, h))
            prev = h
            if len(rows) == 50_000:
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                rows.clear()
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--appends", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = connect(Path(tmp) / "bench.db")
        migrate(db)
        led = AuditLedger(db)
        t0 = time.perf_counter()
        for i in range(args.appends):
            led.append("bench.append", {"i": i, "records": 128, "sha256": "cd" * 32}, actor="bench")
        append_s = time.perf_counter() - t0
        rate = args.appends / append_s
        bulk_chain(led, args.events - args.appends)
        t0 = time.perf_counter()
        res = led.verify()
        verify_s = time.perf_counter() - t0
        assert res.ok and res.count == args.events, res
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 1e6
    print(f"{'measure':<34}{'value':>14}")
    print(f"{'appends (API, 1 tx each)':<34}{args.appends:>14,}")
    print(f"{'append rate (events/s)':<34}{rate:>14,.0f}")
    print(f"{'chain length verified':<34}{res.count:>14,}")
    print(f"{'verify time (s)':<34}{verify_s:>14.2f}")
    print(f"{'verify rate (events/s)':<34}{res.count / verify_s:>14,.0f}")
    print(f"{'database size (MB)':<34}{size_mb:>14.1f}")
    print(f"verify {res.count} events: {verify_s:.2f} s; append {rate:.0f} events/s")


if __name__ == "__main__":
    main()
