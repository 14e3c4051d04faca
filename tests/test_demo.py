"""`appliance demo`: refuses an existing workspace, stops at the first failing step with its exit code,
and its one policy change (the holdout split) is validated and audited.

The whole demo with the real model runs in `make airgap-test` (installed from the bundle, no network);
these tests cover the orchestration around it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from appliance.cli import demo_run
from appliance.demo import settings as demo_settings
from appliance.policy import default_policy_path, load_policy_file


def _events(home: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(home / "appliance.db")
    try:
        return conn.execute("SELECT kind, payload FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()


def test_demo_refuses_an_existing_workspace(cli, workspace: Path) -> None:
    before = _events(workspace)
    res = cli("demo", "--home", str(workspace))
    assert res.exit_code == 1
    assert "already holds an appliance workspace" in res.stderr and "--home NEWDIR" in res.stderr
    assert _events(workspace) == before


def test_demo_stops_at_the_first_failure_with_its_exit_code(cli, tmp_path: Path, monkeypatch) -> None:
    calls: list[list[str]] = []
    real = demo_run.invoke

    def fake(argv):  # orchestration only: the real init and policy validation, no-op imports and public prior,
        calls.append(list(argv))  # a refused DP train
        if argv[2] == "train":
            return 0 if "--no-dp" in argv else 3
        return 0 if argv[2] == "seeds" else real(argv)

    monkeypatch.setattr(demo_run, "invoke", fake)
    home = tmp_path / "demo"
    res = cli("demo", "--home", str(home), "--quick")
    assert res.exit_code == 3, res.output
    assert "demo stopped at step 'train' (exit 3)" in res.output
    steps = [c[2] for c in calls]  # after --home DIR
    assert steps == ["init", "policy", "seeds", "train", "seeds", "train"]
    assert calls[2][2:] == ["seeds", "import", str(demo_settings.PUBLIC_CORPUS), "--dataset",
                            demo_settings.PUBLIC_DATASET, "--label-field", "category", "--public"]  # fmt: skip
    assert calls[3][2:5] == ["train", demo_settings.PUBLIC_DATASET, "--no-dp"]
    assert calls[-1][2:] == [
        "train",
        demo_settings.DATASET,
        "--epsilon",
        "4",
        "--epochs",
        str(demo_settings.QUICK.epochs),
        "--init-prompt",
        "none",  # the no-op public prior stored no prompt
    ]
    # nothing after the failure ran: no batch, no export, no report
    assert not (home / demo_settings.REPORT_NAME).exists()
    assert not list((home / "exports").iterdir())


def test_a_refused_export_still_writes_the_report_and_verifies_the_chain(cli, tmp_path: Path, monkeypatch) -> None:
    """The gate refusing the export (exit 3) is an outcome to show the officer, not a crash: the audit report
    and the chain check still run, the export's verification is skipped, and the demo exits 3."""
    calls: list[list[str]] = []
    real = demo_run.invoke

    def fake(argv):  # orchestration only: real init, policy, report and verify; the middle stages are no-ops
        calls.append(list(argv))
        if argv[2] == "export":
            return 3
        return real(argv) if argv[2] in ("init", "policy", "audit") else 0

    monkeypatch.setattr(demo_run, "invoke", fake)
    home = tmp_path / "demo"
    res = cli("demo", "--home", str(home), "--quick")
    assert res.exit_code == 3, res.output
    assert "the gate REFUSED the export" in res.output and "nothing left the building" in res.output
    steps = [" ".join(c[2:4]) for c in calls]
    assert steps[-3:] == ["export " + "none", "audit report", "audit verify"]  # no `audit verify --export`
    assert (home / demo_settings.REPORT_NAME).exists()
    assert not list((home / "exports").iterdir())


def test_demo_policy_changes_only_the_split_and_the_domain_description_and_is_audited(cli, tmp_path: Path) -> None:
    home = tmp_path / "demo"
    assert cli("--home", str(home), "init").exit_code == 0
    reason = demo_run.demo_policy(home, "tester")
    assert "keeps every gate threshold at the shipped default" in reason
    shipped = load_policy_file(default_policy_path()).model_dump()
    demo = load_policy_file(home / "policy.yaml").model_dump()
    assert demo["privacy"]["holdout_fraction"] == demo_settings.DEMO_HOLDOUT_FRACTION
    assert demo["training"]["label_template"] == demo_settings.DEMO_DOMAIN["training.label_template"]
    assert demo["generation"]["stop"] == ["\n"]
    for key in demo_settings.DEMO_POLICY_KEYS:
        *path, leaf = key.split(".")
        node, ship = demo, shipped
        for part in path:
            node, ship = node[part], ship[part]
        node[leaf] = ship[leaf]
    assert demo == shipped  # every other key, the gate thresholds included, is the default
    kinds = [k for k, _ in _events(home)]
    assert kinds[-1] == "demo.policy"
    event = json.loads(_events(home)[-1][1])
    assert (
        event["holdout_fraction"] == demo_settings.DEMO_HOLDOUT_FRACTION
        and event["changed"] == demo_settings.DEMO_POLICY_KEYS
    )
    assert cli("--home", str(home), "audit", "verify").exit_code == 0


