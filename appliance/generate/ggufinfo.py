"""A fast GGUF header reader: architecture, alignment and tensor infos, without parsing the vocabulary.

``gguf.GGUFReader`` builds Python objects for every key (Gemma's 262k-token vocabulary included), which
takes tens of seconds on a small CPU; this reads the same header by skipping values it does not need.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type_id: int  # ggml type (gguf.GGMLQuantizationType value)
    shape: tuple[int, ...]  # ggml order: shape[0] is the row length
    offset: int  # absolute file offset of the data


@dataclass(frozen=True)
class GgufHeader:
    architecture: str
    tensors: dict[str, TensorInfo]


def _str(fh: BinaryIO) -> bytes:
    (n,) = struct.unpack("<Q", fh.read(8))
    return fh.read(n)


def _skip(fh: BinaryIO, vtype: int) -> None:
    if vtype in _SCALAR_SIZES:
        fh.seek(_SCALAR_SIZES[vtype], 1)
    elif vtype == _STRING:
        _str(fh)
    elif vtype == _ARRAY:
        itype, count = struct.unpack("<IQ", fh.read(12))
        if itype in _SCALAR_SIZES:
            fh.seek(_SCALAR_SIZES[itype] * count, 1)
        else:
            for _ in range(count):
                _skip(fh, itype)
    else:
        raise ValueError(f"unknown GGUF value type {vtype}")


def read_header(path: Path) -> GgufHeader:
    """Architecture and tensor table of a GGUF v2/v3 file."""
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ValueError(f"{Path(path).name} is not a GGUF file")
        _version, n_tensors, n_kv = struct.unpack("<IQQ", fh.read(20))
        arch, align = "unknown", 32
        for _ in range(n_kv):
            key = _str(fh)
            (vtype,) = struct.unpack("<I", fh.read(4))
            if key == b"general.architecture" and vtype == _STRING:
                arch = _str(fh).decode("utf-8", "replace")
            elif key == b"general.alignment" and vtype == _UINT32:
                (align,) = struct.unpack("<I", fh.read(4))
            else:
                _skip(fh, vtype)
        raw = []
        for _ in range(n_tensors):
            name = _str(fh).decode("utf-8")
            (n_dims,) = struct.unpack("<I", fh.read(4))
            dims = struct.unpack(f"<{n_dims}Q", fh.read(8 * n_dims))
            type_id, offset = struct.unpack("<IQ", fh.read(12))
            raw.append((name, type_id, dims, offset))
        start = -(-fh.tell() // align) * align
    tensors = {n: TensorInfo(n, t, tuple(int(d) for d in dims), start + off) for n, t, dims, off in raw}
    return GgufHeader(arch, tensors)


def tensor_rows(path: Path, info: TensorInfo, rows: np.ndarray) -> np.ndarray:
    """Rows of a 2-D tensor, dequantized to float32 (uses the ``gguf`` package's dequantizers)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    qtype = GGMLQuantizationType(info.type_id)
    block, size = GGML_QUANT_SIZES[qtype]
    row_bytes = info.shape[0] // block * size
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=info.offset, shape=(info.shape[1], row_bytes))
    picked = np.ascontiguousarray(data[np.asarray(rows, dtype=np.int64)])
    return np.asarray(dequantize(picked, qtype), dtype=np.float32).reshape(len(rows), info.shape[0])
