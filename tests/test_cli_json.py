"""Every command that prints a result has --json: one JSON object on the last line of stdout (meta-test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from gate_fixtures import seed_workspace

from appliance.cli.main import app

# JSON Lines streams (one object per line, documented as such): the last line is an object, or nothing
STREAMS = {("audit", "log"), ("seeds", "scan")}


def _leaves(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if hasattr(cmd, "commands"):  # a group (Typer's vendored click is not the click package)
        return [leaf for name, sub in sorted(cmd.commands.items()) for leaf in _leaves(sub, (*path, name))]
    return [(path, cmd)]


LEAVES = _leaves(typer.main.get_command(app))


def test_the_tree_is_walked() -> None:
    names = {" ".join(p) for p, _ in LEAVES}
    assert {"train", "generate", "export run", "models verify", "audit verify", "demo", "init"} <= names


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_has_json(path: tuple[str, ...]) -> None:
    cmd = dict(LEAVES)[path]
    opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
    assert "--json" in opts, f"`appliance {' '.join(path)}` prints a result but has no --json"


def _last_object(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert lines, "no output"
    obj = json.loads(lines[-1])
    assert isinstance(obj, dict), lines[-1]
    return obj


@pytest.mark.slow
def test_json_is_one_object_on_the_last_line(cli, workspace: Path, tmp_path: Path) -> None:
    batch = seed_workspace(workspace)
    runs = [
        ["init", "--json"],
        ["policy", "show", "--json"],
        ["policy", "validate", "--json"],
        ["models", "list", "--json"],
        ["audit", "head", "--json"],
        ["audit", "verify", "--json"],
        ["audit", "report", "--out", str(tmp_path / "r.html"), "--json"],
        ["seeds", "list", "--json"],
        ["seeds", "show", "bank", "--limit", "2", "--json"],
        ["budget", "show", "bank", "--json"],
        ["prompts", "list", "--json"],
        ["prompts", "show", f"pr-{batch}", "--json"],
        ["batches", "list", "--json"],
        ["batches", "show", batch, "--json"],
        ["export", batch, "--out", str(tmp_path / "o.jsonl"), "--json"],
        ["audit", "verify", "--export", str(tmp_path / "o.jsonl.manifest.json"), "--json"],
    ]
    for args in runs:
        res = cli(*args)
        assert res.exit_code == 0, (args, res.output)
        _last_object(res.stdout)
    stream = cli("audit", "log", "--json").stdout.splitlines()
    assert stream and all(isinstance(json.loads(x), dict) for x in stream)
    assert _last_object(cli("models", "list", "--json").stdout)["models"]
