"""The llama.cpp self-test: a child decodes a few tokens; a crash with extra buffer types falls back to plain
buffers, SIGILL is a one-line error naming the missing CPU flags; verdicts are cached per machine and model."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.generate import selftest
from appliance.models.registry import get_spec, locate

pytestmark = pytest.mark.slow


@pytest.fixture
def model() -> Path:
    path = locate(get_spec("smollm2-135m"))
    if path is None:
        pytest.fail("default model missing: run `make models`")
    return path


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(selftest.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(selftest.FORCE_ENV, raising=False)
    selftest._MEMO.clear()
    yield tmp_path / "cache" / "selftest"
    selftest._MEMO.clear()  # simulated verdicts must not outlive the test


def test_real_child_passes_and_is_cached(model: Path, fresh_cache: Path) -> None:
    v = selftest.extra_bufts_safe(model)
    assert v.outcome == "ok" and v.extra_bufts is True and not v.cached
    assert {"AVX2", "FMA", "F16C"} <= set(v.build_features) and v.llama_cpp_version != "not installed"
    assert all(f.replace("_", "").isalnum() for f in v.build_features)  # names only ("SSE3", not "CPU : SSE3")
    assert json.loads((fresh_cache / f"{v.key}.json").read_text())["extra_bufts"] is True
    selftest._MEMO.clear()
    again = selftest.extra_bufts_safe(model)
    assert again.cached and again.key == v.key and again.extra_bufts is True
    assert selftest.lookup(model) == again
    assert "system info" not in json.dumps(v.audit())  # audit payload: features as a list, no free text


def test_crash_with_extra_buffers_falls_back(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selftest.CRASH_ENV, "segv")  # the child kills itself with SIGSEGV when extra bufts are on
    v = selftest.extra_bufts_safe(model)
    assert v.extra_bufts is False and v.outcome == "fallback:SIGSEGV"


def test_sigill_names_the_missing_flags(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selftest.CRASH_ENV, "sigill")
    monkeypatch.setattr(selftest, "missing_flags", lambda *_a: [])  # the pre-check passes; the child dies
    with pytest.raises(selftest.CpuUnsupported, match="lacks an instruction set") as info:
        selftest.extra_bufts_safe(model)
    assert info.value.exit_code == 1 and "\n" not in str(info.value)
    monkeypatch.setattr(selftest, "missing_flags", lambda *_a: ["avx2", "fma"])
    with pytest.raises(selftest.CpuUnsupported, match="this CPU lacks avx2, fma"):
        selftest.extra_bufts_safe(model)


def test_forced_setting_skips_the_test(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selftest.FORCE_ENV, "0")
    v = selftest.extra_bufts_safe(model)
    assert v.outcome == "forced" and v.extra_bufts is False


def test_models_verify_json_shows_the_choice(cli: Callable, model: Path) -> None:
    res = cli("models", "verify", "smollm2-135m", "--json")
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout.splitlines()[-1])["models"]
    assert row["kernels"]["extra_bufts"] is True and row["kernels"]["outcome"] == "ok"
    assert row["kernels"]["model_sha256"] == "sha256:" + row["sha256"]
    assert "on (ok)" in cli("models", "verify", "smollm2-135m").stdout
