"""Probe results: one row per `appliance probe` run (metrics and ROC curve points, never text)."""

from __future__ import annotations

import sqlite_utils

from appliance.db import migration


@migration("0700_probes", "probes: membership inference, canary exposure and DCR results per batch")
def _probes(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE probes (
            id TEXT PRIMARY KEY,
            batch_id TEXT NOT NULL REFERENCES batches(id),
            dataset TEXT NOT NULL,
            prompt_id TEXT,
            model_sha256 TEXT NOT NULL,
            prompt_sha256 TEXT,
            summary TEXT NOT NULL,      -- JSON: the gate's numbers (max AUC, TPR@1%FPR, exposure, DCR ratio)
            metrics TEXT NOT NULL,      -- JSON: every probe's metrics with confidence intervals
            curves TEXT NOT NULL,       -- JSON: ROC points per attack, for the compliance report
            policy_sha256 TEXT NOT NULL,
            actor TEXT NOT NULL,
            seconds REAL NOT NULL,
            event_seq INTEGER,
            created_at TEXT NOT NULL
        )"""
    )
    db.conn.execute("CREATE INDEX probes_batch ON probes(batch_id, created_at)")
