"""Training precision (issue 16): bf16 autocast where the CPU has bf16 matrix units, fp32 elsewhere; the DP step
on the soft prompt stays float32 either way, and the bf16 loss matches fp32 on the same batch."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from _tiny_lm import tiny_lm
from pydantic import ValidationError

from appliance.policy.schema import TrainingPolicy
from appliance.train import precision
from appliance.train.layout import Example, Layout, collate
from appliance.train.precision import LOSS_TOLERANCE, resolve
from appliance.train.softprompt import SoftPrompt, batch_loss

AMX = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
ZEN4 = {"avx2", "avx512f", "avx512_bf16"}
AVX2 = {"avx2", "fma", "f16c"}


@pytest.mark.parametrize(
    ("setting", "flags", "name", "why"),
    [
        ("auto", AMX, "bf16", "auto: CPU has amx_bf16+avx512_bf16"),
        ("auto", ZEN4, "bf16", "auto: CPU has avx512_bf16"),
        ("auto", AVX2, "fp32", "auto: no amx_bf16 or avx512_bf16 on this CPU"),
        ("fp32", AMX, "fp32", "forced by training.precision"),
        ("bf16", AMX, "bf16", "forced by training.precision; CPU has amx_bf16+avx512_bf16"),
        ("bf16", AVX2, "bf16", "forced by training.precision; this CPU has no bf16 units (emulated, slow)"),
    ],
)
def test_precision_follows_the_cpus_bf16_units(setting: str, flags: set[str], name: str, why: str) -> None:
    p = resolve(setting, flags)
    assert (p.name, p.reason, p.setting) == (name, why, setting)
    units = "+".join(x for x in ("amx_bf16", "avx512_bf16") if x in flags) or "none"
    assert p.as_dict() == {"precision": name, "precision_setting": setting, "bf16_units": units}


def test_this_cpus_choice_reads_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(ZEN4))
    assert resolve("auto").name == "bf16" and precision.bf16_units() == ["avx512_bf16"]
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(AVX2))
    assert resolve("auto").name == "fp32" and precision.bf16_units() == []


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match=r"training\.precision must be one of auto, fp32, bf16"):
        resolve("fp16", AVX2)
    with pytest.raises(ValidationError, match="precision"):
        TrainingPolicy(precision="fp16")  # type: ignore[arg-type]
    assert TrainingPolicy().precision == "auto"


def test_fp32_runs_outside_autocast() -> None:
    with resolve("fp32", AMX).autocast():
        assert not torch.is_autocast_enabled("cpu")
    with resolve("bf16", AVX2).autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.mark.slow  # an Opacus DP step through a (tiny) transformers model, in both precisions
def test_bf16_dp_step_clips_and_noises_in_float32() -> None:
    """Under bf16 the prompt, its per-sample gradients and the update stay float32, the clip still bounds the
    step (noise off, SGD lr 1: the step is the mean clipped gradient, norm ≤ C), and the step points where the
    fp32 step does."""
    from appliance.train.dp import make_private
    from appliance.train.loop import logical_step

    lm = tiny_lm(hidden=32)
    layout = Layout(k=3, bos_id=None, eos_id=2, suffix_text="", label_template=None, max_text_tokens=16)
    examples = [Example((*range(5 + i, 9 + 2 * i), 2), 0) for i in range(6)]
    init = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    clip = 0.05
    moved = {}
    for name in ("fp32", "bf16"):
        prompt = SoftPrompt(init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts = make_private(prompt, torch.optim.SGD(prompt.parameters(), lr=1.0), examples, target_epsilon=4.0,
                                 delta=1e-5, epochs=1, steps_per_epoch=1, max_grad_norm=clip, accountant="rdp",
                                 secure_noise=True)  # fmt: skip
            sigma = parts.noise_multiplier
            parts.optimizer.noise_multiplier = 0.0
            logical_step(lm=lm.at(resolve(name, AVX2)), layout=layout, prompt=prompt,
                         forward=parts.module, optimizer=parts.optimizer, examples=examples, dp=True,
                         max_physical=4)  # fmt: skip
        parts.module._close()
        w = prompt.embedding.weight
        assert w.dtype == torch.float32 and sigma > 0
        moved[name] = (w.detach() - init).flatten()
        assert 0 < float(moved[name].norm()) <= clip * (1 + 1e-5)
    cos = torch.nn.functional.cosine_similarity(moved["fp32"], moved["bf16"], dim=0)
    assert float(cos) > 0.99


@pytest.mark.slow  # the real model: bf16 is emulated (slow) on a CPU without bf16 units, so two short texts
def test_bf16_loss_matches_fp32_on_the_real_model(tmp_path) -> None:
    """Parity on the same batch (SmolLM2-135M, the prompt at its public init): |Δ mean NLL| ≤ LOSS_TOLERANCE
    nats/token and the prompt's gradients agree in direction (cosine ≥ 0.99)."""
    from _train_data import seed_model_cache

    from appliance.config import Workspace
    from appliance.train.layout import build_examples
    from appliance.train.lm import load_frozen
    from appliance.train.softprompt import init_rows

    home = tmp_path / "home"
    seed_model_cache(home)
    lm = load_frozen(Workspace(home), "smollm2-135m")
    layout = Layout(k=8, bos_id=lm.bos_id, eos_id=lm.eos_id, suffix_text="", label_template="Label: {label}\n",
                    max_text_tokens=32)  # fmt: skip
    batch = collate(build_examples(lm.encode, layout, ["Why isn't my topup working?", "Where is my new card?"],
                                   ["top_up_failed", "card_arrival"]))  # fmt: skip
    init = init_rows(lm, "Customers wrote these short messages to their bank.", 8)
    got = {}
    for name in ("fp32", "bf16"):
        p = init.clone().requires_grad_(True)
        res = batch_loss(lm.at(resolve(name, AVX2)), layout, p.unsqueeze(0).expand(2, -1, -1), batch)
        res.per_sample.sum().backward()
        assert p.grad is not None and p.grad.dtype == torch.float32
        got[name] = (res.nll_sum / res.n_tokens, p.grad.flatten())
    assert abs(got["bf16"][0] - got["fp32"][0]) <= LOSS_TOLERANCE, json.dumps([got["fp32"][0], got["bf16"][0]])
    assert float(torch.nn.functional.cosine_similarity(got["fp32"][1], got["bf16"][1], dim=0)) >= 0.99


