"""`appliance batches list|show`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import typer
from rich.table import Table

from appliance.cli.common import console, new_app, print_json, state
from appliance.errors import BadInput
from appliance.generate import store

app = new_app("Inspect generated batches and their outputs.")


def _tps(row: dict[str, Any]) -> float:
    return row["n_tokens"] / row["gen_seconds"] if row.get("gen_seconds") else 0.0


@app.command("list")
def list_(
    ctx: typer.Context,
    dataset: str | None = typer.Option(None, "--dataset", help="only batches of this dataset"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List batches: dataset, mode, status, outputs stored of requested, tokens/s (--json: everything)."""
    c = state(ctx).open()
    try:
        rows = store.list_batches(c.db, dataset)
    finally:
        c.close()
    if as_json:
        print_json({"batches": [{**r, "tokens_per_s": round(_tps(r), 2)} for r in rows]})
        return
    t = Table("id", "dataset", "mode", "status", "outputs", "tokens/s")  # more with --json or `batches show`
    for r in rows:
        done = f"{r['n_outputs']}/{r['n_requested']}"
        t.add_row(r["id"], r["dataset"], r["mode"], r["status"], done, f"{_tps(r):.1f}")
    console.print(t)


@app.command("show")
def show(
    ctx: typer.Context,
    batch_id: str = typer.Argument(..., help="batch id (see `appliance batches list`)"),
    limit: int | None = typer.Option(None, "--limit", help="show at most N outputs"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show a batch's settings and its outputs (text after the PII policy)."""
    if limit is not None and limit < 0:
        raise BadInput("--limit must be zero or more")
    c = state(ctx).open()
    try:
        row = store.get_batch(c.db, batch_id)
        n_stored = len(store.done_indices(c.db, batch_id))
        outputs = store.get_outputs(c.db, batch_id, limit)
    finally:
        c.close()
    row = {**row, "n_outputs": n_stored, "tokens_per_s": round(_tps(row), 2)}
    if as_json:
        print_json({"batch": row, "outputs": [asdict(o) for o in outputs]})
        return
    for key in (
        "id",
        "dataset",
        "mode",
        "prompt_id",
        "label",
        "model_name",
        "model_sha256",
        "status",
        "exportable",
        "n_requested",
        "n_outputs",
        "n_tokens",
        "tokens_per_s",
        "created_at",
        "finished_at",
    ):
        console.print(f"{key:>14}: {row[key]}", markup=False)
    console.print(f"{'params':>14}: {row['params']}", markup=False)
    t = Table("idx", "label", "status", "tokens", "finish", "findings", "text")
    for o in outputs:
        t.add_row(
            str(o.idx), o.label or "-", o.status, str(o.n_tokens), o.finish_reason or "-", str(len(o.findings)), o.text
        )
    console.print(t)
