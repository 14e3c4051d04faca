"""`appliance train|prompts|budget` through the CLI: exit codes and messages of the failing paths, the budget cap
across two real runs (the second refused before training), and the policy-gated non-DP control run."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from _train_data import bank_workspace, banking_csv
from typer.testing import CliRunner

from appliance.cli.main import app
from appliance.config import Workspace, shipped_file
from appliance.train import canaries as canary_store

pytestmark = pytest.mark.slow

TINY = ("--epochs", "1", "--batch-size", "64", "--virtual-tokens", "4")  # one Poisson step over ~28 examples


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    home, cli = bank_workspace(tmp_path_factory.mktemp("cli-train"), ["card_arrival", "exchange_rate", "top_up_failed"])
    return SimpleNamespace(home=home, cli=cli)


def _policy(home: Path, block: str = "privacy", **values: object) -> None:
    """The workspace policy: the shipped default with ``values`` set in its ``block``."""
    doc = yaml.safe_load(shipped_file("policies/default.yaml").read_text(encoding="utf-8"))
    doc[block].update(values)
    (home / "policy.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def _state(ws: SimpleNamespace) -> dict[str, object]:
    prompts = json.loads(ws.cli("prompts", "list", "--json").stdout)["prompts"]
    budget = json.loads(ws.cli("budget", "show", "bank", "--json").stdout)
    files = sorted(p.name for p in (ws.home / "artifacts").rglob("*.safetensors") if p.parent.name == "prompts")
    return {"prompts": len(prompts), "charges": len(budget["charges"]), "spent": budget["epsilon_spent"],
            "artifacts": len(files)}  # fmt: skip


@pytest.mark.parametrize("cmd", [("train",), ("prompts",), ("prompts", "list"), ("prompts", "show"), ("budget",),
                                 ("budget", "show")])  # fmt: skip
def test_help(cmd: tuple[str, ...]) -> None:
    res = CliRunner().invoke(app, [*cmd, "--help"])
    assert res.exit_code == 0 and len(res.stdout) > 50


def test_epsilon_is_required(ws: SimpleNamespace) -> None:
    res = ws.cli("train", "bank")
    assert res.exit_code == 2 and "--epsilon is required" in res.output


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("train", "nope", "--epsilon", "1"), 1, "unknown dataset 'nope'"),
        (("train", "bank", "--epsilon", "1", "--delta", "0.5"), 1, "--delta must be in (0, 1/n)"),
        (("train", "bank", "--epsilon", "-1"), 1, "--epsilon must be a positive number"),
        (("train", "bank", "--epsilon", "9"), 3, "privacy.max_epsilon_per_run 8"),
        (("train", "bank", "--no-dp"), 3, "privacy.allow_non_dp is false"),
        (("train", "bank", "--no-dp", "--delta", "1e-7"), 1, "a --no-dp run has none"),
        (("budget", "show", "nope"), 1, "unknown dataset"),
    ],
)
def test_refusals_change_nothing(ws: SimpleNamespace, args: tuple[str, ...], code: int, needle: str) -> None:
    before = _state(ws)
    res = ws.cli(*args)
    assert res.exit_code == code, res.output
    assert needle in res.stderr and res.stderr.startswith("error: ")
    assert _state(ws) == before


def test_two_runs_over_the_cap(ws: SimpleNamespace) -> None:
    _policy(ws.home, dataset_epsilon_cap=5.0, max_epsilon_per_run=4.0)
    first = ws.cli("train", "bank", "--epsilon", "3", *TINY)
    assert first.exit_code == 0, first.output
    after_first = _state(ws)
    assert after_first["prompts"] == 1 and 2.9 < after_first["spent"] <= 3.0
    second = ws.cli("train", "bank", "--epsilon", "3", *TINY)
    assert second.exit_code == 3
    assert "refused before training" in second.stderr and "privacy.dataset_epsilon_cap 5" in second.stderr
    left = 5.0 - after_first["spent"]
    assert f"has ε {left:.4g} of 5 remaining" in second.stderr
    assert "loading model" not in second.stderr  # refused before the model was even loaded
    assert _state(ws) == after_first  # nothing trained, stored or charged
    canary_files = list((ws.home / "keys" / "canaries").iterdir())
    assert len(canary_files) == 1
    first = json.loads(ws.cli("prompts", "list", "--json").stdout)["prompts"][0]["id"]
    shown = json.loads(ws.cli("prompts", "show", first).stdout)
    meta = shown["meta"]  # labelled dataset: one shared prompt plus the label prefix (contract 3)
    assert meta["labels"] == ["card_arrival", "exchange_rate", "top_up_failed"]
    # the shipped generic prior: a JSON-lines frame, each record ending with '"}' (training.end_text)
    assert meta["label_template"] == '{{"label": "{label}", "text": "' and meta["suffix_text"] == '{"text": "'
    assert meta["end_text"] == '"}'
    planted = canary_store.load(Workspace(ws.home), shown)
    assert len(planted) == 4 and all(c.label in meta["labels"] for c in planted)
    res = ws.cli("audit", "log", "--json")
    assert res.exit_code == 0
    kinds = [json.loads(line)["kind"] for line in res.stdout.splitlines() if line.strip()]
    assert kinds.count("train.run") == 1 and kinds[-1] == "budget.refused"


def test_non_dp_control_run_when_policy_allows(ws: SimpleNamespace) -> None:
    _policy(ws.home, dataset_epsilon_cap=5.0, max_epsilon_per_run=4.0, allow_non_dp=True)
    before = _state(ws)
    res = ws.cli("train", "bank", "--no-dp", *TINY)
    assert res.exit_code == 0, res.output
    assert "WARNING: --no-dp" in res.stderr and "epsilon spent inf" in res.stdout
    listed = json.loads(ws.cli("prompts", "list", "--json").stdout)["prompts"]
    row = listed[0]
    assert row["dp"] == 0 and row["exportable"] == 0 and row["epsilon"] is None
    budget = json.loads(ws.cli("budget", "show", "bank", "--json").stdout)
    assert budget["epsilon_spent"] == before["spent"] and budget["non_dp_runs"] == 1
    assert " NO " in ws.cli("prompts", "list").stdout


def test_dp_selection_is_reserved_inside_the_runs_epsilon(tmp_path: Path) -> None:
    """With curation.dp_selection on, DP-SGD gets more noise so that it and the histogram together stay in ε."""
    home, cli = bank_workspace(tmp_path, ["card_arrival", "exchange_rate"])

    def train(selection: dict[str, object] | None) -> dict[str, object]:
        doc = yaml.safe_load(shipped_file("policies/default.yaml").read_text(encoding="utf-8"))
        doc["privacy"]["dataset_epsilon_cap"] = 20.0
        if selection is not None:
            doc["curation"]["dp_selection"].update({"enabled": True, **selection})
        (home / "policy.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        res = cli("train", "bank", "--epsilon", "3", *TINY, "--json")
        return {"code": res.exit_code, "out": res.stdout, "err": res.stderr}

    plain = train(None)
    chosen = train({"noise_multiplier": 4.0})
    assert plain["code"] == chosen["code"] == 0, chosen["err"]
    p, c = (json.loads(str(r["out"]).strip().splitlines()[-1]) for r in (plain, chosen))
    assert p["dp_selection_noise"] is None and c["dp_selection_noise"] == 4.0
    assert 2.95 < c["epsilon"] <= 3.0 and c["noise_multiplier"] > p["noise_multiplier"]
    shown = json.loads(cli("prompts", "show", c["prompt_id"]).stdout)
    assert shown["meta"]["dp_selection_noise"] == 4.0
    before = json.loads(cli("prompts", "list", "--json").stdout)["prompts"]
    refused = train({"noise_multiplier": 1.0})  # alone ε ≫ 1.5: more than half of --epsilon 3
    assert refused["code"] == 1 and "curation.dp_selection" in str(refused["err"])
    assert json.loads(cli("prompts", "list", "--json").stdout)["prompts"] == before


def test_label_keywords_are_released_inside_the_runs_epsilon(tmp_path: Path) -> None:
    """With training.label_keywords on, train releases each label's most used words (DP, inside --epsilon) into
    the prompt's layout: its meta (what generation, curation and the probes render) and the train.run event."""
    cats = ["card_arrival", "fiat_currency_support"]
    home, cli = bank_workspace(tmp_path, cats, n=30)
    seeds = banking_csv(tmp_path / "kw.csv", n=240, categories=cats, seed=1)
    res = cli("seeds", "import", str(seeds), "--dataset", "kw", "--label-field", "category", "--labels", ",".join(cats))
    assert res.exit_code == 0, res.output
    doc = yaml.safe_load(shipped_file("policies/default.yaml").read_text(encoding="utf-8"))
    doc["privacy"]["dataset_epsilon_cap"] = 20.0
    doc["training"]["label_template"] = "A customer message about {label_words}{label_keywords}:\n"
    doc["training"]["label_keywords"]["enabled"] = True
    (home / "policy.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    res = cli("train", "kw", "--epsilon", "4", *TINY, "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    meta = json.loads(cli("prompts", "show", out["prompt_id"]).stdout)["meta"]
    assert out["label_keywords_noise"] == 2.5 and out["label_keywords"] == meta["label_keywords"]
    assert meta["label_keywords_noise"] == 2.5 and set(meta["label_keywords"]) == set(cats)
    assert "currencies" in meta["label_keywords"]["fiat_currency_support"]  # in most of its 120 seeds
    events = [json.loads(line) for line in cli("audit", "log", "--json").stdout.splitlines() if line.strip()]
    run = [e for e in events if e["kind"] == "train.run"][-1]["payload"]
    released = run["label_keywords"]["fiat_currency_support"]
    assert [w for w, _ in released] == meta["label_keywords"]["fiat_currency_support"]
    assert all(c >= 5.0 * 2.5 for _, c in released) and run["label_keywords_noise"] == 2.5
    report = tmp_path / "report.html"
    assert cli("audit", "report", "--out", str(report)).exit_code == 0
    html = report.read_text(encoding="utf-8")
    assert (
        "keywords σ" in html
        and "fiat_currency_support: " + ", ".join(meta["label_keywords"]["fiat_currency_support"]) in html
    )


def test_a_dp_run_starts_from_a_prompt_trained_on_public_records_alone(tmp_path: Path) -> None:
    """`seeds import --public` → `train --no-dp` (no privacy.allow_non_dp needed, no canaries, no ε) → a DP run
    `--init-prompt` from it: the run starts from those rows (the same initial holdout loss twice, another from the
    init text) and records where it started; a prompt trained on private records is refused as a start."""
    _home, cli = bank_workspace(tmp_path, ["card_arrival", "exchange_rate"])
    pub = banking_csv(tmp_path / "pub.csv", n=40, categories=["age_limit", "card_linking"], seed=2)
    res = cli("seeds", "import", str(pub), "--dataset", "pub", "--label-field", "category", "--public", "--json")
    assert res.exit_code == 0, res.output
    imported = json.loads(res.stdout.strip().splitlines()[-1])
    assert imported["public_data"] is True and imported["labels_public"] == ["age_limit", "card_linking"]

    def run(*args: str) -> dict:
        res = cli("train", *args, *TINY, "--json")
        assert res.exit_code == 0, res.stderr
        return json.loads(res.stdout.strip().splitlines()[-1])

    prior = run("pub", "--no-dp")  # the shipped policy: privacy.allow_non_dp is false
    assert prior["public_data"] is True and prior["n_canaries"] == 0 and prior["epsilon"] is None
    assert json.loads(cli("budget", "show", "pub", "--json").stdout)["epsilon_spent"] == 0
    assert cli("train", "bank", "--no-dp", *TINY).exit_code == 3  # the private dataset still needs the policy
    pid = prior["prompt_id"]
    a, b = run("bank", "--epsilon", "2", "--init-prompt", pid), run("bank", "--epsilon", "2", "--init-prompt", pid)
    plain = run("bank", "--epsilon", "2")
    assert a["holdout_loss_initial"] == pytest.approx(b["holdout_loss_initial"], abs=1e-6)
    assert abs(a["holdout_loss_initial"] - plain["holdout_loss_initial"]) > 1e-3
    assert a["init_prompt"] == pid and a["public_data"] is False and plain["init_prompt"] is None
    shown = json.loads(cli("prompts", "show", pid).stdout)
    meta = json.loads(cli("prompts", "show", a["prompt_id"]).stdout)["meta"]
    assert meta["init_prompt"] == {"id": pid, "dataset": "pub", "artifact_sha256": shown["artifact_sha256"]}
    events = [json.loads(line) for line in cli("audit", "log", "--json").stdout.splitlines() if line.strip()]
    assert [e["payload"]["init_prompt"] for e in events if e["kind"] == "train.run"][-3:] == [
        meta["init_prompt"]
    ] * 2 + [None]
    n = len(json.loads(cli("prompts", "list", "--json").stdout)["prompts"])
    private = cli("train", "bank", "--epsilon", "2", *TINY, "--init-prompt", a["prompt_id"])
    assert private.exit_code == 3 and "not imported as public data" in private.stderr
    wrong_k = cli("train", "bank", "--epsilon", "2", "--epochs", "1", "--virtual-tokens", "8", "--init-prompt", pid)
    assert wrong_k.exit_code == 1 and "pass --virtual-tokens 4" in wrong_k.stderr
    assert len(json.loads(cli("prompts", "list", "--json").stdout)["prompts"]) == n  # refused: nothing stored
    report = tmp_path / "report.html"
    assert cli("audit", "report", "--out", str(report)).exit_code == 0
    html = report.read_text(encoding="utf-8")
    assert "PUBLIC DATA" in html and "public data (no budget)" in html and f"<code>{pid}</code>" in html


def test_prior_extrapolation_scales_the_runs_movement_from_its_public_prompt(tmp_path: Path) -> None:
    """`training.prior_extrapolation` s: a run from a public prompt stores prior + s · (trained − prior) — at s = 0
    exactly the prior's rows; at s = 2 not the rows as trained (the loss as trained is reported beside); a run from
    the init text is unchanged; the run's record, audit event, report and manifest facts name s."""
    from safetensors.numpy import load_file

    home, cli = bank_workspace(tmp_path, ["card_arrival", "exchange_rate"])
    pub = banking_csv(tmp_path / "pub.csv", n=40, categories=["age_limit", "card_linking"], seed=2)
    assert cli("seeds", "import", str(pub), "--dataset", "pub", "--label-field", "category", "--public").exit_code == 0

    def run(*args: str) -> dict:
        res = cli("train", *args, *TINY, "--json")
        assert res.exit_code == 0, res.stderr
        return json.loads(res.stdout.strip().splitlines()[-1])

    def rows(prompt_id: str) -> tuple[Any, dict]:
        shown = json.loads(cli("prompts", "show", prompt_id).stdout)
        return load_file(str(home / shown["artifact_path"]))["embeddings"], shown["meta"]

    prior = run("pub", "--no-dp")
    assert prior["prior_extrapolation"] is None  # no public start: nothing to extrapolate from
    _policy(home, "training", prior_extrapolation=0.0)
    zero = run("bank", "--epsilon", "2", "--init-prompt", prior["prompt_id"])
    stored, meta = rows(zero["prompt_id"])
    assert (stored == rows(prior["prompt_id"])[0]).all()
    assert zero["prior_extrapolation"] == 0.0 and meta["prior_extrapolation"] == 0.0
    assert zero["holdout_loss"] == pytest.approx(zero["holdout_loss_initial"], abs=1e-5)
    assert zero["holdout_loss_as_trained"] is not None and meta["holdout_loss_as_trained"] is not None
    _policy(home, "training", prior_extrapolation=2.0)
    two = run("bank", "--epsilon", "2", "--init-prompt", prior["prompt_id"])
    assert two["prior_extrapolation"] == 2.0
    assert abs(two["holdout_loss"] - two["holdout_loss_as_trained"]) > 1e-4
    plain = run("bank", "--epsilon", "2")  # from the init text: s does not apply
    assert plain["prior_extrapolation"] is None and plain["holdout_loss_as_trained"] is None
    events = [json.loads(line) for line in cli("audit", "log", "--json").stdout.splitlines() if line.strip()]
    assert [e["payload"]["prior_extrapolation"] for e in events if e["kind"] == "train.run"][-3:] == [0.0, 2.0, None]
    report = tmp_path / "report.html"
    assert cli("audit", "report", "--out", str(report)).exit_code == 0
    assert "stored prior + 2 × movement" in report.read_text(encoding="utf-8")
