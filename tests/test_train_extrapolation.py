"""`training.prior_extrapolation`: the scaling of a run's movement from its public prompt, and its bounds."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from appliance.policy.schema import TrainingPolicy
from appliance.train.public_prior import extrapolate


def test_the_movement_from_the_prior_is_scaled() -> None:
    prior = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    trained = torch.tensor([[2.0, 2.0], [1.0, -3.0]])
    assert torch.equal(extrapolate(prior, trained, 1.0), trained)
    assert torch.equal(extrapolate(prior, trained, 0.0), prior)
    assert torch.equal(extrapolate(prior, trained, 1.5), torch.tensor([[2.5, 2.0], [1.5, -4.0]]))
    assert extrapolate(prior.double(), trained.double(), 2.0).dtype == torch.float32


def test_rows_of_another_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        extrapolate(torch.zeros(4, 8), torch.zeros(2, 8), 1.25)


def test_the_policy_default_is_the_trained_prompt_and_the_range_is_bounded() -> None:
    assert TrainingPolicy().prior_extrapolation == 1.0
    assert TrainingPolicy(prior_extrapolation=1.5).prior_extrapolation == 1.5
    for bad in (-0.5, 4.5):
        with pytest.raises(ValidationError):
            TrainingPolicy(prior_extrapolation=bad)
