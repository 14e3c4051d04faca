"""Orchestration test data for curation/evaluation: a small labeled dataset and a batch of crafted outputs.

Rows are inserted directly (the generator is tested on its own); seeds come from BANKING77.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from _shared_data import find_shared_data

from appliance.config import Workspace
from appliance.context import Context
from appliance.db import transaction, utc_now

LABELS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed")


def banking(split: str = "train", labels: tuple[str, ...] = LABELS, per_label: int = 40) -> list[tuple[str, str]]:
    """(text, label) pairs of BANKING77, the first ``per_label`` of each label, in file order."""
    out: list[tuple[str, str]] = []
    counts = dict.fromkeys(labels, 0)
    with (find_shared_data() / "banking77" / f"{split}.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            lab = row["category"]
            if lab in counts and counts[lab] < per_label:
                counts[lab] += 1
                out.append((row["text"], lab))
    return out


def open_ctx(home: Path) -> Context:
    return Context.open(Workspace(home), actor="tester")


def add_dataset(
    ctx: Context,
    name: str,
    train: list[tuple[str, str | None]],
    holdout: list[tuple[str, str | None]],
    *,
    labeled: bool = True,
) -> None:
    now = utc_now()
    with transaction(ctx.db) as conn:
        conn.execute(
            "INSERT INTO datasets (name, created_at, text_field, label_field, source_sha256, policy_sha256,"
            " n_records, n_train, n_holdout) VALUES (?, ?, 'text', ?, 'sha256:0', ?, ?, ?, ?)",
            (
                name,
                now,
                "label" if labeled else None,
                ctx.policy_sha256,
                len(train) + len(holdout),
                len(train),
                len(holdout),
            ),
        )
        for i, (split, (text, label)) in enumerate([("train", r) for r in train] + [("holdout", r) for r in holdout]):
            conn.execute(
                "INSERT INTO records (dataset, source_index, text, label, split, text_sha256, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, i, text, label, split, "sha256:" + hashlib.sha256(text.encode()).hexdigest(), now),
            )


def add_batch(
    ctx: Context,
    batch_id: str,
    dataset: str,
    outputs: list[tuple[str, str | None]],
    *,
    status: str = "complete",
    dropped_pii: int = 0,
) -> None:
    """A batch with ``outputs`` (status 'new') and ``dropped_pii`` outputs the generator already dropped."""
    now = utc_now()
    with transaction(ctx.db) as conn:
        conn.execute(
            "INSERT INTO batches (id, dataset, mode, model_name, model_sha256, params, n_requested, status,"
            " exportable, created_at) VALUES (?, ?, 'fewshot', 'smollm2-135m', 'sha256:0', ?, ?, ?, 0, ?)",
            (batch_id, dataset, json.dumps({"seed": 0}), len(outputs) + dropped_pii, status, now),
        )
        rows = [(text, label, "new", None) for text, label in outputs] + [("", None, "dropped", "pii")] * dropped_pii
        for idx, (text, label, st, reason) in enumerate(rows):
            conn.execute(
                "INSERT INTO outputs (batch_id, idx, text, label, n_tokens, status, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (batch_id, idx, text, label, len(text.split()), st, reason, now),
            )


def statuses(ctx: Context, batch_id: str) -> list[tuple[str, str | None]]:
    return [
        (r[0], r[1])
        for r in ctx.db.conn.execute("SELECT status, reason FROM outputs WHERE batch_id = ? ORDER BY idx", (batch_id,))
    ]
