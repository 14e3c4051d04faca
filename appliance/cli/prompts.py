"""`appliance prompts list|show ID`: trained soft prompts and their privacy facts."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from appliance.cli.common import console, new_app, print_json, state
from appliance.errors import NotFound
from appliance.store import prompts

app = new_app("List and inspect trained soft prompts (ε, δ, model, artifact hash).")

_COLUMNS = "id, dataset, model_name, k, dp, exportable, epsilon, delta, steps, train_loss, holdout_loss, created_at"


def _num(x: float | None, spec: str = ".4g") -> str:
    return "-" if x is None else format(x, spec)


@app.command("list")
def list_(
    ctx: typer.Context,
    dataset: str | None = typer.Option(None, "--dataset", help="only prompts trained on this dataset"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List trained soft prompts, newest first."""
    c = state(ctx).open()
    try:
        rows = prompts.listing(c.db, dataset, select=_COLUMNS)
    finally:
        c.close()
    if as_json:
        print_json({"prompts": rows})
        return
    table = Table("id", "dataset", "model", "k", "DP", "ε", "δ", "steps", "holdout loss", "created")
    for r in rows:
        dp = "yes" if r["dp"] else "NO"
        table.add_row(r["id"], r["dataset"], r["model_name"], str(r["k"]), dp, _num(r["epsilon"]), _num(r["delta"]),
                      str(r["steps"]), _num(r["holdout_loss"]), r["created_at"])  # fmt: skip
    console.print(table)
    if any(not r["dp"] for r in rows):
        console.print("DP = NO: non-DP control run — no privacy guarantee, never exportable")
    if not rows:
        console.print("no prompts yet — run `appliance train DATASET --epsilon E`")


@app.command("show")
def show(
    ctx: typer.Context,
    prompt_id: str = typer.Argument(..., help="prompt id (see `appliance prompts list`)"),
    as_json: bool = typer.Option(True, "--json", hidden=True, help="always JSON (accepted for uniformity)"),
) -> None:
    """Show one prompt's row, metadata and privacy charge as JSON (canary secrets are never shown)."""
    c = state(ctx).open()
    try:
        out = prompts.get(c.db, prompt_id)
        if out is None:
            raise NotFound(f"unknown prompt {prompt_id!r} — see `appliance prompts list`")
        out["meta"] = json.loads(out["meta"] or "{}")
        charge_columns = ("epsilon", "delta", "accountant", "composition", "status", "settled_at")
        out["privacy_charge"] = prompts.charges(c.db, charge_columns, prompt_id=prompt_id)
    finally:
        c.close()
    print_json(out)
