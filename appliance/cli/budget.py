"""`appliance budget show DATASET`: the dataset's privacy budget under basic composition.

The cap is per record (or per declared subject): the table shows the ε and δ of the dataset's most-charged
record, counting every run that trained on it under any dataset name.
"""

from __future__ import annotations

import typer
from rich.table import Table

from appliance.cli.common import console, new_app, print_json, state

app = new_app("Privacy budget per record (basic composition: the ε and δ of every DP run on a record add up).")


@app.command("show")
def show(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="dataset name"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show the ε/δ of DATASET's most-charged record, the ε/δ of its runs, the remaining budget and every charge."""
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
        "most_charged_unit": view.most_charged_kind,
        "most_charged_epsilon": view.most_charged.epsilon if view.most_charged else 0.0,
        "most_charged_delta": view.most_charged.delta if view.most_charged else 0.0,
        "dataset_epsilon_cap": view.cap,
        "max_total_delta": view.delta_cap,
        "max_epsilon_per_run": view.max_per_run,
        "epsilon_remaining": view.remaining,
        "non_dp_runs": view.non_dp_runs,
        "charges": charges,
    }
    if as_json:
        print_json(summary)
        return
    unit = view.most_charged_kind or "record"
    worst = view.most_charged or view.spent
    console.print(f"dataset {dataset} — composition: basic (ε and δ of runs add up); caps are per {unit}")
    console.print(
        f"most-charged {unit}: epsilon {worst.epsilon:.4f} of cap {view.cap:g} (any dataset name), delta"
        f" {worst.delta:.3g} of cap {view.delta_cap:g}; remaining {view.remaining:.4f}"
    )
    console.print(
        f"runs on this dataset: epsilon {view.spent.epsilon:.4f}, delta {view.spent.delta:.3g};"
        f" max epsilon per run {view.max_per_run:g}"
    )
    console.print(
        f"DP runs {view.spent.runs} (in progress {view.reserved_runs}); non-DP control runs {view.non_dp_runs}"
    )
    if charges:
        table = Table("charge", "prompt", "ε", "δ", "units", "accountant", "status", "actor", "created")
        for ch in charges:
            table.add_row(str(ch["id"]), ch["prompt_id"] or "-", f"{ch['epsilon']:.4f}", f"{ch['delta']:.3g}",
                          str(ch["n_units"] or "-"), ch["accountant"], ch["status"], ch["actor"] or "-",
                          ch["created_at"])  # fmt: skip
        console.print(table)
