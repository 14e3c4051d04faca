"""The `appliance` admin CLI: one Typer sub-app per pipeline stage.

Exit codes (kept exact for every command): 0 ok; 1 bad input or configuration; 2 usage;
3 refused by policy; 4 integrity failure.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import traceback
from pathlib import Path
from typing import Any

import click
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
from appliance.cli.common import ApplianceGroup, CliState, err_console
from appliance.errors import EXIT_BAD_INPUT

# A traceback prints the exception's text, which may quote a record; set this to 1 to see it while debugging.
TRACEBACK_ENV = "APPLIANCE_TRACEBACK"


def _where(exc: BaseException) -> str:
    """The innermost appliance frame of ``exc``'s traceback as ``module.py:line`` (no values, no locals)."""
    frames = [(Path(f.filename).as_posix(), f) for f in traceback.extract_tb(exc.__traceback__)]
    ours = [(name, f) for name, f in frames if "/appliance/" in name]
    if not ours:
        return "outside the appliance"
    name, f = ours[-1]
    return f"{name.rsplit('/appliance/', 1)[-1]}:{f.lineno} in {f.name}"


def last_resort_message(exc: BaseException) -> str:
    """One line for an unexpected error. Never the exception's text: it may quote a record (``'…' is not …``)."""
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in str(exc) or "busy" in str(exc):
            return "the workspace database is locked by another appliance command — wait for it to finish and retry"
        return f"the workspace database refused the operation ({_where(exc)}) — check disk space and permissions"
    if isinstance(exc, OSError) and exc.errno is not None:
        code = errno.errorcode.get(exc.errno, str(exc.errno))
        return (
            f"the operating system refused a file operation ({code}; {_where(exc)}) — check permissions and disk space"
        )
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"a stored JSON document is damaged (line {exc.lineno}, column {exc.colno}; {_where(exc)}) — "
            "restore it from a backup or rebuild it"
        )
    return (
        f"unexpected {type(exc).__name__} ({_where(exc)}) — report this line"
        f" (details are not printed: they may quote record text; {TRACEBACK_ENV}=1 prints the traceback)"
    )


# Typer's and Click's own exits (``typer.Exit`` is a RuntimeError) are control flow, never errors to rewrite.
_CONTROL_FLOW = (
    typer.Exit,
    typer.Abort,
    typer.TyperException,
    click.exceptions.Exit,
    click.exceptions.Abort,
    click.ClickException,
)


class RootGroup(ApplianceGroup):
    """The root group plus the last-resort handler: any unexpected error (a bug's TypeError included) is one line
    and exit 1 — its type and where, never its text or a traceback, which may quote a record.

    Typer's and Click's control flow (``Exit``, ``Abort``: RuntimeErrors) passes through untouched, and so do
    KeyboardInterrupt and SystemExit (not ``Exception``). ``APPLIANCE_TRACEBACK=1`` lets the error propagate with
    its traceback, for a developer on test data.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _CONTROL_FLOW:
            raise
        except Exception as exc:
            if os.environ.get(TRACEBACK_ENV) == "1":
                raise
            err_console.print(f"error: {last_resort_message(exc)}", markup=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None


app = typer.Typer(
    cls=RootGroup,
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
    actor: str | None = typer.Option(
        None, "--actor", help="who is acting (default: $APPLIANCE_ACTOR, else the OS user)"
    ),
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
