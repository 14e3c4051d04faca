"""`appliance export BATCH --out PATH [--format jsonl|csv|parquet]`, `export request BATCH`, `export approve ID`.

``export`` is both a command and a group: :class:`DefaultCommandGroup` sends any first argument that is
not a sub-command name (a batch id, or an option) to the ``run`` command, so ``appliance export BATCH
--out P`` and ``appliance export run BATCH --out P`` are the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from appliance.cli.common import console, print_json, state
from appliance.export.writers import FORMATS

if TYPE_CHECKING:  # typer vendors click: TyperGroup.parse_args takes its Context, not the click package's
    from typer._click.core import Context as ClickContext


class DefaultCommandGroup(TyperGroup):
    """A group whose first argument, when not a sub-command, goes to the default command ``run``."""

    default_command = "run"

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Export a batch through the gate (`appliance export BATCH --out PATH`), with four-eyes requests.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.command("run")
def run(
    ctx: typer.Context,
    batch: str = typer.Argument(..., help="batch id (see `appliance batches list`)"),
    out: Path = typer.Option(..., "--out", help="file to write; PATH.manifest.json is written beside it"),
    fmt: str = typer.Option("jsonl", "--format", help=f"one of {', '.join(FORMATS)}"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Export a batch's kept outputs if every gate check passes (exit 3 with the failed checks if not)."""
    from appliance.export.service import export_batch

    c = state(ctx).open()
    try:
        res = export_batch(c, batch, out, fmt.lower())
    finally:
        c.close()
    if as_json:
        print_json(res.as_dict())
        return
    if res.probe_ran:
        console.print(f"probes run for {batch}", markup=False)
    gate = "passed" if res.decision.enabled else "DISABLED by policy (audited)"
    console.print(f"gate {gate}: {len(res.decision.checks)} checks", markup=False)
    console.print(f"exported {res.n_records} records to {res.path} ({res.file_sha256})", markup=False)
    console.print(f"manifest {res.manifest_path} (signed; audit head seq in manifest)", markup=False)


@app.command("request")
def request(
    ctx: typer.Context,
    batch: str = typer.Argument(..., help="batch id to request an export of"),
    as_json: bool = typer.Option(False, "--json", help="print the request as JSON"),
) -> None:
    """Request a four-eyes export of a batch (another actor must approve it)."""
    from appliance.export.service import get_batch
    from appliance.gate import approval

    c = state(ctx).open()
    try:
        get_batch(c, batch)
        row = approval.request(c, batch)
    finally:
        c.close()
    _show(row, as_json, f"export request {row['id']} for batch {batch} by {row['requested_by']} — pending approval")


@app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: str = typer.Argument(..., help="request id from `appliance export request`"),
    as_json: bool = typer.Option(False, "--json", help="print the request as JSON"),
) -> None:
    """Approve another actor's export request (approving your own is refused, exit 3)."""
    from appliance.gate import approval

    c = state(ctx).open()
    try:
        row = approval.approve(c, request_id)
    finally:
        c.close()
    _show(
        row,
        as_json,
        f"export request {request_id} approved by {row['approved_by']}; "
        f"now run `appliance export {row['batch_id']} --out PATH`",
    )


def _show(row: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        print_json(row)
    else:
        console.print(line, markup=False)
