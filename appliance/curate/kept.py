"""The hash of a batch's kept outputs: what its ``curate.run`` event binds, and what the gate checks.

Curation is the one writer of ``outputs.status``; export writes the kept rows' text and label. Binding their
hash to the event means an output flipped to ``kept`` (or a kept text or label edited) after curation is an
integrity failure at the gate, never a released record.
"""

from __future__ import annotations

import hashlib
import sqlite3

from appliance.audit.chain import canonical_json


def kept_digest(conn: sqlite3.Connection, batch_id: str) -> str:
    """``sha256:`` over the (idx, SHA-256 of text, label) of the batch's kept outputs, in idx order."""
    rows = conn.execute(
        "SELECT idx, text, label FROM outputs WHERE batch_id = ? AND status = 'kept' ORDER BY idx", (batch_id,)
    )
    body = [[int(i), hashlib.sha256(t.encode("utf-8")).hexdigest(), lab] for i, t, lab in rows]
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
