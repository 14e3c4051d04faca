"""The `appliance` admin CLI: one Typer sub-app per pipeline stage.

Exit codes (kept exact for every command): 0 ok; 1 bad input or configuration; 2 usage;
3 refused by policy; 4 integrity failure.
"""

from __future__ import annotations

from pathlib import Path

import typer

from appliance import __version__
from appliance.cli import audit, batches, generate, init, models, policy
from appliance.cli import budget as budget_cli
from appliance.cli import curate as curate_cli
from appliance.cli import demo as demo_cli
from appliance.cli import evaluate as evaluate_cli
from appliance.cli import export as export_cli
from appliance.cli import probe as probe_cli
from appliance.cli import prompts as prompts_cli
from appliance.cli import seeds as seeds_cli
from appliance.cli import train as train_cli
from appliance.cli.common import ApplianceGroup, CliState

app = typer.Typer(
    cls=ApplianceGroup,
    help="Privacy-first synthetic text data appliance (air-gapped, audited).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"appliance {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", envvar="APPLIANCE_HOME", help="workspace directory (default ./.appliance)"
    ),
    actor: str | None = typer.Option(None, "--actor", help="who is acting (default: the OS user)"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print version"),
) -> None:
    """Privacy-first synthetic text data appliance."""
    ctx.obj = CliState(home=str(home) if home else None, actor=actor)


app.command("init")(init.init)
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(models.app, name="models")
app.add_typer(seeds_cli.app, name="seeds")
app.command("train")(train_cli.train_command)
app.add_typer(prompts_cli.app, name="prompts")
app.add_typer(budget_cli.app, name="budget")
app.command("generate")(generate.generate)
app.add_typer(batches.app, name="batches")
app.command("curate")(curate_cli.curate)
app.command("evaluate")(evaluate_cli.evaluate)
app.command("probe")(probe_cli.probe)
app.add_typer(export_cli.app, name="export")
app.command("demo")(demo_cli.demo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
