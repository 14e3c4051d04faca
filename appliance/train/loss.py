"""Next-token NLL through the frozen output head, chunked so the (tokens × vocabulary) logits never exist whole.

Gemma's vocabulary has 262k entries: full logits for 8 × 60 tokens take 0.5 GB, and autograd would keep
several copies. :class:`HeadNLL` computes each chunk's logits, its NLL and the gradient with respect to the
hidden states in the forward pass (the head is frozen, so that gradient is all backward needs) and frees
the chunk; backward is one multiply. Only target positions go through the head at all. Under bf16 autocast
(:mod:`appliance.train.precision`) the head's multiplies run in bf16 and the log-softmax in float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

DEFAULT_CHUNK = 128


class HeadNLL(torch.autograd.Function):
    """``nll[i] = logsumexp(z_i) - z_i[t_i]`` with ``z_i = cap·tanh(h_i W^T / cap)`` (cap optional)."""

    if TYPE_CHECKING:  # Function.apply is untyped: its signature here is forward's without ctx

        @classmethod
        def apply(
            cls, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None, chunk: int
        ) -> torch.Tensor: ...

    @staticmethod
    def forward(
        ctx: Any, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None, chunk: int
    ) -> torch.Tensor:
        n = h.shape[0]
        acc = torch.promote_types(h.dtype, torch.float32)  # the loss's dtype: float32 at least
        nll = h.new_empty(n, dtype=acc)
        grad_h = torch.empty_like(h) if ctx.needs_input_grad[0] else None
        rows = torch.arange(min(chunk, n), device=h.device)
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            t = targets[s:e]
            z = (h[s:e] @ weight.T).to(acc)  # bf16 under autocast: the log-softmax runs in float32
            th = None
            if softcap:
                th = torch.tanh(z / softcap)
                z = th * softcap
            lse = torch.logsumexp(z, dim=-1)
            r = rows[: e - s]
            nll[s:e] = lse - z[r, t]
            if grad_h is not None:
                p = torch.exp(z.sub_(lse[:, None]))  # softmax, in place over the chunk's logits
                p[r, t] -= 1.0
                if th is not None:
                    p.mul_(1.0 - th * th)
                grad_h[s:e] = p @ weight
        ctx.save_for_backward(grad_h if grad_h is not None else h.new_empty(0))
        return nll

    @staticmethod
    def backward(ctx: Any, grad_nll: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        (grad_h,) = ctx.saved_tensors
        return grad_h * grad_nll[:, None], None, None, None, None


def head_nll(
    h: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    softcap: float | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Per-position NLL (nats) of ``targets`` (N,) given final hidden states ``h`` (N, d) and head ``weight``."""
    if h.shape[0] == 0:
        return h.sum(dim=-1)
    return HeadNLL.apply(h, weight, targets, softcap, chunk)
