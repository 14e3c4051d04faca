"""Soft prompts as generation reads them (contract: trainer writes, generator verifies before use).

A prompt is a row in ``prompts`` plus a safetensors artifact (one float32 tensor ``embeddings`` of shape
``(k, n_embd)``) under the workspace home. Before any use the artifact's SHA-256 must equal the row's
(:class:`ChecksumMismatch`, exit 4), the prompt's model must be the model in use, and the array must be
finite and as wide as the model's input embeddings (:class:`BadInput`, exit 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from appliance.config import Workspace
from appliance.errors import BadInput, ChecksumMismatch, IntegrityError, NotFound
from appliance.models.registry import sha256_file
from appliance.store import prompts


@dataclass(frozen=True)
class PromptMeta:
    prefix_text: str = ""
    suffix_text: str = ""
    label_template: str | None = None
    labels: list[str] | None = None
    prefix_bos: bool = True  # BOS before the soft prompt (only where the model has one)
    prior_token_ids: tuple[int, ...] = ()  # the public prior the prompt was initialised from (guidance's guide)
    end_text: str = ""  # what ends a record in training (training.end_text): generation stops at it
    label_descriptions: dict[str, str] = field(default_factory=dict)  # for {label_description} in the template
    label_keywords: dict[str, list[str]] = field(default_factory=dict)  # DP-released, for {label_keywords}
    end_token_id: int | None = None  # the model's end token, a record's last target where end_text is ""
    max_text_tokens: int = 96  # a record's text is cut here in training (and then has no end)

    @classmethod
    def parse(cls, raw: str | None) -> PromptMeta:
        try:
            data = json.loads(raw or "{}")
        except json.JSONDecodeError:
            raise IntegrityError("prompt meta is not valid JSON — re-run `appliance train`") from None
        labels = data.get("labels")
        return cls(
            prefix_text=str(data.get("prefix_text") or ""),
            suffix_text=str(data.get("suffix_text") or ""),
            label_template=data.get("label_template"),
            labels=[str(x) for x in labels] if labels else None,
            prefix_bos=bool(data.get("prefix_bos", True)),
            prior_token_ids=tuple(int(t) for t in data.get("prior_token_ids") or ()),
            end_text=str(data.get("end_text") or ""),
            label_descriptions={str(k): str(v) for k, v in (data.get("label_descriptions") or {}).items()},
            label_keywords={str(k): [str(w) for w in v] for k, v in (data.get("label_keywords") or {}).items()},
            end_token_id=int(data["end_token_id"]) if data.get("end_token_id") is not None else None,
            max_text_tokens=int(data.get("max_text_tokens") or 96),
        )


@dataclass(frozen=True)
class SoftPrompt:
    row: dict[str, Any]
    meta: PromptMeta
    embeddings: np.ndarray

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def artifact_sha256(self) -> str:
        return str(self.row["artifact_sha256"])

    @property
    def exportable(self) -> bool:
        return bool(self.row["exportable"])


def get_prompt(db: sqlite_utils.Database, prompt_id: str) -> dict[str, Any]:
    """The ``prompts`` row, or :class:`NotFound` with the fix."""
    row = prompts.get(db, prompt_id)
    if row is None:
        raise NotFound(f"unknown prompt {prompt_id!r} — see `appliance prompts list`, or run `appliance train`")
    return row


def newest_dp_prompt(db: sqlite_utils.Database, dataset: str) -> dict[str, Any] | None:
    """The most recent exportable DP prompt trained on ``dataset``, if any."""
    return prompts.newest_dp(db, dataset)


def artifact_path(ws: Workspace, row: dict[str, Any]) -> Path:
    """The verified artifact file: inside the workspace, present, with the recorded SHA-256."""
    home = ws.home.resolve()
    path = (home / str(row["artifact_path"])).resolve()
    if home not in path.parents:
        raise IntegrityError(f"prompt {row['id']}: artifact path points outside the workspace")
    if not path.is_file():
        raise IntegrityError(
            f"prompt {row['id']}: artifact {row['artifact_path']} is missing — re-run `appliance train`"
        )
    digest = "sha256:" + sha256_file(path)
    if digest != row["artifact_sha256"]:
        raise ChecksumMismatch(
            f"prompt {row['id']}: artifact sha256 {digest[7:23]}… does not match the recorded "
            f"{str(row['artifact_sha256'])[7:23]}… — the file was modified; re-run `appliance train`"
        )
    return path


def check_model(row: dict[str, Any], model_name: str, model_sha256: str) -> None:
    """A prompt only works with the exact model it was trained against."""
    if row["model_sha256"] != model_sha256:
        raise BadInput(
            f"prompt {row['id']} was trained for model {row['model_name']} ({str(row['model_sha256'])[7:19]}…), "
            f"not {model_name} ({model_sha256[7:19]}…) — pass --model {row['model_name']}"
        )


def load_embeddings(path: Path, row: dict[str, Any], n_embd: int) -> np.ndarray:
    """The artifact's ``embeddings`` tensor as float32 (k, n_embd), checked against the row and the model."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError):
        raise BadInput(f"prompt {row['id']}: artifact is not a readable safetensors file") from None
    emb = tensors.get("embeddings")
    if emb is None:
        raise BadInput(f"prompt {row['id']}: artifact has no 'embeddings' tensor (found {sorted(tensors)})")
    if emb.ndim != 2 or emb.shape[1] != n_embd:
        raise BadInput(f"prompt {row['id']}: embeddings have shape {tuple(emb.shape)}; the model needs (k, {n_embd})")
    if emb.shape[0] != int(row["k"]) or emb.shape[1] != int(row["n_embd"]):
        raise BadInput(
            f"prompt {row['id']}: embeddings shape {tuple(emb.shape)} disagrees with the recorded "
            f"k={row['k']}, n_embd={row['n_embd']}"
        )
    arr = np.ascontiguousarray(emb, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise BadInput(f"prompt {row['id']}: embeddings contain NaN or infinite values")
    return arr


def load_soft_prompt(
    ws: Workspace, row: dict[str, Any], *, model_name: str, model_sha256: str, n_embd: int
) -> SoftPrompt:
    """Verify and load a prompt for use with the given (already verified) model."""
    path = artifact_path(ws, row)
    check_model(row, model_name, model_sha256)
    return SoftPrompt(row=row, meta=PromptMeta.parse(row.get("meta")), embeddings=load_embeddings(path, row, n_embd))
