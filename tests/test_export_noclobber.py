"""An export never overwrites --out, not even a file that appears while the probes and the gate run."""

from __future__ import annotations

from pathlib import Path

import pytest
from gate_fixtures import seed_workspace

import appliance.export.service as service


@pytest.fixture
def good(workspace: Path) -> str:
    return seed_workspace(workspace)


@pytest.mark.parametrize("which", ["file", "manifest"])
def test_file_appearing_during_the_export_is_kept(
    cli, good: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    out = tmp_path / "o.jsonl"
    target = out if which == "file" else Path(f"{out}.manifest.json")
    real = service.write_temp

    def write_then_race(dest, rows, fmt):  # another process takes the name after the last check
        tmp = real(dest, rows, fmt)
        target.write_text("someone else's")
        return tmp

    monkeypatch.setattr(service, "write_temp", write_then_race)
    res = cli("export", good, "--out", str(out))
    assert res.exit_code == 1, res.output
    assert "never overwrite" in res.output
    assert target.read_text() == "someone else's"
    other = Path(f"{out}.manifest.json") if which == "file" else out
    assert not other.exists()  # nothing of ours is left half-published
    assert not list(tmp_path.glob(".o.jsonl*"))  # and no temporary files


def test_out_taken_while_the_probes_run_records_no_gate_decision(
    cli, good: str, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    out = tmp_path / "o.jsonl"
    real = service.gather

    def gather_then_race(*args, **kwargs):  # the name is taken after the first check, before the gate decides
        facts = real(*args, **kwargs)
        out.write_text("someone else's")
        return facts

    monkeypatch.setattr(service, "gather", gather_then_race)
    res = cli("export", good, "--out", str(out))
    assert res.exit_code == 1, res.output
    assert "never overwrite" in res.output and out.read_text() == "someone else's"
    with sqlite3.connect(workspace / "appliance.db") as conn:
        assert conn.execute("SELECT count(*) FROM gate_decisions").fetchone()[0] == 0


def test_publish_refuses_an_existing_name(tmp_path: Path) -> None:
    tmp, dest = tmp_path / "t", tmp_path / "d"
    tmp.write_text("new")
    dest.write_text("old")
    with pytest.raises(FileExistsError):
        service._publish(tmp, dest)
    assert dest.read_text() == "old"
    dest.unlink()
    service._publish(tmp, dest)
    assert dest.read_text() == "new" and tmp.exists()  # a second name for the same file; the caller unlinks tmp


def test_publish_without_hard_links_is_an_exclusive_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    def no_links(*_a):
        raise OSError(errno.EPERM, "links not supported")

    monkeypatch.setattr(os, "link", no_links)
    tmp, dest = tmp_path / "t", tmp_path / "d"
    tmp.write_text("new")
    service._publish(tmp, dest)
    assert dest.read_text() == "new"
    with pytest.raises(FileExistsError):
        service._publish(tmp, dest)
