"""`appliance curate BATCH [--json]`: mark every output of a batch kept or dropped, with a reason."""

from __future__ import annotations

import typer
from rich.table import Table

from appliance.cli.common import console, print_json, state


def curate(
    ctx: typer.Context,
    batch: str = typer.Argument(..., help="batch id (see `appliance batches list`)"),
    as_json: bool = typer.Option(False, "--json", help="print the counts as a JSON object"),
) -> None:
    """Curate a batch: drop PII, low-quality and duplicate outputs (marked, never deleted); count seed overlap."""
    from appliance.curate import curate_batch

    c = state(ctx).open()
    try:
        report = curate_batch(c, batch)
    finally:
        c.close()
    if as_json:
        print_json(report.as_dict())
        return
    table = Table(title=f"curation of {report.batch_id} ({report.dataset})")
    table.add_column("outcome")
    table.add_column("records", justify="right")
    table.add_row("kept", str(report.n_kept))
    for reason, n in report.reasons.items():
        table.add_row(f"dropped: {reason}", str(n))
    table.add_row("total", str(report.n_total))
    console.print(table)
    console.print(
        f"seed n-gram hits {report.leak_hits} (kept {report.kept_leak_hits}, in {report.kept_leaking_outputs}"
        f" outputs; chance explains {report.leak_allowance}: more refuses the export); "
        f"PII hits {report.pii_hits} (kept {report.kept_pii_hits}); audit event {report.event_seq}",
        markup=False,
    )
    note = _selection_note(report.dp_selection)
    if note:
        console.print(note, markup=False)


def _selection_note(info: dict[str, object]) -> str | None:
    """One line on curation's DP selection (curation.dp_selection), when it applied or could not."""
    state_ = info.get("dp_selection")
    if state_ == "applied":
        return (
            f"DP selection: kept {info['kept']} of {info['candidates']} filtered outputs, in proportion to the seeds'"
            " noisy histogram (its cost is inside the prompt's ε)"
        )
    if state_ == "reused":
        return f"DP selection: the choice released in audit event {info['event_seq']} applied again"
    if state_ == "spent":
        return (
            f"WARNING: this prompt's DP selection was spent on batch {info['spent_on_batch']}; every filtered output"
            " of this batch is kept. Curate that batch, or train a new prompt for a new selection."
        )
    if state_ == "not_reserved":
        return (
            "WARNING: curation.dp_selection is enabled but this batch's prompt reserved no DP selection (it was"
            " trained without it); every filtered output is kept. Train again with it enabled."
        )
    return None
