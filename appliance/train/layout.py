"""The sequence layout shared by trainer, generator and probes (contract 3), and right-padded batches.

Every training sequence is ``[bos?] + k soft-prompt rows + tokens(context) + tokens(text) + [eos]`` where the
context is ``label_template.format(label=L)`` for a labelled dataset (one shared prompt plus a label prefix,
SoftSRV's shared-prompt variant) and ``suffix_text`` otherwise. BOS is present only when the GGUF asks for it
(llama.cpp's ``add_bos``), exactly as the generation backend does. The loss covers the text tokens and the
end token; context tokens are given, not predicted. With ``training.end_text`` set, the record ends with that
text's tokens instead of the end token (``[eos]`` above), the way the public prior would end it (e.g. a
newline for one record per line), and generation stops at that text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from appliance.policy.templates import render_label_template

if TYPE_CHECKING:
    from appliance.policy.schema import TrainingPolicy


class SpecialIds(Protocol):
    """What a layout needs of a model: its BOS id (None: llama.cpp adds none) and its end-of-text id."""

    @property
    def bos_id(self) -> int | None: ...

    @property
    def eos_id(self) -> int: ...


@dataclass(frozen=True)
class Layout:
    k: int
    bos_id: int | None
    eos_id: int
    suffix_text: str
    label_template: str | None
    max_text_tokens: int
    end_text: str = ""  # "" : the end token ends a record; else this text's tokens do
    # the operator's public descriptions of the labels, for {label_description} in the template
    label_descriptions: Mapping[str, str] = field(default_factory=dict)
    # each label's DP-released keywords (appliance.train.keywords), for {label_keywords} in the template
    label_keywords: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def for_training(
        cls,
        training: TrainingPolicy,
        lm: SpecialIds,
        *,
        k: int,
        labelled: bool,
        label_keywords: Mapping[str, Sequence[str]] | None = None,
    ) -> Layout:
        """The layout a run with the policy's ``training`` section uses on ``lm`` (a FrozenLM: its BOS and end ids):
        the trainer's, and the benchmarks' that time or score its steps. ``labelled`` False drops the label template
        (the context is ``suffix_text``); ``label_keywords`` are the run's DP-released words (none by default)."""
        return cls(
            k=k,
            bos_id=lm.bos_id,
            eos_id=lm.eos_id,
            suffix_text=training.suffix_text,
            end_text=training.end_text,
            label_template=training.label_template if labelled else None,
            label_descriptions=dict(training.label_descriptions),
            label_keywords=dict(label_keywords or {}),
            max_text_tokens=training.max_seq_tokens,
        )

    @property
    def offset(self) -> int:
        """Positions before the first context/text token: BOS (if any) and the soft prompt."""
        return int(self.bos_id is not None) + self.k

    def context_text(self, label: str | None) -> str:
        if self.label_template is not None and label is not None:
            return render_label_template(self.label_template, label, self.label_descriptions, self.label_keywords)
        return self.suffix_text

    def meta(self, labels: list[str] | None) -> dict[str, Any]:
        """``prompts.meta`` as generation and probes read it (contract 3)."""
        return {
            "prefix_text": "",
            "suffix_text": self.suffix_text,
            "label_template": self.label_template if labels else None,
            "labels": labels or None,
            "label_descriptions": {lab: d for lab, d in self.label_descriptions.items() if lab in (labels or [])},
            "label_keywords": {lab: list(w) for lab, w in self.label_keywords.items() if lab in (labels or [])},
            "prefix_bos": self.bos_id is not None,
            "end_token_id": self.eos_id,
            "end_text": self.end_text,
            "max_text_tokens": self.max_text_tokens,
        }


@dataclass(frozen=True)
class Example:
    ids: tuple[int, ...]  # context tokens, then text tokens, then the end token(s) (unless truncated)
    n_context: int


def build_examples(
    encode: Callable[[str], list[int]], layout: Layout, texts: Sequence[str], labels: Sequence[str | None]
) -> list[Example]:
    """Tokenize texts in the layout; text tokens are cut at ``max_text_tokens`` (then no end token)."""
    cache: dict[str | None, list[int]] = {}
    end = encode(layout.end_text) if layout.end_text else [layout.eos_id]
    out: list[Example] = []
    for text, label in zip(texts, labels, strict=True):
        if label not in cache:
            cache[label] = encode(layout.context_text(label))
        ctx_ids = cache[label]
        ids = encode(text)
        body = ids[: layout.max_text_tokens] if len(ids) > layout.max_text_tokens else [*ids, *end]
        out.append(Example(tuple(ctx_ids + body), len(ctx_ids)))
    return out


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor  # (B, T) right-padded with 0
    attention_mask: torch.Tensor  # (B, T) 1 on real tokens
    target_mask: torch.Tensor  # (B, T) True where the token is predicted (text and end token)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def collate(examples: Sequence[Example]) -> Batch:
    """Right-pad a list of examples (an empty list gives an empty batch: Poisson sampling can draw none)."""
    b = len(examples)
    t = max((len(e.ids) for e in examples), default=0)
    ids = torch.zeros((b, t), dtype=torch.long)
    att = torch.zeros((b, t), dtype=torch.long)
    tgt = torch.zeros((b, t), dtype=torch.bool)
    for i, e in enumerate(examples):
        n = len(e.ids)
        ids[i, :n] = torch.tensor(e.ids, dtype=torch.long)
        att[i, :n] = 1
        tgt[i, e.n_context : n] = True
    return Batch(ids, att, tgt)
