"""`appliance seeds import|scan|list|show`: bring seed data in through the PII stage.

Output shows types, counts, offsets and redacted text only — never a raw seed or PII value.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from appliance.cli.common import console, err_console, new_app, print_json, state
from appliance.errors import BadInput, NotFound
from appliance.store import datasets

app = new_app("Import, scan and inspect seed datasets (PII is scanned and redacted before storage).")

MAX_SKIPPED_SHOWN = 50


class Format(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    txt = "txt"


FILE_ARG = typer.Argument(..., help="seed file: JSONL, CSV (with header) or TXT (one record per line)")
TEXT_FIELD = typer.Option("text", "--text-field", help="JSONL key / CSV column holding the text")
FORMAT = typer.Option(None, "--format", help="file format (default: from the extension)")


LABELS_DP = "dp"  # --labels dp (the default with --label-field): DP partition selection instead of a declared set
LABELS_NONE = "none"  # --labels none: the labels stay inside (for evaluation), none is released, nothing is spent


def parse_labels(spec: str | None) -> list[str] | None:
    """``a,b,c`` or ``@FILE`` (one label per line, or comma-separated) into a list; None when not given."""
    if spec is None:
        return None
    if spec.startswith("@"):
        path = Path(spec[1:]).expanduser()
        try:
            spec = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"--labels: cannot read {path}: {exc.__class__.__name__}") from None
    return [p for line in spec.splitlines() for p in line.split(",")]


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = FILE_ARG,
    dataset: str = typer.Option(..., "--dataset", help="name of the new dataset"),
    text_field: str = TEXT_FIELD,
    label_field: str | None = typer.Option(None, "--label-field", help="JSONL key / CSV column holding a label"),
    labels: str | None = typer.Option(
        None,
        "--labels",
        help="the public label set: a,b,c or @FILE (one per line); records with another label, or none, are dropped."
        " Not given (or dp): the set is chosen by DP partition selection (privacy.label_selection_epsilon, charged"
        " to every labelled record; with --subject-field the labels stay inside instead). none: labels stay inside,"
        " never exported, nothing spent. A label named dp or none is declared with @FILE",
    ),
    subject_field: str | None = typer.Option(
        None,
        "--subject-field",
        help="JSONL key / CSV column holding the id of the person a record is about: the privacy budget then"
        " follows each person (every record needs one; the id is never stored, only its keyed hash)",
    ),
    fmt: Format | None = FORMAT,
    skip_bad: bool = typer.Option(False, "--skip-bad", help="skip unreadable records (reported by line number)"),
    public: bool = typer.Option(
        False,
        "--public",
        help="declare the records themselves public (a published corpus, never customer data): nothing is charged"
        " for them, their labels are public, and a prompt trained on them (`train --no-dp`) can start a DP run"
        " (`train --init-prompt`) as its public prior",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
) -> None:
    """Scan a seed file with Presidio, apply the PII policy and store the redacted records as a dataset."""
    from appliance.ingest import import_seeds

    # issue 15 §1: a released label is declared public schema or chosen by DP partition selection. Without
    # --labels the selection runs (its ε is charged and said); with --subject-field it needs a declared set
    # (one subject's records could vote for several labels), so there the labels stay inside.
    if labels == LABELS_NONE and label_field is None:
        raise BadInput("--labels none keeps the labels of --label-field inside: pass --label-field F")
    select_dp = labels == LABELS_DP or (
        labels is None and label_field is not None and subject_field is None and not public
    )
    c = state(ctx).open()
    try:
        s = import_seeds(
            c,
            file,
            dataset=dataset,
            text_field=text_field,
            label_field=label_field,
            labels=None if labels in (LABELS_DP, LABELS_NONE) else parse_labels(labels),
            fmt=fmt.value if fmt else None,
            skip_bad=skip_bad,
            subject_field=subject_field,
            select_labels_dp=select_dp,
            public_data=public,
        )
    finally:
        c.close()
    sel = s.label_selection
    if sel is not None:
        chosen = ", ".join(sel.labels) if sel.labels else "none — every record keeps its label, inside"
        err_console.print(
            f"labels chosen by DP partition selection (ε {sel.epsilon:g}, δ {sel.delta:.3g}, charged to every"
            f" labelled record): {chosen} — declare the set with --labels a,b,c to spend nothing, or --labels none",
            markup=False,
        )
    if label_field is not None and not s.labels_public:
        err_console.print(
            f"note: the labels of {label_field!r} were not declared public (--labels a,b,c) or selected by DP"
            " partition selection: they stay inside, and the gate refuses to export labelled outputs of this dataset",
            markup=False,
        )
    for reason in s.skipped_reasons[:MAX_SKIPPED_SHOWN]:
        err_console.print(f"skipped {reason}", markup=False)
    if len(s.skipped_reasons) > MAX_SKIPPED_SHOWN:
        err_console.print(f"... and {len(s.skipped_reasons) - MAX_SKIPPED_SHOWN} more skipped lines", markup=False)
    if as_json:
        print_json(
            {
                "dataset": s.dataset,
                "format": s.fmt,
                "source_sha256": s.source_sha256,
                "read": s.n_read,
                "skipped_lines": s.skipped_lines,
                "dropped": s.n_dropped,
                "label_dropped": s.n_label_dropped,
                "labels_public": s.labels_public,
                "public_data": s.public_data,
                "label_selection": None if sel is None else {"epsilon": sel.epsilon, "delta": sel.delta},
                "budget_unit": "subject" if s.subject_field else "record",
                "subjects": s.n_subjects,
                "stored": s.n_records,
                "train": s.n_train,
                "holdout": s.n_holdout,
                "findings": s.findings,
                "actions": s.actions,
                "dropped_by": s.dropped_by,
                "export_matches": len(s.export_matches),
                "event": {"seq": s.event_seq, "hash": s.event_hash},
            }
        )
        return
    table = Table(title=f"imported dataset {s.dataset}", show_header=True)
    table.add_column("records")
    table.add_column("count", justify="right")
    for name, value in (
        ("read", s.n_read),
        ("skipped (bad input)", len(s.skipped_lines)),
        ("dropped (label not selected)" if sel else "dropped (label not in --labels)", s.n_label_dropped),
        ("dropped (policy)", s.n_dropped),
        ("stored", s.n_records),
        ("  train", s.n_train),
        ("  holdout", s.n_holdout),
        *((("subjects (budget unit)", s.n_subjects),) if s.n_subjects is not None else ()),
    ):
        table.add_row(name, str(value))
    console.print(table)
    pii = Table(title="PII findings", show_header=True)
    for col in ("type", "findings", "action", "records dropped"):
        pii.add_column(col, justify="right" if col in ("findings", "records dropped") else "left")
    for etype in sorted(s.findings):
        pii.add_row(etype, str(s.findings[etype]), s.actions[etype], str(s.dropped_by.get(etype, 0)))
    if not s.findings:
        pii.add_row("(none)", "0", "-", "0")
    console.print(pii)
    if s.export_matches:
        shown = ", ".join(str(i) for i in s.export_matches[:MAX_SKIPPED_SHOWN])
        err_console.print(
            f"warning: {len(s.export_matches)} records match records this appliance exported earlier"
            f" (synthetic output imported as seeds; record indices {shown})",
            markup=False,
        )
    if s.public_data:
        console.print(
            f"declared public data ({len(s.labels_public or [])} public labels): nothing is charged for these records;"
            f" train a public prior on them with `appliance train {s.dataset} --no-dp`",
            markup=False,
        )
    console.print(f"audit event {s.event_seq} {s.event_hash}", markup=False)


@app.command("scan")
def scan(
    ctx: typer.Context,
    file: Path = FILE_ARG,
    text_field: str = TEXT_FIELD,
    fmt: Format | None = FORMAT,
    as_json: bool = typer.Option(False, "--json", help="one JSON object per record"),
) -> None:
    """Scan a seed file for PII without importing it (types, offsets and scores only, never values)."""
    from appliance.ingest import read_seeds
    from appliance.ingest.importer import bad_lines_message
    from appliance.pii import PiiPipeline

    c = state(ctx).open()
    try:
        read = read_seeds(file, fmt=fmt.value if fmt else None, text_field=text_field)
        if read.bad:
            raise BadInput(bad_lines_message(read).replace(", or pass --skip-bad to import the good records only", ""))
        pipe = PiiPipeline.from_context(c, dataset="_scan")
        results = pipe.scan([r.text for r in read.records])
        counts: dict[str, int] = {}
        for found in results:
            for f in found:
                counts[f["type"]] = counts.get(f["type"], 0) + 1
        desc = pipe.engine.describe()
        c.record(
            "seeds.scan",
            {
                "source_sha256": read.source_sha256,
                "n_records": len(read.records),
                "findings": counts,
                "pii_engine": desc,
                "model_sha256": desc.get("model_sha256"),
            },
        )
    finally:
        c.close()
    if as_json:
        for rec, found in zip(read.records, results, strict=True):
            ents = [{k: f[k] for k in ("type", "start", "end", "score")} for f in found]
            typer.echo(json.dumps({"index": rec.index, "entities": ents}, separators=(",", ":")))
        return
    table = Table(title=f"PII scan of {file.name}", show_header=True)
    for col in ("index", "line", "type", "start", "end", "score", "action"):
        table.add_column(col)
    for rec, found in zip(read.records, results, strict=True):
        for f in found:
            table.add_row(
                str(rec.index),
                str(rec.line),
                f["type"],
                str(f["start"]),
                str(f["end"]),
                f"{f['score']:.2f}",
                f["action"],
            )
    console.print(table)
    total = sum(counts.values())
    by_type = ", ".join(f"{t} {n}" for t, n in sorted(counts.items())) or "none"
    console.print(f"{len(read.records)} records, {total} findings ({by_type})", markup=False)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List imported datasets with their record counts."""
    c = state(ctx).open()
    try:
        found = datasets.listing(c.db)
        columns = ("name", "n_records", "n_train", "n_holdout", "n_dropped", "created_at", "n_labels")
        rows = [tuple(d[k] for k in columns) for d in found]
    finally:
        c.close()
    keys = ("name", "records", "train", "holdout", "dropped", "created_at", "labels")
    if as_json:
        print_json({"datasets": [dict(zip(keys, r, strict=True)) for r in rows]})
        return
    if not rows:
        console.print("no datasets yet — run `appliance seeds import FILE --dataset NAME`", markup=False)
        return
    table = Table(show_header=True)
    for k in keys:
        table.add_column(k)
    for r in rows:
        table.add_row(*(Text(str(v)) for v in r))
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="dataset name"),
    limit: int = typer.Option(20, "--limit", min=1, help="show at most N records"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
) -> None:
    """Show a dataset's stored (redacted) records."""
    c = state(ctx).open()
    try:
        if not datasets.has(c.db, dataset):
            raise NotFound(f"no dataset {dataset!r} — see `appliance seeds list`")
        rows = [(r["id"], r["split"], r["label"], r["text"]) for r in datasets.records(c.db, dataset, limit=limit)]
    finally:
        c.close()
    if as_json:
        keys = ("id", "split", "label", "text")
        print_json({"dataset": dataset, "records": [dict(zip(keys, r, strict=True)) for r in rows]})
        return
    table = Table(title=f"dataset {dataset} (redacted)", show_header=True, show_lines=True)
    for col in ("id", "split", "label", "text"):
        table.add_column(col, overflow="fold")
    for rid, split, label, text in rows:
        table.add_row(str(rid), split, Text(label or ""), Text(text))
    console.print(table)
