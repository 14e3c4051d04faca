"""`appliance budget show DATASET`: the dataset's privacy budget under basic composition."""

from __future__ import annotations

import typer
from rich.table import Table

from appliance.cli.common import console, new_app, print_json, state

app = new_app("Privacy budget per dataset (basic composition: the ε and δ of DP runs add up).")


@app.command("show")
def show(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="dataset name"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show the ε/δ spent on DATASET, the remaining budget and every charge."""
    from appliance.budget import BudgetLedger

    c = state(ctx).open()
    try:
        ledger = BudgetLedger(c.db, c.policy.privacy)
        view = ledger.view(dataset)
        charges = ledger.charges(dataset)
    finally:
        c.close()
    summary = {
        "dataset": dataset,
        "composition": "basic",
        "epsilon_spent": view.spent.epsilon,
        "delta_spent": view.spent.delta,
        "dp_runs": view.spent.runs,
        "reserved_runs": view.reserved_runs,
        "dataset_epsilon_cap": view.cap,
        "max_epsilon_per_run": view.max_per_run,
        "epsilon_remaining": view.remaining,
        "non_dp_runs": view.non_dp_runs,
        "charges": charges,
    }
    if as_json:
        print_json(summary)
        return
    console.print(f"dataset {dataset} — composition: basic (ε and δ of runs add up)")
    console.print(f"epsilon spent {view.spent.epsilon:.4f} of cap {view.cap:g}; remaining {view.remaining:.4f}")
    console.print(f"delta spent {view.spent.delta:.3g}; max epsilon per run {view.max_per_run:g}")
    console.print(
        f"DP runs {view.spent.runs} (in progress {view.reserved_runs}); non-DP control runs {view.non_dp_runs}"
    )
    if charges:
        table = Table("charge", "prompt", "ε", "δ", "accountant", "status", "actor", "created")
        for ch in charges:
            table.add_row(str(ch["id"]), ch["prompt_id"] or "-", f"{ch['epsilon']:.4f}", f"{ch['delta']:.3g}",
                          ch["accountant"], ch["status"], ch["actor"] or "-", ch["created_at"])  # fmt: skip
        console.print(table)
