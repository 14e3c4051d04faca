"""The model registry: pinned GGUF files (``models.lock.yaml``), where they are, and their integrity.

Loading any model goes through :func:`verified_path`, which checks the file's SHA-256 against the pin
first (exit 4 on mismatch); the hash goes into the audit event of every run that uses the model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appliance.config import Workspace, model_search_dirs, shipped_file
from appliance.errors import ChecksumMismatch, ConfigError, NotFound


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")
    package: str
    member: str


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    license: str
    description: str = ""
    optional: bool = False
    parts: list[_Part]


class _Lock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: str
    models: dict[str, _Entry]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str
    sha256: str
    license: str
    description: str
    optional: bool
    parts: list[tuple[str, str]] = field(default_factory=list)


def lock_path() -> Path:
    return shipped_file("models.lock.yaml")


def load_registry() -> tuple[str, dict[str, ModelSpec]]:
    """The default model name and every pinned model."""
    path = lock_path()
    try:
        lock = _Lock.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"model registry {path} is unreadable or invalid: {exc.__class__.__name__}") from None
    specs = {
        name: ModelSpec(
            name, e.file, e.sha256, e.license, e.description, e.optional, [(p.package, p.member) for p in e.parts]
        )
        for name, e in lock.models.items()
    }
    if lock.default not in specs:
        raise ConfigError(f"model registry {path}: default {lock.default!r} is not a listed model")
    return lock.default, specs


def get_spec(name: str | None) -> ModelSpec:
    default, specs = load_registry()
    key = name or default
    if key not in specs:
        raise NotFound(f"unknown model {key!r}; known models: {', '.join(sorted(specs))}")
    return specs[key]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def locate(spec: ModelSpec, ws: Workspace | None = None) -> Path | None:
    for d in model_search_dirs(ws):
        p = d / spec.file
        if p.is_file():
            return p
    return None


def verified_path(name: str | None, ws: Workspace | None = None) -> tuple[ModelSpec, Path, str]:
    """Find a model file and check its SHA-256; returns ``(spec, path, "sha256:<hex>")``."""
    spec = get_spec(name)
    path = locate(spec, ws)
    if path is None:
        raise ConfigError(
            f"model {spec.name} ({spec.file}) not found in {', '.join(map(str, model_search_dirs(ws)))} — "
            "run `make models` (or set APPLIANCE_MODELS_DIR)"
        )
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise ChecksumMismatch(
            f"model {spec.name}: {path} has sha256 {digest[:16]}…, expected {spec.sha256[:16]}… — "
            "the file is corrupt or was replaced; delete it and run `make models`"
        )
    return spec, path, f"sha256:{digest}"


_GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def gguf_architecture(path: Path) -> str:
    """``general.architecture`` from the GGUF header.

    Reads only the key/value header (the ``gguf`` package's GGUFReader parses every tensor and the
    whole tokenizer vocabulary, which takes tens of seconds on this machine for a listing).
    """
    import struct

    def read_str(fh: BinaryIO) -> bytes:
        (n,) = struct.unpack("<Q", fh.read(8))
        return fh.read(int(n))

    def skip(fh: BinaryIO, vtype: int) -> None:
        if vtype in _GGUF_SCALARS:
            fh.seek(_GGUF_SCALARS[vtype], 1)
        elif vtype == 8:
            read_str(fh)
        elif vtype == 9:
            itype, count = struct.unpack("<IQ", fh.read(12))
            if itype in _GGUF_SCALARS:
                fh.seek(_GGUF_SCALARS[itype] * count, 1)
            else:
                for _ in range(count):
                    skip(fh, itype)
        else:
            raise ValueError(f"unknown GGUF value type {vtype}")

    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                return "not-gguf"
            _version, _n_tensors, n_kv = struct.unpack("<IQQ", fh.read(20))
            for _ in range(n_kv):
                key = read_str(fh)
                (vtype,) = struct.unpack("<I", fh.read(4))
                if key == b"general.architecture" and vtype == 8:
                    return read_str(fh).decode("utf-8", "replace")
                skip(fh, vtype)
    except (OSError, struct.error, ValueError):
        return "unreadable"
    return "unknown"
