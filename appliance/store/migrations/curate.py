"""Curation's tables: per-output leak/PII counters, one summary row per curation run, export hashes.

``outputs.leak_hits`` / ``outputs.pii_hits`` are set for every output a run looks at (kept or not), so
the export gate can count verbatim leaks and PII still present in what it would export.
``export_hashes`` remembers the normalised-text hash of every exported record (filled by export),
so that an import can flag seeds that are the appliance's own earlier output.
"""

from __future__ import annotations

import sqlite_utils

from appliance.db import migration


@migration("0600_curate", "curate: output leak/PII counters, curation runs, hashes of exported records")
def _curate(db: sqlite_utils.Database) -> None:
    for statement in (
        "ALTER TABLE outputs ADD COLUMN leak_hits INTEGER",
        "ALTER TABLE outputs ADD COLUMN pii_hits INTEGER",
        """CREATE TABLE curations (
            id INTEGER PRIMARY KEY,
            batch_id TEXT NOT NULL REFERENCES batches(id),
            n_total INTEGER NOT NULL,
            n_kept INTEGER NOT NULL,
            n_dropped INTEGER NOT NULL,
            reasons TEXT NOT NULL,          -- JSON {reason: count}
            leak_hits INTEGER NOT NULL,     -- over every output looked at
            pii_hits INTEGER NOT NULL,
            kept_leak_hits INTEGER NOT NULL,  -- over kept outputs only (what export would ship)
            kept_pii_hits INTEGER NOT NULL,
            policy_sha256 TEXT NOT NULL,
            event_seq INTEGER,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX curations_batch ON curations(batch_id)",
        """CREATE TABLE export_hashes (
            hash TEXT PRIMARY KEY,          -- sha256 of the normalised exported text
            export_id TEXT,
            created_at TEXT NOT NULL
        )""",
    ):
        db.conn.execute(statement)
