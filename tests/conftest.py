"""Shared fixtures: every test gets its own APPLIANCE_HOME; nothing touches a real workspace."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from _shared_data import find_shared_data
from typer.testing import CliRunner

from appliance.cli.main import app

REPO = Path(__file__).resolve().parent.parent

# Air-gapped by design: nothing may reach a model hub or a suffix list at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
# The machine-level cache (dequantized model, F16 GGUF, self-test verdicts) of the test runs: never the user's
# ~/.cache; persistent under .pytest_cache so the real model is dequantized once, not once per test. Set here,
# not in a fixture, so module- and session-scoped fixtures see it too.
TEST_CACHE = Path(os.environ.get("APPLIANCE_TEST_CACHE_DIR") or REPO / ".pytest_cache" / "appliance-cache")
os.environ["APPLIANCE_CACHE_DIR"] = str(TEST_CACHE)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace path for each test, set through APPLIANCE_HOME."""
    h = tmp_path / "home"
    monkeypatch.setenv("APPLIANCE_HOME", str(h))
    monkeypatch.setenv("APPLIANCE_ACTOR", "tester")
    monkeypatch.setenv("APPLIANCE_MODELS_DIR", str(REPO / "models"))
    return h


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data sets (../shared/data): found once per session; the test is skipped when absent."""
    return find_shared_data()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


Invoke = Callable[..., "object"]


@pytest.fixture
def cli(runner: CliRunner) -> Callable:
    """Run the CLI in-process: ``cli("audit", "verify")`` → Click Result (exit_code, stdout, stderr)."""

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def workspace(cli: Callable, home: Path) -> Path:
    """An initialised workspace."""
    res = cli("init")
    assert res.exit_code == 0, res.output
    return home


@pytest.fixture
def mock_backend():
    """A generation engine double registered as ``generation.backend: mock`` through the real provider
    registry (tests/_mock_backend.py); removed again after the test."""
    from _mock_backend import MockProvider

    from appliance.generate import providers

    provider = MockProvider()
    providers.register(provider)
    yield provider
    providers.unregister(provider.kind)
