"""Exports: one row per file that left the appliance (hash, record count, manifest)."""

from __future__ import annotations

import sqlite_utils

from appliance.db import migration


@migration("0900_exports", "export: exported files with their SHA-256, record counts and signed manifests")
def _exports(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE exports (
            id TEXT PRIMARY KEY,
            batch_id TEXT NOT NULL REFERENCES batches(id),
            dataset TEXT NOT NULL,
            path TEXT NOT NULL,
            format TEXT NOT NULL,
            file_sha256 TEXT NOT NULL,
            n_records INTEGER NOT NULL,
            manifest_path TEXT NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            request_id TEXT,
            gate_decision_id INTEGER,
            actor TEXT NOT NULL,
            event_seq INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
