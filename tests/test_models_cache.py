"""The machine-level model cache: where it is, one build when two builders race, and a bad file never used.

Unit tests with small fake files in place of the real conversions (the real model's cache is tested in
test_train_lm.py and test_generate_weights.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from appliance.errors import ChecksumMismatch
from appliance.generate import weights
from appliance.models import cache
from appliance.train import lm as lm_mod

T = TypeVar("T")
SHA = "sha256:" + "ab" * 32


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own machine cache (the tests' shared one holds the real model)."""
    monkeypatch.setenv("APPLIANCE_CACHE_DIR", str(tmp_path / "machine-cache"))
    return tmp_path / "machine-cache"


def test_root_is_the_env_var_then_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert cache.cache_root() == tmp_path / "env"
    assert cache.model_dir(SHA) == tmp_path / "env" / "models" / ("ab" * 32)
    monkeypatch.delenv("APPLIANCE_CACHE_DIR")
    assert cache.cache_root() == tmp_path / "xdg" / "synth-appliance"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec: a relative path is ignored
    assert cache.cache_root() == tmp_path / "user" / ".cache" / "synth-appliance"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_root() == tmp_path / "user" / ".cache" / "synth-appliance"


def _race(n: int, fn: Callable[[], T]) -> list[T]:
    """Run ``fn`` in ``n`` threads released together; their results (an exception is re-raised)."""
    barrier = threading.Barrier(n)

    def body() -> T:
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(body) for _ in range(n)]
        return [f.result() for f in futures]


def _fake_convert(calls: list[Path]) -> Callable[[Path, Path], None]:
    def convert(src: Path, dst: Path) -> None:
        calls.append(dst)
        time.sleep(0.3)  # long enough for every racer to reach the lock
        dst.write_bytes(b"F16 of " + src.read_bytes())

    return convert


def test_f16_racers_build_once_and_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(b"quantized weights")
    out = cache.model_dir(SHA) / "f16.gguf"
    calls: list[Path] = []
    monkeypatch.setattr(weights, "_convert", _fake_convert(calls))
    results = _race(4, lambda: weights._cached(src, out))
    digest = "sha256:" + hashlib.sha256(b"F16 of quantized weights").hexdigest()
    assert results == [(out, digest)] * 4 and len(calls) == 1
    assert out.with_name("f16.gguf.sha256").read_text().strip() == digest
    assert sorted(p.name for p in out.parent.iterdir()) == [".f16.gguf.lock", "f16.gguf", "f16.gguf.sha256"]
    assert out.parent.stat().st_mode & 0o777 == 0o700


def test_f16_file_that_does_not_match_its_hash_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(b"quantized weights")
    out = cache.model_dir(SHA) / "f16.gguf"
    calls: list[Path] = []
    monkeypatch.setattr(weights, "_convert", _fake_convert(calls))
    good = weights._cached(src, out)
    assert weights._cached(src, out) == good and len(calls) == 1  # a verified file is reused
    out.write_bytes(b"F16 of tampered weights")
    assert weights._cached(src, out) == good and len(calls) == 2
    assert out.read_bytes() == b"F16 of quantized weights"


def test_a_crashed_builds_temporary_is_removed_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(b"quantized weights")
    out = cache.model_dir(SHA) / "f16.gguf"
    out.parent.mkdir(parents=True)
    stale = out.parent / ".f16.gguf.tmp-99999"
    stale.write_bytes(b"half a file")
    monkeypatch.setattr(weights, "_convert", _fake_convert([]))
    weights._cached(src, out)
    assert not stale.exists()


def _fake_build(calls: list[Path]) -> Callable[[Path, str, Path], None]:
    """Writes a one-file cache with a manifest the way lm._build_cache does (temporary dir, then rename)."""

    def build(path: Path, sha256: str, target: Path) -> None:
        calls.append(target)
        time.sleep(0.3)
        tmp = cache.temp_name(target)
        tmp.mkdir()
        (tmp / "model.safetensors").write_bytes(b"weights of " + path.read_bytes())
        digest = "sha256:" + hashlib.sha256((tmp / "model.safetensors").read_bytes()).hexdigest()
        manifest = {"version": lm_mod.CACHE_VERSION, "model_sha256": sha256, "add_bos": False}
        (tmp / "manifest.json").write_text(json.dumps({**manifest, "files": {"model.safetensors": digest}}))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)

    return build


def test_torch_cache_racers_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(b"quantized weights")
    calls: list[Path] = []
    monkeypatch.setattr(lm_mod, "_build_cache", _fake_build(calls))
    target = lm_mod.cache_dir(SHA)
    manifests = _race(3, lambda: lm_mod.ensure_cache(src, SHA, target))
    assert len(calls) == 1 and all(m == manifests[0] for m in manifests)
    assert manifests[0]["model_sha256"] == SHA
    assert target == cache.cache_root() / "models" / ("ab" * 32) / "torch"


def test_torch_cache_for_another_model_version_is_rebuilt_a_tampered_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(b"quantized weights")
    calls: list[Path] = []
    monkeypatch.setattr(lm_mod, "_build_cache", _fake_build(calls))
    target = lm_mod.cache_dir(SHA)
    lm_mod.ensure_cache(src, SHA, target)
    mf = target / "manifest.json"
    mf.write_text(json.dumps({**json.loads(mf.read_text()), "version": lm_mod.CACHE_VERSION + 1}))
    lm_mod.ensure_cache(src, SHA, target)  # an older/newer layout: replaced, not used
    assert len(calls) == 2 and json.loads(mf.read_text())["version"] == lm_mod.CACHE_VERSION
    (target / "model.safetensors").write_bytes(b"other weights")
    with pytest.raises(ChecksumMismatch, match="delete that directory"):
        lm_mod.ensure_cache(src, SHA, target)
    assert len(calls) == 2
