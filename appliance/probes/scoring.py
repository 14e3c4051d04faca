"""Teacher-forced token log-probabilities of a record under the soft-prompted model (and without it).

The layout is the trainer's (``appliance.train.layout``, contract 3): ``[bos?] + soft prompt +
tokens(context) + tokens(text) + [end]`` where the context is the prompt's ``label_template`` for a
labelled record and its ``suffix_text`` otherwise, text longer than ``max_text_tokens`` is cut (and then
has no end token), and the loss covers the text and end tokens (the end text's tokens where the prompt was
trained with ``training.end_text``). Scores come from the generation backend's ``prompt_logits`` (llama.cpp):
the very model that produces the outputs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from appliance.context import Context
from appliance.errors import BadInput
from appliance.generate.backend import GenerationBackend, Prefix
from appliance.generate.prompts import PromptMeta
from appliance.policy.templates import render_label_template
from appliance.probes.likelihood import token_logprobs


class LikelihoodScorer:
    """Scores texts in the training layout, with the trained soft prompt or with none (the reference)."""

    def __init__(
        self,
        backend: GenerationBackend,
        soft_prompt: np.ndarray | None,
        *,
        suffix_text: str = "",
        label_template: str | None = None,
        end_id: int | None = None,
        max_text_tokens: int = 96,
        prefix_bos: bool = True,
        end_text: str = "",
        label_descriptions: dict[str, str] | None = None,
        label_keywords: dict[str, list[str]] | None = None,
    ) -> None:
        self.backend = backend
        self.soft = soft_prompt
        self.suffix_text = suffix_text
        self.label_template = label_template
        self.label_descriptions = dict(label_descriptions or {})
        self.label_keywords = dict(label_keywords or {})
        # what ends a record: the end text's tokens when the prompt was trained with one, else the end token
        if end_text:
            self.end_ids = backend.tokenize(end_text, add_bos=False)
        else:
            self.end_ids = [end_id] if end_id is not None else []
        self.max_text_tokens = max_text_tokens
        self.prefix_bos = prefix_bos
        self._ctx: dict[str | None, list[int]] = {}

    @classmethod
    def from_prompt(
        cls, backend: GenerationBackend, soft_prompt: np.ndarray, prompt_row: dict[str, Any]
    ) -> LikelihoodScorer:
        """The layout recorded in ``prompts.meta`` by the trainer (read as generation reads it)."""
        meta = PromptMeta.parse(prompt_row.get("meta"))
        return cls(
            backend,
            soft_prompt,
            suffix_text=meta.suffix_text,
            label_template=meta.label_template,
            end_id=meta.end_token_id,
            max_text_tokens=meta.max_text_tokens,
            prefix_bos=meta.prefix_bos,
            end_text=meta.end_text,
            label_descriptions=meta.label_descriptions,
            label_keywords=meta.label_keywords,
        )

    def context_ids(self, label: str | None) -> list[int]:
        if label not in self._ctx:
            tmpl = self.label_template
            text = (
                render_label_template(tmpl, label, self.label_descriptions, self.label_keywords)
                if tmpl is not None and label is not None
                else self.suffix_text
            )
            self._ctx[label] = self.backend.tokenize(text, add_bos=False) if text else []
        return self._ctx[label]

    def record_ids(self, text: str) -> list[int]:
        """The predicted tokens of a record: its text tokens, and its end (the end text's tokens, else the end
        token) unless the text was cut."""
        ids = self.backend.tokenize(text, add_bos=False)
        if len(ids) > self.max_text_tokens:
            return ids[: self.max_text_tokens]
        return [*ids, *self.end_ids]

    def logprobs(self, text: str, label: str | None = None, *, with_prompt: bool = True) -> np.ndarray:
        """Log-probabilities of the record's predicted tokens, given everything before them."""
        return self.logprobs_ids(self.record_ids(text), label, with_prompt=with_prompt)

    def logprobs_ids(self, ids: Sequence[int], label: str | None = None, *, with_prompt: bool = True) -> np.ndarray:
        ctx = self.context_ids(label)
        logits = self.backend.prompt_logits(
            self.soft if with_prompt else None, [*ctx, *ids], prefix_bos=self.prefix_bos
        )
        if ctx:  # row len(ctx)-1+j predicts ids[j]
            rows = logits[len(ctx) - 1 : len(ctx) - 1 + len(ids)]
            targets = np.asarray(ids, dtype=np.int64)
        else:  # the first record token is predicted from the soft prompt's last row, which prompt_logits omits
            rows = logits[: len(ids) - 1]
            targets = np.asarray(ids[1:], dtype=np.int64)
        return token_logprobs(rows, targets)

    def logprobs_many(
        self, texts: Sequence[str], labels: Sequence[str | None], *, with_prompt: bool = True
    ) -> list[np.ndarray]:
        """:meth:`logprobs` for many records, sharing each label's prefix in the KV cache where possible."""
        out: list[np.ndarray] = [np.zeros(0)] * len(texts)
        groups: dict[str | None, list[int]] = {}
        for i, lab in enumerate(labels):
            groups.setdefault(lab, []).append(i)
        soft = self.soft if with_prompt else None
        for lab, idx in groups.items():
            ctx = self.context_ids(lab)
            has_bos = self.prefix_bos and self.backend.bos_token_id is not None
            shared = None
            if soft is not None or ctx or has_bos:  # else there is no prefix to share
                prefix = Prefix(key=f"probe:{lab}", tokens=tuple(ctx), soft_prompt=soft, bos=self.prefix_bos)
                shared = self.backend.continuation_logprobs(prefix, [self.record_ids(texts[i]) for i in idx])
            if shared is None:  # nothing to share, or no multi-sequence backend: one forward pass per record
                for i in idx:
                    out[i] = self.logprobs(texts[i], lab, with_prompt=with_prompt)
                continue
            for i, lp in zip(idx, shared, strict=True):
                out[i] = lp
        return out


def open_scorer(
    ctx: Context, batch: dict[str, Any], prompt: dict[str, Any]
) -> tuple[GenerationBackend, LikelihoodScorer]:
    """The batch's model (SHA-256 checked against the batch) with the prompt's verified soft prompt, in the
    trainer's layout. The caller closes the backend."""
    from appliance.generate import providers
    from appliance.generate.prompts import load_soft_prompt
    from appliance.models.registry import verified_path

    _, path, sha = verified_path(batch["model_name"], ctx.ws)
    if sha != batch["model_sha256"]:
        raise BadInput(
            f"batch {batch['id']} was generated with a different model file than {batch['model_name']} now is"
            " — re-generate the batch"
        )
    g = ctx.policy.generation
    # the engine and weights the batch was decoded with (kept in its params): the probes measure the generator
    # the outputs came from, and F16 weights multiply many rows at once where Q4_1 cannot
    params = batch.get("params") or {}
    params = json.loads(params) if isinstance(params, str) else params
    weights = str(params.get("weights", "native"))  # batches stored before weights existed decoded native weights
    kind = str(params.get("backend", "llama.cpp"))  # the batch's own engine
    backend = providers.build(kind, path, sha, weights=weights, n_ctx=g.n_ctx, n_threads=g.threads, n_seq_max=1)
    try:
        sp = load_soft_prompt(ctx.ws, prompt, model_name=batch["model_name"], model_sha256=sha, n_embd=backend.n_embd)
    except BaseException:
        backend.close()
        raise
    return backend, LikelihoodScorer.from_prompt(backend, sp.embeddings, prompt)
