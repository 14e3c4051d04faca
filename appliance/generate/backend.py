"""The generation backend interface: what the pipeline asks of a local language model.

A backend loads one model file and offers tokenization, teacher-forced logits (``prompt_logits``, used by
the trainer's parity test and the probes) and batched sampling (``generate``). Prompts are
:class:`Prefix` objects: an optional BOS, an optional soft prompt (raw input embeddings, ``(k, n_embd)``
float32 in the model's ``inputs_embeds`` space) and text tokens. Jobs that share a prefix ``key`` share
its KV cache (the value types are in :mod:`appliance.generate.jobs`). Backends are built by the provider
registered for the policy's ``generation.backend`` (:mod:`appliance.generate.providers`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from appliance.generate.jobs import Completion, Job, Prefix, SamplingParams

# the value types live in appliance.generate.jobs; re-exported here for existing imports
__all__ = ["Completion", "GenerationBackend", "Job", "Prefix", "SamplingParams"]


class GenerationBackend(abc.ABC):
    """A loaded local model. Use as a context manager; ``close()`` frees native memory at once."""

    @property
    @abc.abstractmethod
    def n_embd(self) -> int: ...

    @property
    @abc.abstractmethod
    def n_vocab(self) -> int: ...

    @property
    @abc.abstractmethod
    def bos_token_id(self) -> int | None:
        """The BOS id when the model expects one at the start of a sequence, else None."""

    @abc.abstractmethod
    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]: ...

    @abc.abstractmethod
    def detokenize(self, ids: Sequence[int]) -> str: ...

    @abc.abstractmethod
    def chat_prompt(self, messages: Sequence[tuple[str, str]]) -> str | None:
        """``messages`` ((role, content), ...) rendered with the model's chat template, or None if it has none."""

    @abc.abstractmethod
    def prompt_logits(
        self, soft_prompt: np.ndarray | None, token_ids: Sequence[int], *, prefix_bos: bool = True
    ) -> np.ndarray:
        """Row i: next-token logits after ``[bos?] + soft_prompt + token_ids[: i + 1]``; float32 (n, n_vocab)."""

    @abc.abstractmethod
    def generate(
        self,
        jobs: Sequence[Job],
        params: SamplingParams,
        *,
        batch: int = 8,
        on_step: Callable[[int], None] | None = None,
    ) -> Iterator[Completion]:
        """Sample one completion per job, ``batch`` sequences at a time, yielding each as it finishes.

        ``on_step(n)`` is called after each decode step with the number of tokens just sampled.
        """

    def continuation_logprobs(
        self, prefix: Prefix, seqs: Sequence[Sequence[int]], *, n_par: int = 16
    ) -> list[np.ndarray] | None:
        """Teacher-forced log-probabilities of many token lists after one shared ``prefix``, decoding it once.

        Item i: the log-probability of each token of ``seqs[i]`` given the prefix and the tokens before it.
        None when the backend has no multi-sequence context to share the prefix in; the caller then scores
        each text with :meth:`prompt_logits`.
        """
        return None

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> GenerationBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
