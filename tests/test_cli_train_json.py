"""`appliance train --json`: the run's result as one JSON object on the last line, consistent with the stored
prompt and the budget (a real one-step DP run on 30 records)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _train_data import bank_workspace

pytestmark = pytest.mark.slow


def test_train_json_is_the_result(tmp_path: Path) -> None:
    _, cli = bank_workspace(tmp_path, ["card_arrival", "exchange_rate"])
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
