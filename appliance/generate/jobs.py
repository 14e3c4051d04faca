"""Generation's value types: what a backend is asked for and what it gives back.

Plain frozen data, no behaviour beyond derived properties, importing nothing of the appliance: the
scheduler, the samplers, the plan, the backends and the probes all share them without importing each other.
A :class:`Prefix` is an optional BOS, an optional soft prompt (raw input embeddings, ``(k, n_embd)`` float32
in the model's ``inputs_embeds`` space) and text tokens; jobs that share a prefix ``key`` share its KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Completion", "Job", "Prefix", "SamplingParams"]


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings, applied in llama.cpp's order: penalties, top-k, top-p, min-p, temperature."""

    temperature: float = 0.9
    top_p: float = 0.95
    top_k: int = 50
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    max_tokens: int = 96
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False  # benchmarks only: generate exactly max_tokens tokens
    # guidance g > 0: each job also decodes its ``guides`` prefixes and samples from
    # log p + g·(log p − log q) over the tokens min-p keeps under p (appliance.generate.sampling); q is the
    # public prior with the same label (contrast "prior") or the same prompt with another label ("labels")
    guidance: float = 0.0
    contrast: str = "prior"

    def as_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "repeat_penalty": self.repeat_penalty,
            "repeat_last_n": self.repeat_last_n,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "guidance": self.guidance,
            "contrast": self.contrast,
        }


@dataclass(frozen=True, eq=False)
class Prefix:
    """What every sequence of a job starts with: ``[bos?] + soft_prompt rows + tokens``."""

    key: str
    tokens: tuple[int, ...] = ()
    soft_prompt: np.ndarray | None = None
    bos: bool = True

    @property
    def n_soft(self) -> int:
        return 0 if self.soft_prompt is None else int(self.soft_prompt.shape[0])


@dataclass(frozen=True)
class Job:
    """One output to produce: its index in the batch, its prefix and its own RNG seed; with guidance, the
    prefixes it is contrasted with (``guides``), decoded beside it with the same sampled tokens."""

    index: int
    prefix: Prefix
    seed: int
    guides: tuple[Prefix, ...] = ()


@dataclass
class Completion:
    """One finished sequence: the job's index, its text and tokens, and why decoding stopped."""

    index: int
    text: str
    tokens: list[int] = field(default_factory=list)
    finish_reason: str = "length"  # stop | eos | length

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)
