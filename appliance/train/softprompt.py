"""The soft prompt (the only trainable parameters) and the per-sample loss of a batch under it.

The prompt is ``nn.Embedding(k, n_embd)`` looked up with ``arange(k)`` repeated per sample: a module Opacus
supports, whose per-sample gradients are exact and cheap. Per-sample losses are token means, so each sample's
gradient depends on that sample only (what DP-SGD clips).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from appliance.train.layout import Batch, Layout
from appliance.train.lm import FrozenLM
from appliance.train.loss import head_nll


class SoftPrompt(nn.Module):
    """k virtual-token embeddings in HF ``inputs_embeds`` space."""

    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        k, d = init.shape
        self.embedding = nn.Embedding(k, d)
        with torch.no_grad():
            self.embedding.weight.copy_(init)

    @property
    def k(self) -> int:
        return int(self.embedding.num_embeddings)

    def index(self, batch_size: int) -> torch.Tensor:
        return torch.arange(self.k).repeat(batch_size, 1)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.embedding(index)

    def rows(self) -> torch.Tensor:
        """The prompt as a float32 (k, n_embd) tensor, detached."""
        return self.embedding.weight.detach().to(torch.float32).clone()


def init_rows(lm: FrozenLM, text: str, k: int) -> torch.Tensor:
    """Embeddings of ``text``'s tokens, repeated or truncated to k rows."""
    ids = lm.encode(text) or [lm.eos_id]
    reps = -(-k // len(ids))
    idx = torch.tensor((ids * reps)[:k], dtype=torch.long)
    with torch.no_grad():
        return lm.embed(idx).to(torch.float32).clone()


@dataclass(frozen=True)
class BatchLoss:
    per_sample: torch.Tensor  # (B,) mean NLL over each sample's target tokens
    nll_sum: float  # summed NLL over all target tokens (nats)
    n_tokens: int


def batch_loss(lm: FrozenLM, layout: Layout, prompt: torch.Tensor, batch: Batch) -> BatchLoss:
    """NLL of the batch's target tokens after ``[bos?] + prompt`` (prompt: (B, k, d), may require grad)."""
    b = len(batch)
    if b == 0:
        zero = prompt.sum(dim=(1, 2))  # keeps the graph, so Opacus sees an empty per-sample gradient
        return BatchLoss(zero, 0.0, 0)
    with torch.no_grad():
        tok = lm.embed(batch.input_ids)
    parts = [prompt.to(tok.dtype), tok]
    att = [torch.ones((b, layout.k), dtype=batch.attention_mask.dtype), batch.attention_mask]
    if layout.bos_id is not None:
        with torch.no_grad():
            bos = lm.embed(torch.full((b, 1), layout.bos_id, dtype=torch.long))
        parts.insert(0, bos)
        att.insert(0, torch.ones((b, 1), dtype=batch.attention_mask.dtype))
    h = lm.hidden(torch.cat(parts, dim=1), torch.cat(att, dim=1))
    t = batch.input_ids.shape[1]
    h_tok = h[:, layout.offset - 1 : layout.offset - 1 + t]  # row j predicts token j
    mask = batch.target_mask
    nll = head_nll(h_tok[mask], lm.head_weight, batch.input_ids[mask], softcap=lm.softcap)
    owner = torch.arange(b).unsqueeze(1).expand(b, t)[mask]
    counts = mask.sum(dim=1).clamp(min=1).to(nll.dtype)
    per_sample = torch.zeros(b, dtype=nll.dtype).index_add(0, owner, nll) / counts
    return BatchLoss(per_sample, float(nll.detach().sum()), int(mask.sum()))


def mean_nll(lm: FrozenLM, layout: Layout, rows: torch.Tensor, batches: list[Batch]) -> float:
    """Token-weighted mean NLL (nats/token) of the batches under fixed prompt rows (k, d)."""
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            if len(batch) == 0:
                continue
            res = batch_loss(lm, layout, rows.unsqueeze(0).expand(len(batch), -1, -1), batch)
            total += res.nll_sum
            n += res.n_tokens
    return total / n if n else float("nan")
