"""Schema of the audit ledger: one append-only table of hash-chained events."""

from __future__ import annotations

import sqlite_utils

from appliance.db import migration


@migration("0001_audit_events", "audit: hash-chained events table")
def _events(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )
        """
    )
    db.conn.execute("CREATE INDEX events_kind ON events(kind)")
