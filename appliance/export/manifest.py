"""Export manifests: what was exported, under which policy and privacy guarantees, signed with the
appliance's Ed25519 key, and anchoring the audit chain's head (Certificate Transparency's lesson: a
database rewritten whole is caught by the heads handed out in signed manifests).

The signature covers the canonical JSON of every field except ``signature``.

Promise: the manifest leaves the building with the data, so it carries only public facts — the DP
parameters (ε, δ, noise multiplier, sample rate, steps, clip norm, accountant, the neighbouring relation of
the run's (ε, δ), and the per-record or per-subject budget caps that bound every unit over all runs),
hashes, model and policy identity, and each gate check's name and pass/fail. No statistic of a private
record is in it (losses, MIA AUCs, TSTR accuracy, DCR medians, length quantiles, member counts): those
values stay in the database, the audit log and the compliance report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.audit import signing
from appliance.errors import BadInput

MANIFEST_SUFFIX = ".manifest.json"
VERSION = 2
NEIGHBOURING = "add/remove one record"
PROMPT_KEYS = ("id", "artifact_sha256", "accountant", "noise_multiplier", "sample_rate", "steps", "clip_norm")


def _prompt_facts(prompt: dict[str, Any]) -> dict[str, Any]:
    """The prompt's DP parameters and artifact hash, σ of the DP selection and of the label-keyword histogram
    its ε includes (None: none), and the public prompt it started from (None: the policy's init text)."""
    meta = json.loads(prompt.get("meta") or "{}")
    return {
        **{k: prompt.get(k) for k in PROMPT_KEYS},
        "dp": bool(prompt["dp"]),
        "dp_selection_noise": meta.get("dp_selection_noise"),
        "label_keywords_noise": meta.get("label_keywords_noise"),
        # trained without DP on a dataset imported as public data alone (train --init-prompt): a public start
        "init_prompt": meta.get("init_prompt"),
        # the stored rows are init_prompt + s * (trained - init_prompt) (training.prior_extrapolation; None: not)
        "prior_extrapolation": meta.get("prior_extrapolation"),
    }


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + MANIFEST_SUFFIX)


def export_path(manifest: Path, doc: dict[str, Any]) -> Path:
    """The exported file a manifest describes: its recorded name, next to the manifest."""
    name = str(doc.get("file", {}).get("name") or "")
    if not name or "/" in name or name in (".", ".."):
        raise BadInput(f"manifest {manifest} names no exported file")
    return manifest.parent / name


def public_body(
    *,
    export_id: str,
    created_at: str,
    actor: str,
    batch: dict[str, Any],
    prompt: dict[str, Any] | None,
    dp: bool,
    epsilon: float | None,
    delta: float | None,
    dataset_epsilon: float,
    dataset_epsilon_cap: float,
    policy_sha256: str,
    budget: dict[str, Any] | None = None,
    gate: dict[str, Any],
    approval: dict[str, Any] | None,
    file: dict[str, Any],
    audit_head: tuple[int, str],
) -> dict[str, Any]:
    """The manifest before signing: public facts only (see the module docstring).

    ``gate`` is a decision's ``as_dict()``: only each check's name and pass/fail are kept, never the
    measured value. ``prompt`` is a ``prompts`` row: only its DP parameters and artifact hash are kept.
    ``budget`` states what bounds every unit over all runs (policy values, not measurements): its unit
    (one record, or one declared subject), the Σε and Σδ caps, and the composition.
    """
    return {
        "manifest_version": VERSION,
        "export_id": export_id,
        "created_at": created_at,
        "actor": actor,
        "dataset": batch["dataset"],
        "batch": {"id": batch["id"], "mode": batch["mode"], "label": batch.get("label")},
        "prompt": None if prompt is None else _prompt_facts(prompt),
        "model": {"name": batch["model_name"], "sha256": batch["model_sha256"]},
        "policy_sha256": policy_sha256,
        "privacy": {
            "dp": dp,
            "epsilon": epsilon,
            "delta": delta,
            "neighbouring": NEIGHBOURING,
            "dataset_epsilon_spent": dataset_epsilon,
            "dataset_epsilon_cap": dataset_epsilon_cap,
            "budget": budget,
        },
        "gate": {
            "enabled": gate["enabled"],
            "passed": gate["passed"],
            "decision_id": gate["id"],
            "checks": [{"check": c["check"], "passed": c["passed"]} for c in gate["checks"]],
        },
        "approval": approval,
        "file": file,
        "audit_head": {"seq": audit_head[0], "hash": audit_head[1]},
    }


def sign(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """``body`` plus a ``signature`` block (algorithm, key fingerprint, public key, base64 value), signed with
    ``key`` (:func:`appliance.audit.signing.load_private`, loaded before anything is decided or written)."""
    pub = key.public_key()
    return {
        **body,
        "signature": {
            "algorithm": "ed25519",
            "public_key_fingerprint": signing.fingerprint(pub),
            "public_key": signing.public_pem(pub).decode("ascii"),
            "value": signing.sign(key, body),
        },
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"cannot read manifest {path}: {exc.__class__.__name__}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("signature"), dict):
        raise BadInput(f"{path} is not an export manifest (no signature block)")
    return doc


def body_of(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "signature"}
