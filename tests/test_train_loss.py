"""The chunked head NLL equals full-logits cross-entropy, in value and in gradient (with and without softcap)."""

from __future__ import annotations

import pytest
import torch

from appliance.train.loss import head_nll


def _reference(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor, cap: float | None) -> torch.Tensor:
    z = h @ w.T
    if cap:
        z = cap * torch.tanh(z / cap)
    return torch.nn.functional.cross_entropy(z, t, reduction="none")


@pytest.mark.parametrize("cap", [None, 30.0, 5.0])
@pytest.mark.parametrize("chunk", [1, 7, 128])
def test_head_nll_matches_cross_entropy(cap: float | None, chunk: int) -> None:
    g = torch.Generator().manual_seed(0)
    n, d, v = 23, 16, 101
    w = torch.randn(v, d, generator=g, dtype=torch.float64) * 2.0
    t = torch.randint(0, v, (n,), generator=g)
    h1 = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    h2 = h1.detach().clone().requires_grad_(True)
    weights = torch.rand(n, generator=g, dtype=torch.float64)

    got = head_nll(h1, w, t, softcap=cap, chunk=chunk)
    want = _reference(h2, w, t, cap)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)

    (got * weights).sum().backward()
    (want * weights).sum().backward()
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-9, atol=1e-10)


def test_head_nll_without_grad_and_empty() -> None:
    w = torch.randn(11, 4)
    h = torch.randn(5, 4)
    t = torch.randint(0, 11, (5,))
    with torch.no_grad():
        torch.testing.assert_close(head_nll(h, w, t), _reference(h, w, t, None))
    empty = head_nll(torch.zeros(0, 4, requires_grad=True), w, torch.zeros(0, dtype=torch.long))
    assert empty.shape == (0,)
