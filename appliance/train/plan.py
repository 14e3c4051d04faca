"""A training run's plan: the request with the policy's defaults filled in, the Poisson rate, steps and δ.

Also the policy checks that come before anything else (``--epsilon`` required for DP runs; ``--no-dp`` only
when ``privacy.allow_non_dp`` is true or on a dataset imported as public data; ``--init-prompt`` only from a
prompt trained on public records alone).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from appliance.budget.accounting import (
    Mechanism,
    default_delta,
    noise_multiplier_for,
    planned_steps,
    selection_mechanism,
)
from appliance.context import Context
from appliance.errors import BadInput, PolicyViolation
from appliance.policy.schema import TrainingPolicy
from appliance.train.lm import FrozenLM
from appliance.train.public_prior import check_init


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
    init_prompt: str | None = None  # a prompt trained on public records alone to start from (public_prior)


@dataclass(frozen=True)
class DpTarget:
    """What a DP run must reach: the ε asked for and the δ it is accounted at (both set, or no DP at all), and
    the Gaussian histograms it reserves on the same records, composed into that ε: curation's DP selection
    (σ ``selection_noise``) and the label keywords released at training (σ ``keywords_noise``)."""

    epsilon: float
    delta: float
    selection_noise: float | None = None
    keywords_noise: float | None = None

    @property
    def also(self) -> tuple[Mechanism, ...]:
        """The reserved mechanisms, as the accountant composes them with DP-SGD."""
        return tuple(selection_mechanism(s) for s in (self.selection_noise, self.keywords_noise) if s is not None)


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

    @property
    def keywords_noise(self) -> float | None:
        """σ of the label-keyword histogram this run reserves, or None (none, or no DP at all)."""
        return None if self.dp is None else self.dp.keywords_noise


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


def make_plan(ctx: Context, req: TrainRequest, n: int, *, labelled: bool = False) -> Plan:
    """Resolve defaults and derive the Poisson rate, the step count and δ (policy, or min(1/(10 N), 1e-6));
    ``labelled``: the dataset has a public label set (label keywords are released only for one)."""
    _check_ranges(req)
    t = ctx.policy.training

    def pick(key: str) -> Any:
        value = getattr(req, key)
        return getattr(t, key) if value is None else value

    epochs, k, bs = pick("epochs"), pick("virtual_tokens"), pick("batch_size")
    clip, lr = pick("max_grad_norm"), pick("lr")
    m = math.ceil(n / bs)
    q = 1.0 / m
    steps = planned_steps(epochs=epochs, sample_rate=q)
    target = None
    if req.dp:
        epsilon = _required_epsilon(req)
        delta = req.delta if req.delta is not None else (ctx.policy.privacy.delta or default_delta(n))
        if not 0 < delta < 1.0 / n:
            what = "--delta" if req.delta is not None else "the policy's privacy.delta"
            raise BadInput(f"{what} must be in (0, 1/n) = (0, {1.0 / n:.3g}) for n={n} training records")
        noises = _reserved(ctx, epsilon, float(delta), labelled, sample_rate=q, steps=steps)
        target = DpTarget(epsilon, float(delta), *noises)
    return Plan(req, epochs, k, lr, bs, clip, n, m, q, steps, target)


# the histograms a run reserves may cost DP-SGD at most this much more noise (σ × 1.25) at the same ε; the demo's
# two (selection σ 4, keywords σ 2.5) cost it 5%
MAX_RESERVED_NOISE_RISE = 0.25


def _reserved(
    ctx: Context, epsilon: float, delta: float, labelled: bool, *, sample_rate: float, steps: int
) -> tuple[float | None, float | None]:
    """σ of the DP selection histogram and of the label-keyword histogram the policy enables (None: not
    reserved); refused when composing them would raise DP-SGD's noise multiplier by more than
    ``MAX_RESERVED_NOISE_RISE`` (or leave it nothing of ``epsilon``)."""
    sel, kw = ctx.policy.curation.dp_selection, ctx.policy.training.label_keywords
    noises = (sel.noise_multiplier if sel.enabled else None, kw.noise_multiplier if kw.enabled and labelled else None)
    also = [selection_mechanism(s) for s in noises if s is not None]
    if not also:
        return noises

    def sigma(with_also: list[Mechanism]) -> float:
        with warnings.catch_warnings():  # Opacus's σ search probes orders where ε is tiny: a harmless warning
            warnings.filterwarnings("ignore", message=".*Optimal order is the largest alpha.*")
            return noise_multiplier_for(
                target_epsilon=epsilon,
                delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=ctx.policy.privacy.accountant,
                also=with_also,
            )

    alone = sigma([])
    try:
        composed: float | None = sigma(also)
    except ValueError:
        composed = None
    if composed is None or composed > (1.0 + MAX_RESERVED_NOISE_RISE) * alone:
        keys = [k for k, s in zip(("curation.dp_selection", "training.label_keywords"), noises, strict=True) if s]
        cost = (
            f"would raise DP-SGD's noise multiplier from {alone:.3g} to {composed:.3g} at --epsilon {epsilon:g},"
            f" more than the {MAX_RESERVED_NOISE_RISE:.0%} allowed"
            if composed is not None
            else f"alone spend all of --epsilon {epsilon:g}"
        )
        raise BadInput(
            f"{' and '.join(keys)} (noise_multiplier {', '.join(f'{s:g}' for s in noises if s)}) {cost}: raise their"
            " noise_multiplier, raise --epsilon, or set enabled false"
        )
    return noises


def _required_epsilon(req: TrainRequest) -> float:
    if req.epsilon is None or not req.epsilon > 0:
        raise BadInput("--epsilon must be a positive number (or pass --no-dp for the non-DP control)")
    return float(req.epsilon)


def check_request(ctx: Context, req: TrainRequest, *, public: bool = False) -> None:
    """Refuse what the policy forbids before anything else happens. ``public``: the dataset was imported as
    public data (``seeds import --public``), so it may be trained on without DP whatever
    ``privacy.allow_non_dp`` says: that is how a public prior is made (:mod:`appliance.train.public_prior`)."""
    _check_ranges(req)
    if req.dp:
        _required_epsilon(req)
    elif not ctx.policy.privacy.allow_non_dp and not public:
        raise PolicyViolation(
            "non-DP training is refused: policy key privacy.allow_non_dp is false — set it to true in the workspace"
            " policy only for the probes' control experiment (its prompts are never exportable); a public corpus"
            " imported with `seeds import --public` is trained on without DP as it is"
        )
    if req.init_prompt is not None:
        check_init(
            ctx,
            req.init_prompt,
            k=req.virtual_tokens or ctx.policy.training.virtual_tokens,
            model=req.model or ctx.policy.generation.default_model,
        )


def scaled_lr(lm: FrozenLM, lr: float) -> float:
    """``lr`` is relative to the model's embedding scale: Adam moves each coordinate by about lr × std(E)."""
    return lr * float(lm.model.get_input_embeddings().weight.detach().std())
