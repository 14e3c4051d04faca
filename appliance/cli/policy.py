"""`appliance policy show|validate`."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from appliance.cli.common import console, new_app, print_json, state
from appliance.policy import load_policy_file, policy_hash
from appliance.policy.loader import effective_policy_path

app = new_app("Show and validate policy files.")


@app.command("show")
def show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Print the effective policy (workspace policy.yaml, else the shipped default), defaults filled in."""
    path = effective_policy_path(state(ctx).ws)
    pol = load_policy_file(path)
    data = pol.model_dump(mode="json")
    if as_json:
        print_json({"source": str(path), "sha256": policy_hash(pol), "policy": data})
        return
    console.print(f"# source: {path}\n# sha256: {policy_hash(pol)}", markup=False)
    console.print(yaml.safe_dump(data, sort_keys=False).rstrip(), markup=False)


@app.command("validate")
def validate(
    ctx: typer.Context,
    file: Path | None = typer.Argument(None, help="policy file (default: the effective policy)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
) -> None:
    """Validate a policy file; exit 1 naming the key path and what is allowed when it is invalid."""
    path = file or effective_policy_path(state(ctx).ws)
    pol = load_policy_file(path)
    if as_json:
        print_json({"ok": True, "path": str(path), "sha256": policy_hash(pol)})
        return
    console.print(f"OK {path} ({policy_hash(pol)})", markup=False)
