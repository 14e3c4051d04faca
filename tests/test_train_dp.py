"""One real DP training run through the CLI (SmolLM2, BANKING77 seeds imported with `appliance seeds import`),
then checks of what it stored: golden ε, lower holdout NLL, artifact, canaries, budget — and torch/llama.cpp
parity of the trained prompt (last).
"""

from __future__ import annotations

import json
import re
import stat
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from _train_data import banking_csv, seed_model_cache
from opacus.accountants import RDPAccountant
from safetensors import safe_open
from typer.testing import CliRunner

from appliance.budget.accounting import default_delta
from appliance.cli.main import app
from appliance.config import Workspace
from appliance.context import Context
from appliance.train import canaries as canary_store
from appliance.train.precision import resolve

pytestmark = pytest.mark.slow

EPSILON, EPOCHS, BATCH, K, LR = 8.0, 2, 16, 8, 0.2
CATEGORIES = ["card_arrival", "lost_or_stolen_card", "exchange_rate"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    home = tmp_path_factory.mktemp("train") / "home"
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(app, ["--home", str(home), "--actor", "trainer", *args], catch_exceptions=False)

    assert cli("init").exit_code == 0
    seed_model_cache(home)
    seeds = banking_csv(home.parent / "seeds.csv", n=80, categories=CATEGORIES)
    res = cli("seeds", "import", str(seeds), "--dataset", "bank", "--text-field", "text")
    assert res.exit_code == 0, res.output
    res = cli("train", "bank", "--epsilon", str(EPSILON), "--epochs", str(EPOCHS), "--batch-size", str(BATCH),
              "--virtual-tokens", str(K), "--lr", str(LR))  # fmt: skip
    assert res.exit_code == 0, res.output
    prompt_id = re.search(r"prompt (sp-[0-9a-f]{12})", res.stdout).group(1)
    ctx = Context.open(Workspace(home), actor="trainer")
    cur = ctx.db.conn.execute("SELECT * FROM prompts WHERE id = ?", (prompt_id,))
    row = dict(zip([c[0] for c in cur.description], cur.fetchone(), strict=True))
    yield SimpleNamespace(home=home, cli=cli, out=res.stdout, ctx=ctx, row=row, meta=json.loads(row["meta"]))
    ctx.close()


def test_cli_prints_id_epsilon_and_losses(run: SimpleNamespace) -> None:
    assert f"prompt {run.row['id']}" in run.out
    assert re.search(r"epsilon spent \d+\.\d+ \(target 8", run.out)
    assert re.search(r"train loss \d+\.\d+\s+holdout loss \d+\.\d+", run.out)


def test_recorded_epsilon_is_opacus_accountant_value(run: SimpleNamespace) -> None:
    row = run.row
    n_train = run.ctx.db.conn.execute("SELECT n_train FROM datasets WHERE name = 'bank'").fetchone()[0]
    n = n_train + run.meta["canaries"]["count"]
    m = -(-n // BATCH)
    assert row["sample_rate"] == pytest.approx(1 / m) and row["steps"] == EPOCHS * m
    assert row["delta"] == pytest.approx(default_delta(n)) and row["delta"] <= 1 / (10 * n)  # issue 15's δ
    acc = RDPAccountant()
    acc.history = [(row["noise_multiplier"], row["sample_rate"], row["steps"])]
    assert row["epsilon"] == pytest.approx(acc.get_epsilon(delta=row["delta"]), rel=1e-12)
    assert EPSILON - 0.05 <= row["epsilon"] <= EPSILON
    event = run.ctx.ledger.events(kind="train.run")[-1].payload
    assert event["epsilon"] == row["epsilon"] and event["noise_multiplier"] == row["noise_multiplier"]
    assert event["model_sha256"] == row["model_sha256"] and event["noise_mode"] in ("os-seeded", "torchcsprng")
    # the trainer's precision is recorded with its reason (issue 16); this CPU's choice, whatever it is
    expected = resolve("auto")
    assert {k: event[k] for k in expected.as_dict()} == expected.as_dict()
    assert run.meta["precision"] == expected.name and f"precision {expected.name} (" in run.out


def test_training_lowers_holdout_nll(run: SimpleNamespace) -> None:
    """A real margin: the DP prompt beats its own initialisation on held-out seeds by ≥ 0.1 nats/token."""
    assert run.row["holdout_loss"] < run.meta["holdout_loss_initial"] - 0.1


def test_artifact_matches_contract(run: SimpleNamespace) -> None:
    from appliance.generate.prompts import load_soft_prompt

    row = run.row
    path = run.home / row["artifact_path"]
    assert row["artifact_path"].startswith("artifacts/prompts/")
    with safe_open(str(path), framework="np") as f:
        emb = f.get_tensor("embeddings")
        meta = f.metadata()
    assert emb.dtype == np.float32 and emb.shape == (K, 576) and np.isfinite(emb).all()
    for key in ("model_sha256", "dataset", "k", "epsilon", "delta", "noise_multiplier", "sample_rate", "steps",
                "clip_norm", "accountant", "noise_mode"):  # fmt: skip
        assert meta[key] != "", key
    assert meta["model_sha256"] == row["model_sha256"] and float(meta["epsilon"]) == row["epsilon"]
    sp = load_soft_prompt(Workspace(run.home), row, model_name="smollm2-135m", model_sha256=row["model_sha256"],
                          n_embd=576)  # fmt: skip
    assert np.array_equal(sp.embeddings, emb) and sp.exportable
    assert row["dp"] == 1 and row["exportable"] == 1 and run.meta["prefix_bos"] is False


def test_canaries_are_secret_and_loadable(run: SimpleNamespace) -> None:
    info = run.meta["canaries"]
    path = run.home / info["file"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    planted = canary_store.load(Workspace(run.home), run.row)
    assert len(planted) == info["count"] == 4 and all(len(c.secret) == 8 for c in planted)
    assert planted[0].text == f"my account number is {planted[0].secret}"
    events = json.dumps([e.as_dict() for e in run.ctx.ledger.events()])
    assert all(c.secret not in events for c in planted)
    assert run.ctx.ledger.events(kind="train.run")[-1].payload["canaries_sha256"] == info["sha256"]
    texts = [t for (t,) in run.ctx.db.conn.execute("SELECT text FROM records")]
    assert not any(c.secret in t for c in planted for t in texts)  # the dataset itself is untouched


def test_budget_and_prompt_listing(run: SimpleNamespace) -> None:
    res = run.cli("budget", "show", "bank", "--json")
    assert res.exit_code == 0
    b = json.loads(res.stdout)
    assert b["epsilon_spent"] == pytest.approx(run.row["epsilon"]) and b["composition"] == "basic"
    assert b["epsilon_remaining"] == pytest.approx(16.0 - run.row["epsilon"])
    assert [c["status"] for c in b["charges"]] == ["charged"] and b["charges"][0]["prompt_id"] == run.row["id"]
    res = run.cli("prompts", "list", "--json")
    assert [p["id"] for p in json.loads(res.stdout)["prompts"]] == [run.row["id"]]
    res = run.cli("prompts", "show", run.row["id"])
    shown = json.loads(res.stdout)
    assert shown["privacy_charge"][0]["epsilon"] == run.row["epsilon"] and "secret" not in res.stdout
    assert run.cli("prompts", "show", "sp-000000000000").exit_code == 1
    assert run.ctx.ledger.verify().ok


def test_parity_torch_vs_llama_cpp(run: SimpleNamespace) -> None:
    """Next-token logits of the trained prompt + held-out text: torch (HF, dequantized fp32) vs llama.cpp's embd
    path (Q4_1). The difference is quantization noise (per-logit error sd ~0.13 on SmolLM2), so where the two
    first choices differ the reference must rank them nearly tied: at every position llama.cpp's first choice is
    within 1 logit of the reference's best (seen: ≤ 0.38 over ~500 positions). Top-1 agreement alone is not a
    test (near-ties flip with the CPU's kernels: 0.87 to 0.98 seen); it is held to ≥ 0.85 over ~100 positions,
    and the mean per-position logit correlation to ≥ 0.995 (seen: 0.9990 to 0.9995). What this catches (measured
    on a demo prompt): no soft prompt (regret 10, corr 0.947), rows reversed (10, 0.950), the prompt scaled by
    1.1 (regret 1.5), one row zeroed (corr 0.9915)."""
    from appliance.generate.llama import LlamaCppBackend
    from appliance.train.lm import load_frozen

    lm = load_frozen(Workspace(run.home), "smollm2-135m")
    with safe_open(str(run.home / run.row["artifact_path"]), framework="np") as f:
        soft = f.get_tensor("embeddings")
    held = run.ctx.db.conn.execute("SELECT text FROM records WHERE split = 'holdout' ORDER BY id LIMIT 10")
    text = " ".join(t for (t,) in held)  # one held text of ~100 positions (steadier than one question)
    ids = [*lm.encode(text), lm.eos_id]
    with torch.no_grad():
        x = torch.cat([torch.from_numpy(soft)[None], lm.embed(torch.tensor([ids]))], dim=1)
        ref = lm.model(inputs_embeds=x).logits[0, K:].numpy()
    with LlamaCppBackend(lm.path, n_ctx=256, n_seq_max=1) as backend:
        assert backend.tokenize(text, add_bos=False) == ids[:-1]
        got = backend.prompt_logits(soft, ids, prefix_bos=True)
    assert got.shape == ref.shape == (len(ids), backend.n_vocab) and len(ids) >= 40
    pick = got.argmax(-1)
    regret = ref.max(-1) - ref[np.arange(len(ids)), pick]
    top1 = float((pick == ref.argmax(-1)).mean())
    corr = float(np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(got, ref, strict=True)]))
    stats = {"positions": len(ids), "max_regret": float(regret.max()), "top1": top1, "corr": corr}
    assert stats["max_regret"] <= 1.0, stats
    assert top1 >= 0.85, stats
    assert corr >= 0.995, stats
