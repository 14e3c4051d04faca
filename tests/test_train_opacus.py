"""The Opacus wiring on the soft prompt alone: empty Poisson batches, per-sample clipping, noise source, accounting.

No language model is needed here: an empty batch never reaches it, and for the clipping test the loss is a
simple function of the prompt rows (each sample's gradient is known in closed form).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from _tiny_lm import tiny_lm

from appliance.budget.accounting import epsilon_for
from appliance.train.dp import NOISE_OS_SEEDED, make_private, poisson_loader
from appliance.train.layout import Example, collate
from appliance.train.loop import run_steps
from appliance.train.softprompt import SoftPrompt, batch_loss

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook")


def _examples(n: int) -> list[Example]:
    return [Example((5, 6, 2), 0) for _ in range(n)]


def _private(prompt: SoftPrompt, *, n: int = 40, steps_per_epoch: int = 4, clip: float = 1.0, accountant: str = "rdp"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_private(
            prompt,
            torch.optim.SGD(prompt.parameters(), lr=1.0),
            _examples(n),
            target_epsilon=4.0,
            delta=1e-5,
            epochs=1,
            steps_per_epoch=steps_per_epoch,
            max_grad_norm=clip,
            accountant=accountant,
            secure_noise=True,
        )


@pytest.mark.slow
@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_empty_batch_is_a_noised_counted_step(accountant: str) -> None:
    prompt = SoftPrompt(torch.zeros(3, 8))
    parts = _private(prompt, accountant=accountant)
    assert parts.noise_mode == NOISE_OS_SEEDED and parts.noise_multiplier > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = run_steps(
            lm=None,
            layout=None,
            prompt=prompt,
            forward=parts.module,
            optimizer=parts.optimizer,
            loader=[[], []],
            total_steps=2,
            steps_per_epoch=2,
            dp=True,
            max_physical=8,
            epsilon_so_far=lambda: parts.epsilon(1e-5),
        )
    assert stats.steps == 2 and stats.empty_batches == 2
    assert parts.steps == 2  # the accountant counted both
    assert prompt.embedding.weight.detach().abs().sum() > 0  # noise moved the prompt although no data was seen
    eps = epsilon_for(
        noise_multiplier=parts.noise_multiplier, sample_rate=0.25, steps=2, delta=1e-5, accountant=accountant
    )
    assert parts.epsilon(1e-5) == pytest.approx(eps, rel=1e-12)


@pytest.mark.slow  # an Opacus DP step (the engine's first use costs seconds)
def test_per_sample_clipping_bounds_each_contribution() -> None:
    """Loss_i = s_i · sum(rows): sample i's gradient has norm |s_i|·sqrt(k·d); clipped to C before averaging."""
    k, d, clip = 2, 4, 1.0
    prompt = SoftPrompt(torch.zeros(k, d))
    parts = _private(prompt, clip=clip)
    parts.optimizer.noise_multiplier = 0.0  # isolate clipping
    scales = torch.tensor([100.0, 0.01, -50.0])
    rows = parts.module(prompt.index(3))
    (rows.sum(dim=(1, 2)) * scales).mean().backward()
    parts.optimizer.step()
    per = [s.sign() * min(abs(float(s)) * (k * d) ** 0.5, clip) / (k * d) ** 0.5 for s in scales]
    expected = -sum(per) / parts.optimizer.expected_batch_size  # SGD lr=1 from zero: w = -grad
    torch.testing.assert_close(prompt.embedding.weight.detach(), torch.full((k, d), float(expected)))
    parts.module._close()


@pytest.mark.slow  # an Opacus DP step (the engine's first use costs seconds)
def test_noise_differs_between_runs() -> None:
    a, b = SoftPrompt(torch.zeros(2, 4)), SoftPrompt(torch.zeros(2, 4))
    for p in (a, b):
        parts = _private(p)
        parts.module(p.index(0)).sum().backward()
        parts.optimizer.step()
        parts.module._close()
    assert not torch.equal(a.embedding.weight, b.embedding.weight)  # OS-seeded, not a fixed seed


def test_poisson_loader_samples_independently() -> None:
    gen = torch.Generator().manual_seed(0)
    loader = poisson_loader(_examples(1000), sample_rate=0.05, steps_per_epoch=20, generator=gen)
    sizes = [len(b) for b in loader]
    assert len(sizes) == 20 and 35 < sum(sizes) / 20 < 65 and len(set(sizes)) > 1


def test_empty_batch_loss_needs_no_model() -> None:
    prompt = SoftPrompt(torch.ones(2, 3))
    res = batch_loss(None, None, prompt(prompt.index(0)), collate([]))
    assert res.per_sample.shape == (0,) and res.n_tokens == 0


