"""Reading a dataset's redacted records for training (train split) and evaluation (holdout split)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.audit import rows as event_rows
from appliance.errors import BadInput, NotFound
from appliance.store import datasets


@dataclass(frozen=True)
class DatasetRecords:
    name: str
    train: list[tuple[str, str | None]]  # (redacted text, label)
    holdout: list[tuple[str, str | None]]
    labels: list[str] | None  # the dataset's public label set (sorted), else None


def public_labels(db: sqlite_utils.Database, dataset: str) -> list[str] | None:
    """The label set the dataset's import declared public (``--labels``) or chose by DP (``--labels dp``), from
    its ``seeds.import`` event; None when the event has none (an unlabelled or older import).

    A prompt's labels are this set, never the labels its training records hold: whether a label appears in the
    outputs must not depend on whether some record of it was trained on (one record alone would decide it).
    """
    declared = _import_payload(db.conn, dataset).get("labels_public")
    return [str(x) for x in declared] if isinstance(declared, list) else None


def declared_public(conn: sqlite3.Connection, dataset: str) -> bool:
    """Whether the dataset's import declared its records public (``seeds import --public``), from its
    ``seeds.import`` event: a published corpus, the kind a public prior is trained on."""
    return bool(_import_payload(conn, dataset).get("public_data"))


def _import_payload(conn: sqlite3.Connection, dataset: str) -> dict[str, Any]:
    """The payload of the dataset's ``seeds.import`` event ({} when there is none)."""
    event = event_rows.first_with(conn, ("seeds.import",), "dataset", dataset)
    return dict(json.loads(event["payload"])) if event is not None else {}


def load_records(db: sqlite_utils.Database, dataset: str, *, holdout_limit: int) -> DatasetRecords:
    """Train split (all) and the first ``holdout_limit`` holdout records, in id order."""
    row = datasets.get(db, dataset)
    if row is None:
        raise NotFound(f"unknown dataset {dataset!r} — import it with `appliance seeds import FILE --dataset NAME`")
    train = [(r["text"], r["label"]) for r in datasets.split_rows(db, dataset, "train")]
    holdout = [(r["text"], r["label"]) for r in datasets.split_rows(db, dataset, "holdout", limit=holdout_limit)]
    if not train:
        raise BadInput(f"dataset {dataset} has no training records — import more seeds")
    public = public_labels(db, dataset)
    if public is not None:  # the declared (or DP-chosen) set, not the labels some training record happens to hold
        labels = sorted(public) or None
    elif row["label_field"] is not None and any(lab is not None for _, lab in train):
        labels = sorted({lab for _, lab in train if lab is not None})  # an older import: the gate refuses its labels
    else:
        labels = None
    if labels is None:
        train = [(t, None) for t, _ in train]
        holdout = [(t, None) for t, _ in holdout]
    return DatasetRecords(dataset, train, holdout, labels)
