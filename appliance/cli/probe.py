"""`appliance probe BATCH [--json]`: run the privacy probes on a batch and store the result."""

from __future__ import annotations

import typer

from appliance.cli.common import console, print_json, state


def _fmt(x: object) -> str:
    return "n/a" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def probe(
    ctx: typer.Context,
    batch: str = typer.Argument(..., help="batch id (see `appliance batches list`)"),
    as_json: bool = typer.Option(False, "--json", help="print the full probe record as JSON"),
) -> None:
    """Run membership inference, canary exposure and DCR probes on a batch; print them against the gate's thresholds."""
    from appliance.probes.probes import explain
    from appliance.probes.runner import run_probes

    c = state(ctx).open()
    try:
        rec = run_probes(c, batch)
        g = c.policy.gate
    finally:
        c.close()
    if as_json:
        print_json(rec.as_dict())
        return
    s = rec.summary
    rows = [
        ("MIA AUC (best attack)", s["mia_auc"], "(point estimate)"),
        ("  95% upper bound (any attack)", s["mia_auc_upper"], f"<= {g.max_mia_auc}"),
        ("TPR at 1% FPR", s["tpr_at_1pct_fpr"], "(point estimate)"),
        ("  95% upper bound", s["tpr_at_1pct_fpr_upper"], f"<= {g.max_tpr_at_1pct_fpr}"),
        ("canary exposure, bits (max)", s["canary_exposure_bits"], f"<= {g.max_canary_exposure_bits}"),
        ("outputs holding a canary", s["canary_output_hits"], f"<= {g.max_canary_output_hits}"),
        ("DCR ratio members/holdout", s["dcr_ratio"], "(point estimate)"),
        ("  95% lower bound", s["dcr_ratio_lower"], f">= {g.min_dcr_ratio}"),
        ("DCR attack AUC", s["dcr_attack_auc"], "(reported)"),
    ]
    console.print(f"probe {rec.id} for batch {batch} ({rec.seconds:.1f} s, audit seq {rec.event_seq})", markup=False)
    for name, val, th in rows:
        console.print(f"  {name:<30} {_fmt(val):>8}   gate {th}", markup=False)
    for name, r in rec.metrics.items():
        if isinstance(r, dict) and r.get("status") == "not_applicable":
            console.print(f"  {name}: not applicable — {explain(r['reason'])}", markup=False)