@pytest.mark.parametrize("settings", [demo_settings.FULL, demo_settings.QUICK])
def test_demo_settings_spread_outputs_over_the_six_intents(settings: demo_settings.DemoSettings) -> None:
    assert settings.n_outputs % 6 == 0 and settings.epochs >= 1
    assert demo_settings.SAMPLE.is_file() and (demo_settings.DATA_DIR / "LICENSE-BANKING77").is_file()
    assert demo_settings.PUBLIC_CORPUS.is_file() and settings.prior_epochs >= 1


def test_the_public_corpus_shares_no_intent_with_the_sample_or_the_quality_bench(shared_data: Path) -> None:
    """The public prior may not be trained on the sample's intents (the demo's private stand-ins) nor on those
    bench/quality.py measures it on; packaging/make_public_corpus.py rebuilds the file."""
    import csv

    def intents(path: Path) -> set[str]:
        with path.open(newline="", encoding="utf-8") as fh:
            return {r["category"] for r in csv.DictReader(fh)}

    public = intents(demo_settings.PUBLIC_CORPUS)
    assert len(public) == 59 and not public & intents(demo_settings.SAMPLE)
    cats = json.loads((shared_data / "banking77" / "categories.json").read_text(encoding="utf-8"))
    bench = [c for c in cats if c not in intents(demo_settings.SAMPLE)][:12]
    assert not public & set(bench)


def test_set_numbers_edits_one_line_per_key_and_refuses_a_missing_one(tmp_path: Path) -> None:
    from appliance.errors import BadInput
    from appliance.policy.loader import set_numbers

    policy = tmp_path / "policy.yaml"
    policy.write_text("privacy:\n  holdout_fraction: 0.2   # kept comment\n", encoding="utf-8")
    set_numbers(policy, {"holdout_fraction": 0.5}, header="# edited")
    assert policy.read_text(encoding="utf-8") == "# edited\nprivacy:\n  holdout_fraction: 0.5   # kept comment\n"
    with pytest.raises(BadInput, match="expected one max_mia_auc line to set, found 0"):
        set_numbers(policy, {"max_mia_auc": 1.0}, header="# again")
    assert policy.read_text(encoding="utf-8").startswith("# edited\n")  # nothing written on refusal


def test_quick_demo_lifts_only_the_quality_floor_and_says_so(cli, tmp_path: Path) -> None:
    home = tmp_path / "quick"
    assert cli("--home", str(home), "init").exit_code == 0
    reason = demo_run.demo_policy(home, "tester", quality_floor=demo_settings.QUICK.quality_floor)
    assert "lifts the quality floor" in reason
    demo = load_policy_file(home / "policy.yaml").model_dump()
    full = load_policy_file(default_policy_path()).model_dump()
    assert demo["gate"]["max_detection_auc"] == 1.0 and demo["gate"]["min_label_fidelity"] == 0.0
    for key in ("max_mia_auc", "max_tpr_at_1pct_fpr", "max_canary_exposure_bits", "min_dcr_ratio", "require_dp"):
        assert demo["gate"][key] == full["gate"][key]  # every privacy check stays
    event = json.loads(_events(home)[-1][1])
    assert "gate.max_detection_auc" in event["changed"] and demo_settings.FULL.quality_floor


def test_set_values_reaches_a_key_inside_its_block_only(tmp_path: Path) -> None:
    from appliance.errors import BadInput
    from appliance.policy.loader import set_values

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "curation:\n  dp_selection:   # c\n    enabled: false\n    keep_fraction: 0.3\n  min_chars: 10\n"
        "gate:\n  enabled: true\n",
        encoding="utf-8",
    )
    set_values(policy, {"dp_selection.enabled": True, "dp_selection.keep_fraction": 0.25}, header="# e")
    assert policy.read_text(encoding="utf-8") == (
        "# e\ncuration:\n  dp_selection:   # c\n    enabled: true\n    keep_fraction: 0.25\n  min_chars: 10\n"
        "gate:\n  enabled: true\n"
    )
    with pytest.raises(BadInput, match="expected one enabled line to set, found 2"):
        set_values(policy, {"enabled": False}, header="# again")
    with pytest.raises(BadInput, match=r"expected a nope: block for nope\.min_chars"):
        set_values(policy, {"nope.min_chars": 1}, header="# x")
