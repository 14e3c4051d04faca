"""The GGUF → torch model cache: what it holds, that the loaded model is frozen, and that tampering is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _train_data import seed_model_cache

from appliance.config import Workspace
from appliance.errors import ChecksumMismatch
from appliance.models.registry import verified_path
from appliance.train import lm as lm_mod

pytestmark = pytest.mark.slow


def test_cache_holds_a_dequantized_unquantized_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_model_cache(home)
    _, _, sha = verified_path("smollm2-135m", Workspace(home))
    target = lm_mod.cache_dir(Workspace(home), sha)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["model_sha256"] == sha and manifest["add_bos"] is False
    assert set(manifest["files"]) >= {"model.safetensors", "config.json", "tokenizer.json"}
    assert "quantization_config" not in json.loads((target / "config.json").read_text())
    lm = lm_mod.load_frozen(Workspace(home), "smollm2-135m")
    assert lm.sha256 == sha and lm.n_embd == 576 and lm.bos_id is None and lm.eos_id == 2
    assert lm.tokenizer.padding_side == "right"
    assert not any(p.requires_grad for p in lm.model.parameters()) and not lm.model.training
    assert lm.encode("Hello world") == [19556, 905] and lm.encode("") == []


def test_tampered_cache_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_model_cache(home)
    _, _, sha = verified_path("smollm2-135m", Workspace(home))
    f = lm_mod.cache_dir(Workspace(home), sha) / "tokenizer_config.json"
    data = f.read_bytes()
    f.unlink()  # the cache is hard-linked from the shared test cache: replace the file, never write through
    f.write_bytes(data + b" ")
    saved = dict(lm_mod._LOADED)
    lm_mod._LOADED.clear()  # force a real load from this workspace's cache
    try:
        with pytest.raises(ChecksumMismatch, match="delete that directory to rebuild it"):
            lm_mod.load_frozen(Workspace(home), "smollm2-135m")
    finally:
        lm_mod._LOADED.clear()
        lm_mod._LOADED.update(saved)
