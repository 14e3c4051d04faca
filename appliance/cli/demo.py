"""`appliance demo [--home DIR] [--quick]`: the whole pipeline on the shipped sample, in a fresh workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from appliance.cli.common import console, print_json, state

DEFAULT_DEMO_HOME = ".appliance-demo"


def first_records(path: Path, n: int) -> list[dict[str, Any]]:
    """The first ``n`` records of a JSON Lines export (text and label), for a person to read."""
    import json

    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                out.append({"text": " ".join(str(rec.get("text", "")).split()), "label": rec.get("label")})
            if len(out) >= n:
                break
    return out


def demo(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help=f"fresh workspace for the demo (default: the global --home, else ./{DEFAULT_DEMO_HOME})"
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="one epoch, fewer records, and the quality floor lifted in its workspace (the air-gap test uses this)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
) -> None:
    """Run init → public prior → import → train (ε=4) → generate → curate → evaluate → probe → export → report →
    verify."""
    from appliance.cli.demo_run import run_demo
    from appliance.demo.settings import DEMO_POLICY_KEYS, FULL, PUBLIC_DATASET, QUICK

    st = state(ctx)
    where = Path(home or st.home or DEFAULT_DEMO_HOME)
    settings = QUICK if quick else FULL
    console.print(
        f"appliance demo{' --quick' if quick else ''}: BANKING77 sample (720 queries, 6 intents, CC BY 4.0, "
        f"fake PII planted), its DP run started from a public prior (2,360 public queries of 59 other intents), in"
        f" {where.expanduser().resolve()}",
        markup=False,
    )
    res = run_demo(where, settings, actor=st.actor, echo=lambda line: console.print(line, markup=False))
    if res.refused:
        console.print(
            f"\ndemo finished in {res.seconds / 60:.1f} min; the gate REFUSED the export (exit 3, reasons above and"
            f" in the report): nothing left the building. The batch's kept outputs stay inside — read them with"
            f" `appliance --home {res.home} batches show {res.batch_id}`; the compliance report is {res.report_path}.",
            markup=False,
        )
        raise typer.Exit(res.exit_code)
    if not res.ok:
        failed = res.steps[-1]
        console.print(f"\ndemo stopped at step {failed.name!r} (exit {failed.exit_code})", markup=False)
        raise typer.Exit(res.exit_code)
    if as_json:
        print_json(
            {
                "ok": True,
                "home": str(res.home),
                "minutes": round(res.seconds / 60, 2),
                "export": str(res.export_path),
                "manifest": str(res.manifest_path),
                "report": str(res.report_path),
                "steps": [s.name for s in res.steps],
            }
        )
        return
    console.print(f"\ndemo finished in {res.seconds / 60:.1f} min — every step passed", markup=False)
    shown = first_records(res.export_path, 8) if res.export_path else []
    if shown:
        console.print(
            f"\nthe first {len(shown)} exported records (read them: this is what leaves the building):", markup=False
        )
        for rec in shown:
            label = f"[{rec['label']}] " if rec.get("label") else ""
            console.print(f"  {label}{rec['text']}", markup=False)
    console.print(f"  export    {res.export_path}", markup=False)
    console.print(f"  manifest  {res.manifest_path}", markup=False)
    console.print(f"  report    {res.report_path}", markup=False)
    console.print(f"  workspace {res.home} (audit log: appliance --home {res.home} audit log)", markup=False)
    console.print(
        f"  prior     {res.prior_id}, trained without DP on the public corpus {PUBLIC_DATASET} alone; the DP prompt"
        f" {res.prompt_id} started from it",
        markup=False,
    )
    console.print(
        f"  policy    the shipped default except {', '.join(DEMO_POLICY_KEYS)} (why: step 2 above)",
        markup=False,
    )
