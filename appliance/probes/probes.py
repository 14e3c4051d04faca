"""The three privacy probes, registered in the order they run.

- ``mia``: membership inference on the trained prompt — loss, Min-K% and reference-calibrated loss
  (loss without the prompt minus loss with it, which cancels how hard a record is for the base model;
  Carlini et al. 2021 "Extracting Training Data", §6.2 reference-model ratio) for members vs holdout.
- ``canary``: exposure of each canary the trainer inserted, and canaries found in the batch's outputs.
- ``dcr``: distance to closest record from the synthetic outputs to members vs holdout.

Results carry numbers and record counts only; canaries are referred to by index, never by secret.

Decisions are made on what the sample can show: the summary carries the upper end of the 95%
bootstrap interval of each MIA statistic and the lower end of the DCR ratio's, and the gate compares
those. A probe with fewer than ``gate.probe_min_records`` records on a side is not run: it reports
``too few records to test`` (and the gate, missing its value, refuses) instead of deciding by chance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.probes import dcr
from appliance.probes.exposure import estimated_exposure
from appliance.probes.inputs import ProbeInputs
from appliance.probes.likelihood import mean_loss, min_k_prob
from appliance.probes.metrics import attack_summary, roc_curve
from appliance.probes.registry import register

MIN_K = 0.2
CURVE_POINTS = 200
TOO_FEW = "too few records to test"
TOO_FEW_REASON = "too_few_records"  # the reason code (audit payloads take no free text)


def too_few(min_records: int, **sides: int) -> str | None:
    """``too_few_records:members=8<20`` when a side is under the minimum, else None."""
    short = [f"{name}={n}<{min_records}" for name, n in sides.items() if n < min_records]
    return f"{TOO_FEW_REASON}:{','.join(short)}" if short else None


def explain(reason: str) -> str:
    """A reason code in words: ``too few records to test (members=8<20)``."""
    if reason.startswith(TOO_FEW_REASON):
        return f"{TOO_FEW} ({reason.partition(':')[2]})"
    return reason


def _curve(pos: np.ndarray, neg: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, _ = roc_curve(pos, neg)
    if fpr.size > CURVE_POINTS:
        idx = np.unique(np.linspace(0, fpr.size - 1, CURVE_POINTS).round().astype(int))
        fpr, tpr = fpr[idx], tpr[idx]
    return {"fpr": [round(float(x), 5) for x in fpr], "tpr": [round(float(x), 5) for x in tpr]}


@register("mia")
class MembershipProbe:
    name = "mia"

    def applies(self, inputs: ProbeInputs) -> str | None:
        if inputs.prompt is None:
            return "no_prompt"
        if not inputs.members or not inputs.holdout:
            return "no_holdout" if inputs.members else "no_members"
        return too_few(inputs.min_records, members=len(inputs.members), holdout=len(inputs.holdout))

    def run(self, inputs: ProbeInputs) -> dict[str, Any]:
        sc = inputs.scorer()
        records = [*inputs.members, *inputs.holdout]
        texts, labels = [r.text for r in records], [r.label for r in records]
        with_prompt = sc.logprobs_many(texts, labels)
        reference = sc.logprobs_many(texts, labels, with_prompt=False)
        n_mem = len(inputs.members)
        scores: dict[str, tuple[list[float], list[float]]] = {
            "loss": ([], []),
            "min_k": ([], []),
            "ref_calibrated": ([], []),
        }
        for i, (lp, ref) in enumerate(zip(with_prompt, reference, strict=True)):
            side = 0 if i < n_mem else 1
            common = min(lp.size, ref.size)  # the reference may lack the first token's prediction
            scores["loss"][side].append(-mean_loss(lp))
            scores["min_k"][side].append(min_k_prob(lp, MIN_K))
            scores["ref_calibrated"][side].append(mean_loss(ref[-common:]) - mean_loss(lp[-common:]))
        attacks, curves = {}, {}
        for name, (pos, neg) in scores.items():
            p, n = np.asarray(pos), np.asarray(neg)
            attacks[name] = attack_summary(p, n, n_boot=inputs.n_boot, seed=inputs.seed)
            curves[name] = _curve(p, n)
        best = max(attacks, key=lambda k: attacks[k]["auc"])
        return {
            "attacks": attacks,
            "best_attack": best,
            "mia_auc": max(a["auc"] for a in attacks.values()),
            "mia_auc_upper": max(a["auc_ci"][1] for a in attacks.values()),
            "tpr_at_1pct_fpr": max(a["tpr_at_1pct_fpr"] for a in attacks.values()),
            "tpr_at_1pct_fpr_upper": max(a["tpr_at_1pct_fpr_ci"][1] for a in attacks.values()),
            "mean_loss_members": float(-np.mean(scores["loss"][0])),
            "mean_loss_holdout": float(-np.mean(scores["loss"][1])),
            "curves": curves,
        }


@register("canary")
class CanaryProbe:
    name = "canary"

    def applies(self, inputs: ProbeInputs) -> str | None:
        if inputs.prompt is None:
            return "no_prompt"
        return None if inputs.canaries else "no_canaries"

    def run(self, inputs: ProbeInputs) -> dict[str, Any]:
        sc = inputs.scorer()
        rng = np.random.default_rng(inputs.seed)
        per: list[dict[str, Any]] = []
        for i, c in enumerate(inputs.canaries):
            space = 10**c.digits
            cands: set[str] = set()
            while len(cands) < min(inputs.n_candidates, space - 1):
                s = str(int(rng.integers(0, space))).zfill(c.digits)
                if s != c.secret:
                    cands.add(s)
            texts = [c.text, *(c.template.format(secret=s) for s in sorted(cands))]
            losses = np.array([-float(lp.sum()) for lp in sc.logprobs_many(texts, [c.label] * len(texts))])
            per.append({"canary": i, **estimated_exposure(float(losses[0]), losses[1:], float(space))})
        # outputs whose raw text held a secret (counted at generation, before the PII scan), and for outputs
        # stored before that count existed, a search of their stored text
        hits = sum(1 for n in inputs.canary_counts if n > 0)
        hits += sum(1 for t in inputs.uncounted_outputs if any(c.secret in t for c in inputs.canaries))
        exp = [p["exposure_bits"] for p in per]
        return {
            "canaries": per,
            "n_canaries": len(per),
            "max_exposure_bits": max(exp),
            "mean_exposure_bits": float(np.mean(exp)),
            "max_sample_exposure_bits": max(p["sample_exposure_bits"] for p in per),
            "output_hits": hits,
            "n_outputs_searched": len(inputs.canary_counts) + len(inputs.uncounted_outputs),
            "n_outputs_searched_before_pii_scan": len(inputs.canary_counts),
        }


@register("dcr")
class DcrProbe:
    name = "dcr"

    def applies(self, inputs: ProbeInputs) -> str | None:
        if not inputs.synthetic:
            return "no_synthetic"
        if not inputs.members or not inputs.holdout:
            return "no_holdout" if inputs.members else "no_members"
        n = {"outputs": len(inputs.synthetic), "members": len(inputs.members), "holdout": len(inputs.holdout)}
        return too_few(inputs.min_records, **n)

    def run(self, inputs: ProbeInputs) -> dict[str, Any]:
        mem = [r.text for r in inputs.members]
        hold = [r.text for r in inputs.holdout]
        syn = list(inputs.synthetic)
        emb, emb_sha = inputs.embed([*mem, *hold, *syn])
        e_m, e_h, e_s = emb[: len(mem)], emb[len(mem) : len(mem) + len(hold)], emb[len(mem) + len(hold) :]
        embedding = dcr.dcr_summary(
            dcr.cosine_distances(e_s, e_m), dcr.cosine_distances(e_s, e_h), seed=inputs.seed, n_boot=inputs.n_boot
        )
        g_m, g_h, g_s = ([dcr.word_ngrams(t) for t in ts] for ts in (mem, hold, syn))
        ngram = dcr.dcr_summary(
            dcr.jaccard_distances(g_s, g_m), dcr.jaccard_distances(g_s, g_h), seed=inputs.seed, n_boot=inputs.n_boot
        )
        return {
            "embedding": embedding,
            "ngram": ngram,
            "dcr_ratio": min(embedding["ratio"], ngram["ratio"]),
            "dcr_ratio_lower": min(embedding["ratio_ci"][0], ngram["ratio_ci"][0]),
            "attack_auc": max(embedding["attack_auc"], ngram["attack_auc"]),
            "embedding_sha256": emb_sha,
        }


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The numbers the gate compares — MIA upper bounds, the DCR lower bound — beside the point estimates
    (None where a probe did not apply), and the probes refused for too few records."""
    mia, can, d = results.get("mia", {}), results.get("canary", {}), results.get("dcr", {})
    return {
        "mia_auc": mia.get("mia_auc"),
        "mia_auc_upper": mia.get("mia_auc_upper"),
        "tpr_at_1pct_fpr": mia.get("tpr_at_1pct_fpr"),
        "tpr_at_1pct_fpr_upper": mia.get("tpr_at_1pct_fpr_upper"),
        "canary_exposure_bits": can.get("max_exposure_bits"),
        "canary_output_hits": can.get("output_hits"),
        "dcr_ratio": d.get("dcr_ratio"),
        "dcr_ratio_lower": d.get("dcr_ratio_lower"),
        "dcr_attack_auc": d.get("attack_auc"),
        "too_few_records": sorted(k for k, r in results.items() if str(r.get("reason", "")).startswith(TOO_FEW_REASON)),
    }
