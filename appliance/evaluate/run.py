"""Evaluate a curated batch: detection AUC, label fidelity, TSTR (plain and label-masked), MAUVE, diversity and
length; one record, one audit event.

The figures that decide quality are the ones a junk batch cannot pass (see :mod:`appliance.evaluate.detection`):
detection AUC (can a classifier tell the real holdout from the outputs) and, for labelled data, label fidelity
(does a classifier trained on real records give each output the label it was generated for). Beside them, not
gated, the lexical detection AUC: the same test on word and character n-grams, which sees the wording, punctuation
and case that a sentence embedding is built to ignore; and both AUCs again at a fixed ``n`` per side
(``curation.eval_fixed_n``), the figure that compares batches of different sizes. Every metric
carries its sample size and a ``reliable`` flag (``metrics["reliability"]``); MAUVE below 500 samples is noise.

Promise: the evaluation reads only curated-kept outputs (a batch that was never curated is refused,
exit 1, with the command to run); its metrics, the embedding model's name and SHA-256 and the sample
sizes are stored in ``evaluations`` and in one ``evaluate.run`` audit event, committed together.
Nothing about the texts is stored except counts and metrics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from appliance.audit import append_in_tx
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.evaluate import detection as det
from appliance.evaluate import metrics as m
from appliance.evaluate.embed import Embedder, default_embedder
from appliance.evaluate.sources import Texts, kept_outputs, reference_texts, split_records
from appliance.evaluate.tstr import matched_real, tstr
from appliance.store import results


@dataclass
class EvaluationReport:
    batch_id: str
    dataset: str
    reference: str
    n_synthetic: int
    n_reference: int
    embedding_model: str
    embedding_sha256: str
    metrics: dict[str, Any] = field(default_factory=dict)
    evaluation_id: int = 0
    event_seq: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Memo:
    """Embeds each distinct text once per evaluation (the holdout is both reference and TSTR test set)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            self._cache.update(zip(todo, self.embedder.encode(todo), strict=True))
        return np.stack([self._cache[t] for t in texts])


def diversity(texts: list[str], emb: np.ndarray, *, bleu_samples: int, seed: int) -> dict[str, float]:
    """distinct-1/2/3, self-BLEU and mean pairwise embedding distance of one side."""
    return {
        "distinct_1": m.distinct_n(texts, 1),
        "distinct_2": m.distinct_n(texts, 2),
        "distinct_3": m.distinct_n(texts, 3),
        "self_bleu": m.self_bleu(texts, max_samples=bleu_samples, seed=seed),
        "mean_pairwise_distance": m.mean_pairwise_distance(emb),
    }


def utility(
    ctx: Context, dataset: str, synthetic: Texts, embed: _Memo, *, cap: int, seed: int
) -> dict[str, Any] | None:
    """TSTR on the dataset's labels, or None when the dataset or the kept outputs carry no labels."""
    syn_texts, syn_labels = synthetic.labeled()
    train_texts, train_labels = split_records(ctx, dataset, "train").labeled()
    test_texts, test_labels = split_records(ctx, dataset, "holdout").labeled()
    if len(set(syn_labels)) < 2 or not train_texts or not test_texts:
        return None
    s_idx, r_idx = matched_real(syn_labels, train_labels, seed=seed)
    known = {syn_labels[i] for i in s_idx}
    test = m.sample([(t, lab) for t, lab in zip(test_texts, test_labels, strict=True) if lab in known], cap, seed + 2)
    if len(known) < 2 or not test:
        return None
    real_x, real_y = embed([train_texts[i] for i in r_idx]), [train_labels[i] for i in r_idx]
    test_x, test_y = embed([t for t, _ in test]), [lab for _, lab in test]
    chosen = [(syn_texts[i], syn_labels[i]) for i in s_idx]
    result = tstr(embed([t for t, _ in chosen]), [lab for _, lab in chosen], real_x, real_y, test_x, test_y, seed=seed)
    # the same, with the label's own words masked in the synthetic texts: a generator that echoes the label
    # name instead of writing in-topic text cannot pass this one
    masked_x = embed([det.mask_label_words(t, lab) for t, lab in chosen])
    masked = tstr(masked_x, [lab for _, lab in chosen], real_x, real_y, test_x, test_y, seed=seed)
    return {**result.as_dict(), "masked": masked.as_dict()}


