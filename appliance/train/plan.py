"""A training run's plan: the request with the policy's defaults filled in, the Poisson rate, steps and δ.

Also the policy checks that come before anything else (``--epsilon`` required for DP runs; ``--no-dp`` only
when ``privacy.allow_non_dp`` is true).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from appliance.budget.accounting import Mechanism, default_delta, history_epsilon, planned_steps, selection_mechanism
from appliance.context import Context
from appliance.errors import BadInput, PolicyViolation
from appliance.policy.schema import TrainingPolicy
from appliance.train.lm import FrozenLM


@dataclass(frozen=True)
class TrainRequest:
    """What the operator asked for; ``None`` means the policy's ``training`` default."""

    dataset: str
    epsilon: float | None
    delta: float | None = None
    epochs: int | None = None
    virtual_tokens: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    max_grad_norm: float | None = None
    model: str | None = None
    dp: bool = True


@dataclass(frozen=True)
class DpTarget:
    """What a DP run must reach: the ε asked for and the δ it is accounted at (both set, or no DP at all), and
    the mechanisms it reserves on the same records (curation's DP selection), composed into that ε."""

    epsilon: float
    delta: float
    also: tuple[Mechanism, ...] = ()

    @property
    def selection_noise(self) -> float | None:
        """σ of the reserved DP selection histogram, or None when the run reserves none."""
        return self.also[0][0] if self.also else None


@dataclass(frozen=True)
class Plan:
    req: TrainRequest
    epochs: int
    k: int
    lr: float
    batch_size: int
    clip: float
    n: int  # training examples, canaries included
    steps_per_epoch: int
    sample_rate: float
    total_steps: int
    dp: DpTarget | None  # None: the non-DP control

    @property
    def delta(self) -> float | None:
        return None if self.dp is None else self.dp.delta

    @property
    def selection_noise(self) -> float | None:
        """σ of the DP selection histogram this run reserves, or None (none, or no DP at all)."""
        return None if self.dp is None else self.dp.selection_noise


# command-line option -> the policy's training key that bounds it (one source of truth for the ranges)
_OPTIONS = {
    "epochs": "--epochs",
    "virtual_tokens": "--virtual-tokens",
    "lr": "--lr",
    "batch_size": "--batch-size",
    "max_grad_norm": "--max-grad-norm",
}


def allowed_range(key: str) -> str:
    """The range ``training.<key>`` allows in the policy schema, e.g. ``1..1000`` or ``(0, 10]``."""
    lo = hi = None
    lo_open = hi_open = False
    for m in TrainingPolicy.model_fields[key].metadata:
        if getattr(m, "ge", None) is not None:
            lo = m.ge
        if getattr(m, "gt", None) is not None:
            lo, lo_open = m.gt, True
        if getattr(m, "le", None) is not None:
            hi = m.le
        if getattr(m, "lt", None) is not None:
            hi, hi_open = m.lt, True
    if TrainingPolicy.model_fields[key].annotation is int and not (lo_open or hi_open):
        return f"{lo}..{hi}" if hi is not None else f">= {lo}"
    left = "(" if lo_open else "["
    right = ")" if hi_open or hi is None else "]"
    return f"{left}{lo:g}, {'inf' if hi is None else format(hi, 'g')}{right}"


def _check_ranges(req: TrainRequest) -> None:
    """An explicit option outside the policy's range is an error (never silently the default); so is a δ for a
    run without DP."""
    if not req.dp and req.delta is not None:
        raise BadInput("--delta is the δ of a DP run; a --no-dp run has none — drop --delta or --no-dp")
    for key, flag in _OPTIONS.items():
        value = getattr(req, key)
        if value is None:
            continue
        try:
            TrainingPolicy.model_validate({key: value})
        except ValidationError:
            raise BadInput(f"{flag} {value:g} is out of range: allowed {allowed_range(key)}") from None


def make_plan(ctx: Context, req: TrainRequest, n: int) -> Plan:
    """Resolve defaults and derive the Poisson rate, the step count and δ (policy, or min(1/(10 N), 1e-6))."""
    _check_ranges(req)
    t = ctx.policy.training

    def pick(key: str) -> Any:
        value = getattr(req, key)
        return getattr(t, key) if value is None else value

    epochs, k, bs = pick("epochs"), pick("virtual_tokens"), pick("batch_size")
    clip, lr = pick("max_grad_norm"), pick("lr")
    m = math.ceil(n / bs)
    q = 1.0 / m
    target = None
    if req.dp:
        epsilon = _required_epsilon(req)
        delta = req.delta if req.delta is not None else (ctx.policy.privacy.delta or default_delta(n))
        if not 0 < delta < 1.0 / n:
            what = "--delta" if req.delta is not None else "the policy's privacy.delta"
            raise BadInput(f"{what} must be in (0, 1/n) = (0, {1.0 / n:.3g}) for n={n} training records")
        target = DpTarget(epsilon, float(delta), _reserved(ctx, epsilon, float(delta)))
    return Plan(req, epochs, k, lr, bs, clip, n, m, q, planned_steps(epochs=epochs, sample_rate=q), target)


def _reserved(ctx: Context, epsilon: float, delta: float) -> tuple[Mechanism, ...]:
    """The curation's DP selection histogram when the policy enables it; refused when it alone spends ``epsilon``."""
    sel = ctx.policy.curation.dp_selection
    if not sel.enabled:
        return ()
    also = (selection_mechanism(sel.noise_multiplier),)
    alone = history_epsilon(also, delta=delta, accountant=ctx.policy.privacy.accountant)
    if alone >= 0.5 * epsilon:
        raise BadInput(
            f"curation.dp_selection with noise_multiplier {sel.noise_multiplier:g} alone spends ε {alone:.3g}, at"
            f" least half of --epsilon {epsilon:g}: raise curation.dp_selection.noise_multiplier, raise --epsilon,"
            " or set curation.dp_selection.enabled false"
        )
    return also


def _required_epsilon(req: TrainRequest) -> float:
    if req.epsilon is None or not req.epsilon > 0:
        raise BadInput("--epsilon must be a positive number (or pass --no-dp for the non-DP control)")
    return float(req.epsilon)


def check_request(ctx: Context, req: TrainRequest) -> None:
    """Refuse what the policy forbids before anything else happens."""
    _check_ranges(req)
    if req.dp:
        _required_epsilon(req)
    elif not ctx.policy.privacy.allow_non_dp:
        raise PolicyViolation(
            "non-DP training is refused: policy key privacy.allow_non_dp is false — set it to true in the workspace"
            " policy only for the probes' control experiment (its prompts are never exportable)"
        )


def scaled_lr(lm: FrozenLM, lr: float) -> float:
    """``lr`` is relative to the model's embedding scale: Adam moves each coordinate by about lr × std(E)."""
    return lr * float(lm.model.get_input_embeddings().weight.detach().std())
