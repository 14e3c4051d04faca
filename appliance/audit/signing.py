"""The appliance's Ed25519 signing key (``cryptography``): create, load, sign, verify.

The private key lives in ``keys/appliance_ed25519.pem`` (0600); the public key beside it is safe to
hand to an auditor. Signatures are over canonical JSON, base64-encoded.

Trust model: whoever can write the workspace can read a key kept there, and re-sign anything. Set
``APPLIANCE_SIGNING_KEY`` to a PEM file outside the workspace, readable only by the appliance's service
user (mode 0600 or stricter: anything else is refused), and hand its public key to the officer, who
checks exports and heads with ``appliance audit verify --pubkey FILE``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.audit.chain import canonical_json
from appliance.errors import ConfigError, SignatureInvalid

PRIVATE_NAME = "appliance_ed25519.pem"
PUBLIC_NAME = "appliance_ed25519.pub.pem"
KEY_ENV = "APPLIANCE_SIGNING_KEY"


def external_key_path() -> Path | None:
    """The signing key named by ``APPLIANCE_SIGNING_KEY`` (outside the workspace), or None."""
    env = os.environ.get(KEY_ENV, "").strip()
    return Path(env).expanduser() if env else None


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable by the owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def ensure_keypair(keys_dir: Path) -> bool:
    """Create the key pair if missing; returns True when a new key was generated.

    With ``APPLIANCE_SIGNING_KEY`` set nothing is created: that key is provisioned by its owner.
    """
    if external_key_path() is not None:
        load_private(keys_dir)  # fails now, naming the fix, if it is missing or readable by others
        return False
    priv = keys_dir / PRIVATE_NAME
    if priv.exists():
        return False
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private_file(priv, pem)
    write_private_file(keys_dir / PUBLIC_NAME, public_pem(key.public_key()))
    return True


def load_private(keys_dir: Path) -> Ed25519PrivateKey:
    """The signing key: ``APPLIANCE_SIGNING_KEY`` when set (must be 0600 or stricter), else the workspace's."""
    external = external_key_path()
    path = external or keys_dir / PRIVATE_NAME
    if not path.exists():
        if external is not None:
            raise ConfigError(
                f"{KEY_ENV}={path} does not exist — create an Ed25519 PEM key there (0600), or unset {KEY_ENV}"
            )
        raise ConfigError(f"signing key {path} is missing — run `appliance init` to create it")
    if external is not None and path.stat().st_mode & 0o077:
        raise ConfigError(f"{KEY_ENV}={path} is readable by other users — chmod 600 it (service user only)")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public(pem: bytes | str) -> Ed25519PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureInvalid("public key is not Ed25519")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def sign(key: Ed25519PrivateKey, obj: Any) -> str:
    """Base64 Ed25519 signature over the canonical JSON of ``obj``."""
    return base64.b64encode(key.sign(canonical_json(obj).encode("utf-8"))).decode("ascii")


def verify(key: Ed25519PublicKey, obj: Any, signature: str) -> None:
    """Raise :class:`SignatureInvalid` unless ``signature`` is valid for ``obj``."""
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical_json(obj).encode("utf-8"))
    except (InvalidSignature, ValueError) as exc:
        raise SignatureInvalid("signature does not verify with the appliance public key") from exc
