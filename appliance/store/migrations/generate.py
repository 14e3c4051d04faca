"""Generation's additions to the shared ``batches``/``outputs`` tables: who runs a batch, and its throughput."""

from __future__ import annotations

import sqlite_utils

from appliance.db import migration


@migration("0400_generate_runs", "generate: batch runner, token and time counters; output finish reason")
def _runs(db: sqlite_utils.Database) -> None:
    for statement in (
        "ALTER TABLE batches ADD COLUMN runner TEXT",  # host:pid of the process generating it, while running
        "ALTER TABLE batches ADD COLUMN n_tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE batches ADD COLUMN gen_seconds REAL NOT NULL DEFAULT 0",
        "ALTER TABLE outputs ADD COLUMN finish_reason TEXT",
    ):
        db.conn.execute(statement)


@migration("0410_generate_canary_hits", "generate: canary secrets found in each output's raw text, before the PII scan")
def _canary_hits(db: sqlite_utils.Database) -> None:
    # NULL: generated before the count existed (the probe then searches the stored, PII-processed text)
    db.conn.execute("ALTER TABLE outputs ADD COLUMN canary_hits INTEGER")
