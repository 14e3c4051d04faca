"""`appliance prompts list|show ID`: trained soft prompts and their privacy facts."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from appliance.cli.common import console, new_app, print_json, state
from appliance.errors import NotFound

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
        sql, args = f"SELECT {_COLUMNS} FROM prompts", ()
        if dataset:
            sql, args = sql + " WHERE dataset = ?", (dataset,)
        cur = c.db.conn.execute(sql + " ORDER BY created_at DESC, rowid DESC", args)
        rows = [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur]
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
        cur = c.db.conn.execute("SELECT * FROM prompts WHERE id = ?", (prompt_id,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"unknown prompt {prompt_id!r} — see `appliance prompts list`")
        out = dict(zip([d[0] for d in cur.description], row, strict=True))
        out["meta"] = json.loads(out["meta"] or "{}")
        cur = c.db.conn.execute(
            "SELECT epsilon, delta, accountant, composition, status, settled_at FROM privacy_charges"
            " WHERE prompt_id = ?",
            (prompt_id,),
        )
        out["privacy_charge"] = [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur]
    finally:
        c.close()
    print_json(out)
