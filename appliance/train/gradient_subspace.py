"""A public gradient subspace for a DP run that starts from a public prior (``training.public_gradient_rank``).

DP-SGD adds noise of the same scale to every trainable coordinate, so the noise's norm grows with √(dimensions)
while the clipped signal does not: on the demo's schedule (σ 1.64, Poisson batches of 64) the summed gradient of a
step is about 0.08 of the noise's norm over a soft prompt's 16 × 576 coordinates. Per-example gradients of a
related task, though, lie in few directions: at the public prior, the top 64 principal directions of 768 public
records' gradients (59 BANKING77 intents) hold 85% of the squared norm of the mean gradient of six other intents'
records (random directions would hold 0.7%), so a run that moves only along them has r noised coordinates instead
of k·d and a step's signal-to-noise ratio near 1 (bench/RESULTS.md, session 33).

This is gradient subspace identification from public data: Zhou, Wu & Banerjee 2021, "Bypassing the ambient
dimension: private SGD with gradient subspace identification" (ICLR); Yu, Zhang, Chen, Yin & Liu 2021, "Do not let
privacy overbill utility: gradient embedding perturbation for private learning" (ICLR); Kairouz, Ribero, Rush &
Thakurta 2021, "(Nearly) dimension independent private ERM with AdaGrad rates via publicly estimated subspaces"
(COLT). The directions are a function of public records (the init prompt's own public dataset), the public model
weights and the public prompt: a public constant of the run, like the prior itself, so the run's (ε, δ) is unchanged
(it is the same DP-SGD, on fewer coordinates; each sample's gradient on them is still clipped to the clip norm).

Pure math over the model: no workspace, no state (the trainer picks the records and records what it used).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from appliance.train.layout import Example, Layout, collate
from appliance.train.lm import FrozenLM
from appliance.train.loop import length_chunks
from appliance.train.softprompt import batch_loss


def per_example_gradients(
    lm: FrozenLM, layout: Layout, rows: torch.Tensor, examples: Sequence[Example], *, clip: float, max_physical: int
) -> torch.Tensor:
    """(n, k·d) float32: each example's loss gradient with respect to the prompt ``rows`` (k, d), clipped to ``clip``
    (the directions DP-SGD's clipped gradients take)."""
    out = []
    for chunk in length_chunks(examples, max_physical):
        batched = rows.detach().to(torch.float32).unsqueeze(0).expand(len(chunk), -1, -1).clone().requires_grad_(True)
        batch_loss(lm, layout, batched, collate(chunk)).per_sample.sum().backward()
        assert batched.grad is not None
        out.append(batched.grad.reshape(len(chunk), -1))
    if not out:
        return torch.zeros((0, rows.numel()))
    g = torch.cat(out).to(torch.float32)
    clipped: torch.Tensor = g / (g.norm(dim=1, keepdim=True) / clip).clamp(min=1.0)
    return clipped


def top_directions(grads: torch.Tensor, rank: int) -> torch.Tensor:
    """(rank, D): orthonormal rows spanning the most of the gradients' squared norm (their top right singular
    vectors, uncentred: the span the gradients lie in, mean included). Deterministic up to each row's sign."""
    if grads.ndim != 2 or rank < 1 or rank > min(grads.shape):
        raise ValueError(f"rank must be between 1 and {min(grads.shape)} for gradients of shape {tuple(grads.shape)}")
    _, _, vh = torch.linalg.svd(grads.to(torch.float64), full_matrices=False)
    top: torch.Tensor = vh[:rank].to(torch.float32).contiguous()
    return top


def public_gradient_basis(
    lm: FrozenLM,
    layout: Layout,
    rows: torch.Tensor,
    examples: Sequence[Example],
    *,
    rank: int,
    clip: float,
    max_physical: int,
) -> torch.Tensor:
    """(rank, k·d): the top directions of the public ``examples``' clipped gradients at the prompt ``rows``."""
    grads = per_example_gradients(lm, layout, rows, examples, clip=clip, max_physical=max_physical)
    return top_directions(grads, rank)
