"""Teacher-forced token log-probabilities of a record under the soft-prompted model (and without it).

The layout is the trainer's and the generator's (contract 3): ``[bos] + soft prompt + tokens(context)``
followed by the record's tokens and the end-of-text token, where the context is the prompt's
``label_template`` for a labelled record and its ``suffix_text`` otherwise. Scores come from the
generation backend's ``prompt_logits`` (llama.cpp), i.e. from the very model that produces the outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.generate.backend import GenerationBackend
from appliance.generate.prompts import PromptMeta
from appliance.probes.likelihood import token_logprobs


class LikelihoodScorer:
    """Scores texts in the training layout, with the trained soft prompt or with none (the reference)."""

    def __init__(
        self,
        backend: GenerationBackend,
        soft_prompt: np.ndarray | None,
        meta: PromptMeta,
        *,
        end_id: int | None,
        max_tokens: int = 256,
    ) -> None:
        self.backend = backend
        self.soft = soft_prompt
        self.meta = meta
        self.end_id = end_id
        self.max_tokens = max_tokens
        self._ctx: dict[str | None, list[int]] = {}

    def context_ids(self, label: str | None) -> list[int]:
        if label not in self._ctx:
            m = self.meta
            text = m.label_template.format(label=label) if m.label_template and label is not None else m.suffix_text
            self._ctx[label] = self.backend.tokenize(text, add_bos=False) if text else []
        return self._ctx[label]

    def logprobs(self, text: str, label: str | None = None, *, with_prompt: bool = True) -> np.ndarray:
        """Log-probabilities of the record's tokens (and the end token), given the layout before them."""
        ids = self.backend.tokenize(text, add_bos=False)[: self.max_tokens]
        if self.end_id is not None:
            ids = [*ids, self.end_id]
        return self.logprobs_ids(ids, label, with_prompt=with_prompt)

    def logprobs_ids(self, ids: Sequence[int], label: str | None = None, *, with_prompt: bool = True) -> np.ndarray:
        ctx = self.context_ids(label)
        seq = [*ctx, *ids]
        logits = self.backend.prompt_logits(self.soft if with_prompt else None, seq, prefix_bos=True)
        if ctx:  # row len(ctx)-1+j predicts ids[j]
            rows = logits[len(ctx) - 1 : len(ctx) - 1 + len(ids)]
            targets = np.asarray(ids, dtype=np.int64)
        else:  # the first record token is predicted from the soft prompt's last row, which prompt_logits omits
            rows = logits[: len(ids) - 1]
            targets = np.asarray(ids[1:], dtype=np.int64)
        return token_logprobs(rows, targets)
