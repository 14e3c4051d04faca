"""Test data for the generation tests: datasets written straight into the store, and soft prompts built from
token embeddings of an instruction text (what the trainer would write, made without training)."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from safetensors.numpy import save_file

from appliance.config import Workspace
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.generate.embeddings import token_embeddings
from appliance.generate.llama import LlamaCppBackend
from appliance.models.registry import verified_path

TICKETS = [
    "Customer reports that the invoice total is wrong after the discount was applied.",
    "The mobile app crashes when uploading a photo larger than ten megabytes.",
    "Requesting a refund because the order arrived two weeks late and damaged.",
    "Password reset emails are not arriving; checked the spam folder already.",
    "Please update the shipping address on my open order to the new office.",
    "The dashboard shows yesterday's numbers even after refreshing the page.",
    "Billing charged my card twice for the same monthly subscription.",
    "Cannot export the quarterly report to CSV, the button does nothing.",
    "The delivery driver left the package at the wrong building again.",
    "How do I add a second user to our team account without paying more?",
]


def add_dataset(home: Path, name: str, texts: list[str], labels: list[str] | None = None) -> None:
    """A dataset as ingest would leave it (already redacted text); every 5th record goes to holdout."""
    ctx = Context.open(Workspace.resolve(home))
    try:
        with transaction(ctx.db) as conn:
            n_hold = sum(1 for i in range(len(texts)) if i % 5 == 4)
            conn.execute(
                "INSERT INTO datasets (name, created_at, text_field, label_field, source_sha256, policy_sha256,"
                " n_records, n_train, n_holdout) VALUES (?, ?, 'text', ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    utc_now(),
                    "label" if labels else None,
                    "sha256:" + "0" * 64,
                    ctx.policy_sha256,
                    len(texts),
                    len(texts) - n_hold,
                    n_hold,
                ),
            )
            for i, text in enumerate(texts):
                conn.execute(
                    "INSERT INTO records (dataset, source_index, text, label, split, text_sha256, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        i,
                        text,
                        labels[i] if labels else None,
                        "holdout" if i % 5 == 4 else "train",
                        "sha256:" + hashlib.sha256(text.encode()).hexdigest(),
                        utc_now(),
                    ),
                )
    finally:
        ctx.close()


def add_prompt(
    home: Path,
    dataset: str,
    *,
    model: str = "smollm2-135m",
    instruction: str = "Write one more customer support ticket like the ones in this dataset:",
    suffix: str = "\nTicket:",
    label_template: str | None = None,
    labels: list[str] | None = None,
    dp: bool = True,
    width: int | None = None,
    created_at: str | None = None,
    prior: str | None = None,
    end_text: str = "",
) -> str:
    """A prompt row + safetensors artifact whose embeddings are the instruction's token embeddings; with
    ``prior``, the meta records that text's tokens as the public prior (what the trainer records)."""
    _, path, digest = verified_path(model)
    with LlamaCppBackend(path, n_ctx=256, n_seq_max=1) as be:
        ids = be.tokenize(instruction, add_bos=False)
        prior_ids = be.tokenize(prior, add_bos=False) if prior else None
    emb = token_embeddings(path, ids)
    if width is not None:
        emb = emb[:, :width].copy()
    pid = "p-" + secrets.token_hex(4)
    rel = Path("artifacts") / "prompts" / f"{pid}.safetensors"
    (home / rel).parent.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": emb}, str(home / rel))
    art = "sha256:" + hashlib.sha256((home / rel).read_bytes()).hexdigest()
    meta = {"prefix_text": "", "suffix_text": suffix, "label_template": label_template, "labels": labels}
    if prior_ids:
        meta["prior_token_ids"] = prior_ids
    if end_text:
        meta["end_text"] = end_text
    ctx = Context.open(Workspace.resolve(home))
    try:
        with transaction(ctx.db) as conn:
            conn.execute(
                "INSERT INTO prompts (id, dataset, label, model_name, model_sha256, k, n_embd, dp, exportable,"
                " epsilon, delta, artifact_path, artifact_sha256, meta, created_at)"
                " VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pid,
                    dataset,
                    model,
                    digest,
                    emb.shape[0],
                    emb.shape[1],
                    int(dp),
                    int(dp),
                    4.0 if dp else None,
                    1e-5 if dp else None,
                    str(rel),
                    art,
                    json.dumps(meta),
                    created_at or utc_now(),
                ),
            )
    finally:
        ctx.close()
    return pid
