"""The hash of a batch's kept outputs: what its ``curate.run`` event binds, and what the gate checks.

Curation is the one writer of ``outputs.status``; export writes the kept rows' text and label. Binding their
hash to the event means an output flipped to ``kept`` (or a kept text or label edited) after curation is an
integrity failure at the gate, never a released record.
"""

from __future__ import annotations

import hashlib
import sqlite3

from appliance.audit.chain import canonical_json
from appliance.store import batches


def kept_digest(conn: sqlite3.Connection, batch_id: str) -> str:
    """``sha256:`` over the (idx, SHA-256 of text, label) of the batch's kept outputs, in idx order."""
    body = [
        [int(r["idx"]), hashlib.sha256(r["text"].encode("utf-8")).hexdigest(), r["label"]]
        for r in batches.kept(conn, batch_id)
    ]
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
