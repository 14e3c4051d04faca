"""Evaluation's table: one metrics record per ``appliance evaluate`` run."""

from __future__ import annotations

import sqlite_utils

from appliance.db import migration


@migration("0650_evaluations", "evaluate: one metrics record per evaluation run")
def _evaluations(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            batch_id TEXT NOT NULL REFERENCES batches(id),
            reference TEXT NOT NULL,         -- 'holdout' or 'file:sha256:<hex>'
            n_synthetic INTEGER NOT NULL,
            n_reference INTEGER NOT NULL,
            mauve REAL,
            tstr_ratio REAL,                 -- null for unlabeled datasets
            metrics TEXT NOT NULL,           -- JSON: every metric, sample sizes, settings
            embedding_model TEXT NOT NULL,
            embedding_sha256 TEXT NOT NULL,
            curation_id INTEGER,             -- the curation run whose kept outputs were evaluated
            policy_sha256 TEXT NOT NULL,
            event_seq INTEGER,
            created_at TEXT NOT NULL
        )"""
    )
    db.conn.execute("CREATE INDEX evaluations_batch ON evaluations(batch_id)")