@pytest.mark.slow  # a training step through a (tiny) transformers model
@pytest.mark.parametrize("dp", [True, False])
def test_physical_chunks_give_the_same_step(dp: bool) -> None:
    """A logical batch run in chunks of 2 moves the prompt exactly as in one pass (noise off to compare)."""
    from appliance.train.layout import Layout
    from appliance.train.loop import logical_step

    lm = tiny_lm()
    layout = Layout(k=3, bos_id=None, eos_id=2, suffix_text="", label_template=None, max_text_tokens=16)
    # longest first: the chunks re-order them shortest first, and the step must not depend on it
    examples = [Example((*range(5 + i, 9 + 2 * i), 2), 0) for i in reversed(range(5))]
    init = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    moved = []
    for max_physical in (5, 2, 1):
        prompt = SoftPrompt(init)
        opt = torch.optim.SGD(prompt.parameters(), lr=1.0)
        forward = prompt
        if dp:
            parts = _private(prompt, n=5, steps_per_epoch=1, clip=0.05)  # a clip that binds
            parts.optimizer.noise_multiplier = 0.0
            forward, opt = parts.module, parts.optimizer
        res = logical_step(
            lm=lm,
            layout=layout,
            prompt=prompt,
            forward=forward,
            optimizer=opt,
            examples=examples,
            dp=dp,
            max_physical=max_physical,
        )
        assert res.n_tokens == sum(len(e.ids) for e in examples) and res.loss > 0
        moved.append(prompt.embedding.weight.detach() - init)
        if dp:
            parts.module._close()
    assert moved[0].abs().sum() > 0
    torch.testing.assert_close(moved[0], moved[1], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(moved[0], moved[2], rtol=1e-5, atol=1e-7)


def test_public_basis_is_the_embeddings_principal_directions() -> None:
    from appliance.train.softprompt import public_basis

    gen = torch.Generator().manual_seed(0)
    # embeddings with most spread along two known directions
    e = torch.randn(500, 6, generator=gen) * torch.tensor([5.0, 3.0, 0.1, 0.1, 0.1, 0.1])
    b = public_basis(e, 2)
    assert b.shape == (2, 6)
    unit = b / b.norm(dim=1, keepdim=True)
    assert abs(float(unit[0, 0])) > 0.99 and abs(float(unit[1, 1])) > 0.99
    assert float(b[0].norm()) == pytest.approx(5.0, rel=0.15) and float(b[1].norm()) == pytest.approx(3.0, rel=0.15)
    torch.testing.assert_close(public_basis(e, 2), b)  # a function of the (public) weights alone


@pytest.mark.slow  # an Opacus DP step (the engine's first use costs seconds)
def test_subspace_prompt_starts_at_its_init_and_dp_clips_k_times_r_coordinates() -> None:
    """Rows = init + C·B with C trainable from zero: k·r noised coordinates instead of k·d, per-sample clipped."""
    k, d, r, clip = 3, 8, 2, 1.0
    init = torch.randn(k, d, generator=torch.Generator().manual_seed(2))
    basis = torch.eye(d)[:r] * 2.0
    prompt = SoftPrompt(init, basis)
    assert prompt.trainable_dims == k * r
    torch.testing.assert_close(prompt.rows(), init)
    parts = _private(prompt, clip=clip)
    parts.optimizer.noise_multiplier = 0.0
    scales = torch.tensor([100.0, 100.0])
    rows = parts.module(prompt.index(2))
    assert rows.shape == (2, k, d)
    (rows[:, :, 0].sum(dim=1) * scales).mean().backward()  # each sample pulls coordinate 0 only
    parts.optimizer.step()
    coeff = prompt.embedding.weight.detach()
    assert coeff.shape == (k, r) and float(coeff[:, 1].abs().sum()) == 0.0
    # each sample's gradient on C is 2·s in column 0 of every row: norm 2·s·sqrt(k), clipped to 1, so each entry
    # is 1/sqrt(k); two samples summed, averaged over the expected batch size; SGD lr 1 from zero: C = -grad
    expected = -2 * (1 / k**0.5) / parts.optimizer.expected_batch_size
    torch.testing.assert_close(coeff[:, 0], torch.full((k,), float(expected)))
    moved = prompt.rows() - init
    assert float(moved[:, 1:].abs().sum()) == 0.0  # only along the basis
    parts.module._close()


def test_length_chunks_take_the_shortest_first_and_lose_no_example() -> None:
    from appliance.train.loop import length_chunks

    examples = [Example(tuple(range(n)), 0) for n in (9, 2, 30, 5, 5, 17, 1)]
    chunks = length_chunks(examples, 3)
    assert [[len(e.ids) for e in c] for c in chunks] == [[1, 2, 5], [5, 9, 17], [30]]
    assert sorted(map(id, (e for c in chunks for e in c))) == sorted(map(id, examples))
    assert length_chunks([], 8) == []
