"""Batch-friendly weights: the same model with Q4_1/Q5_1 tensors dequantized to F16, cached by model hash.

llama.cpp's CPU backend multiplies Q4_1/Q5_1 weights one dot product at a time (no batched GEMM kernel for
those types on x86), so decoding many sequences per step gains little. The same weights as F16 go through
the llamafile GEMM kernels and decode a batch about twice as fast. Every value is the GGUF's own dequantized
weight (``d * q + m``) rounded to half precision (relative error <= 2^-11, below the 2^-8 of the 8-bit
activations the quantized kernels use); every other tensor is copied byte for byte.

The derived file lives in a cache keyed by the source's hash, next to a ``.sha256`` sidecar; it is rebuilt
from the (verified) source whenever the sidecar does not match, so a corrupted file is never loaded. The cache
is as trusted as the workspace it sits in (someone who can rewrite both file and sidecar can also rewrite the
database); every batch's audit event records the hash of the weights it actually used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from appliance.errors import ConfigError
from appliance.generate.ggufinfo import read_header
from appliance.models.registry import sha256_file

CACHE_ENV = "APPLIANCE_CACHE_DIR"
_SLOW_TYPES = ("Q4_1", "Q5_1")


def cache_dir(home: Path) -> Path:
    """``APPLIANCE_CACHE_DIR`` if set, else ``<workspace>/cache``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else home / "cache"


def slow_tensors(model_path: Path) -> int:
    """How many tensors use a type without a batched CPU kernel."""
    from gguf import GGMLQuantizationType

    slow = {GGMLQuantizationType[name].value for name in _SLOW_TYPES}
    return sum(1 for t in read_header(model_path).tensors.values() if t.type_id in slow)


def batch_weights(model_path: Path, model_sha256: str, cache: Path) -> tuple[Path, str]:
    """The model file to use for batched decoding and its sha256: the source itself, or its F16 derivative."""
    if slow_tensors(model_path) == 0:
        return model_path, model_sha256
    try:
        return _cached(model_path, model_sha256, cache)
    except OSError as exc:
        raise ConfigError(
            f"cannot build the F16 batch weights in {cache} ({exc.__class__.__name__}) — set {CACHE_ENV} to a "
            "writable directory or policy generation.weights: native"
        ) from None


def _cached(model_path: Path, model_sha256: str, cache: Path) -> tuple[Path, str]:
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"{model_sha256.removeprefix('sha256:')[:32]}.f16.gguf"
    sidecar = out.with_suffix(".gguf.sha256")
    if out.is_file() and sidecar.is_file():
        want = sidecar.read_text(encoding="utf-8").strip()
        if want == "sha256:" + sha256_file(out):
            return out, want
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    try:
        _convert(model_path, tmp)
        digest = "sha256:" + sha256_file(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    sidecar.write_text(digest + "\n", encoding="utf-8")
    return out, digest


def _convert(src: Path, dst: Path) -> None:
    import gguf
    from gguf.quants import dequantize, quant_shape_from_byte_shape

    reader = gguf.GGUFReader(str(src), "r")
    arch_field = reader.fields[gguf.Keys.General.ARCHITECTURE]
    arch = bytes(arch_field.parts[arch_field.data[0]]).decode("utf-8")
    writer = gguf.GGUFWriter(str(dst), arch=arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    f16 = gguf.GGMLQuantizationType.F16
    plan = []
    for t in reader.tensors:
        if t.tensor_type.name in _SLOW_TYPES:
            shape = quant_shape_from_byte_shape(t.data.shape, t.tensor_type)
            writer.add_tensor_info(t.name, shape, np.dtype(np.float16), int(np.prod(shape)) * 2, f16)
            plan.append((t, True))
        else:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
            plan.append((t, False))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t, convert in plan:
        data = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float16) if convert else t.data
        writer.write_tensor_data(data, tensor_endianess=reader.endianess)
    writer.close()
