"""Reading a dataset's redacted records for training (train split) and evaluation (holdout split)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from appliance.errors import BadInput, NotFound
from appliance.store import datasets


@dataclass(frozen=True)
class DatasetRecords:
    name: str
    train: list[tuple[str, str | None]]  # (redacted text, label)
    holdout: list[tuple[str, str | None]]
    labels: list[str] | None  # sorted distinct train labels of a labelled dataset, else None


def load_records(db: sqlite_utils.Database, dataset: str, *, holdout_limit: int) -> DatasetRecords:
    """Train split (all) and the first ``holdout_limit`` holdout records, in id order."""
    row = datasets.get(db, dataset)
    if row is None:
        raise NotFound(f"unknown dataset {dataset!r} — import it with `appliance seeds import FILE --dataset NAME`")
    train = [(r["text"], r["label"]) for r in datasets.split_rows(db, dataset, "train")]
    holdout = [(r["text"], r["label"]) for r in datasets.split_rows(db, dataset, "holdout", limit=holdout_limit)]
    if not train:
        raise BadInput(f"dataset {dataset} has no training records — import more seeds")
    labelled = row["label_field"] is not None and any(lab is not None for _, lab in train)
    labels = sorted({lab for _, lab in train if lab is not None}) if labelled else None
    if labels is None:
        train = [(t, None) for t, _ in train]
        holdout = [(t, None) for t, _ in holdout]
    return DatasetRecords(dataset, train, holdout, labels)
