"""`training.public_gradient_rank`: the whole-prompt basis from public per-example gradients, the prompt moving only
along it under DP-SGD, and the policy's refusals."""

from __future__ import annotations

import warnings

import pytest
import torch
from _tiny_lm import tiny_lm
from pydantic import ValidationError

from appliance.policy.schema import TrainingPolicy
from appliance.train.gradient_subspace import per_example_gradients, public_gradient_basis, top_directions
from appliance.train.layout import Example, Layout, collate
from appliance.train.softprompt import SoftPrompt, batch_loss

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook")


def test_top_directions_span_gradients_that_lie_in_few_directions() -> None:
    gen = torch.Generator().manual_seed(0)
    span = torch.linalg.qr(torch.randn(12, 2, generator=gen))[0].T  # two orthonormal directions in R^12
    grads = torch.randn(40, 2, generator=gen) @ span + 1e-4 * torch.randn(40, 12, generator=gen)
    basis = top_directions(grads, 2)
    assert basis.shape == (2, 12) and basis.dtype == torch.float32
    torch.testing.assert_close(basis @ basis.T, torch.eye(2), atol=1e-5, rtol=0)
    inside = (grads @ basis.T) @ basis
    assert float((grads - inside).norm() / grads.norm()) < 1e-3
    for bad in (0, 13):
        with pytest.raises(ValueError, match="rank must be between 1 and 12"):
            top_directions(grads, bad)


def _layout() -> Layout:
    return Layout(k=3, bos_id=None, eos_id=2, suffix_text="", label_template=None, max_text_tokens=16)


def _examples(n: int) -> list[Example]:
    return [Example((*range(5 + i, 9 + (i % 4)), 2), 0) for i in range(n)]


@pytest.mark.slow  # gradients through a (tiny) transformers model
def test_per_example_gradients_are_each_examples_own_clipped_gradient() -> None:
    """One example at a time by autograd, then clipped to C: the chunked computation gives the same rows."""
    lm, layout, examples = tiny_lm(), _layout(), _examples(5)
    rows = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    clip = 0.05
    got = per_example_gradients(lm, layout, rows, examples, clip=clip, max_physical=2)
    assert got.shape == (5, 48)
    for i, ex in enumerate(examples):
        one = rows.clone().unsqueeze(0).requires_grad_(True)
        batch_loss(lm, layout, one, collate([ex])).per_sample.sum().backward()
        g = one.grad.reshape(-1)
        want = g / max(1.0, float(g.norm()) / clip)
        j = sorted(range(5), key=lambda e: len(examples[e].ids)).index(i)  # the chunks go shortest first
        torch.testing.assert_close(got[j], want, atol=1e-6, rtol=1e-4)
    assert float(got.norm(dim=1).max()) <= clip * (1 + 1e-5)


@pytest.mark.slow  # an Opacus DP step through a (tiny) transformers model
def test_a_dp_step_on_the_whole_prompt_basis_moves_only_along_it() -> None:
    """rows = init + reshape(c · B): r trainable coordinates, Opacus clips each sample's gradient on them to C, the
    noise lands in the r coordinates only, and the prompt never leaves init + span(B)."""
    from appliance.train.dp import make_private
    from appliance.train.loop import logical_step

    lm, layout, examples = tiny_lm(), _layout(), _examples(6)
    init = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    basis = public_gradient_basis(lm, layout, init, _examples(8), rank=4, clip=1.0, max_physical=4)
    assert basis.shape == (4, 48)
    prompt = SoftPrompt(init, basis, whole=True)
    assert prompt.trainable_dims == 4 and prompt.k == 3 and prompt.row_units
    torch.testing.assert_close(prompt.rows(), init)
    assert prompt(prompt.index(2)).shape == (2, 3, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = make_private(
            prompt,
            torch.optim.SGD(prompt.parameters(), lr=1.0),
            examples,
            target_epsilon=4.0,
            delta=1e-5,
            epochs=1,
            steps_per_epoch=1,
            max_grad_norm=1e-3,  # a clip that binds
            accountant="rdp",
            secure_noise=True,
        )
    assert parts.noise_multiplier > 0
    logical_step(
        lm=lm, layout=layout, prompt=prompt, forward=parts.module, optimizer=parts.optimizer, examples=examples,
        dp=True, max_physical=4,
    )  # fmt: skip
    parts.module._close()
    moved = (prompt.rows() - init).reshape(-1)
    assert float(moved.norm()) > 0
    inside = (basis @ moved) @ basis
    torch.testing.assert_close(inside, moved, atol=1e-5, rtol=1e-4)


def test_a_whole_prompt_basis_must_match_the_prompt() -> None:
    with pytest.raises(ValueError, match=r"must be \(r, 48\)"):
        SoftPrompt(torch.zeros(3, 16), torch.zeros(4, 16), whole=True)
    with pytest.raises(ValueError, match=r"must be \(r, 48\)"):
        SoftPrompt(torch.zeros(3, 16), None, whole=True)


def test_the_policy_keeps_it_off_by_default_and_refuses_two_subspaces_or_too_few_records() -> None:
    assert TrainingPolicy().public_gradient_rank == 0
    assert TrainingPolicy(public_gradient_rank=64).public_gradient_records >= 64
    with pytest.raises(ValidationError, match="set one of them to 0"):
        TrainingPolicy(public_gradient_rank=8, subspace_rank=8)
    with pytest.raises(ValidationError, match=r"raise training\.public_gradient_records"):
        TrainingPolicy(public_gradient_rank=64, public_gradient_records=32)
