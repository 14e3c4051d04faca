"""Canaries (Carlini et al., "The Secret Sharer", 2019): random secrets planted in a training run.

When ``privacy.canaries.count`` > 0 the trainer adds ``count`` records ``template.format(secret=S)`` (S a
uniformly random string of ``digits`` decimal digits, drawn with :mod:`secrets`), each ``repeats`` times, to
that run's training set only — never to the dataset. The probes later rank each true secret among random
candidates under the trained prompt to measure exposure.

The secrets are written to ``keys/canaries/<prompt id>.json`` (directory 0700, file 0600), the only place
they exist. File format (version 1)::

    {"version": 1, "prompt_id": str, "dataset": str, "template": str, "digits": int, "repeats": int,
     "nonce": hex, "canaries": [{"secret": "01234567", "label": str | null}, ...]}

``prompts.meta["canaries"]`` holds the count, repeats, digits, the file's path relative to the workspace home
and its SHA-256; the audit event gets the count and that SHA-256 only (the random nonce keeps the hash from
being brute-forced back to the secrets).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.config import Workspace
from appliance.errors import ChecksumMismatch, NotFound
from appliance.models.registry import sha256_file
from appliance.policy.schema import CanaryPolicy

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Canary:
    secret: str
    label: str | None
    template: str
    digits: int

    @property
    def text(self) -> str:
        return self.template.format(secret=self.secret)


def draw(policy: CanaryPolicy, labels: list[str] | None) -> list[Canary]:
    """``policy.count`` fresh canaries; in a labelled dataset each gets a random label of the dataset."""
    out = []
    for _ in range(policy.count):
        secret = str(secrets.randbelow(10**policy.digits)).zfill(policy.digits)
        label = labels[secrets.randbelow(len(labels))] if labels else None
        out.append(Canary(secret, label, policy.template, policy.digits))
    return out


def training_records(canaries: list[Canary], repeats: int) -> list[tuple[str, str | None]]:
    """(text, label) records to add to a run's training set: each canary ``repeats`` times."""
    return [(c.text, c.label) for c in canaries for _ in range(repeats)]


def relative_path(prompt_id: str) -> str:
    return f"keys/canaries/{prompt_id}.json"


def write(ws: Workspace, prompt_id: str, dataset: str, canaries: list[Canary], repeats: int) -> tuple[str, str]:
    """Write the secrets file (0600); returns (path relative to home, "sha256:<hex>")."""
    rel = relative_path(prompt_id)
    path = ws.home / rel
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    doc = {
        "version": FORMAT_VERSION,
        "prompt_id": prompt_id,
        "dataset": dataset,
        "template": canaries[0].template,
        "digits": canaries[0].digits,
        "repeats": repeats,
        "nonce": secrets.token_hex(32),
        "canaries": [{"secret": c.secret, "label": c.label} for c in canaries],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, sort_keys=True)
    return rel, "sha256:" + sha256_file(path)


def load(ws: Workspace, prompt_row: dict[str, Any]) -> list[Canary]:
    """The canaries planted in a prompt's training run ([] if none), checked against the recorded SHA-256."""
    raw = prompt_row.get("meta") or {}
    meta = json.loads(raw) if isinstance(raw, str) else raw
    info = meta.get("canaries") or {}
    if not info.get("count"):
        return []
    path = ws.home / info["file"]
    if not path.is_file():
        raise NotFound(f"prompt {prompt_row['id']}: canary file {info['file']} is missing from the workspace")
    if "sha256:" + sha256_file(path) != info["sha256"]:
        raise ChecksumMismatch(f"prompt {prompt_row['id']}: canary file {info['file']} was modified")
    doc = json.loads(path.read_text(encoding="utf-8"))
    return [Canary(str(c["secret"]), c.get("label"), doc["template"], int(doc["digits"])) for c in doc["canaries"]]


def remove(ws: Workspace, rel: str) -> None:
    Path(ws.home / rel).unlink(missing_ok=True)
