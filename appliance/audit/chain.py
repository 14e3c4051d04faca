"""Pure functions of the audit hash chain (no I/O).

Each event's hash is ``sha256:`` + SHA-256 over the canonical JSON array
``[prev_hash, seq, ts, actor, kind, payload]`` where ``payload`` is itself canonical JSON text
(sorted keys, no spaces, UTF-8). The first event's ``prev_hash`` is :data:`GENESIS`. Following llm's
``logs.py`` recipe: algorithm-tagged hashes, the parent inside what is hashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ALGO = "sha256"
GENESIS = f"{ALGO}:" + "0" * 64


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, compact separators, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(prev_hash: str, seq: int, ts: str, actor: str, kind: str, payload: str) -> str:
    """Hash of one event given its parent's hash and its canonical payload text."""
    material = json.dumps([prev_hash, seq, ts, actor, kind, payload], separators=(",", ":"), ensure_ascii=False)
    return f"{ALGO}:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first place a chain fails verification."""

    seq: int
    reason: str


def verify_rows(rows: Iterable[tuple[int, str, str, str, str, str, str]]) -> tuple[int, str, Break | None]:
    """Walk rows ``(seq, ts, actor, kind, payload, prev_hash, hash)`` in seq order.

    Returns ``(count, head_hash, first_break)``; ``first_break`` is None for an intact chain.
    Detects edited rows (hash mismatch), deleted/inserted rows (sequence gap or parent mismatch) and
    reordered rows (parent mismatch).
    """
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    for seq, ts, actor, kind, payload, prev_hash, stored in rows:
        if seq != expected_seq:
            what = "missing (deleted)" if seq > expected_seq else "duplicated or inserted"
            return count, expected_prev, Break(expected_seq, f"sequence gap: event {expected_seq} is {what}")
        if prev_hash != expected_prev:
            return (
                count,
                expected_prev,
                Break(seq, "prev_hash does not match the previous event's hash (row inserted, deleted or reordered)"),
            )
        if not stored.startswith(f"{ALGO}:"):
            return count, expected_prev, Break(seq, f"unknown hash algorithm in {stored[:12]!r}")
        if event_hash(prev_hash, seq, ts, actor, kind, payload) != stored:
            return count, expected_prev, Break(seq, "hash mismatch: the event's content was edited")
        expected_prev = stored
        expected_seq += 1
        count += 1
    return count, expected_prev, None
