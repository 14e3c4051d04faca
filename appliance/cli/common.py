"""Shared CLI plumbing: the root group that turns appliance errors into exit codes, and state."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from appliance.config import Workspace, default_actor
from appliance.context import Context
from appliance.errors import ApplianceError, GateRefused

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class ApplianceGroup(TyperGroup):
    """Root command group: one-line message and the documented exit code for appliance errors."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ApplianceError as exc:
            err_console.print(f"error: {exc}", markup=False)
            if isinstance(exc, GateRefused):
                for f in exc.failures:
                    err_console.print(f"  - {json.dumps(f, sort_keys=True)}", markup=False)
            raise typer.Exit(exc.exit_code) from None


@dataclass
class CliState:
    home: str | None = None
    actor: str | None = None

    @property
    def ws(self) -> Workspace:
        return Workspace.resolve(self.home)

    @property
    def who(self) -> str:
        return self.actor or default_actor()

    def open(self) -> Context:
        return Context.open(self.ws, actor=self.who)


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def new_app(help_text: str) -> typer.Typer:
    """A stage sub-app with the settings every sub-app shares."""
    return typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_show_locals=False)


def print_json(obj: dict[str, Any]) -> None:
    """A command's result for ``--json``: one JSON object on one line, the last line of stdout."""
    sys.stdout.write(json.dumps(obj, sort_keys=True, default=str) + "\n")
