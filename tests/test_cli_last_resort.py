"""Unexpected errors reach the user as one line and exit 1 (never a traceback, never record text); ranges of
`appliance train` options are checked, not silently replaced by the policy's defaults."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import appliance.cli.policy as policy_cli
from appliance.errors import ChecksumMismatch

SECRET = "Jane Roe 4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("exc", "expect"),
    [
        (ValueError(f"invalid literal for int(): {SECRET!r}"), "unexpected ValueError"),
        (KeyError(SECRET), "unexpected KeyError"),
        (RuntimeError(SECRET), "unexpected RuntimeError"),
        (json.JSONDecodeError("Expecting value", SECRET, 3), "JSON document is damaged"),
        (sqlite3.OperationalError("database is locked"), "database is locked by another appliance command"),
        (sqlite3.OperationalError(f"no such column: {SECRET}"), "database refused the operation"),
        (TypeError(f"unsupported operand: {SECRET!r}"), "unexpected TypeError"),  # a bug: still no text
        (AttributeError(SECRET), "unexpected AttributeError"),
        (IndexError(SECRET), "unexpected IndexError"),
        (PermissionError(13, "Permission denied", f"/data/{SECRET}.csv"), "refused a file operation (EACCES"),
        (MemoryError(SECRET), "unexpected MemoryError"),
    ],
)
def test_last_resort_is_one_line_exit_1_without_text(
    cli, workspace: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception, expect: str
) -> None:
    def boom(*_a, **_k):
        raise exc

    monkeypatch.setattr(policy_cli, "load_policy_file", boom)
    res = cli("policy", "validate")
    assert res.exit_code == 1
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], res.stderr
    assert "Jane" not in res.stderr and "4111" not in res.stderr and "Traceback" not in res.stderr
    assert "cli/policy.py" in lines[0] or "locked" in lines[0]  # where, never what


def test_the_traceback_is_there_for_a_developer_who_asks(cli, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a, **_k):
        raise TypeError("a bug")

    monkeypatch.setattr(policy_cli, "load_policy_file", boom)
    assert "APPLIANCE_TRACEBACK=1" in cli("policy", "validate").stderr
    monkeypatch.setenv("APPLIANCE_TRACEBACK", "1")
    with pytest.raises(TypeError, match="a bug"):
        cli("policy", "validate")


def test_click_control_flow_passes_through(cli, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    assert cli("policy", "validate", "--nope").exit_code == 2  # usage stays exit 2
    assert cli("--version").exit_code == 0

    def exit_130(*_a, **_k):  # typer.Exit is a RuntimeError: a command's own exit code must survive
        raise typer.Exit(130)

    monkeypatch.setattr(policy_cli, "load_policy_file", exit_130)
    res = cli("policy", "validate")
    assert res.exit_code == 130 and "error" not in res.output


def test_corrupt_model_cache_manifest_is_an_integrity_failure(tmp_path: Path) -> None:
    from appliance.train.lm import _read_cache

    target = tmp_path / "cache"
    target.mkdir()
    for bad in ("{not json", "[]", '{"version": 1}', '{"version": 1, "files": 3}'):
        (target / "manifest.json").write_text(bad)
        with pytest.raises(ChecksumMismatch, match="damaged") as info:
            _read_cache(target, "sha256:" + "0" * 64)
        assert info.value.exit_code == 4


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--epochs", "0"], "--epochs 0 is out of range: allowed 1..1000"),
        (["--lr", "0"], "--lr 0 is out of range: allowed (0, 10]"),
        (["--lr", "-1"], "--lr -1 is out of range: allowed (0, 10]"),
        (["--virtual-tokens", "0"], "--virtual-tokens 0 is out of range: allowed 1..256"),
        (["--batch-size", "0"], "--batch-size 0 is out of range: allowed 1..4096"),
        (["--max-grad-norm", "0"], "--max-grad-norm 0 is out of range: allowed (0, inf)"),
    ],
)
def test_train_zero_is_an_error_with_the_range(cli, workspace: Path, args: list[str], allowed: str) -> None:
    res = cli("train", "nosuch", "--epsilon", "1", *args)
    assert res.exit_code == 1, res.output
    assert allowed in res.stderr
