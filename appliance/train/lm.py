"""The generator's GGUF model, loaded into torch (dequantized, frozen) for training soft prompts.

The *same* file llama.cpp runs is read with ``transformers`` + ``gguf`` from the local path only
(``HF_HUB_OFFLINE=1``; never a hub). Dequantizing takes 15–60 s, so the float32 weights are cached once per
machine as safetensors under ``<cache>/models/<model sha256>/torch/`` (:mod:`appliance.models.cache`, shared by
every workspace; quantization config stripped first) with a manifest holding each cached file's SHA-256; a
cache whose files do not match is refused (exit 4), never used. One process builds it while others wait.

Everything here works in HF ``inputs_embeds`` space (for Gemma: after the sqrt(n_embd) scale), the space
the soft prompt lives in and llama.cpp receives unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from appliance.config import Workspace
from appliance.errors import ChecksumMismatch, ConfigError
from appliance.models.cache import build_lock, model_dir, temp_name
from appliance.models.registry import sha256_file, verified_path
from appliance.train.precision import FP32, Precision

CACHE_VERSION = 1
_WEIGHTS = "model.safetensors"


@dataclass
class FrozenLM:
    """A frozen causal LM and its tokenizer, with the facts the soft-prompt layout needs."""

    model: Any
    tokenizer: Any
    name: str
    sha256: str  # "sha256:<hex>" of the GGUF file
    path: Path
    add_bos: bool
    precision: Precision = FP32  # the forward passes' precision (the trainer's choice, appliance.train.precision)

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """The context this model's forward passes run in (backward follows the dtypes they chose)."""
        return self.precision.autocast()

    def at(self, precision: Precision) -> FrozenLM:
        """This model for forward passes in ``precision``. For bf16: a copy whose matrix weights (every
        ``nn.Linear`` and the input embedding, tied or not) are stored in bf16 once, instead of being cast from
        float32 on every call under autocast (a quarter of a bf16 step's time), and whose attention is the
        eager one (matmuls + a float32 softmax: torch's CPU flash-attention backward is several times slower in
        bf16 than in float32). Norms, rotary buffers and the soft prompt stay float32, and :meth:`embed`
        returns float32, so the residual stream and the loss are float32 as under autocast alone. The copy is
        kept for the process (one at a time); this model is never modified."""
        if precision.name != "bf16":
            return replace(self, precision=precision)
        key = id(self.model)
        if key not in _BF16:
            _BF16.clear()
            _BF16[key] = (self.model, bf16_copy(self.model))  # the source is held so that its id stays unique
        return replace(self, model=_BF16[key][1], precision=precision)

    @property
    def n_embd(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def bos_id(self) -> int | None:
        """The BOS token, when the GGUF asks for one (llama.cpp's ``add_bos``); else None."""
        bos = self.tokenizer.bos_token_id
        return int(bos) if self.add_bos and bos is not None else None

    @property
    def eos_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens (llama.cpp ``tokenize(add_bos=False)``)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of token ids, in HF ``inputs_embeds`` space."""
        emb: torch.Tensor = self.model.get_input_embeddings()(ids)
        return emb.float()  # bf16 rows of a bf16 copy (:meth:`at`) join the float32 soft prompt as float32

    def hidden(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final hidden states (after the last norm) for a right-padded batch of embeddings."""
        out = self.model.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False)
        states: torch.Tensor = out.last_hidden_state
        return states

    @property
    def head_weight(self) -> torch.Tensor:
        weight: torch.Tensor = self.model.get_output_embeddings().weight
        return weight

    @property
    def softcap(self) -> float | None:
        cfg = getattr(self.model.config, "get_text_config", lambda: self.model.config)()
        cap = getattr(cfg, "final_logit_softcapping", None)
        return float(cap) if cap else None


def _gguf_add_bos(path: Path) -> bool:
    from gguf import GGUFReader

    fld = GGUFReader(str(path), "r").fields.get("tokenizer.ggml.add_bos_token")
    return bool(fld.parts[fld.data[0]][0]) if fld is not None else False


def cache_dir(sha256: str) -> Path:
    """The dequantized model of the GGUF with this hash: ``<cache>/models/<hex>/torch``."""
    return model_dir(sha256) / "torch"


