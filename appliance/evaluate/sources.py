"""What an evaluation compares: a batch's curated-kept outputs, and a reference (holdout split or file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.context import Context
from appliance.errors import BadInput
from appliance.store import batches, datasets, results
from appliance.store.results import HOLDOUT


@dataclass(frozen=True)
class Texts:
    texts: list[str]
    labels: list[str | None]

    def labeled(self) -> tuple[list[str], list[str]]:
        pairs = [(t, lab) for t, lab in zip(self.texts, self.labels, strict=True) if lab is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]


def kept_outputs(ctx: Context, batch_id: str) -> tuple[dict[str, Any], dict[str, Any], Texts]:
    """(batch, latest curation, kept outputs); exit 1 telling to curate when the batch is not curated."""
    batch = batches.require(ctx.db, batch_id)
    curation = results.latest_curation(ctx.db, batch_id)
    uncurated = batches.count_outputs(ctx.db, batch_id, "new")
    if curation is None:
        raise BadInput(f"batch {batch_id} has not been curated — run `appliance curate {batch_id}` first")
    if uncurated:
        raise BadInput(
            f"batch {batch_id} has {uncurated} outputs added since its last curation"
            f" — run `appliance curate {batch_id}` again"
        )
    rows = batches.kept(ctx.db, batch_id)
    if len(rows) < 2:
        raise BadInput(
            f"batch {batch_id} has {len(rows)} kept outputs; evaluation needs at least 2"
            " — generate more (`appliance generate DATASET --n N`) and curate again"
        )
    return batch, curation, Texts([r["text"] for r in rows], [r["label"] for r in rows])


def split_records(ctx: Context, dataset: str, split: str) -> Texts:
    rows = datasets.split_rows(ctx.db, dataset, split)
    return Texts([r["text"] for r in rows], [r["label"] for r in rows])


def reference_texts(ctx: Context, dataset: str, reference: str) -> tuple[str, Texts]:
    """(description for the record, texts): the dataset's holdout split, or a JSONL/CSV/TXT file.

    A file is read in memory only; the record and the audit event keep its SHA-256, never its text.
    """
    if reference == HOLDOUT:
        ref = split_records(ctx, dataset, "holdout")
        if len(ref.texts) < 2:
            raise BadInput(f"dataset {dataset!r} has {len(ref.texts)} holdout records; pass --reference FILE instead")
        return HOLDOUT, ref
    from appliance.ingest.readers import read_seeds

    path = Path(reference)
    if not path.is_file():
        raise BadInput(f"--reference must be 'holdout' or a readable JSONL/CSV/TXT file; {path} is neither")
    text_field = datasets.field(ctx.db, dataset, "text_field") or "text"
    read = read_seeds(path, text_field=text_field)
    if read.bad:
        raise BadInput(f"reference file: {read.bad[0]} — fix the file (text field {text_field!r})")
    if len(read.records) < 2:
        raise BadInput("the reference file needs at least 2 records")
    return f"file:{read.source_sha256}", Texts([r.text for r in read.records], [None] * len(read.records))
