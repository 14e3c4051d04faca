"""Verify an export against its manifest: the appliance's signature, the file's SHA-256, and that the
audit head the manifest anchors is still in the chain (with the export event it names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.audit import signing
from appliance.audit.ledger import AuditLedger
from appliance.errors import BadInput, ChainBroken, ChecksumMismatch, IntegrityError, SignatureInvalid
from appliance.export.manifest import body_of, export_path, load
from appliance.export.writers import sha256_path


def load_pubkey(path: Path) -> Any:
    """An Ed25519 public key (PEM) the officer holds; :class:`BadInput` when it cannot be read."""
    try:
        return signing.load_public(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BadInput(
            f"cannot read public key {path}: {exc.__class__.__name__} — pass a PEM Ed25519 public key"
        ) from None
    except SignatureInvalid:  # a readable key of another algorithm: the officer passed the wrong file
        raise BadInput(
            f"public key {path} is not an Ed25519 key — pass the appliance's PEM Ed25519 public key"
        ) from None


def verify_manifest(ledger: AuditLedger, keys_dir: Path, manifest: Path, *, public_key: Any = None) -> dict[str, Any]:
    """Raise an :class:`IntegrityError` subclass (exit 4) on any mismatch; return what was checked.

    ``public_key``: check the signature against this key (one the officer holds) instead of the appliance's.
    """
    doc = load(manifest)
    sig = doc["signature"]
    own = public_key if public_key is not None else signing.load_private(keys_dir).public_key()
    if sig.get("public_key_fingerprint") != signing.fingerprint(own):
        whose = "the given --pubkey" if public_key is not None else "this appliance's key"
        raise SignatureInvalid(f"manifest {manifest.name} was not signed by {whose}")
    signing.verify(own, body_of(doc), str(sig.get("value", "")))
    try:
        want = str(doc["file"]["sha256"])
        seq, head_hash = int(doc["audit_head"]["seq"]), str(doc["audit_head"]["hash"])
    except (KeyError, TypeError, ValueError):
        raise BadInput(f"manifest {manifest.name} lacks file.sha256 or audit_head") from None
    path = export_path(manifest, doc)
    if not path.is_file():
        raise IntegrityError(f"exported file {path.name} is missing beside its manifest")
    got = sha256_path(path)
    if got != want:
        raise ChecksumMismatch(
            f"exported file {path.name} has sha256 {got[7:23]}…, the signed manifest says {want[7:23]}…"
            " — it was modified"
        )
    have = ledger.hash_at(seq)
    if have is None:
        raise ChainBroken(
            f"audit event {seq} named by the manifest is not in the chain (truncated or rewritten)",
            seq=seq,
            reason="missing",
        )
    if have != head_hash:
        raise ChainBroken(
            f"audit event {seq} differs from the head in the manifest (chain rewritten)", seq=seq, reason="rewritten"
        )
    ev = next((e for e in ledger.events(kind="export.complete") if e.seq == seq), None)
    if ev is None or ev.payload.get("file_sha256") != want:
        raise ChainBroken(f"audit event {seq} is not the export event of this file", seq=seq, reason="mismatch")
    return {
        "manifest": str(manifest),
        "file": str(path),
        "file_sha256": got,
        "audit_seq": seq,
        "export_id": doc.get("export_id"),
        "records": doc.get("file", {}).get("records"),
        "key_fingerprint": signing.fingerprint(own),
    }