def _freeze(model: Any) -> Any:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def bf16_copy(model: Any) -> Any:
    """A frozen copy of ``model`` with its matrix weights in bf16 and eager attention (see :meth:`FrozenLM.at`)."""
    mats = [model.get_input_embeddings(), *(m for m in model.modules() if isinstance(m, torch.nn.Linear))]
    # deepcopy takes each matrix weight from the memo, cast once, instead of copying it in float32 first; one memo
    # entry per Parameter keeps a tied head and embedding one tensor
    memo: dict[int, Any] = {
        id(p): torch.nn.Parameter(p.detach().to(torch.bfloat16), requires_grad=False)
        for mod in mats
        for p in mod.parameters(recurse=False)
    }
    out = copy.deepcopy(model, memo)
    out.set_attn_implementation("eager")
    return _freeze(out)


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def ensure_cache(path: Path, sha256: str, target: Path) -> dict[str, Any]:
    """The checked manifest of the cache at ``target``, built first (under the build lock) when there is none."""
    manifest = _read_cache(target, sha256)
    if manifest is not None:
        return manifest
    with build_lock(target):
        manifest = _read_cache(target, sha256)  # another process may have built it while we waited
        if manifest is None:
            _build_cache(path, sha256, target)
            manifest = _read_cache(target, sha256)
    if manifest is None:
        raise ConfigError(f"the model cache {target} was built but cannot be read back; delete it and retry")
    return manifest


def _build_cache(path: Path, sha256: str, target: Path) -> None:
    """Dequantize the GGUF and write model + tokenizer + manifest into ``target`` (caller holds the build lock)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32, local_files_only=True
    )
    # a GGUF-loaded model refuses save_pretrained while it still carries its quantization config
    # nn.Module.__setattr__ is typed (str, Tensor | Module) but stores any value
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.__dict__.pop("quantization_config", None)
    tmp = temp_name(target)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700, parents=True)
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        files = {p.name: "sha256:" + sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        if _WEIGHTS not in files:
            raise ConfigError(f"caching {path.name} produced no {_WEIGHTS}; delete {target} and retry")
        manifest = {
            "version": CACHE_VERSION,
            "model_sha256": sha256,
            "add_bos": _gguf_add_bos(path),
            "files": files,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # no complete cache for this model (checked under the lock): replace it
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_cache(target: Path, sha256: str) -> dict[str, Any] | None:
    """The cache manifest after checking every listed file; None when there is no complete cache."""
    mf = target / "manifest.json"
    if not mf.is_file():
        return None
    try:
        manifest: dict[str, Any] = json.loads(mf.read_text(encoding="utf-8"))
        files = dict(manifest["files"]) if manifest.get("version") == CACHE_VERSION else {}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ChecksumMismatch(f"model cache manifest {mf} is damaged — delete {target} to rebuild it") from None
    if manifest.get("version") != CACHE_VERSION or manifest.get("model_sha256") != sha256:
        return None
    for name, digest in files.items():
        f = target / name
        if not f.is_file() or "sha256:" + sha256_file(f) != digest:
            raise ChecksumMismatch(
                f"model cache {target} does not match its manifest ({name}) — delete that directory to rebuild it"
            )
    return manifest


_LOADED: dict[str, FrozenLM] = {}  # the last model loaded in this process, by GGUF sha256
_BF16: dict[int, tuple[Any, Any]] = {}  # the last bf16 copy made in this process: id(source) -> (source, copy)


def load_frozen(ws: Workspace, model_name: str | None) -> FrozenLM:
    """Verify the GGUF (exit 4 on a bad hash), load it dequantized into torch from the cache, and freeze it.

    The frozen model is kept for the rest of the process (one model at a time): it is never modified, and the
    GGUF's hash is checked again on every call.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec, path, sha256 = verified_path(model_name, ws)
    if sha256 in _LOADED:
        hit = _LOADED[sha256]
        return FrozenLM(hit.model, hit.tokenizer, spec.name, sha256, path, hit.add_bos)
    _quiet_transformers()
    target = cache_dir(sha256)
    manifest = ensure_cache(path, sha256, target)
    tok = AutoTokenizer.from_pretrained(str(target), local_files_only=True)
    tok.padding_side = "right"  # Gemma's GGUF tokenizer pads left; the layout needs right padding
    model = AutoModelForCausalLM.from_pretrained(str(target), dtype=torch.float32, local_files_only=True)
    lm = FrozenLM(_freeze(model), tok, spec.name, sha256, path, bool(manifest["add_bos"]))
    _LOADED.clear()
    _LOADED[sha256] = lm
    return lm