def fidelity(
    ctx: Context, dataset: str, synthetic: Texts, embed: _Memo, *, cap: int, seed: int
) -> dict[str, Any] | None:
    """Label fidelity of the labelled outputs against a classifier trained on the real train split, or None."""
    syn_texts, syn_labels = synthetic.labeled()
    train_texts, train_labels = split_records(ctx, dataset, "train").labeled()
    if not syn_texts or len(set(train_labels)) < 2:
        return None
    train = m.sample(list(zip(train_texts, train_labels, strict=True)), cap, seed + 3)
    test_texts, test_labels = split_records(ctx, dataset, "holdout").labeled()
    test = m.sample(list(zip(test_texts, test_labels, strict=True)), cap, seed + 4)
    res = det.label_fidelity(
        embed([t for t, _ in train]),
        [lab for _, lab in train],
        embed(syn_texts),
        syn_labels,
        test_x=embed([t for t, _ in test]) if test else None,
        test_y=[lab for _, lab in test] if test else None,
        seed=seed,
    )
    return res.as_dict()


def detection(real_emb: np.ndarray, syn_emb: np.ndarray, *, seed: int) -> dict[str, Any] | None:
    """Detection AUC (real reference vs outputs) with its bootstrap interval, or None below 4 per side."""
    if min(len(real_emb), len(syn_emb)) < 4:
        return None
    return det.detection_auc(real_emb, syn_emb, seed=seed).as_dict()


def lexical_detection(real: list[str], synthetic: list[str], *, seed: int) -> dict[str, Any] | None:
    """The same test on word and character n-grams (wording, punctuation, case), or None below 4 per side."""
    if min(len(real), len(synthetic)) < 4:
        return None
    return det.lexical_detection_auc(real, synthetic, seed=seed).as_dict()


def fixed_n(
    real_emb: np.ndarray,
    syn_emb: np.ndarray,
    real: list[str],
    synthetic: list[str],
    *,
    n: int | None,
    draws: int,
    seed: int,
) -> dict[str, Any] | None:
    """Both detection AUCs at ``n`` per side (the mean of ``draws`` subsamples), so that batches of different
    sizes compare; ``{"n": n, "skipped": True, ...}`` with both sides' counts when one has fewer than ``n``; None when
    ``n`` is off."""
    if n is None:
        return None
    if min(len(real), len(synthetic)) < n:
        return {"n": n, "skipped": True, "n_synthetic": len(synthetic), "n_reference": len(real)}
    return {
        "n": n,
        "draws": draws,
        "detection": det.detection_at_n(real_emb, syn_emb, n=n, draws=draws, seed=seed).as_dict(),
        "lexical_detection": det.detection_at_n(real, synthetic, n=n, draws=draws, lexical=True, seed=seed).as_dict(),
    }


def reliability(metrics: dict[str, Any]) -> dict[str, dict[str, object]]:
    """Each metric's sample size (the smaller side) and whether it reaches its stated minimum."""
    out = {
        "mauve": det.reliability("mauve", min(metrics["n_synthetic"], metrics["n_reference"])),
        "distinct_n": det.reliability("distinct_n", metrics["n_synthetic"]),
    }
    if metrics.get("detection"):
        out["detection_auc"] = det.reliability("detection_auc", metrics["detection"]["n_real"])
    if metrics.get("lexical_detection"):
        out["lexical_detection_auc"] = det.reliability("detection_auc", metrics["lexical_detection"]["n_real"])
    if metrics.get("fidelity"):
        out["label_fidelity"] = det.reliability("label_fidelity", metrics["fidelity"]["n_synthetic"])
    if metrics.get("tstr"):
        out["tstr"] = det.reliability("tstr", metrics["tstr"]["n_train"])
    return out


