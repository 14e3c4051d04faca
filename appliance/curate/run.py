"""Curate a batch: re-scan and filter its outputs, mark each kept or dropped, count seed overlap, audit.

Promise: what is kept depends on the outputs alone (output PII, quality, duplicates), and on the private
seeds only through DP values — the optional DP selection's noisy histogram, whose cost the prompt's ε already
includes (:mod:`appliance.curate.dp_selection`) — so the released set stays post-processing of DP outputs.
Verbatim overlap with a training seed (``leak_hits``) is counted per output and in the summary, beside the
share of held-out records that overlap the seeds by chance; the gate refuses the whole export when more kept
outputs overlap than that share explains, and the counts stay in the database and the audit log.

Nothing is deleted: every output of the batch ends with ``status`` ``kept`` or ``dropped`` and, when
dropped, a ``reason``; the per-output leak and PII counters, the run's summary row and one
``curate.run`` audit event (counts, and the hash of the kept outputs the gate checks before export) commit
in a single transaction. Running it again re-curates
the batch under the current policy. Outputs the generator already dropped for PII stay dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from appliance.audit import append_in_tx
from appliance.context import Context
from appliance.curate import dp_selection
from appliance.curate.batch_prompt import soft_prompt
from appliance.curate.decide import GENERATION_PII, OFF_LABEL, decide, pii_hits
from appliance.curate.echo import PromptText
from appliance.curate.filters import LeakIndex, chance_leak_rate, leak_allowance
from appliance.curate.kept import kept_digest
from appliance.db import transaction, utc_now
from appliance.errors import BadInput
from appliance.store import batches, datasets, results

Scanner = Callable[[Sequence[str]], list[list[dict[str, Any]]]]


@dataclass
class CurationReport:
    batch_id: str
    dataset: str
    n_total: int
    n_kept: int
    n_dropped: int
    reasons: dict[str, int] = field(default_factory=dict)
    leak_hits: int = 0
    pii_hits: int = 0
    kept_leak_hits: int = 0
    kept_pii_hits: int = 0
    kept_leaking_outputs: int = 0  # kept outputs with any seed n-gram hit (what the gate counts)
    leak_allowance: int = 0  # how many of them chance explains (held-out real records' overlap rate)
    event_seq: int = 0
    dp_selection: dict[str, Any] = field(default_factory=dict)  # what curation's DP selection did (dp_selection)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_row(ctx: Context, batch_id: str) -> dict[str, Any]:
    """The batch's dataset and status; :class:`NotFound` (exit 1) for an unknown id."""
    return batches.require(ctx.db, batch_id)


def label_check(
    ctx: Context, batch: dict[str, Any], texts: Sequence[str], labels: Sequence[str | None]
) -> tuple[list[bool] | None, dict[str, Any]]:
    """Which outputs the batch's own DP generator reads as their label (:mod:`appliance.curate.consistency`),
    or None when the check does not apply: ``off`` (curation.label_consistency false), ``no_soft_prompt`` (a
    few-shot batch), ``under_two_labels`` (an unlabelled or one-label prompt), as the audit event records."""
    policy = ctx.policy.curation
    if not policy.label_consistency:
        return None, {"label_consistency": "off"}
    soft = soft_prompt(ctx, batch)
    if soft is None:
        return None, {"label_consistency": "no_soft_prompt"}
    prompt, meta = soft
    label_set = list(meta.labels or [])
    if prompt is None or len(label_set) < 2 or not texts or any(lab not in label_set for lab in labels):
        return None, {"label_consistency": "under_two_labels"}
    from appliance.curate.consistency import consistent, score_labels
    from appliance.probes.scoring import open_scorer

    backend, scorer = open_scorer(ctx, batch, prompt)
    try:
        scores = score_labels(scorer, texts, label_set)
    finally:
        backend.close()
    ok = consistent(scores, [label_set.index(str(lab)) for lab in labels], margin=policy.label_margin_nats)
    return ok, {"label_consistency": "on", "label_margin_nats": policy.label_margin_nats, "labels": len(label_set)}


