"""The training plan: a DP run carries its ε and δ together, the non-DP control carries neither, and a bad
ε or δ is refused before anything is built."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from appliance.budget.accounting import default_delta
from appliance.errors import BadInput
from appliance.policy.loader import default_policy_path, load_policy_file
from appliance.train.plan import DpTarget, TrainRequest, make_plan


def _ctx() -> Any:
    return SimpleNamespace(policy=load_policy_file(default_policy_path()))


def test_dp_plan_carries_epsilon_and_delta() -> None:
    plan = make_plan(_ctx(), TrainRequest("d", epsilon=4.0), n=200)
    assert plan.dp == DpTarget(4.0, default_delta(200))
    assert plan.delta == plan.dp.delta < 1 / 200
    assert plan.steps_per_epoch == -(-200 // plan.batch_size) and plan.sample_rate == 1 / plan.steps_per_epoch


def test_explicit_delta_is_kept() -> None:
    assert make_plan(_ctx(), TrainRequest("d", epsilon=1.0, delta=1e-4), n=200).dp == DpTarget(1.0, 1e-4)


def test_non_dp_plan_has_no_target() -> None:
    plan = make_plan(_ctx(), TrainRequest("d", epsilon=None, dp=False), n=200)
    assert plan.dp is None and plan.delta is None


@pytest.mark.parametrize(
    ("epsilon", "delta", "message"),
    [(None, None, "--epsilon must be a positive number"), (0.0, None, "--epsilon"), (4.0, 0.01, "--delta must be")],
)
def test_bad_epsilon_or_delta_is_refused(epsilon: float | None, delta: float | None, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        make_plan(_ctx(), TrainRequest("d", epsilon=epsilon, delta=delta), n=200)


def _selecting(noise: float) -> Any:
    policy = load_policy_file(default_policy_path())
    sel = policy.curation.dp_selection.model_copy(update={"enabled": True, "noise_multiplier": noise})
    cur = policy.curation.model_copy(update={"dp_selection": sel})
    return SimpleNamespace(policy=policy.model_copy(update={"curation": cur}))


def test_dp_selection_is_reserved_in_the_runs_epsilon() -> None:
    plan = make_plan(_selecting(4.0), TrainRequest("d", epsilon=4.0), n=200)
    assert plan.dp is not None and plan.dp.also == ((4.0, 1.0, 1),) and plan.dp.selection_noise == 4.0
    assert make_plan(_ctx(), TrainRequest("d", epsilon=4.0), n=200).dp.selection_noise is None  # off by default
    assert make_plan(_selecting(4.0), TrainRequest("d", epsilon=None, dp=False), n=200).dp is None


def test_dp_selection_that_would_spend_half_the_epsilon_is_refused() -> None:
    with pytest.raises(BadInput, match=r"curation\.dp_selection"):
        make_plan(_selecting(1.0), TrainRequest("d", epsilon=1.0), n=200)
