"""The audit ledger: atomic, concurrent-safe appends and verification over SQLite.

Appends run in one ``BEGIN IMMEDIATE`` transaction, so two processes appending at once serialise on
SQLite's write lock and each sees the other's head. Payloads pass :func:`check_payload` first.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance.audit import signing
from appliance.audit.chain import GENESIS, Break, canonical_json, event_hash, verify_rows
from appliance.audit.guard import check_payload
from appliance.config import default_actor
from appliance.db import transaction, utc_now
from appliance.errors import BadInput, ChainBroken

_KIND_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


@dataclass(frozen=True)
class Event:
    seq: int
    ts: str
    actor: str
    kind: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "kind": self.kind,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class VerifyResult:
    count: int
    head_hash: str
    first_break: Break | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def append_in_tx(conn: sqlite3.Connection, kind: str, payload: dict[str, Any], actor: str | None = None) -> Event:
    """Append one event using an already-open write transaction on ``conn``.

    Use this when the event must commit atomically with other writes (e.g. an import's records).
    """
    if not kind or not set(kind) <= _KIND_CHARS or len(kind) > 64:
        raise BadInput(f"audit kind {kind!r} must be lowercase letters, digits, '.', '_' or '-'")
    check_payload(payload)
    actor = actor or default_actor()
    if len(actor) > 64:
        raise BadInput("actor name longer than 64 characters")
    text = canonical_json(payload)
    row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    ts = utc_now()
    digest = event_hash(prev, seq, ts, actor, kind, text)
    conn.execute(
        "INSERT INTO events (seq, ts, actor, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, ts, actor, kind, text, prev, digest),
    )
    return Event(seq, ts, actor, kind, payload, prev, digest)


class AuditLedger:
    """Append-only, hash-chained event log stored in the ``events`` table."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def append(self, kind: str, payload: dict[str, Any], actor: str | None = None) -> Event:
        """Append one event atomically (its own ``BEGIN IMMEDIATE`` transaction)."""
        with transaction(self.db) as conn:
            return append_in_tx(conn, kind, payload, actor)

    def head(self) -> tuple[int, str]:
        row = self.db.conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def hash_at(self, seq: int) -> str | None:
        row = self.db.conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def events(self, kind: str | None = None, limit: int | None = None) -> list[Event]:
        sql = "SELECT seq, ts, actor, kind, payload, prev_hash, hash FROM events"
        args: list[Any] = []
        if kind:
            sql += " WHERE kind = ?"
            args.append(kind)
        sql += " ORDER BY seq"
        if limit:
            sql = f"SELECT * FROM ({sql.replace(' ORDER BY seq', ' ORDER BY seq DESC')} LIMIT ?) ORDER BY seq"
            args.append(limit)
        return [Event(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in self.db.conn.execute(sql, args)]

    def verify(self, workers: int | None = None) -> VerifyResult:
        """Recompute the chain from the genesis; report the first broken event.

        Long chains are checked in parallel segments (each hash depends only on its row and the stored
        parent hash; segment borders are linked afterwards). Any failure is re-checked sequentially so
        the report names the exact first broken event.
        """
        lo, hi, n = self.db.conn.execute("SELECT min(seq), max(seq), count(*) FROM events").fetchone()
        workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
        path = self._path()
        if n and n >= PARALLEL_MIN and workers > 1 and path and lo == 1 and hi == n:
            res = _verify_parallel(path, n, workers)
            if res is not None:
                return res
        return VerifyResult(*verify_rows(_iter_rows(self._cursor(self.db.conn, 1, None))))

    def _path(self) -> str | None:
        row = self.db.conn.execute("PRAGMA database_list").fetchone()
        return row[2] if row and row[2] else None

    @staticmethod
    def _cursor(conn: sqlite3.Connection, lo: int, hi: int | None) -> sqlite3.Cursor:
        sql = "SELECT seq, ts, actor, kind, payload, prev_hash, hash FROM events WHERE seq >= ?"
        args: list[int] = [lo]
        if hi is not None:
            sql += " AND seq <= ?"
            args.append(hi)
        cur = conn.execute(sql + " ORDER BY seq", args)
        cur.arraysize = 10_000
        return cur

    def verify_or_raise(self) -> VerifyResult:
        res = self.verify()
        if res.first_break is not None:
            raise ChainBroken(
                f"audit chain broken at event {res.first_break.seq}: {res.first_break.reason}",
                seq=res.first_break.seq,
                reason=res.first_break.reason,
            )
        return res

    def signed_head(self, keys_dir: Path) -> dict[str, Any]:
        """The head (seq, hash) with an Ed25519 signature and the key's fingerprint."""
        seq, digest = self.head()
        key = signing.load_private(keys_dir)
        body = {"seq": seq, "hash": digest}
        return {
            **body,
            "signature": signing.sign(key, body),
            "public_key_fingerprint": signing.fingerprint(key.public_key()),
            "public_key": signing.public_pem(key.public_key()).decode("ascii"),
        }

    def check_head(self, head: dict[str, Any], keys_dir: Path, public_key: Any = None) -> None:
        """Raise unless ``head`` is signed by this appliance (or by ``public_key``) and is in the chain."""
        try:
            seq, digest = int(head["seq"]), str(head["hash"])
            sig = str(head["signature"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInput("head file must be JSON with seq, hash and signature (from `audit head --out`)") from exc
        own = public_key if public_key is not None else signing.load_private(keys_dir).public_key()
        signing.verify(own, {"seq": seq, "hash": digest}, sig)
        have = self.hash_at(seq)
        if have is None:
            raise ChainBroken(
                f"signed head seq {seq} is not in the chain (chain truncated or rewritten)",
                seq=seq,
                reason="missing",
            )
        if have != digest:
            raise ChainBroken(
                f"event {seq} hash differs from the signed head (chain rewritten)",
                seq=seq,
                reason="rewritten",
            )


PARALLEL_MIN = 200_000


def _verify_segment(path: str, lo: int, hi: int) -> tuple[int, str, str, bool]:
    """Worker: verify rows lo..hi against their stored parents; returns (count, first_prev, head, ok)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        first = conn.execute("SELECT prev_hash FROM events WHERE seq = ?", (lo,)).fetchone()
        if first is None:
            return 0, "", "", False
        count, head, brk = verify_rows(_iter_rows(AuditLedger._cursor(conn, lo, hi)), lo, first[0])
        return count, first[0], head, brk is None and count == hi - lo + 1
    finally:
        conn.close()


def _verify_parallel(path: str, n: int, workers: int) -> VerifyResult | None:
    """Verify a contiguous chain 1..n in segments; None when anything fails (caller re-checks)."""
    bounds = [(1 + n * i // workers, n * (i + 1) // workers) for i in range(workers)]
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        parts = list(pool.map(_verify_segment, [path] * workers, *zip(*bounds, strict=True)))
    expected_prev = GENESIS
    total = 0
    for count, first_prev, head, ok in parts:
        if not ok or first_prev != expected_prev:
            return None
        expected_prev = head
        total += count
    return VerifyResult(total, expected_prev, None)


def _iter_rows(cur: sqlite3.Cursor) -> Iterator[tuple[int, str, str, str, str, str, str]]:
    while True:
        batch = cur.fetchmany()
        if not batch:
            return
        yield from batch
