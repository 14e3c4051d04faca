"""The trust model: a signing key outside the workspace (APPLIANCE_SIGNING_KEY) and `audit verify --pubkey`,
which checks exports and heads against a key the officer holds — so a workspace owner who re-signs with
a key of their own is caught."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gate_fixtures import seed_workspace

from appliance.audit import signing
from appliance.export import manifest as mf


def _keypair(dirpath: Path, name: str, mode: int = 0o600) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    priv, pub = dirpath / f"{name}.pem", dirpath / f"{name}.pub.pem"
    priv.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(priv, mode)
    pub.write_bytes(signing.public_pem(key.public_key()))
    return priv, pub


@pytest.fixture
def service_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    outside = tmp_path / "service-user"
    outside.mkdir(mode=0o700)
    priv, pub = _keypair(outside, "appliance")
    monkeypatch.setenv(signing.KEY_ENV, str(priv))
    return priv, pub


def test_external_key_signs_and_the_officer_verifies_with_the_public_key(cli, workspace, service_key, tmp_path):
    _, pub = service_key
    b = seed_workspace(workspace)
    out = tmp_path / "o.jsonl"
    assert cli("export", b, "--out", str(out)).exit_code == 0
    manifest = Path(f"{out}.manifest.json")
    doc = json.loads(manifest.read_text())
    assert doc["signature"]["public_key_fingerprint"] == signing.fingerprint(signing.load_public(pub.read_bytes()))
    ok = cli("audit", "verify", "--export", str(manifest), "--pubkey", str(pub))
    assert ok.exit_code == 0, ok.output
    head = tmp_path / "head.json"
    assert cli("audit", "head", "--out", str(head)).exit_code == 0
    assert cli("audit", "verify", "--against-head", str(head), "--pubkey", str(pub)).exit_code == 0


def test_a_workspace_owner_who_re_signs_is_caught_by_the_officers_key(cli, workspace, service_key, tmp_path,
                                                                     monkeypatch):  # fmt: skip
    """The owner edits the manifest and re-signs it with a key they control: the workspace check cannot tell,
    the officer's --pubkey check can (exit 4)."""
    _, pub = service_key
    b = seed_workspace(workspace)
    out = tmp_path / "o.jsonl"
    assert cli("export", b, "--out", str(out)).exit_code == 0
    manifest = Path(f"{out}.manifest.json")
    forged_key, _ = _keypair(tmp_path, "forger")
    monkeypatch.setenv(signing.KEY_ENV, str(forged_key))  # the owner points the appliance at their own key
    doc = mf.body_of(json.loads(manifest.read_text()))
    doc["privacy"]["epsilon"] = 0.1
    manifest.write_text(mf.dumps(mf.sign(doc, signing.load_private(workspace / "keys"))))
    assert cli("audit", "verify", "--export", str(manifest)).exit_code == 0  # self-consistent forgery
    res = cli("audit", "verify", "--export", str(manifest), "--pubkey", str(pub))
    assert res.exit_code == 4 and "--pubkey" in res.output


def test_a_key_readable_by_others_is_refused(cli, workspace, tmp_path, monkeypatch):
    priv, _ = _keypair(tmp_path, "loose", mode=0o644)
    monkeypatch.setenv(signing.KEY_ENV, str(priv))
    b = seed_workspace(workspace)
    res = cli("export", b, "--out", str(tmp_path / "o.jsonl"))
    assert res.exit_code == 1 and "chmod 600" in res.output
    # refused before the gate decides: no gate decision (nor its event) is recorded for an export that cannot sign
    con = sqlite3.connect(workspace / "appliance.db")
    assert con.execute("SELECT COUNT(*) FROM gate_decisions").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM events WHERE kind LIKE 'gate.%'").fetchone()[0] == 0
    con.close()
    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "missing.pem"))
    assert cli("audit", "head").exit_code == 1


def test_pubkey_needs_something_to_check_and_a_readable_key(cli, workspace, tmp_path):
    pub = tmp_path / "x.pub.pem"
    pub.write_text("not a key")
    assert cli("audit", "verify", "--pubkey", str(pub)).exit_code == 1
    res = cli("audit", "verify", "--export", str(tmp_path / "m.json"), "--pubkey", str(pub))
    assert res.exit_code == 1 and "public key" in res.output
    # a readable public key of another algorithm is the wrong file (exit 1), not a forged signature (exit 4)
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pub.write_bytes(rsa_pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    res = cli("audit", "verify", "--against-head", str(tmp_path / "head.json"), "--pubkey", str(pub))
    assert res.exit_code == 1 and "not an Ed25519 key" in res.output, res.output


def test_init_with_an_unusable_service_key_creates_nothing(cli, home, tmp_path, monkeypatch):
    """`init` refuses a missing or loose APPLIANCE_SIGNING_KEY before it writes a directory, key or database."""
    priv, _ = _keypair(tmp_path, "loose", mode=0o644)
    for key in (priv, tmp_path / "missing.pem"):
        monkeypatch.setenv(signing.KEY_ENV, str(key))
        res = cli("init")
        assert res.exit_code == 1, res.output
        assert not home.exists() or not any(home.iterdir())
