"""The export gate's tables: every gate decision (passed or refused, with its checks) and four-eyes requests."""

from __future__ import annotations

import sqlite_utils

from appliance.db import migration


@migration("0800_gate", "gate: decisions with their checks, four-eyes export requests")
def _gate(db: sqlite_utils.Database) -> None:
    for statement in (
        """CREATE TABLE gate_decisions (
            id INTEGER PRIMARY KEY,
            batch_id TEXT NOT NULL REFERENCES batches(id),
            dataset TEXT NOT NULL,
            passed INTEGER NOT NULL,
            enabled INTEGER NOT NULL,
            checks TEXT NOT NULL,       -- JSON [{check, passed, value, threshold, op}]
            failures TEXT NOT NULL,     -- JSON, the failed checks only
            probe_id TEXT,
            policy_sha256 TEXT NOT NULL,
            actor TEXT NOT NULL,
            event_seq INTEGER,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX gate_decisions_batch ON gate_decisions(batch_id, created_at)",
        """CREATE TABLE export_requests (
            id TEXT PRIMARY KEY,
            batch_id TEXT NOT NULL REFERENCES batches(id),
            requested_by TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            approved_by TEXT,
            approved_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'used')),
            export_id TEXT
        )""",
    ):
        db.conn.execute(statement)
