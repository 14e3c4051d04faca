"""Training precision: bf16 autocast on CPUs with bf16 matrix units, float32 elsewhere (``training.precision``).

``auto`` (the default) picks bf16 when the CPU has bf16 matrix units — AMX (``amx_bf16``: Intel Sapphire Rapids
and later) or AVX512-BF16 (``avx512_bf16``: AMD Zen 4, Intel Cooper Lake) — and float32 otherwise: without them
oneDNN emulates bf16 and is slower than float32. ``bf16`` and ``fp32`` force a path (``bf16`` on a CPU without
the units runs, slowly, and says so).

What runs in bf16: the frozen model's matrix multiplies under ``torch.autocast`` on CPU (oneDNN's AMX /
AVX512-BF16 kernels), and the output head's logits chunk by chunk. The weights they read are a bf16 copy made
once (:meth:`FrozenLM.at <appliance.train.lm.FrozenLM.at>`: cast per call, they took a quarter of the step) with
eager attention (torch's CPU flash-attention backward is slower in bf16 than in float32); norms, the residual
stream and the embeddings handed to the prompt stay float32. Only the forward pass runs under autocast
(:meth:`FrozenLM.autocast`, as PyTorch's AMP guide asks); backward follows the dtypes it chose, and Opacus's
per-sample gradient hooks, which run during backward, stay outside it. What stays float32: the
soft prompt and every DP step on it — Opacus's per-sample gradients of the prompt's (float32) parameters, their
clipping to ``max_grad_norm``, the Gaussian noise and the optimiser — and the log-softmax of the loss (the
head's logits are cast up before ``logsumexp``). The (ε, δ) guarantee depends only on the clipping bound, the
sampling rate, σ and the step count, none of which change: bf16 changes the gradient a record contributes,
never how much one record can contribute. Parity: on the same batch the bf16 mean loss is within
:data:`LOSS_TOLERANCE` nats/token of float32 (``tests/test_train_precision.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from appliance.cpu import cpu_flags

SETTINGS = ("auto", "fp32", "bf16")
BF16_UNITS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of bf16 matrix units
LOSS_TOLERANCE = 0.05  # nats/token: |mean NLL bf16 - mean NLL fp32| on the same batch (parity test)


@dataclass(frozen=True)
class Precision:
    """The path the trainer runs, what the policy asked for, and why (recorded in the train event)."""

    name: Literal["fp32", "bf16"]
    setting: str
    reason: str  # for people (CLI, bench); the audit event carries the short facts of as_dict()
    units: tuple[str, ...] = ()  # the CPU's bf16 matrix units

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """The context the model's forward passes run in (backward follows the dtypes they chose)."""
        if self.name == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def as_dict(self) -> dict[str, str]:
        """The train event's and the prompt's record of the choice: tokens only, no free text."""
        return {"precision": self.name, "precision_setting": self.setting, "bf16_units": "+".join(self.units) or "none"}


FP32 = Precision("fp32", "fp32", "the default outside training")


def bf16_units(flags: Iterable[str] | None = None) -> list[str]:
    """The bf16 matrix units among the CPU's flags (``flags`` default: this CPU's)."""
    have = frozenset(cpu_flags() if flags is None else flags)
    return [u for u in BF16_UNITS if u in have]


def resolve(setting: str, flags: Iterable[str] | None = None) -> Precision:
    """The precision for ``training.precision`` = ``setting`` on a CPU with ``flags`` (default: this one)."""
    if setting not in SETTINGS:
        raise ValueError(f"training.precision must be one of {', '.join(SETTINGS)}, not {setting!r}")
    units = tuple(bf16_units(flags))
    if setting == "fp32":
        return Precision("fp32", setting, "forced by training.precision", units)
    if setting == "bf16":
        if units:
            return Precision("bf16", setting, f"forced by training.precision; CPU has {'+'.join(units)}", units)
        why = "forced by training.precision; this CPU has no bf16 units (emulated, slow)"
        return Precision("bf16", setting, why, units)
    if units:
        return Precision("bf16", setting, f"auto: CPU has {'+'.join(units)}", units)
    return Precision("fp32", setting, "auto: no amx_bf16 or avx512_bf16 on this CPU", units)
