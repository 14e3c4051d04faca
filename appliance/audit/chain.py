"""Pure functions of the audit hash chain (no I/O).

Each event's hash is ``sha256:`` + SHA-256 over the UTF-8 of the length-prefixed fields
``len:prev_hash|seq|len:ts|len:actor|len:kind|len:payload`` where ``payload`` is canonical JSON text
(sorted keys, no spaces). Length prefixes make the encoding unambiguous whatever the fields contain,
and it is cheap enough to verify a million events in seconds. The first event's ``prev_hash`` is
:data:`GENESIS`. Following llm's ``logs.py`` recipe: algorithm-tagged hashes, the parent inside what
is hashed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

ALGO = "sha256"
GENESIS = f"{ALGO}:" + "0" * 64
_PREFIX = f"{ALGO}:"


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, compact separators, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(prev_hash: str, seq: int, ts: str, actor: str, kind: str, payload: str) -> str:
    """Hash of one event given its parent's hash and its canonical payload text."""
    material = "%d:%s|%d|%d:%s|%d:%s|%d:%s|%d:%s" % (  # noqa: UP031 - fastest; verify is hot
        len(prev_hash),
        prev_hash,
        seq,
        len(ts),
        ts,
        len(actor),
        actor,
        len(kind),
        kind,
        len(payload),
        payload,
    )
    return _PREFIX + sha256(material.encode("utf-8")).hexdigest()


def row_digest(row: Any) -> str:
    """``sha256:`` over the canonical JSON of a whole database row (column -> value), or of any JSON value (a
    list of rows): its content hash.

    An event that records a row carries this, and a reader recomputes it from the row as stored: any
    edited column is a mismatch.
    """
    return _PREFIX + sha256(canonical_json(row).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first place a chain fails verification."""

    seq: int
    reason: str


def verify_rows(
    rows: Iterable[tuple[int, str, str, str, str, str, str]], start_seq: int = 1, start_prev: str = GENESIS
) -> tuple[int, str, Break | None]:
    """Walk rows ``(seq, ts, actor, kind, payload, prev_hash, hash)`` in seq order.

    Returns ``(count, head_hash, first_break)``; ``first_break`` is None for an intact chain.
    Detects edited rows (hash mismatch), deleted/inserted rows (sequence gap or parent mismatch) and
    reordered rows (parent mismatch). ``start_seq``/``start_prev`` verify a segment of a chain.
    """
    expected_prev = start_prev
    expected_seq = start_seq
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
        if not stored.startswith(_PREFIX):
            return count, expected_prev, Break(seq, f"unknown hash algorithm in {stored[:12]!r}")
        if event_hash(prev_hash, seq, ts, actor, kind, payload) != stored:
            return count, expected_prev, Break(seq, "hash mismatch: the event's content was edited")
        expected_prev = stored
        expected_seq += 1
        count += 1
    return count, expected_prev, None