def test_bf16_copy_stores_matrix_weights_in_bf16_and_leaves_the_source_alone() -> None:
    """FrozenLM.at(bf16): every Linear and the input embedding in bf16 (tied head and embedding still one
    tensor), norms and rotary buffers float32, eager attention, float32 embeddings out; the float32 model is
    untouched and the copy is made once per process."""
    lm = tiny_lm(hidden=32, tie=True)
    assert lm.model.get_output_embeddings().weight is lm.model.get_input_embeddings().weight
    fp32 = lm.at(resolve("fp32", AVX2))
    assert fp32.model is lm.model and fp32.precision.name == "fp32"
    bf16 = lm.at(resolve("bf16", AVX2))
    m = bf16.model
    assert m is not lm.model and bf16.precision.name == "bf16"
    assert all(p.dtype == torch.float32 for p in lm.model.parameters())
    assert m.get_input_embeddings().weight.dtype == torch.bfloat16
    assert all(x.weight.dtype == torch.bfloat16 for x in m.modules() if isinstance(x, torch.nn.Linear))
    assert m.get_output_embeddings().weight is m.get_input_embeddings().weight
    assert m.model.norm.weight.dtype == torch.float32
    assert all(b.dtype == torch.float32 for b in m.buffers() if b.is_floating_point())
    assert m.config._attn_implementation == "eager" and not any(p.requires_grad for p in m.parameters())
    assert bf16.embed(torch.tensor([[1, 2]])).dtype == torch.float32
    assert lm.at(resolve("bf16", AVX2)).model is m
