"""How the probes decide (fast, no model): on every generated output (before curation), refusing to test
too few records, and handing the gate interval bounds rather than point estimates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gate_fixtures import seed_workspace, write_policy

from appliance.config import Workspace
from appliance.context import Context
from appliance.export.service import get_batch
from appliance.probes import dcr
from appliance.probes.inputs import ProbeInputs, Record, load_inputs
from appliance.probes.probes import TOO_FEW, CanaryProbe, DcrProbe, MembershipProbe, explain, summarize, too_few
from appliance.train.canaries import Canary


class _Scorer:
    """Every text equally likely: exposure carries no signal; only the output search can find a canary."""

    def logprobs_many(self, texts, labels, with_prompt=True):
        return [np.array([-1.0, -1.0]) for _ in texts]


def _inputs(n_mem: int, n_hold: int, outputs: list[str], *, min_records: int = 20, **kw) -> ProbeInputs:
    recs = [Record(f"record {i}", None) for i in range(n_mem + n_hold)]
    return ProbeInputs(ctx=None, batch={"id": "b"}, prompt={"id": "p"}, members=recs[:n_mem],  # type: ignore[arg-type]
                       holdout=recs[n_mem:], synthetic=outputs[:3], canaries=[],
                       min_records=min_records, **kw)  # fmt: skip


def test_too_few_records_to_test_is_a_refusal_not_a_coin_flip():
    assert MembershipProbe().applies(_inputs(8, 40, ["x"] * 30)) == "too_few_records:members=8<20"
    assert MembershipProbe().applies(_inputs(20, 20, ["x"] * 30)) is None
    why = DcrProbe().applies(_inputs(30, 30, ["x"] * 30))  # only 3 outputs sampled for DCR in this double
    assert why == "too_few_records:outputs=3<20"
    assert explain(why).startswith(TOO_FEW) and too_few(5, a=5, b=6) is None
    s = summarize({"mia": {"status": "not_applicable", "reason": "too_few_records:members=8<20"}})
    assert s["too_few_records"] == ["mia"] and s["mia_auc_upper"] is None  # the gate then refuses


def test_every_output_is_searched_for_canaries_not_a_sample():
    """Counted at generation (raw text, before the PII scan) for every output, PII-dropped ones included; the
    stored text is searched only for outputs from before that count existed."""
    secret = "80263571"
    outs = [f"harmless text {i}" for i in range(50)] + [f"my account number is {secret}"]
    inputs = _inputs(20, 20, outs, n_candidates=20, canary_counts=[0] * 49 + [1, 2], uncounted_outputs=outs)
    inputs.canaries = [Canary(secret, None, "my account number is {secret}", 8)]
    inputs._scorer = _Scorer()  # type: ignore[assignment]
    res = CanaryProbe().run(inputs)
    assert res["output_hits"] == 3 and res["n_outputs_searched"] == 102
    assert res["n_outputs_searched_before_pii_scan"] == 51


def test_probes_see_the_outputs_before_curation(workspace: Path):
    """Dropped outputs stay visible to the probes: curation cannot hide what the generator produced."""
    write_policy(workspace, gate={"probe_max_records": 10})
    b = seed_workspace(workspace)
    ctx = Context.open(Workspace(workspace))
    try:
        with ctx.db.conn:
            ctx.db.conn.execute("UPDATE outputs SET status = 'dropped', reason = 'near_duplicate' WHERE idx < 3")
        inputs = load_inputs(ctx, get_batch(ctx, b))
        assert len(inputs.uncounted_outputs) == 5 and len(inputs.synthetic) == 5  # counted before: none here
        assert inputs.min_records == ctx.policy.gate.probe_min_records
    finally:
        ctx.close()


def test_dcr_ratio_interval_brackets_the_estimate_and_narrows_with_more_outputs():
    rng = np.random.default_rng(3)
    small = dcr.dcr_summary(rng.uniform(0.3, 0.7, (20, 30)), rng.uniform(0.3, 0.7, (20, 30)), seed=0)
    big = dcr.dcr_summary(rng.uniform(0.3, 0.7, (400, 30)), rng.uniform(0.3, 0.7, (400, 30)), seed=0)
    for s in (small, big):
        lo, hi = s["ratio_ci"]
        assert lo <= s["ratio"] <= hi
    assert big["ratio_ci"][1] - big["ratio_ci"][0] < small["ratio_ci"][1] - small["ratio_ci"][0]
    fresh = dcr.dcr_summary(np.full((4, 5), 0.5), np.full((4, 5), 0.5))
    assert fresh["ratio_ci"] == pytest.approx([1.0, 1.0])


def test_summary_carries_the_bounds_the_gate_compares():
    mia = {"status": "ok", "mia_auc": 0.55, "mia_auc_upper": 0.66, "tpr_at_1pct_fpr": 0.0,
           "tpr_at_1pct_fpr_upper": 0.04}  # fmt: skip
    d = {"status": "ok", "dcr_ratio": 1.0, "dcr_ratio_lower": 0.85, "attack_auc": 0.5}
    s = summarize({"mia": mia, "dcr": d})
    assert (s["mia_auc_upper"], s["tpr_at_1pct_fpr_upper"], s["dcr_ratio_lower"]) == (0.66, 0.04, 0.85)
    assert s["too_few_records"] == []