def evaluate_batch(
    ctx: Context, batch_id: str, *, reference: str = "holdout", embedder: Embedder | None = None
) -> EvaluationReport:
    """Compute, store and audit the metrics of ``batch_id``'s kept outputs against ``reference``."""
    policy = ctx.policy.curation
    seed, cap = policy.eval_seed, policy.eval_max_samples
    batch, curation, kept = kept_outputs(ctx, batch_id)
    ref_name, ref = reference_texts(ctx, batch["dataset"], reference)
    embedder = embedder or default_embedder()
    embed = _Memo(embedder)

    syn_idx = m.sample(list(range(len(kept.texts))), cap, seed)
    synthetic = Texts([kept.texts[i] for i in syn_idx], [kept.labels[i] for i in syn_idx])
    ref_texts = m.sample(ref.texts, cap, seed + 1)
    syn_emb, ref_emb = embed(synthetic.texts), embed(ref_texts)
    bleu_n = policy.self_bleu_max_samples
    metrics: dict[str, Any] = {
        "mauve": m.mauve_score(syn_emb, ref_emb, seed=seed),
        "mauve_buckets": m.mauve_buckets(len(syn_emb), len(ref_emb)),
        "n_synthetic": len(synthetic.texts),
        "n_reference": len(ref_texts),
        "n_kept": len(kept.texts),
        "synthetic": diversity(synthetic.texts, syn_emb, bleu_samples=bleu_n, seed=seed),
        "reference": diversity(ref_texts, ref_emb, bleu_samples=bleu_n, seed=seed),
        "self_bleu_samples": min(bleu_n, len(synthetic.texts)),
        "length": m.length_comparison(synthetic.texts, ref_texts),
        "tstr": utility(ctx, batch["dataset"], synthetic, embed, cap=cap, seed=seed),
        "detection": detection(ref_emb, syn_emb, seed=seed),
        "lexical_detection": lexical_detection(ref_texts, synthetic.texts, seed=seed),
        "fidelity": fidelity(ctx, batch["dataset"], synthetic, embed, cap=cap, seed=seed),
        "fixed_n": fixed_n(
            ref_emb,
            syn_emb,
            ref_texts,
            synthetic.texts,
            n=policy.eval_fixed_n,
            draws=policy.eval_fixed_n_draws,
            seed=seed,
        ),
        "seed": seed,
    }
    metrics["detection_auc"] = (metrics["detection"] or {}).get("auc")
    metrics["lexical_detection_auc"] = (metrics["lexical_detection"] or {}).get("auc")
    metrics["label_fidelity"] = (metrics["fidelity"] or {}).get("fidelity")
    metrics["reliability"] = reliability(metrics)
    report = EvaluationReport(
        batch_id=batch_id,
        dataset=batch["dataset"],
        reference=ref_name,
        n_synthetic=len(synthetic.texts),
        n_reference=len(ref_texts),
        embedding_model=embedder.name,
        embedding_sha256=embedder.sha256,
        metrics=metrics,
    )
    _store(ctx, report, curation_id=curation["id"])
    return report


def _store(ctx: Context, report: EvaluationReport, *, curation_id: int) -> None:
    tstr_ratio = (report.metrics["tstr"] or {}).get("ratio")
    with transaction(ctx.db) as conn:
        payload = {
            "batch": report.batch_id,
            "dataset": report.dataset,
            "reference": report.reference,
            "n_synthetic": report.n_synthetic,
            "n_reference": report.n_reference,
            "embedding_model": report.embedding_model,
            "model_sha256": report.embedding_sha256,
            "curation_id": curation_id,
            "metrics": report.metrics,
            "policy_sha256": ctx.policy_sha256,
        }
        ev = append_in_tx(conn, "evaluate.run", payload, actor=ctx.actor)
        evaluation_id = results.insert_evaluation(
            conn,
            {
                "batch_id": report.batch_id,
                "reference": report.reference,
                "n_synthetic": report.n_synthetic,
                "n_reference": report.n_reference,
                "mauve": report.metrics["mauve"],
                "tstr_ratio": tstr_ratio,
                "metrics": json.dumps(report.metrics, sort_keys=True),
                "embedding_model": report.embedding_model,
                "embedding_sha256": report.embedding_sha256,
                "curation_id": curation_id,
                "policy_sha256": ctx.policy_sha256,
                "event_seq": ev.seq,
                "created_at": utc_now(),
            },
        )
    report.evaluation_id, report.event_seq = evaluation_id, ev.seq


def latest_evaluation(ctx: Context, batch_id: str) -> dict[str, Any] | None:
    """The batch's most recent evaluation record (for the export gate and reports), or None."""
    return results.latest_evaluation(ctx.db, batch_id)
