"""The soft prompt (the only trainable parameters) and the per-sample loss of a batch under it.

The trainable part is an ``nn.Embedding`` looked up with ``arange(k)`` repeated per sample: a module Opacus
supports, whose per-sample gradients are exact and cheap. Per-sample losses are token means, so each sample's
gradient depends on that sample only (what DP-SGD clips).

Two parameterisations (``training.subspace_rank``):

- full (rank 0): the k × n_embd rows themselves, initialised from ``training.init_text``'s token embeddings;
- public subspace (rank r > 0): rows = init + C · B, with C (k × r) trainable from zero and B the model's top-r
  principal directions of its token-embedding matrix, each scaled to the embeddings' spread along it. B comes
  from the public model weights only. DP-SGD's noise has the same per-coordinate scale whatever the number of
  coordinates, so its norm grows with √(trainable dimensions) while the clipped signal does not: k·r
  coordinates instead of k·n_embd cut the noise norm by √(n_embd / r) (Yu et al. 2021, "Do not let privacy
  overbill utility: gradient embedding perturbation", ICLR; Zhou, Wu & Banerjee 2021, "Bypassing the ambient
  dimension: private SGD with gradient subspace identification", ICLR). Soft prompts and fine-tuning work in
  small intrinsic dimensions (Aghajanyan, Zettlemoyer & Gupta 2021, ACL; Qin et al. 2021, "Exploring universal
  intrinsic task subspace via prompt tuning"), and at ε = 0 the prompt is the init text: DP only refines a public
  prior (the task description and label verbalisers of ``training.init_text`` / ``label_template``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from appliance.train.layout import Batch, Layout
from appliance.train.lm import FrozenLM
from appliance.train.loss import head_nll


class SoftPrompt(nn.Module):
    """k virtual-token embeddings in HF ``inputs_embeds`` space, trained in full or in a public subspace."""

    basis: torch.Tensor | None
    offset: torch.Tensor | None

    def __init__(self, init: torch.Tensor, basis: torch.Tensor | None = None) -> None:
        super().__init__()
        k, d = init.shape
        if basis is None:
            self.embedding = nn.Embedding(k, d)
            with torch.no_grad():
                self.embedding.weight.copy_(init)
            self.basis, self.offset = None, None
        else:
            if basis.ndim != 2 or basis.shape[1] != d:
                raise ValueError(f"subspace basis must be (r, {d}), got {tuple(basis.shape)}")
            self.embedding = nn.Embedding(k, basis.shape[0])
            with torch.no_grad():
                self.embedding.weight.zero_()
            self.register_buffer("basis", basis.detach().to(torch.float32).clone())
            self.register_buffer("offset", init.detach().to(torch.float32).clone())

    @property
    def k(self) -> int:
        return int(self.embedding.num_embeddings)

    @property
    def trainable_dims(self) -> int:
        return int(self.embedding.weight.numel())

    def index(self, batch_size: int) -> torch.Tensor:
        return torch.arange(self.k).repeat(batch_size, 1)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        e: torch.Tensor = self.embedding(index)
        if self.basis is None or self.offset is None:
            return e
        return e @ self.basis + self.offset[index]

    def rows(self) -> torch.Tensor:
        """The prompt as a float32 (k, n_embd) tensor, detached."""
        w = self.embedding.weight.detach().to(torch.float32)
        if self.basis is None or self.offset is None:
            return w.clone()
        return (self.offset + w @ self.basis).clone()


def public_basis(embeddings: torch.Tensor, rank: int) -> torch.Tensor:
    """(rank, d): the top principal directions of a token-embedding matrix (public weights), each scaled to the
    embeddings' standard deviation along it, so a unit coefficient moves a row by one typical spread."""
    e = embeddings.detach().to(torch.float32)
    rank = min(rank, e.shape[1])
    gen = torch.Generator().manual_seed(0)  # pca_lowrank's random start: fixed, so the basis is a function of E
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        _, s, v = torch.pca_lowrank(e, q=rank, center=True, niter=6)
    scale = s / max(1.0, (e.shape[0] - 1) ** 0.5)
    out: torch.Tensor = (v * scale).T.contiguous()
    return out


def prior_ids(lm: FrozenLM, text: str, k: int) -> list[int]:
    """``text``'s tokens in k positions: its last k tokens when it is longer; when shorter, the text once, at
    the end (next to the context it introduces), after its first token repeated to fill the rows. The
    untrained prompt is these tokens' embeddings; generation's guidance decodes them as the prior."""
    ids = lm.encode(text) or [lm.eos_id]
    return ids[-k:] if len(ids) >= k else [ids[0]] * (k - len(ids)) + ids


def init_rows(lm: FrozenLM, text: str, k: int) -> torch.Tensor:
    """Embeddings of :func:`prior_ids` (``text`` in k rows)."""
    idx = torch.tensor(prior_ids(lm, text, k), dtype=torch.long)
    with torch.no_grad():
        return lm.embed(idx).to(torch.float32).clone()


@dataclass(frozen=True)
class BatchLoss:
    per_sample: torch.Tensor  # (B,) mean NLL over each sample's target tokens
    nll_sum: float  # summed NLL over all target tokens (nats)
    n_tokens: int


def batch_loss(lm: FrozenLM | None, layout: Layout | None, prompt: torch.Tensor, batch: Batch) -> BatchLoss:
    """NLL of the batch's target tokens after ``[bos?] + prompt`` (prompt: (B, k, d), may require grad).

    An empty batch needs neither the model nor the layout (the loop's empty DP step may pass None).
    """
    b = len(batch)
    if b == 0:
        zero = prompt.sum(dim=(1, 2))  # keeps the graph, so Opacus sees an empty per-sample gradient
        return BatchLoss(zero, 0.0, 0)
    assert lm is not None and layout is not None, "a non-empty batch needs the model and its layout"
    with torch.no_grad():
        tok = lm.embed(batch.input_ids)
    parts = [prompt.to(tok.dtype), tok]
    att = [torch.ones((b, layout.k), dtype=batch.attention_mask.dtype), batch.attention_mask]
    if layout.bos_id is not None:
        with torch.no_grad():
            bos = lm.embed(torch.full((b, 1), layout.bos_id, dtype=torch.long))
        parts.insert(0, bos)
        att.insert(0, torch.ones((b, 1), dtype=batch.attention_mask.dtype))
    t = batch.input_ids.shape[1]
    mask = batch.target_mask
    with lm.autocast():  # bf16 where the trainer chose it (appliance.train.precision); the loss is float32
        h = lm.hidden(torch.cat(parts, dim=1), torch.cat(att, dim=1))
        h_tok = h[:, layout.offset - 1 : layout.offset - 1 + t]  # row j predicts token j
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
