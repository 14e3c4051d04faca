"""What the probes look at for one batch: members (train split) and holdout records, the batch's
synthetic outputs, the prompt's canaries, and lazily-loaded engines (the llama.cpp model with the
verified soft prompt; the sentence embedder). Use as a context manager: engines are freed on exit.

The outputs are taken *before* curation (every generated text, kept or dropped): curation must not be
able to hide what the generator produced from the probes. ``synthetic`` is a seeded sample of at most
``gate.probe_max_records`` stored texts for the distance probe. The canary
search covers every output, PII-dropped ones included: ``generate`` counts the secrets in each raw text before
the PII scan (``outputs.canary_hits``), because the scan redacts a canary written in its template's context;
outputs stored before that count existed are searched in their stored text (``uncounted_outputs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.context import Context
from appliance.errors import BadInput
from appliance.gate.bound import check_outputs, check_records
from appliance.probes.scoring import LikelihoodScorer, open_scorer
from appliance.store import batches, datasets, prompts
from appliance.train.canaries import Canary
from appliance.train.canaries import load as load_canaries


@dataclass(frozen=True)
class Record:
    text: str
    label: str | None


def _sample(items: list[Any], n: int, seed: int) -> list[Any]:
    if len(items) <= n:
        return items
    idx = np.sort(np.random.default_rng(seed).choice(len(items), size=n, replace=False))
    return [items[i] for i in idx]


@dataclass
class ProbeInputs:
    ctx: Context
    batch: dict[str, Any]
    prompt: dict[str, Any] | None
    members: list[Record]
    holdout: list[Record]
    synthetic: list[str]
    canaries: list[Canary]
    canary_counts: list[int] = field(default_factory=list)  # per output counted at generation: secrets it held
    uncounted_outputs: list[str] = field(default_factory=list)  # stored texts of outputs without that count
    min_records: int = 20
    seed: int = 0
    n_boot: int = 1000
    n_candidates: int = 200
    _backend: Any = field(default=None, repr=False)
    _scorer: LikelihoodScorer | None = field(default=None, repr=False)

    def scorer(self) -> LikelihoodScorer:
        """The batch's model with the prompt's verified soft prompt (loaded once)."""
        if self._scorer is None:
            if self.prompt is None:
                raise BadInput(f"batch {self.batch['id']} has no soft prompt to probe")
            self._backend, self._scorer = open_scorer(self.ctx, self.batch, self.prompt)
        return self._scorer

    def embed(self, texts: list[str]) -> tuple[np.ndarray, str]:
        """Sentence embeddings (the evaluation stage's MiniLM) and the embedding model's SHA-256."""
        from appliance.evaluate.embed import default_embedder

        emb = default_embedder()
        return emb.encode(texts), emb.sha256

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
            self._scorer = None

    def __enter__(self) -> ProbeInputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_inputs(ctx: Context, batch: dict[str, Any]) -> ProbeInputs:
    """Members, holdout and synthetic texts of a batch (capped per policy), and the prompt's canaries."""
    g = ctx.policy.gate
    # the probes' verdicts are bound to the chain; so must their inputs be: edited records or outputs are exit 4
    check_records(ctx.db.conn, batch["dataset"])
    check_outputs(ctx.db.conn, batch["id"])
    prompt = prompts.get(ctx.db, batch["prompt_id"]) if batch.get("prompt_id") else None
    label = prompt.get("label") if prompt else None
    sides = [
        [Record(r["text"], r["label"]) for r in datasets.split_rows(ctx.db, batch["dataset"], split, label=label)]
        for split in ("train", "holdout")
    ]
    outputs = batches.output_rows(ctx.db, batch["id"], select="text, canary_hits")
    syn = [r["text"] for r in outputs if r["text"]]
    canaries = load_canaries(ctx.ws, prompt) if prompt else []
    return ProbeInputs(
        ctx=ctx,
        batch=batch,
        prompt=prompt,
        members=_sample(sides[0], g.probe_max_records, g.probe_seed),
        holdout=_sample(sides[1], g.probe_max_records, g.probe_seed + 1),
        synthetic=_sample(syn, g.probe_max_records, g.probe_seed + 2),
        canaries=canaries,
        canary_counts=[int(r["canary_hits"]) for r in outputs if r["canary_hits"] is not None],
        uncounted_outputs=[r["text"] for r in outputs if r["canary_hits"] is None and r["text"]],
        min_records=g.probe_min_records,
        seed=g.probe_seed,
        n_boot=g.probe_bootstrap,
        n_candidates=g.probe_canary_candidates,
    )
