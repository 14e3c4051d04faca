"""Training widens torch's thread count when the load that was there at its start has gone (appliance.train.loop)."""

from __future__ import annotations

import pytest
import torch

from appliance.train import loop


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_widener_raises_threads_once_the_other_load_is_gone(monkeypatch, threads):
    now = [0.0]
    idle = [1]
    monkeypatch.setattr(loop, "cores", lambda: 2)
    monkeypatch.setattr(loop, "idle_cores", lambda: idle[0])
    widen = loop.ThreadWidener(30.0, clock=lambda: now[0])
    now[0] = 31.0
    assert widen() == 1  # still busy: stays at one
    idle[0] = 2
    now[0] = 40.0
    assert widen() == 1  # checked 9 s ago: not yet
    now[0] = 62.0
    assert widen() == 2 and torch.get_num_threads() == 2


def test_widener_never_lowers_threads(monkeypatch, threads):
    torch.set_num_threads(2)
    monkeypatch.setattr(loop, "cores", lambda: 2)
    monkeypatch.setattr(loop, "idle_cores", lambda: 1)  # would read this run's own threads as load
    widen = loop.ThreadWidener(0.0)
    assert widen() == 2 and torch.get_num_threads() == 2
