"""`appliance probe` on the real model with constructed soft prompts: a prompt made of the members' and the
canary's own token embeddings makes the model recite them (the probes must flag it); a neutral prompt
made of an instruction's embeddings must not be flagged. (Training-based detection: test_probes_detect.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gate_fixtures import insert_bound, write_policy
from safetensors.numpy import save_file

from appliance.config import Workspace
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.generate.embeddings import token_embeddings
from appliance.models.registry import sha256_file, verified_path
from appliance.policy.schema import CanaryPolicy
from appliance.train import canaries as train_canaries

MEMBERS = [
    "Please freeze my debit card, I think it was stolen.",
    "What is the fee for an international wire transfer?",
    "I forgot my online banking password and cannot log in.",
    "How do I order a new cheque book for my current account?",
    "The cash machine kept my card after I typed the PIN.",
    "Can you raise the daily spending limit on my credit card?",
    "My salary has not arrived in my account this month.",
    "I want to close my savings account and move the money.",
]
HOLDOUT = [
    "Is there a charge for paying in coins at the branch?",
    "Why does my statement show a payment I did not make?",
    "How long until a refund from a shop reaches my card?",
    "Can I add my partner as a joint holder on my account?",
    "The mobile app crashes every time I open the payments tab.",
    "Where can I find my sort code and account number?",
    "I would like to switch to a paperless statement.",
    "Do you offer overdrafts for students?",
]
SECRET = "80263571"  # not a famous number (the base model knows the digits of pi)
TEMPLATE = "my account number is {secret}"


def _insert(conn, table: str, row: dict) -> None:
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def _prompt(ctx: Context, model_path: Path, sha: str, pid: str, text: str) -> None:
    """A soft prompt that is the token embeddings of ``text``, with one planted canary."""
    from appliance.generate.llama import LlamaCppBackend

    with LlamaCppBackend(model_path, n_ctx=512, n_seq_max=1, n_threads=1) as b:
        ids = b.tokenize(text, add_bos=False)
    emb = token_embeddings(model_path, ids)
    path = ctx.ws.artifacts / f"{pid}.safetensors"
    save_file({"embeddings": emb}, str(path))
    canary = train_canaries.Canary(SECRET, None, TEMPLATE, 8)
    rel, csha = train_canaries.write(ctx.ws, pid, "bank", [canary], 1)
    meta = {
        "prefix_text": "",
        "suffix_text": "",
        "label_template": None,
        "labels": None,
        "prefix_bos": False,
        "end_token_id": 2,
        "max_text_tokens": 96,
        "canaries": {"count": 1, "repeats": 1, "digits": 8, "file": rel, "sha256": csha},
    }
    with transaction(ctx.db) as conn:
        insert_bound(
            conn,
            "prompts",
            {
                "id": pid,
                "dataset": "bank",
                "model_name": "smollm2-135m",
                "model_sha256": sha,
                "k": emb.shape[0],
                "n_embd": emb.shape[1],
                "dp": 1,
                "exportable": 1,
                "epsilon": 2.0,
                "delta": 1e-5,
                "accountant": "rdp",
                "artifact_path": f"artifacts/{pid}.safetensors",
                "artifact_sha256": "sha256:" + sha256_file(path),
                "meta": json.dumps(meta),
                "created_at": utc_now(),
            },
        )
        insert_bound(
            conn,
            "batches",
            {
                "id": f"b-{pid}",
                "dataset": "bank",
                "mode": "softprompt",
                "prompt_id": pid,
                "model_name": "smollm2-135m",
                "model_sha256": sha,
                "params": "{}",
                "n_requested": 4,
                "status": "complete",
                "exportable": 1,
                "created_at": utc_now(),
            },
        )
        outputs = (
            MEMBERS[:4]
            if pid == "copycat"
            else [
                "Could you tell me how to update my home address?",
                "I need a statement for my mortgage application.",
                "Is it possible to pause my card while I look for it?",
                "How do I dispute a duplicate charge?",
            ]
        )
        for i, t in enumerate(outputs):
            _insert(
                conn,
                "outputs",
                {
                    "batch_id": f"b-{pid}",
                    "idx": i,
                    "text": t,
                    "n_tokens": 12,
                    "findings": "[]",
                    "status": "kept",
                    "created_at": utc_now(),
                },
            )


@pytest.fixture(scope="module")
def probed(tmp_path_factory) -> dict:
    """One workspace, two prompts (copycat, neutral), each probed through the CLI."""
    from typer.testing import CliRunner

    from appliance.cli.main import app

    home = tmp_path_factory.mktemp("probe") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("APPLIANCE_HOME", str(home))
    mp.setenv("APPLIANCE_ACTOR", "tester")
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    write_policy(
        home,
        generation={"threads": 1},
        gate={"probe_canary_candidates": 60, "probe_bootstrap": 200, "probe_min_records": 4},
    )  # 8 members, 8 holdout and 4 outputs: the minimum is lowered for this constructed-prompt test
    ctx = Context.open(Workspace(home), actor="tester")
    _, model_path, sha = verified_path("smollm2-135m", ctx.ws)
    with transaction(ctx.db) as conn:
        _insert(
            conn,
            "datasets",
            {
                "name": "bank",
                "created_at": utc_now(),
                "source_sha256": "sha256:" + "1" * 64,
                "policy_sha256": ctx.policy_sha256,
                "n_records": 16,
                "n_train": 8,
                "n_holdout": 8,
            },
        )
        for i, t in enumerate(MEMBERS + HOLDOUT):
            _insert(
                conn,
                "records",
                {
                    "dataset": "bank",
                    "source_index": i,
                    "text": t,
                    "split": "train" if i < len(MEMBERS) else "holdout",
                    "text_sha256": "sha256:" + "2" * 64,
                    "created_at": utc_now(),
                },
            )
    canary_text = TEMPLATE.format(secret=SECRET)
    _prompt(ctx, model_path, sha, "copycat", "\n".join([*MEMBERS, canary_text, canary_text]) + "\n")
    _prompt(
        ctx,
        model_path,
        sha,
        "neutral",
        CanaryPolicy().template.replace("{secret}", "") + " Write one more example like the ones in this dataset:",
    )
    ctx.close()
    out = {}
    for pid in ("copycat", "neutral"):
        res = runner.invoke(app, ["probe", f"b-{pid}", "--json"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        out[pid] = json.loads(res.stdout)
    res = runner.invoke(app, ["probe", "b-neutral"], catch_exceptions=False)
    out["text_output"] = res.output
    out["home"] = home
    yield out
    mp.undo()


@pytest.mark.slow
def test_copying_prompt_is_detected(probed):
    s = probed["copycat"]["summary"]
    assert s["mia_auc"] >= 0.9, s
    assert s["tpr_at_1pct_fpr"] >= 0.5, s
    assert s["canary_exposure_bits"] > 10.0, s
    assert s["dcr_ratio"] < 0.8, s


@pytest.mark.slow
def test_neutral_prompt_is_not_flagged(probed):
    s = probed["neutral"]["summary"]
    assert s["canary_exposure_bits"] < 10.0, s
    assert s["canary_output_hits"] == 0
    assert s["dcr_ratio"] >= 0.8, s
    assert s["mia_auc"] < probed["copycat"]["summary"]["mia_auc"]


@pytest.mark.slow
def test_probe_record_shape(probed):
    rec = probed["copycat"]
    mia = rec["metrics"]["mia"]
    assert set(mia["attacks"]) == {"loss", "min_k", "ref_calibrated"}
    for a in mia["attacks"].values():
        assert a["auc_ci"][0] <= a["auc"] <= a["auc_ci"][1] and (a["n_members"], a["n_holdout"]) == (8, 8)
    (c,) = rec["metrics"]["canary"]["canaries"]
    assert c["n_candidates"] == 60 and c["sample_rank"] == 1
    assert rec["metrics"]["counts"] == {"members": 8, "holdout": 8, "synthetic": 4, "canaries": 1}
    assert "MIA AUC" in probed["text_output"] and "gate <=" in probed["text_output"]


@pytest.mark.slow
def test_probe_audit_event_has_metrics_and_no_text(probed):
    ctx = Context.open(Workspace(probed["home"]))
    events = ctx.ledger.events(kind="probe.run")
    ctx.close()
    assert len(events) == 3
    raw = json.dumps([e.payload for e in events])
    assert SECRET not in raw and all(t[:20] not in raw for t in MEMBERS + HOLDOUT)
    p = events[0].payload
    assert p["summary"] == probed["copycat"]["summary"] and p["model_sha256"].startswith("sha256:")
    assert p["prompt_sha256"].startswith("sha256:") and p["metrics"]["dcr"]["embedding_sha256"].startswith("sha256:")


def test_probe_unknown_batch(cli, workspace):
    assert cli("probe", "b-missing").exit_code == 1


@pytest.mark.slow
def test_probe_refuses_a_tampered_prompt(probed, runner):
    from appliance.cli.main import app

    art = Path(probed["home"]) / "artifacts" / "neutral.safetensors"
    data = bytearray(art.read_bytes())
    data[-1] ^= 1
    art.write_bytes(bytes(data))
    res = runner.invoke(app, ["--home", str(probed["home"]), "probe", "b-neutral"], catch_exceptions=False)
    assert res.exit_code == 4


def test_duplicate_probe_registration_is_refused():
    from appliance.probes import registry
    from appliance.probes.probes import MembershipProbe

    with pytest.raises(ValueError, match="already registered"):
        registry.register("mia")(MembershipProbe)
    assert registry.names() == ["mia", "canary", "dcr"]
    np.testing.assert_equal(len(registry.names()), 3)


@pytest.mark.slow
def test_shared_prefix_scoring_matches_one_pass_per_record():
    """The KV-sharing path gives the same log-probabilities as prompt_logits, record by record."""
    from appliance.config import SOURCE_ROOT
    from appliance.generate.llama import LlamaCppBackend
    from appliance.probes.scoring import LikelihoodScorer

    path = SOURCE_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    with LlamaCppBackend(path, n_ctx=512, n_seq_max=4, n_threads=1) as b:
        soft = token_embeddings(path, b.tokenize("Write a short customer question:", add_bos=False))
        sc = LikelihoodScorer(b, soft, suffix_text="\n", end_id=2, prefix_bos=False)
        texts = [*MEMBERS[:3], "short", TEMPLATE.format(secret=SECRET)]
        many = sc.logprobs_many(texts, [None] * len(texts))
        for t, lp in zip(texts, many, strict=True):
            one = sc.logprobs(t)
            assert lp.shape == one.shape
            np.testing.assert_allclose(lp, one, atol=2e-3)


@pytest.mark.slow
def test_export_runs_the_probes_when_missing(probed, runner, tmp_path):
    """A batch without a probe record is probed by `export` before the gate decides."""
    from gate_fixtures import insert_evaluation

    from appliance.cli.main import app

    home = Path(probed["home"])
    ctx = Context.open(Workspace(home), actor="tester")
    row = ctx.db.conn.execute("SELECT model_sha256 FROM batches WHERE id = 'b-copycat'").fetchone()
    with transaction(ctx.db) as conn:
        insert_bound(
            conn,
            "batches",
            {
                "id": "b-unprobed",
                "dataset": "bank",
                "mode": "softprompt",
                "prompt_id": "copycat",
                "model_name": "smollm2-135m",
                "model_sha256": row[0],
                "params": "{}",
                "n_requested": 1,
                "status": "complete",
                "exportable": 1,
                "created_at": utc_now(),
            },
        )
        _insert(
            conn,
            "outputs",
            {
                "batch_id": "b-unprobed",
                "idx": 0,
                "text": MEMBERS[0],
                "n_tokens": 12,
                "findings": "[]",
                "status": "kept",
                "created_at": utc_now(),
            },
        )
        insert_bound(
            conn,
            "curations",
            {
                "batch_id": "b-unprobed",
                "n_total": 1,
                "n_kept": 1,
                "n_dropped": 0,
                "reasons": "{}",
                "leak_hits": 0,
                "pii_hits": 0,
                "kept_leak_hits": 0,
                "kept_pii_hits": 0,
                "policy_sha256": ctx.policy_sha256,
                "created_at": utc_now(),
            },
        )
        insert_evaluation(conn, "b-unprobed", 0.9)
    out = tmp_path / "o.jsonl"
    res = runner.invoke(app, ["--home", str(home), "export", "b-unprobed", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 3, res.output  # the copying prompt is refused on its own probe results
    assert "canary_exposure_bits" in res.output and "mia_auc" in res.output and not out.exists()
    (probe_id,) = ctx.db.conn.execute("SELECT id FROM probes WHERE batch_id = 'b-unprobed'").fetchone()
    dec = ctx.db.conn.execute("SELECT probe_id, passed FROM gate_decisions WHERE batch_id = 'b-unprobed'").fetchone()
    assert dec == (probe_id, 0)
    ctx.close()
