"""CLI paths and exit codes of `appliance curate` and `appliance evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _curate_data import add_batch, add_dataset, banking, open_ctx

from appliance.policy.loader import set_values

pytestmark = pytest.mark.slow

TRAIN = banking("train", labels=("card_arrival", "exchange_rate"), per_label=20)
TEST = banking("test", labels=("card_arrival", "exchange_rate"), per_label=30)
HOLDOUT = [r for i, r in enumerate(TEST) if i % 30 < 10]
OUTPUTS = [r for i, r in enumerate(TEST) if i % 30 >= 10] + [("Card?", "card_arrival")] * 2


@pytest.fixture
def batch(workspace: Path) -> str:
    ctx = open_ctx(workspace)
    try:
        add_dataset(ctx, "bank", TRAIN, HOLDOUT)
        add_batch(ctx, "b-cli", "bank", OUTPUTS)
    finally:
        ctx.close()
    return "b-cli"


@pytest.mark.parametrize("command", ["curate", "evaluate"])
def test_unknown_batch_exit_1(cli, workspace: Path, command: str) -> None:
    res = cli(command, "b-missing")
    assert res.exit_code == 1
    assert "unknown batch 'b-missing'" in res.stderr and "appliance batches list" in res.stderr


@pytest.mark.parametrize("command", ["curate", "evaluate"])
def test_without_workspace_exit_1(cli, command: str) -> None:
    res = cli(command, "b-any")
    assert res.exit_code == 1 and "appliance init" in res.stderr


def test_usage_error_exit_2(cli, workspace: Path) -> None:
    assert cli("curate").exit_code == 2
    assert cli("evaluate", "b-x", "--reference").exit_code == 2


def test_curate_then_evaluate(cli, batch: str, workspace: Path, tmp_path: Path) -> None:
    res = cli("evaluate", batch)
    assert res.exit_code == 1 and f"run `appliance curate {batch}` first" in res.stderr

    res = cli("curate", batch)
    assert res.exit_code == 0, res.output
    assert "dropped: too_short" in res.stdout and "kept" in res.stdout
    res = cli("curate", batch, "--json")
    assert res.exit_code == 0
    counts = json.loads(res.stdout)
    assert counts["n_total"] == len(OUTPUTS) and counts["reasons"]["too_short"] == 2
    assert counts["reasons"].get("exact_duplicate", 0) == 0, "a too-short output is never a duplicate's keeper"
    assert counts["n_kept"] + counts["n_dropped"] == counts["n_total"]

    res = cli("evaluate", batch, "--json")
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    assert record["reference"] == "holdout" and record["n_synthetic"] == counts["n_kept"]
    assert 0 < record["metrics"]["mauve"] <= 1 and record["metrics"]["tstr"]["n_labels"] == 2
    assert record["embedding_model"].startswith("all-MiniLM-L6-v2")

    ref = tmp_path / "ref.txt"
    ref.write_text("\n".join(t for t, _ in TRAIN[:30]) + "\n")
    res = cli("evaluate", batch, "--reference", str(ref))
    assert res.exit_code == 0, res.output
    assert "MAUVE" in res.stdout and "TSTR" in res.stdout and "embeddings: all-MiniLM-L6-v2" in res.stdout
    assert "detection AUCs at n=100 per side: not computed (" in res.stdout, "30 reference records are too few"

    res = cli("evaluate", batch, "--reference", str(tmp_path / "nope.csv"))
    assert res.exit_code == 1 and "'holdout' or a readable" in res.stderr

    res = cli("audit", "log", "--json")
    kinds = [json.loads(line)["kind"] for line in res.stdout.splitlines() if line.strip()]
    assert kinds.count("curate.run") == 2 and kinds.count("evaluate.run") == 2
    assert cli("audit", "verify").exit_code == 0

    set_values(workspace / "policy.yaml", {"curation.eval_fixed_n": 20, "curation.eval_fixed_n_draws": 2}, header="# t")
    res = cli("evaluate", batch)
    assert res.exit_code == 0, res.output
    assert "detection AUCs at n=20 per side (mean ± sd of 2 subsamples;" in res.stdout and "lexical 0." in res.stdout
