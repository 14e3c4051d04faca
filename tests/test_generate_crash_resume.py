"""A llama.cpp crash during `appliance generate` is one line and a resumable batch; resume keeps the weights mode.

The crash is real (the decoding worker process dies of SIGSEGV after N outputs, through the worker's test
hook); everything else is the real command, model, PII pipeline and SQLite.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from _generate_data import TICKETS, add_dataset, add_prompt

from appliance.config import Workspace
from appliance.context import Context
from appliance.generate import plan as plan_mod
from appliance.generate import selftest
from appliance.generate.backend import SamplingParams

FAST = ["--max-tokens", "10", "--seed", "5"]


def _events(home: Path, kind: str) -> list[dict]:
    with sqlite3.connect(str(home / "appliance.db")) as conn:
        rows = conn.execute("SELECT payload FROM events WHERE kind = ? ORDER BY seq", (kind,))
        return [json.loads(r[0]) for r in rows]


def _policy(home: Path, **generation: object) -> None:
    doc = yaml.safe_load((home / "policy.yaml").read_text())
    doc["generation"].update(generation)
    (home / "policy.yaml").write_text(yaml.safe_dump(doc))


def _row(weights: str | None) -> dict:
    params = {"sampling": SamplingParams().as_dict(), "seed": 1, "batch": 2, "few_shot": 2, "labels": [None]}
    if weights is not None:
        params["weights"] = weights
    return {
        "id": "b-1",
        "params": params,
        "model_name": "smollm2-135m",
        "model_sha256": "sha256:" + "3" * 64,
        "mode": "fewshot",
        "dataset": "bank",
        "n_requested": 4,
        "label": None,
    }


@pytest.mark.parametrize(("stored", "resumed"), [("f16", "f16"), ("native", "native"), (None, "native")])
def test_plan_resume_keeps_the_weights_mode(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, stored: str | None, resumed: str
) -> None:
    spec = SimpleNamespace(name="smollm2-135m")
    monkeypatch.setattr(plan_mod, "verified_path", lambda *_a: (spec, Path("/m.gguf"), "sha256:" + "3" * 64))
    ctx = Context.open(Workspace(workspace))
    try:
        assert plan_mod.plan_resume(ctx, _row(stored)).weights == resumed
    finally:
        ctx.close()


@pytest.mark.parametrize(("stored", "resumed"), [("labels", "labels"), ("prior", "prior"), (None, "prior")])
def test_plan_resume_keeps_what_guidance_contrasts_with(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, stored: str | None, resumed: str
) -> None:
    """A batch resumes with the contrast it began with, whatever the policy says now; one stored before the
    contrast existed was guided against the prior."""
    spec = SimpleNamespace(name="smollm2-135m")
    monkeypatch.setattr(plan_mod, "verified_path", lambda *_a: (spec, Path("/m.gguf"), "sha256:" + "3" * 64))
    _policy(workspace, guidance_contrast="labels" if resumed == "prior" else "prior")
    row = _row("native")
    if stored is None:
        del row["params"]["sampling"]["contrast"]
    else:
        row["params"]["sampling"]["contrast"] = stored
    ctx = Context.open(Workspace(workspace))
    try:
        assert plan_mod.plan_resume(ctx, row).sampling.contrast == resumed
    finally:
        ctx.close()


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["f16", "native"])
def test_crash_mid_batch_is_one_line_and_resume_finishes(
    cli: Callable,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    weights: str,
) -> None:
    monkeypatch.setenv("APPLIANCE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "weights-cache"))
    selftest._MEMO.clear()
    shutil.rmtree(selftest.cache_root(), ignore_errors=True)  # a fresh verdict: extra buffer types on
    _policy(workspace, threads=1, weights=weights)
    add_dataset(workspace, "tickets", TICKETS)
    pid = add_prompt(workspace, "tickets")
    monkeypatch.setenv("APPLIANCE_WORKER_SIMULATE", "segv_after:2")
    res = cli("generate", "tickets", "--n", "5", "--prompt", pid, "--batch", "2", *FAST)
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "SIGSEGV" in lines[0] and "generate --resume b-" in lines[0], res.stderr
    assert "Segmentation fault" not in res.output and "Traceback" not in res.output
    with sqlite3.connect(str(workspace / "appliance.db")) as conn:
        bid, status = conn.execute("SELECT id, status FROM batches").fetchone()
        stored = conn.execute("SELECT COUNT(*) FROM outputs WHERE batch_id = ?", (bid,)).fetchone()[0]
    assert status == "interrupted" and stored == 2
    ev = _events(workspace, "generate.interrupted")[-1]
    assert ev["reason"] == "decoder_crashed" and ev["n_stored"] == 2 and ev["weights"] == weights
    assert ev["signal"] == "SIGSEGV" and ev["extra_bufts"] is True
    assert "extra buffer types are now off" in lines[0]
    assert _events(workspace, "generate.selftest")[-1]["outcome"] == "fallback:generate-SIGSEGV"

    monkeypatch.delenv("APPLIANCE_WORKER_SIMULATE")
    _policy(workspace, weights="native" if weights == "f16" else "f16")  # the batch's own mode must win
    res = cli("generate", "--resume", bid, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[-1])["n_new"] == 3
    resumed = _events(workspace, "generate.resume")[-1]
    assert resumed["weights"] == weights and resumed["weights_sha256"] == ev["weights_sha256"]
    assert resumed["extra_bufts"] is False and resumed["kernel_selftest"] == "fallback:generate-SIGSEGV"
    selftest._MEMO.clear()
