"""Export manifests: what was exported, under which policy and privacy guarantees, signed with the
appliance's Ed25519 key, and anchoring the audit chain's head (Certificate Transparency's lesson: a
database rewritten whole is caught by the heads handed out in signed manifests).

The signature covers the canonical JSON of every field except ``signature``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from appliance.audit import signing
from appliance.errors import BadInput

MANIFEST_SUFFIX = ".manifest.json"
VERSION = 1


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + MANIFEST_SUFFIX)


def export_path(manifest: Path, doc: dict[str, Any]) -> Path:
    """The exported file a manifest describes: its recorded name, next to the manifest."""
    name = str(doc.get("file", {}).get("name") or "")
    if not name or "/" in name or name in (".", ".."):
        raise BadInput(f"manifest {manifest} names no exported file")
    return manifest.parent / name


def sign(body: dict[str, Any], keys_dir: Path) -> dict[str, Any]:
    """``body`` plus a ``signature`` block (algorithm, key fingerprint, public key, base64 value)."""
    key = signing.load_private(keys_dir)
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
