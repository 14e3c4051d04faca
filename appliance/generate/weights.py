"""Batch-friendly weights: the same model with Q4_1/Q5_1 tensors dequantized to F16, cached by model hash.

llama.cpp's CPU backend multiplies Q4_1/Q5_1 weights one dot product at a time (no batched GEMM kernel for
those types on x86), so decoding many sequences per step gains little. The same weights as F16 go through
the llamafile GEMM kernels and decode a batch about twice as fast. Every value is the GGUF's own dequantized
weight (``d * q + m``) rounded to half precision (relative error <= 2^-11, below the 2^-8 of the 8-bit
activations the quantized kernels use); every other tensor is copied byte for byte.

The derived file lives in the machine-level model cache (:mod:`appliance.models.cache`:
``<cache>/models/<source sha256>/f16.gguf``, shared by every workspace), next to a ``.sha256`` sidecar; it is
rebuilt from the (verified) source whenever the sidecar does not match, so a corrupted file is never loaded.
One process builds it while others wait on its lock; every batch's audit event records the hash of the
weights it actually used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from appliance.errors import ConfigError
from appliance.generate.ggufinfo import read_header
from appliance.models.cache import CACHE_ENV, build_lock, model_dir, temp_name
from appliance.models.registry import sha256_file

_SLOW_TYPES = ("Q4_1", "Q5_1")
_F16 = "f16.gguf"


def slow_tensors(model_path: Path) -> int:
    """How many tensors use a type without a batched CPU kernel."""
    from gguf import GGMLQuantizationType

    slow = {GGMLQuantizationType[name].value for name in _SLOW_TYPES}
    return sum(1 for t in read_header(model_path).tensors.values() if t.type_id in slow)


def batch_weights(model_path: Path, model_sha256: str, cache: Path | None = None) -> tuple[Path, str]:
    """The model file to use for batched decoding and its sha256: the source itself, or its F16 derivative.

    The derivative is ``f16.gguf`` in ``cache``, by default the model's directory in the machine-level cache.
    """
    if slow_tensors(model_path) == 0:
        return model_path, model_sha256
    out = (cache if cache is not None else model_dir(model_sha256)) / _F16
    try:
        return _cached(model_path, out)
    except OSError as exc:
        raise ConfigError(
            f"cannot build the F16 batch weights in {out.parent} ({exc.__class__.__name__}) — set {CACHE_ENV} to "
            "a writable directory or policy generation.weights: native"
        ) from None


def _verified(out: Path) -> str | None:
    """The F16 file's sha256 when it matches its sidecar; None when either is missing or they differ."""
    sidecar = out.with_name(out.name + ".sha256")
    if not (out.is_file() and sidecar.is_file()):
        return None
    want = sidecar.read_text(encoding="utf-8").strip()
    return want if want == "sha256:" + sha256_file(out) else None


def _cached(model_path: Path, out: Path) -> tuple[Path, str]:
    """``out`` (built from ``model_path`` under the build lock unless a matching copy is there) and its sha256."""
    digest = _verified(out)
    if digest is not None:
        return out, digest
    with build_lock(out):
        digest = _verified(out)  # another process may have built it while we waited
        if digest is not None:
            return out, digest
        tmp = temp_name(out)
        side_tmp = tmp.with_name(tmp.name + ".sha256")
        try:
            _convert(model_path, tmp)
            digest = "sha256:" + sha256_file(tmp)
            side_tmp.write_text(digest + "\n", encoding="utf-8")
            os.replace(tmp, out)
            os.replace(side_tmp, out.with_name(out.name + ".sha256"))
        finally:
            tmp.unlink(missing_ok=True)
            side_tmp.unlink(missing_ok=True)
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
