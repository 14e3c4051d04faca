"""`appliance train --json`: the run's result as one JSON object on the last line, consistent with the stored
prompt and the budget (a real one-step DP run on 30 records)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _train_data import banking_csv, seed_model_cache
from typer.testing import CliRunner

from appliance.cli.main import app

pytestmark = pytest.mark.slow


def test_train_json_is_the_result(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(app, ["--home", str(home), "--actor", "tester", *args], catch_exceptions=False)

    assert cli("init").exit_code == 0
    seed_model_cache(home)
    seeds = banking_csv(tmp_path / "s.csv", n=30, categories=["card_arrival", "exchange_rate"])
    assert cli("seeds", "import", str(seeds), "--dataset", "bank", "--label-field", "category").exit_code == 0
    tiny = ("--epochs", "1", "--batch-size", "64", "--virtual-tokens", "4")
    res = cli("train", "bank", "--epsilon", "2", *tiny, "--json")
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    assert len(lines) == 1  # progress and warnings go to stderr
    prompt = json.loads(cli("prompts", "list", "--json").stdout)["prompts"][0]
    budget = json.loads(cli("budget", "show", "bank", "--json").stdout)
    assert out["prompt_id"] == prompt["id"] and out["dp"] is True and out["target_epsilon"] == 2.0
    assert out["epsilon"] == pytest.approx(prompt["epsilon"]) and 0 < out["epsilon"] <= 2.0
    assert out["dataset_epsilon_spent"] == pytest.approx(budget["epsilon_spent"])
    assert out["epochs"] == 1 and out["steps"] >= 1 and out["n_train"] > 0
