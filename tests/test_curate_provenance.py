"""Model-collapse guard: `seeds import` flags (or, by policy, refuses) seeds that are earlier exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from _curate_data import open_ctx

from appliance.curate import record_export_hashes, text_hash

pytestmark = pytest.mark.slow

EXPORTED = ["How long until my replacement card shows up in the post?", "What rate do you use for euro transfers?"]
FRESH = ["My card has not arrived after ten days.", "Can I top up with a bank transfer?", "Why was I charged twice?"]


@pytest.fixture
def seed_file(workspace: Path, tmp_path: Path) -> Path:
    ctx = open_ctx(workspace)
    try:
        record_export_hashes(ctx.db, [text_hash(t) for t in EXPORTED], "exp-test")
    finally:
        ctx.close()
    path = tmp_path / "seeds.jsonl"
    rows = [FRESH[0], "  " + EXPORTED[0].upper(), FRESH[1], FRESH[2], EXPORTED[1]]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    return path


def test_import_flags_matches_in_output_and_audit(cli, seed_file: Path) -> None:
    res = cli("seeds", "import", str(seed_file), "--dataset", "again")
    assert res.exit_code == 0, res.output
    assert "warning: 2 records match records this appliance exported earlier" in res.stderr
    assert "record indices 1, 4" in res.stderr
    events = [json.loads(x) for x in cli("audit", "log", "--kind", "seeds.import", "--json").stdout.splitlines()]
    payload = events[-1]["payload"]
    assert payload["n_export_matches"] == 2 and payload["export_match_records"] == [1, 4]


def test_import_without_matches_is_quiet(cli, workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "fresh.txt"
    path.write_text("\n".join(FRESH) + "\n")
    res = cli("seeds", "import", str(path), "--dataset", "fresh")
    assert res.exit_code == 0, res.output
    assert "exported earlier" not in res.stderr
    events = [json.loads(x) for x in cli("audit", "log", "--kind", "seeds.import", "--json").stdout.splitlines()]
    assert events[-1]["payload"]["n_export_matches"] == 0


def test_policy_refuse_stops_import_exit_3(cli, workspace: Path, seed_file: Path) -> None:
    pol = yaml.safe_load((workspace / "policy.yaml").read_text())
    pol["curation"]["export_match_action"] = "refuse"
    (workspace / "policy.yaml").write_text(yaml.safe_dump(pol))
    res = cli("seeds", "import", str(seed_file), "--dataset", "again")
    assert res.exit_code == 3
    assert "2 seed records match records this appliance exported earlier" in res.stderr
    assert "export_match_action: flag" in res.stderr
    assert json.loads(cli("seeds", "list", "--json").stdout)["datasets"] == []
