"""Hashes of a batch's outputs: every output as generated (what ``generate.finish`` binds: the probes read them
and curation chooses from them), and the kept ones (what ``curate.run`` binds); the gate checks both.

Curation is the one writer of ``outputs.status``; export writes the kept rows' text and label. Binding their
hash to the event means an output flipped to ``kept`` (or a kept text or label edited) after curation is an
integrity failure at the gate, never a released record; an output's text or canary count edited before the
probes run is one too.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Collection

from appliance.audit.chain import row_digest
from appliance.store import batches


def _text(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


def kept_digest(conn: sqlite3.Connection, batch_id: str) -> str:
    """``sha256:`` over the (idx, SHA-256 of text, label) of the batch's kept outputs, in idx order."""
    return row_digest([[int(r["idx"]), _text(r["text"]), r["label"]] for r in batches.kept(conn, batch_id)])


def outputs_digest(conn: sqlite3.Connection, batch_id: str, indices: Collection[int] | None = None) -> str:
    """``sha256:`` over the (idx, SHA-256 of text, label, canary count) of the batch's outputs (those with an index
    in ``indices`` when given), in idx order — not the status, which curation writes."""
    rows = batches.output_rows(conn, batch_id, select="idx, text, label, canary_hits")
    wanted = None if indices is None else set(indices)
    return row_digest(
        [
            [int(r["idx"]), _text(r["text"]), r["label"], r["canary_hits"]]
            for r in rows
            if wanted is None or int(r["idx"]) in wanted
        ]
    )
