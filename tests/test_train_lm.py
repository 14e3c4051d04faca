"""The GGUF → torch model cache: what it holds, that every workspace shares it, that the loaded model is frozen,
and that tampering is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _train_data import link_or_copy, seed_model_cache

from appliance.config import Workspace
from appliance.errors import ChecksumMismatch
from appliance.models.cache import cache_root
from appliance.models.registry import verified_path
from appliance.train import lm as lm_mod

pytestmark = pytest.mark.slow


def test_cache_holds_a_dequantized_unquantized_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    target = seed_model_cache(home)
    _, _, sha = verified_path("smollm2-135m", Workspace(home))
    assert target == cache_root() / "models" / sha.removeprefix("sha256:") / "torch"
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["model_sha256"] == sha and manifest["add_bos"] is False
    assert set(manifest["files"]) >= {"model.safetensors", "config.json", "tokenizer.json"}
    assert "quantization_config" not in json.loads((target / "config.json").read_text())
    lm = lm_mod.load_frozen(Workspace(home), "smollm2-135m")
    assert lm.sha256 == sha and lm.n_embd == 576 and lm.bos_id is None and lm.eos_id == 2
    assert lm.tokenizer.padding_side == "right"
    assert not any(p.requires_grad for p in lm.model.parameters()) and not lm.model.training
    assert lm.encode("Hello world") == [19556, 905] and lm.encode("") == []


def _fresh_load(home: Path) -> lm_mod.FrozenLM:
    """load_frozen without this process's memo of the last model (a real read of the cache)."""
    saved = dict(lm_mod._LOADED)
    lm_mod._LOADED.clear()
    try:
        return lm_mod.load_frozen(Workspace(home), "smollm2-135m")
    finally:
        lm_mod._LOADED.clear()
        lm_mod._LOADED.update(saved)


def test_two_workspaces_share_one_machine_cache(tmp_path: Path) -> None:
    """The second workspace loads the first one's cache: nothing is rebuilt, nothing is written into either."""
    target = seed_model_cache(tmp_path / "a")
    weights = target / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    a, b = _fresh_load(tmp_path / "a"), _fresh_load(tmp_path / "b")
    assert a.sha256 == b.sha256 and weights.stat().st_mtime_ns == mtime
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert float(a.head_weight.sum()) == float(b.head_weight.sum())


def test_tampered_cache_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    src = seed_model_cache(home)
    # a private copy of the shared test cache (hard links; the tampered file is replaced, never written through)
    monkeypatch.setenv("APPLIANCE_CACHE_DIR", str(tmp_path / "cache"))
    _, _, sha = verified_path("smollm2-135m", Workspace(home))
    dst = lm_mod.cache_dir(sha)
    dst.parent.mkdir(parents=True)
    shutil.copytree(src, dst, copy_function=link_or_copy)
    f = dst / "tokenizer_config.json"
    data = f.read_bytes()
    f.unlink()
    f.write_bytes(data + b" ")
    with pytest.raises(ChecksumMismatch, match="delete that directory to rebuild it"):
        _fresh_load(home)
