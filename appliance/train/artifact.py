"""Writing a trained soft prompt: the safetensors artifact, its ``prompts`` row, the budget charge and the audit event.

The artifact (contract 3) is ``artifacts/prompts/<id>.safetensors`` with one float32 tensor ``embeddings``
of shape (k, n_embd) and string metadata (model hash, dataset, k, ε, δ, noise multiplier, sample rate, steps,
clip norm, accountant, noise mode). Row, charge and audit event commit in one transaction.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audit.chain import row_digest
from appliance.audit.ledger import append_in_tx
from appliance.budget.ledger import BudgetLedger
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.models.registry import sha256_file
from appliance.store import prompts

FORMAT = "appliance.softprompt.v1"


def new_prompt_id() -> str:
    return "sp-" + secrets.token_hex(6)


def write_artifact(home: Path, prompt_id: str, rows: np.ndarray, metadata: dict[str, Any]) -> tuple[str, str]:
    """Write the safetensors file atomically; returns (path relative to home, "sha256:<hex>")."""
    from safetensors.numpy import save_file

    rel = f"artifacts/prompts/{prompt_id}.safetensors"
    path = home / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    meta = {"format": FORMAT, **{k: "" if v is None else str(v) for k, v in metadata.items()}}
    save_file({"embeddings": np.ascontiguousarray(rows, dtype=np.float32)}, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return rel, "sha256:" + sha256_file(path)


@dataclass(frozen=True)
class PromptRecord:
    """Everything stored about one trained prompt (the ``prompts`` row plus audit-only facts)."""

    id: str
    dataset: str
    model_name: str
    model_sha256: str
    k: int
    n_embd: int
    dp: bool
    epsilon: float | None
    delta: float | None
    noise_multiplier: float | None
    sample_rate: float
    steps: int
    clip_norm: float | None
    accountant: str | None
    train_loss: float
    holdout_loss: float | None
    artifact_path: str
    artifact_sha256: str
    meta: dict[str, Any]


def _finite(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def store(ctx: Context, rec: PromptRecord, *, reservation: int | None, audit: dict[str, Any]) -> float | None:
    """Insert the row, settle the budget reservation and append the audit event, atomically.

    Returns the dataset's total ε after this run (None for a non-DP run, which charges nothing).
    """
    ledger = BudgetLedger(ctx.db, ctx.policy.privacy)
    total = None
    run = {  # the run's DP parameters and losses: the same values in the row and in its audit event
        "epsilon": rec.epsilon,
        "delta": rec.delta,
        "noise_multiplier": rec.noise_multiplier,
        "sample_rate": rec.sample_rate,
        "steps": rec.steps,
        "clip_norm": rec.clip_norm,
        "accountant": rec.accountant,
        "train_loss": _finite(rec.train_loss),
        "holdout_loss": _finite(rec.holdout_loss),
    }
    with transaction(ctx.db) as conn:
        prompts.insert_prompt(
            conn,
            {
                "id": rec.id,
                "dataset": rec.dataset,
                "label": None,
                "model_name": rec.model_name,
                "model_sha256": rec.model_sha256,
                "k": rec.k,
                "n_embd": rec.n_embd,
                "dp": int(rec.dp),
                "exportable": int(rec.dp),
                **run,
                "artifact_path": rec.artifact_path,
                "artifact_sha256": rec.artifact_sha256,
                "meta": json.dumps(rec.meta, sort_keys=True),
                "created_at": utc_now(),
            },
        )
        row = prompts.get(conn, rec.id)
        assert row is not None
        # the gate checks the stored row against its content hash (over the columns it had when written)
        audit = {**audit, "row_sha256": row_digest(row), "row_columns": sorted(row)}
        if rec.dp and reservation is not None:
            spent = ledger.settle_in_tx(
                conn, reservation, prompt_id=rec.id, epsilon=float(rec.epsilon or 0.0), delta=float(rec.delta or 0.0)
            )
            total = spent.epsilon
            audit = {**audit, **ledger.binding(conn, reservation)}
        payload = {
            **audit,
            "prompt_id": rec.id,
            "dataset": rec.dataset,
            "model": rec.model_name,
            "model_sha256": rec.model_sha256,
            "dp": rec.dp,
            "exportable": rec.dp,
            "k": rec.k,
            "n_embd": rec.n_embd,
            **run,
            "artifact_sha256": rec.artifact_sha256,
            "dataset_epsilon_spent": total,
            "policy_sha256": ctx.policy_sha256,
        }
        append_in_tx(conn, "train.run" if rec.dp else "train.non_dp", payload, ctx.actor)
    return total
