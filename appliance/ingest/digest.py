"""What a ``seeds.import`` event binds about the records it stored, recomputed from the rows.

The gate, training and the probes read ``records`` rows (their text, split and budget keys), which any SQLite
client can edit. The import event carries these digests; :func:`appliance.gate.bound.check_records` recomputes
them from the stored rows (in id order, which is insertion order) and refuses (exit 4) on any difference: an
edited key would look up a budget nothing was charged to, a member moved to the holdout would blind the
membership probe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

Rows = Iterable[Mapping[str, Any]]


def _sha(lines: Iterable[str]) -> str:
    return "sha256:" + hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def text_sha256(text: str) -> str:
    """A record's ``text_sha256`` column: the hash of its stored (redacted) text."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def records_digest(rows: Rows) -> str:
    """``records_sha256``: over the hashes of the records' texts, in order."""
    return _sha(text_sha256(r["text"]) for r in rows)


def splits_digest(rows: Rows) -> str:
    """``splits_sha256``: over the records' splits (train / holdout), in order."""
    return _sha(str(r["split"]) for r in rows)


def record_keys_digest(rows: Rows) -> str:
    """``units_sha256``: over the sorted ``unit_key:subject_key`` lines (a subject key of None is written
    ``None``, as the importer has always written it)."""
    return _sha(sorted(f"{r['unit_key']}:{r['subject_key']}" for r in rows))
