"""Curation's DP selection for one batch: which of the filtered outputs the seeds' noisy histogram keeps.

The math is :mod:`appliance.curate.selection`; this module decides whether it runs and keeps it to one release:

- it runs only for a soft-prompt batch whose prompt reserved it at ``train`` (``dp_selection_noise`` in the
  prompt's metadata: the σ whose cost is composed into the prompt's ε), with that σ, whatever the policy says now;
- the voters are exactly the records the prompt's privacy charge covers (never a record added later);
- one histogram per prompt: the first curation of one of its batches releases it (event ``curate.dp_selection``:
  the noisy counts and the chosen outputs); curating that batch again reuses the choice, and curating another
  batch of the same prompt keeps every filtered output (the reservation is spent), as the ``curate.run`` event
  and the command's output say.

The noise comes from numpy's PCG64 seeded with 128 bits from the OS CSPRNG for each release: no fixed or guessable
seed, but, as with the training noise's ``os-seeded`` mode (:mod:`appliance.train.dp`), not a cryptographic
generator, and floating-point Gaussian samples are not exactly Gaussian (Mironov 2012).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from appliance.audit.rows import EventRow, first_with
from appliance.context import Context
from appliance.curate import selection as sel
from appliance.curate.batch_prompt import soft_prompt_row
from appliance.errors import BadInput
from appliance.store import datasets, prompts

EVENT = "curate.dp_selection"
REASON = "dp_selection"


def reserved_noise(prompt: dict[str, Any] | None) -> float | None:
    """σ of the selection histogram the prompt's ε includes, or None."""
    if prompt is None:
        return None
    value = json.loads(prompt.get("meta") or "{}").get("dp_selection_noise")
    return None if value is None else float(value)


def _release(conn: sqlite3.Connection, prompt_id: str) -> EventRow | None:
    """The event that released the prompt's histogram, or None while it is unspent."""
    return first_with(conn, [EVENT], "prompt", prompt_id)


def outlook(ctx: Context, batch: dict[str, Any]) -> str | None:
    """What curating a new ``batch`` will keep, for ``generate`` to say (None: its prompt reserved no selection)."""
    prompt = soft_prompt_row(ctx, batch)
    if prompt is None or reserved_noise(prompt) is None:
        return None
    earlier = _release(ctx.db.conn, prompt["id"])
    if earlier is not None:
        return (
            f"prompt {prompt['id']}'s DP selection was released on batch {json.loads(earlier['payload'])['batch']}:"
            " curating this batch keeps every output that passes the filters"
        )
    keep = ctx.policy.curation.dp_selection.keep_fraction
    return (
        f"prompt {prompt['id']} reserved a DP selection: the first curation of one of its batches keeps about "
        f"{keep:.0%} of the outputs that pass the filters (curation.dp_selection.keep_fraction), so generate about "
        f"{1 / keep:.1f}× the records you need, in one batch"
    )


def check_unreleased(conn: sqlite3.Connection, payload: dict[str, Any]) -> None:
    """Inside the write transaction: refuse when another curation released this prompt's histogram meanwhile
    (two at once would spend it twice). The values computed here were never stored or shown, so nothing leaks."""
    if _release(conn, payload["prompt"]) is not None:
        raise BadInput(
            f"another curation released the DP selection of prompt {payload['prompt']} while this one ran —"
            " run `appliance curate` again (it then reuses or reports that release)"
        )


def _voters(ctx: Context, prompt: dict[str, Any]) -> tuple[list[str], list[str | None]]:
    from appliance.budget.units import row_unit  # budget.units imports curate.text: import late

    units = prompts.charged_record_units(ctx.db, prompt["id"])
    texts, labels = [], []
    for r in datasets.split_rows(ctx.db, prompt["dataset"], "train", select="text, label, unit_key"):
        if row_unit(r) in units:
            texts.append(r["text"])
            labels.append(r["label"])
    return texts, labels


def apply(
    ctx: Context,
    batch: dict[str, Any],
    ids: Sequence[int],
    labels: Sequence[str | None],
    reasons: list[str | None],
    vectors: Callable[[Sequence[int]], np.ndarray],
) -> tuple[list[str | None], dict[str, Any], dict[str, Any] | None]:
    """``reasons`` with the outputs the selection does not keep marked ``dp_selection``; the ``curate.run``
    event's summary; and the payload of a new ``curate.dp_selection`` event (None when nothing new is released).
    ``vectors``: the sentence embeddings of the outputs at the given indices (the evaluation's model, as the
    voters')."""
    prompt = soft_prompt_row(ctx, batch)
    sigma = reserved_noise(prompt)
    if prompt is None or sigma is None:
        state = "not_reserved" if ctx.policy.curation.dp_selection.enabled else "off"
        return reasons, {"dp_selection": state}, None
    earlier = _release(ctx.db.conn, prompt["id"])
    if earlier is not None:
        done = json.loads(earlier["payload"])
        if done["batch"] != batch["id"]:
            return reasons, {"dp_selection": "spent", "spent_on_batch": done["batch"]}, None
        chosen = set(done["selected"])
        out = [r if r is not None or oid in chosen else REASON for oid, r in zip(ids, reasons, strict=True)]
        return out, {"dp_selection": "reused", "event_seq": earlier["seq"]}, None
    kept = [i for i, r in enumerate(reasons) if r is None]
    if not kept:
        return reasons, {"dp_selection": "no_candidates"}, None  # nothing to choose from: nothing released
    from appliance.evaluate.embed import default_embedder

    embedder = default_embedder()
    clusters = sel.cluster_outputs(
        vectors(kept),
        [labels[i] for i in kept],
        per_label=ctx.policy.curation.dp_selection.clusters_per_label,
        seed=ctx.policy.curation.eval_seed,
    )
    voter_texts, voter_labels = _voters(ctx, prompt)
    counts = sel.vote_counts(clusters, embedder.encode(voter_texts), voter_labels)
    rng = np.random.default_rng(secrets.randbits(128))
    noisy = sel.noisy(counts, sigma, rng)
    del counts  # only the noisy counts leave this function
    want = round(ctx.policy.curation.dp_selection.keep_fraction * len(kept))
    floor = ctx.policy.curation.dp_selection.threshold_sigmas * sigma
    picked = {kept[int(j)] for j in sel.draw(clusters, noisy, want, rng, floor=floor)}
    out = [r if r is not None or i in picked else REASON for i, r in enumerate(reasons)]
    payload = {
        "prompt": prompt["id"],
        "batch": batch["id"],
        "noise_multiplier": sigma,
        "keep_fraction": ctx.policy.curation.dp_selection.keep_fraction,
        "floor": floor,
        "clusters": [
            {"label": lab, "outputs": int(size), "noisy_count": round(float(c), 3)}
            for lab, size, c in zip(clusters.labels, clusters.sizes, noisy, strict=True)
        ],
        "candidates": len(kept),
        "selected": sorted(int(ids[i]) for i in picked),
    }
    return out, {"dp_selection": "applied", "kept": len(picked), "candidates": len(kept)}, payload
