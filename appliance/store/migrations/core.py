"""Schema of the appliance's data tables (redacted seeds, prompts, batches, outputs, budget).

Nothing here ever holds raw PII: ``records.text`` is the redacted/pseudonymised text; findings are
stored as types, offsets into the *original* text and scores — never values. ``records.unit_key`` and
``records.subject_key`` are the record's budget units (:mod:`appliance.budget.units`): hashes, never the
text or the subject id.

Note for writers: inside :func:`appliance.db.transaction` use ``conn.execute`` only; sqlite-utils'
``insert``/``insert_all`` wrap themselves in ``with conn:``, which would commit early.
"""

from __future__ import annotations

import sqlite_utils

from appliance.db import migration


@migration("0100_store_core", "store: datasets, records, prompts, privacy charges, batches, outputs")
def _core(db: sqlite_utils.Database) -> None:
    _SQL = """
        CREATE TABLE datasets (
            name TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            text_field TEXT,
            label_field TEXT,
            source_sha256 TEXT NOT NULL,
            policy_sha256 TEXT NOT NULL,
            n_records INTEGER NOT NULL DEFAULT 0,
            n_train INTEGER NOT NULL DEFAULT 0,
            n_holdout INTEGER NOT NULL DEFAULT 0,
            n_dropped INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            dataset TEXT NOT NULL REFERENCES datasets(name),
            source_index INTEGER NOT NULL,
            text TEXT NOT NULL,            -- redacted / pseudonymised, never raw PII
            label TEXT,
            split TEXT NOT NULL CHECK (split IN ('train', 'holdout')),
            text_sha256 TEXT NOT NULL,     -- hash of the stored (redacted) text
            findings TEXT NOT NULL DEFAULT '[]',  -- JSON [{type,start,end,score,action}]
            created_at TEXT NOT NULL
        );
        CREATE INDEX records_dataset_split ON records(dataset, split);
        CREATE TABLE prompts (
            id TEXT PRIMARY KEY,
            dataset TEXT NOT NULL REFERENCES datasets(name),
            label TEXT,
            model_name TEXT NOT NULL,
            model_sha256 TEXT NOT NULL,
            k INTEGER NOT NULL,
            n_embd INTEGER NOT NULL,
            dp INTEGER NOT NULL,           -- 1 DP-SGD, 0 non-DP control run
            exportable INTEGER NOT NULL,   -- 0 for non-DP runs: the gate refuses their outputs
            epsilon REAL,
            delta REAL,
            noise_multiplier REAL,
            sample_rate REAL,
            steps INTEGER,
            clip_norm REAL,
            accountant TEXT,
            train_loss REAL,
            holdout_loss REAL,
            artifact_path TEXT NOT NULL,
            artifact_sha256 TEXT NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE TABLE privacy_charges (
            id INTEGER PRIMARY KEY,
            dataset TEXT NOT NULL REFERENCES datasets(name),
            prompt_id TEXT,
            epsilon REAL NOT NULL,
            delta REAL NOT NULL,
            accountant TEXT NOT NULL,
            composition TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE batches (
            id TEXT PRIMARY KEY,
            dataset TEXT NOT NULL REFERENCES datasets(name),
            mode TEXT NOT NULL CHECK (mode IN ('softprompt', 'fewshot')),
            prompt_id TEXT,
            label TEXT,
            model_name TEXT NOT NULL,
            model_sha256 TEXT NOT NULL,
            params TEXT NOT NULL,          -- JSON sampling settings and seed
            n_requested INTEGER NOT NULL,
            status TEXT NOT NULL,          -- running | complete | interrupted
            exportable INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE TABLE outputs (
            id INTEGER PRIMARY KEY,
            batch_id TEXT NOT NULL REFERENCES batches(id),
            idx INTEGER NOT NULL,
            text TEXT NOT NULL,            -- after the output PII scan and policy action
            label TEXT,
            n_tokens INTEGER NOT NULL,
            findings TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL DEFAULT 'new',   -- new | kept | dropped (curation)
            reason TEXT,                   -- curation reason when dropped
            created_at TEXT NOT NULL,
            UNIQUE (batch_id, idx)
        );
    """
    for statement in _SQL.split(";"):
        if statement.strip():
            db.conn.execute(statement)


@migration("0110_store_units", "store: each record's budget units (text key, subject key); datasets.subject_field")
def _units(db: sqlite_utils.Database) -> None:
    from appliance.budget.units import record_unit

    db.conn.execute("ALTER TABLE records ADD COLUMN unit_key TEXT")
    db.conn.execute("ALTER TABLE records ADD COLUMN subject_key TEXT")
    db.conn.execute("ALTER TABLE datasets ADD COLUMN subject_field TEXT")
    # records imported before units existed: key on the stored redacted text (pseudonyms included)
    rows = db.conn.execute("SELECT id, text FROM records").fetchall()
    db.conn.executemany("UPDATE records SET unit_key = ? WHERE id = ?", [(record_unit(t), i) for i, t in rows])
    db.conn.execute("CREATE INDEX records_unit ON records(unit_key)")