def prompt_text(ctx: Context, batch: dict[str, Any]) -> PromptText | None:
    """The public text of a soft-prompt batch's label prefix (template, DP keywords), or None for a few-shot
    batch: what :func:`appliance.curate.echo.echoes_prompt` reads."""
    soft = soft_prompt(ctx, batch)
    return None if soft is None else PromptText.of(soft[1].label_template, soft[1].label_keywords)


def split_texts(ctx: Context, dataset: str, split: str) -> list[str]:
    return datasets.split_texts(ctx.db, dataset, split)


def curate_batch(ctx: Context, batch_id: str, *, scan: Scanner | None = None) -> CurationReport:
    """Curate every output of ``batch_id`` under ``ctx.policy.curation``; returns the counts."""
    batch = batch_row(ctx, batch_id)
    if batch["status"] == "running":
        raise BadInput(
            f"batch {batch_id} is still being generated — wait for it to finish"
            f" (or run `appliance generate --resume {batch_id}` if it was killed)"
        )
    policy = ctx.policy.curation
    rows = batches.output_rows(ctx.db, batch_id, select="id, text, status, reason, finish_reason, label")
    if not rows:
        raise BadInput(f"batch {batch_id} has no outputs to curate — run `appliance generate --resume {batch_id}`")
    pre_dropped = [r["status"] == "dropped" and r["reason"] == GENERATION_PII for r in rows]
    live = [r for r, pre in zip(rows, pre_dropped, strict=True) if not pre]
    texts = [r["text"] for r in live]

    engine_info: dict[str, Any] = {}
    if scan is None:
        from appliance.pii import PiiPipeline

        pipe = PiiPipeline.from_context(ctx, batch["dataset"])
        scan, engine_info = pipe.scan, pipe.engine.describe()
    findings = scan(texts) if texts else []
    pii = [pii_hits(f, count_pseudonyms=policy.pii_count_pseudonyms) for f in findings]
    index = LeakIndex(split_texts(ctx, batch["dataset"], "train"), policy.leak_ngram_tokens)
    leaks = [index.hits(t) for t in texts]
    chance = chance_leak_rate(index, split_texts(ctx, batch["dataset"], "holdout"))
    vectors = _Embeddings(texts)  # the paraphrase filter and the DP selection read the same outputs' embeddings
    reasons = decide(
        texts,
        pii=pii,
        policy=policy,
        finish_reasons=[r["finish_reason"] for r in live],
        labels={r["label"] for r in rows if r["label"]},
        prompt=prompt_text(ctx, batch),
        vectors=vectors,
    )
    reasons, selection_info, selection_event = dp_selection.apply(
        ctx, batch, [r["id"] for r in live], [r["label"] for r in live], reasons, vectors
    )
    # the DP generator's own reading of the label, last: it scores every output under every label, so it runs
    # only on what the other filters and the DP selection kept
    still = [i for i, r in enumerate(reasons) if r is None]
    label_ok, check_info = label_check(ctx, batch, [texts[i] for i in still], [live[i]["label"] for i in still])
    for i, good in zip(still, label_ok or [True] * len(still), strict=True):
        if not good:
            reasons[i] = OFF_LABEL

    counts = Counter(r for r in reasons if r is not None)
    counts.update({GENERATION_PII: sum(pre_dropped)} if any(pre_dropped) else {})
    kept = [i for i, r in enumerate(reasons) if r is None]
    report = CurationReport(
        batch_id=batch_id,
        dataset=batch["dataset"],
        n_total=len(rows),
        n_kept=len(kept),
        n_dropped=len(rows) - len(kept),
        reasons=dict(sorted(counts.items())),
        leak_hits=sum(leaks),
        pii_hits=sum(pii),
        kept_leak_hits=sum(leaks[i] for i in kept),
        kept_pii_hits=sum(pii[i] for i in kept),
        kept_leaking_outputs=sum(1 for i in kept if leaks[i] > 0),
        leak_allowance=leak_allowance(chance, len(kept)),
        dp_selection=selection_info,
    )
    _store(ctx, report, [r["id"] for r in live], reasons, leaks, pii, engine_info, check_info, chance, selection_event)
    return report


