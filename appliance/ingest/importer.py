"""Seed import: read, scan every record, apply the PII policy, split, store — all or nothing.

Promise: nothing is written unless every step succeeded, and what is written is the redacted or
pseudonymised text only. Labels are category names: stored as given, and a label that holds
structured PII (an e-mail address, phone, card number ...) makes its record a bad record.

A label is released verbatim on every synthetic record, so a label only one record holds would be
disclosed by its presence. Labels are therefore public schema, declared with ``labels=`` (``--labels``):
a record with any other label, or none, is dropped at import and counted; the declared set goes into
the ``seeds.import`` audit event, and the export gate refuses labels that were not declared there. Where the
set cannot be declared, ``select_labels=True`` (``--labels dp``) chooses it from the records by DP partition
selection (:mod:`appliance.ingest.partition`), charged to every labelled record imported like a training run
(``privacy.label_selection_epsilon``; refused, exit 3, past a record's cap); records with a label not
selected are dropped and counted, and when none is selected every record stays with its labels inside. The dataset
row, its records and one ``seeds.import`` audit event commit in a single SQLite transaction; the event
carries counts and hashes, never text.

Each record's budget unit is stored with it (:mod:`appliance.budget.units`): the hash of its redacted text
with PII as ``<TYPE>``, and with ``subject_field=`` (``--subject-field``) also the keyed hash of its subject
id, which makes a person the unit of the privacy budget. A record without a subject id is a bad record; the
id itself is never stored.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audit import append_in_tx
from appliance.budget.accounting import default_delta, max_delta
from appliance.budget.ledger import BudgetLedger
from appliance.budget.units import RECORD, Unit, record_unit, subject_unit
from appliance.context import Context
from appliance.curate.provenance import check_seed_provenance
from appliance.db import transaction, utc_now
from appliance.errors import BadInput
from appliance.ingest.digest import record_keys_digest, records_digest, splits_digest, text_sha256
from appliance.ingest.partition import MECHANISM, LabelSelection, select_labels
from appliance.ingest.readers import BadRecord, ReadResult, SeedRecord, read_seeds
from appliance.ingest.split import assign_splits, group_keys, record_key
from appliance.pii import PiiPipeline
from appliance.pii.pipeline import PiiResult
from appliance.pii.pseudonym import load_key
from appliance.store import datasets

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_LINES_IN_EVENT = 200
MAX_LABEL_CHARS = 64


@dataclass
class ImportSummary:
    dataset: str
    fmt: str
    source_sha256: str
    n_read: int
    n_records: int = 0
    n_train: int = 0
    n_holdout: int = 0
    n_dropped: int = 0
    n_label_dropped: int = 0  # records whose label is not in the declared public label set
    labels_public: list[str] | None = None
    subject_field: str | None = None
    n_subjects: int | None = None  # distinct subjects among the stored records (with subject_field)
    label_selection: LabelSelection | None = None  # --labels dp: the DP choice of the label set
    public_data: bool = False  # --public: the operator declared every record public (a public prior's corpus)
    skipped_lines: list[int] = field(default_factory=list)
    skipped_reasons: list[str] = field(default_factory=list)
    findings: dict[str, int] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    dropped_by: dict[str, int] = field(default_factory=dict)
    event_seq: int = 0
    event_hash: str = ""
    export_matches: list[int] = field(default_factory=list)  # record indices equal to an earlier export


def check_dataset_name(name: str) -> str:
    if not _NAME.match(name):
        raise BadInput(
            "dataset names are 1-64 characters of letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


def dataset_exists(ctx: Context, name: str) -> bool:
    return datasets.has(ctx.db, name)


def _refuse_existing(name: str) -> BadInput:
    return BadInput(f"dataset {name!r} already exists — import under a new --dataset name (see `appliance seeds list`)")


def check_public_labels(labels: list[str] | None, label_field: str | None) -> list[str] | None:
    """The declared public label set, sorted and unique; :class:`BadInput` for one that cannot be schema."""
    if labels is None:
        return None
    if label_field is None:
        raise BadInput("--labels declares the public label set of --label-field: pass --label-field F too")
    out = sorted({lab.strip() for lab in labels if lab.strip()})
    if not out:
        raise BadInput("--labels is empty: list the public label names, e.g. --labels billing,bug or --labels @FILE")
    for lab in out:
        if len(lab) > MAX_LABEL_CHARS or lab.count(" ") > 3:
            raise BadInput(f"--labels: {lab[:20]!r}... is not a category name (at most {MAX_LABEL_CHARS} characters)")
    return out


def bad_lines_message(read: ReadResult) -> str:
    first = read.bad[0]
    more = f" (and {len(read.bad) - 1} more bad records)" if len(read.bad) > 1 else ""
    return f"{first}{more} — fix the file, or pass --skip-bad to import the good records only"


def import_seeds(
    ctx: Context,
    path: Path,
    *,
    dataset: str,
    text_field: str = "text",
    label_field: str | None = None,
    labels: list[str] | None = None,
    fmt: str | None = None,
    skip_bad: bool = False,
    pipeline: PiiPipeline | None = None,
    subject_field: str | None = None,
    select_labels_dp: bool = False,
    public_data: bool = False,
) -> ImportSummary:
    """Import ``path`` as ``dataset``; raise :class:`BadInput` (database unchanged) on any bad input.

    ``labels``: the public label set of ``label_field``; records with another label are dropped and counted.
    ``select_labels_dp``: no declared set — choose it by DP partition selection (charged to every labelled record).
    ``public_data``: the operator declares the records themselves public (a published corpus): nothing is
    charged for them, their label set is public, and a prompt trained on them alone can initialise a DP run
    (``train --init-prompt``). The PII policy applies as to any import.
    """
    check_dataset_name(dataset)
    public = check_public_labels(labels, label_field)
    if select_labels_dp:
        check_dp_selection(labels, label_field, subject_field, public_data=public_data)
    if dataset_exists(ctx, dataset):
        raise _refuse_existing(dataset)
    read = read_seeds(path, fmt=fmt, text_field=text_field, label_field=label_field, subject_field=subject_field)
    if read.bad and not skip_bad:
        raise BadInput(bad_lines_message(read))
    if not read.records:
        raise BadInput(f"{path.name} has no importable records — check --text-field and the file's format")
    public = _label_set(read, public, label_field, public_data=public_data)
    n_label_dropped = _keep_declared(read, public, label_field)
    pipe = pipeline or PiiPipeline.from_context(ctx, dataset)
    label_bad = label_problems(pipe, read.records)
    if label_bad:
        read.bad = sorted([*read.bad, *label_bad], key=lambda b: b.line)
        if not skip_bad:
            raise BadInput(bad_lines_message(read))
        bad_lines = {b.line for b in label_bad}
        read.records = [r for r in read.records if r.line not in bad_lines]
        if not read.records:
            raise BadInput(f"{path.name} has no importable records left after skipping bad ones")
    # model-collapse guard: seeds that are this appliance's own earlier exports are flagged (or refused)
    matches = check_seed_provenance(ctx.db, [r.text for r in read.records], ctx.policy.curation)
    texts = pipe.process([r.text for r in read.records])
    summary = ImportSummary(
        dataset,
        read.fmt,
        read.source_sha256,
        n_read=len(read.records) + len(read.bad) + n_label_dropped,
        skipped_lines=[b.line for b in read.bad],
        skipped_reasons=[str(b) for b in read.bad],
        export_matches=[read.records[i].index for i in matches],
        n_label_dropped=n_label_dropped,
        labels_public=public,
        subject_field=subject_field,
        public_data=public_data,
    )
    kept = []
    for rec, res in zip(read.records, texts, strict=True):
        _count(summary, res)
        if res.dropped:
            summary.n_dropped += 1
            continue
        kept.append((rec, res, rec.label))
    if not kept:
        dropped_by = ", ".join(sorted(summary.dropped_by)) or "drop_record"
        raise BadInput(f"the PII policy dropped every record ({dropped_by}) — nothing to import; review pii.entities")
    # split on the redacted text with pseudonyms as <TYPE>: records identical after redaction share a split (never
    # train and holdout), and the same file splits the same way under any dataset name
    # with declared subjects, all of one person's records share a split too
    keys = [record_key(res.key_text if res.key_text is not None else res.text or "") for _, res, _ in kept]
    secret = load_key(ctx.ws.keys) if subject_field is not None else None
    subjects = [
        subject_unit(secret, rec.subject) if secret is not None and rec.subject is not None else None
        for rec, _, _ in kept
    ]
    splits = assign_splits(group_keys(keys, subjects), ctx.policy.privacy.holdout_fraction)
    rows = [
        _row(dataset, rec, res, label, split, subject)
        for (rec, res, label), split, subject in zip(kept, splits, subjects, strict=True)
    ]
    charge: Counter[Unit] | None = None
    if select_labels_dp:
        charge, rows = _select(ctx, summary, rows)
    if subject_field is not None:
        summary.n_subjects = len({r["subject_key"] for r in rows})
    summary.n_records = len(rows)
    summary.n_holdout = sum(1 for r in rows if r["split"] == "holdout")  # after the DP label choice dropped rows
    summary.n_train = summary.n_records - summary.n_holdout
    _store(
        ctx,
        summary,
        rows,
        text_field=text_field if read.fmt != "txt" else None,
        label_field=label_field,
        engine=pipe.engine.describe(),
        charge=charge,
    )
    return summary


def _keep_declared(read: ReadResult, public: list[str] | None, label_field: str | None) -> int:
    """Keep only the records whose label is in the declared set (if any); how many were dropped."""
    if public is None:
        return 0
    allowed = set(public)
    keep = [r for r in read.records if r.label in allowed]
    if not keep:
        raise BadInput(
            f"--labels {','.join(public)[:80]} matches no record's {label_field!r} — check the names"
            " (they are compared exactly) and --label-field"
        )
    dropped = len(read.records) - len(keep)
    read.records = keep
    return dropped


def _label_set(
    read: ReadResult, declared: list[str] | None, label_field: str | None, *, public_data: bool
) -> list[str] | None:
    """The public label set: the declared one; for a public corpus without one, every label its records hold
    (public with them)."""
    if not public_data or declared is not None or label_field is None:
        return declared
    return check_public_labels(sorted({r.label for r in read.records if r.label}) or None, label_field)


def check_dp_selection(
    labels: list[str] | None, label_field: str | None, subject_field: str | None, *, public_data: bool = False
) -> None:
    if public_data:
        raise BadInput("--public data needs no DP label selection: its labels are public — drop --labels dp")
    if label_field is None:
        raise BadInput("--labels dp chooses the label set of --label-field: pass --label-field F")
    if labels is not None:
        raise BadInput("--labels takes either the declared set (a,b,c or @FILE) or dp, not both")
    if subject_field is not None:
        raise BadInput(
            "--labels dp counts one label per record; with --subject-field declare the label set (--labels a,b,c)"
        )


_FIX = (
    "these records are already charged under another dataset name: declare the labels with --labels a,b,c"
    " instead (or keep them inside with --labels none: nothing is spent), or lower privacy.label_selection_epsilon"
)


def _select(ctx: Context, s: ImportSummary, rows: list[dict[str, Any]]) -> tuple[Counter[Unit], list[dict[str, Any]]]:
    """DP partition selection of the label set over ``rows`` (one label per record unit, its first in file
    order). Checks every unit's budget first (exit 3, nothing drawn); returns the units to charge and the rows
    whose label was selected (all rows, labels kept inside, when none was)."""
    pol = ctx.policy.privacy
    first: dict[str, str] = {}
    for r in rows:
        if r["label"] is not None:
            first.setdefault(str(r["unit_key"]), str(r["label"]))
    units: Counter[Unit] = Counter((RECORD, key) for key in first)
    n = len(rows)
    delta = pol.label_selection_delta if pol.label_selection_delta is not None else default_delta(n)
    if delta >= max_delta(n):
        raise BadInput(f"privacy.label_selection_delta {delta:g} is not below 1/n for {n} records — lower it")
    eps = pol.label_selection_epsilon
    BudgetLedger(ctx.db, pol).check_units(units, epsilon=eps, delta=delta, what="the label selection", fix=_FIX)
    sel = select_labels(first, epsilon=eps, delta=delta, rng=np.random.default_rng(secrets.randbits(128)))
    s.label_selection = sel
    s.labels_public = sel.labels
    if not sel.labels:
        return units, rows
    chosen = set(sel.labels)
    keep = [r for r in rows if r["label"] in chosen]
    s.n_label_dropped += len(rows) - len(keep)
    return units, keep


# Entity types that come from the NER model: on identifiers such as "fiat_currency_support" it tags
# nonsense, so labels are checked for the structured types only (e-mail, phone, SSN, card, IBAN, ...).
NER_TYPES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME"})


def label_problems(pipe: PiiPipeline, records: list[SeedRecord]) -> list[BadRecord]:
    """Labels are category names, stored as given: one that holds structured PII is a bad record."""
    distinct = sorted({r.label for r in records if r.label is not None})
    if not distinct:
        return []
    hits = {}
    for label, found in zip(distinct, pipe.scan(distinct), strict=True):
        types = sorted({f["type"] for f in found} - NER_TYPES)
        if types:
            hits[label] = types
    return [
        BadRecord(
            r.line, f"label holds PII ({', '.join(hits[r.label])}) — labels are stored as given: use category names"
        )
        for r in records
        if r.label in hits
    ]


def _count(summary: ImportSummary, res: PiiResult) -> None:
    for f in res.findings:
        summary.findings[f["type"]] = summary.findings.get(f["type"], 0) + 1
        summary.actions[f["type"]] = f["action"]
        if f["action"] == "drop_record":
            summary.dropped_by[f["type"]] = summary.dropped_by.get(f["type"], 0) + 1


def _row(dataset: str, rec: Any, res: PiiResult, label: str | None, split: str, subject: str | None) -> dict[str, Any]:
    """One ``records`` row: the redacted text, its hash, findings as types and offsets, its budget units."""
    text = res.text or ""
    return {
        "dataset": dataset,
        "source_index": rec.index,
        "text": text,
        "label": label,
        "split": split,
        "text_sha256": text_sha256(text),
        "findings": json.dumps(res.findings, separators=(",", ":"), sort_keys=True),
        "created_at": utc_now(),
        "unit_key": record_unit(res.key_text if res.key_text is not None else text),
        "subject_key": subject,
    }


def _store(
    ctx: Context,
    s: ImportSummary,
    rows: list[dict[str, Any]],
    *,
    text_field: str | None,
    label_field: str | None,
    engine: dict[str, Any],
    charge: Counter[Unit] | None = None,
) -> None:
    with transaction(ctx.db) as conn:
        if datasets.has(conn, s.dataset):
            raise _refuse_existing(s.dataset)
        datasets.insert_dataset(
            conn,
            {
                "name": s.dataset,
                "created_at": utc_now(),
                "text_field": text_field,
                "label_field": label_field,
                "source_sha256": s.source_sha256,
                "policy_sha256": ctx.policy_sha256,
                "n_records": s.n_records,
                "n_train": s.n_train,
                "n_holdout": s.n_holdout,
                "n_dropped": s.n_dropped,
                "subject_field": s.subject_field,
            },
        )
        datasets.insert_records(conn, rows)
        selection: dict[str, Any] | None = None
        if charge is not None and s.label_selection is not None:
            sel = s.label_selection
            charge_id = BudgetLedger(ctx.db, ctx.policy.privacy).charge_units_in_tx(
                conn, s.dataset, charge, epsilon=sel.epsilon, delta=sel.delta, accountant=MECHANISM,
                actor=ctx.actor, what="the label selection's charge", fix=_FIX,
            )  # fmt: skip
            selection = {**sel.audit(), "charge_id": charge_id}
        payload = {
            "dataset": s.dataset,
            "format": s.fmt,
            "source_sha256": s.source_sha256,
            "records_sha256": records_digest(rows),
            "splits_sha256": splits_digest(rows),
            "n_read": s.n_read,
            "n_records": s.n_records,
            "n_train": s.n_train,
            "n_holdout": s.n_holdout,
            "n_dropped": s.n_dropped,
            "n_label_dropped": s.n_label_dropped,
            "labels_public": s.labels_public,
            "label_selection": selection,
            "public_data": s.public_data,
            "budget_unit": "subject" if s.subject_field else "record",
            "subject_field": s.subject_field,
            "n_subjects": s.n_subjects,
            "units_sha256": record_keys_digest(rows),
            "n_skipped": len(s.skipped_lines),
            "n_export_matches": len(s.export_matches),
            "export_match_records": s.export_matches[:MAX_LINES_IN_EVENT],
            "skipped_lines": s.skipped_lines[:MAX_LINES_IN_EVENT],
            "holdout_fraction": ctx.policy.privacy.holdout_fraction,
            "findings": dict(sorted(s.findings.items())),
            "actions": dict(sorted(s.actions.items())),
            "pii_engine": engine,
            "model_sha256": engine.get("model_sha256"),
            "policy_sha256": ctx.policy_sha256,
        }
        ev = append_in_tx(conn, "seeds.import", payload, actor=ctx.actor)
    s.event_seq, s.event_hash = ev.seq, ev.hash