class _Embeddings:
    """The outputs' sentence embeddings (the evaluation's model), each computed once however many steps ask for it:
    ``curation.semantic_dup_cosine`` on the clean outputs, then the DP selection on those it leaves."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = texts
        self.rows: dict[int, np.ndarray] = {}

    def __call__(self, idx: Sequence[int]) -> np.ndarray:
        from appliance.evaluate.embed import default_embedder

        embedder = default_embedder()
        missing = [i for i in idx if i not in self.rows]
        if missing:
            self.rows.update(zip(missing, embedder.encode([self.texts[i] for i in missing]), strict=True))
        if not idx:
            return embedder.encode([])
        return np.stack([self.rows[i] for i in idx])


def _semantic_facts(cosine: float | None) -> dict[str, Any] | None:
    """What the paraphrase filter ran with, for the audit event (None: off): the threshold and the embedder."""
    if cosine is None:
        return None
    from appliance.evaluate.embed import default_embedder

    embedder = default_embedder()
    return {"cosine": cosine, "embedder": embedder.name, "embedder_sha256": embedder.sha256}


def _store(
    ctx: Context,
    report: CurationReport,
    ids: list[int],
    reasons: list[str | None],
    leaks: list[int],
    pii: list[int],
    engine: dict[str, Any],
    label_info: dict[str, Any],
    holdout_leak_rate: float | None,
    selection_event: dict[str, Any] | None,
) -> None:
    policy = ctx.policy.curation
    updates = [
        {"status": "kept" if r is None else "dropped", "reason": r, "leak_hits": leak, "pii_hits": p, "id": oid}
        for oid, r, leak, p in zip(ids, reasons, leaks, pii, strict=True)
    ]
    with transaction(ctx.db) as conn:
        batches.mark_outputs(conn, updates)
        payload = {
            "batch": report.batch_id,
            "dataset": report.dataset,
            "n_total": report.n_total,
            "n_kept": report.n_kept,
            "n_dropped": report.n_dropped,
            "reasons": report.reasons,
            "leak_hits": report.leak_hits,
            "pii_hits": report.pii_hits,
            "kept_leak_hits": report.kept_leak_hits,
            "kept_pii_hits": report.kept_pii_hits,
            "kept_sha256": kept_digest(conn, report.batch_id),
            "leak_ngram_tokens": policy.leak_ngram_tokens,
            "near_dup_jaccard": policy.near_dup_jaccard,
            "semantic_dup": _semantic_facts(policy.semantic_dup_cosine),
            "output_pii_action": policy.output_pii_action,
            "pii_engine": engine,
            "label_check": label_info,
            "dp_selection": report.dp_selection,
            # verbatim overlap that chance explains: held-out real records overlap the seeds at this rate
            "kept_leaking_outputs": report.kept_leaking_outputs,
            "holdout_leak_rate": holdout_leak_rate,
            "leak_allowance": report.leak_allowance,
            "model_sha256": engine.get("model_sha256"),
            "policy_sha256": ctx.policy_sha256,
        }
        if selection_event is not None:  # the noisy histogram: released once per prompt, kept in the chain
            dp_selection.check_unreleased(conn, selection_event)
            append_in_tx(conn, dp_selection.EVENT, selection_event, actor=ctx.actor)
        ev = append_in_tx(conn, "curate.run", payload, actor=ctx.actor)
        results.insert_curation(
            conn,
            {
                "batch_id": report.batch_id,
                "n_total": report.n_total,
                "n_kept": report.n_kept,
                "n_dropped": report.n_dropped,
                "reasons": json.dumps(report.reasons),
                "leak_hits": report.leak_hits,
                "pii_hits": report.pii_hits,
                "kept_leak_hits": report.kept_leak_hits,
                "kept_pii_hits": report.kept_pii_hits,
                "policy_sha256": ctx.policy_sha256,
                "event_seq": ev.seq,
                "created_at": utc_now(),
            },
        )
    report.event_seq = ev.seq


def latest_curation(ctx: Context, batch_id: str) -> dict[str, Any] | None:
    """The batch's most recent curation summary (for evaluate and the export gate), or None."""
    return results.latest_curation(ctx.db, batch_id)
