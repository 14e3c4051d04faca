"""`appliance init`: create the workspace, signing key, policy copy and first audit event."""

from __future__ import annotations

import secrets
import shutil

import typer

from appliance import __version__
from appliance.audit import rows as event_rows
from appliance.audit import signing
from appliance.cli.common import console, print_json, state
from appliance.config import Workspace
from appliance.context import Context
from appliance.db import connect, migrate
from appliance.policy import default_policy_path, load_policy_file

PSEUDONYM_KEY = "pseudonym.key"


def _initialised(ws: Workspace) -> bool:
    db = connect(ws.db_path)
    try:
        migrate(db)
        return event_rows.any_of_kind(db.conn, "workspace.init")
    finally:
        db.conn.close()


def init(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
) -> None:
    """Create the workspace (database, keys, policy) and write the first audit event."""
    st = state(ctx)
    ws = st.ws
    if ws.exists() and _initialised(ws):
        if as_json:
            print_json({"home": str(ws.home), "created": False})
            return
        console.print(f"workspace already initialised at {ws.home}; nothing changed", markup=False)
        return
    load_policy_file(default_policy_path())  # refuse to start from a broken shipped policy
    if signing.external_key_path() is not None:
        signing.load_private(ws.keys)  # an unusable APPLIANCE_SIGNING_KEY is refused before anything is created
    ws.ensure_dirs()
    new_key = signing.ensure_keypair(ws.keys)
    pseudo = ws.keys / PSEUDONYM_KEY
    if not pseudo.exists():
        signing.write_private_file(pseudo, secrets.token_bytes(32))
    if not ws.policy_path.exists():
        shutil.copyfile(default_policy_path(), ws.policy_path)
    db = connect(ws.db_path)
    applied = migrate(db)
    db.conn.close()
    c = Context.open(ws, actor=st.who)
    pub = signing.load_private(ws.keys).public_key()
    ev = c.record(
        "workspace.init",
        {
            "version": __version__,
            "migrations": len(applied),
            "public_key_fingerprint": signing.fingerprint(pub),
            "new_key": new_key,
        },
    )
    c.close()
    if as_json:
        print_json(
            {
                "home": str(ws.home),
                "created": True,
                "public_key_fingerprint": signing.fingerprint(pub),
                "event": {"seq": ev.seq, "hash": ev.hash},
            }
        )
        return
    console.print(f"initialised appliance workspace at {ws.home}", markup=False)
    console.print(f"signing key fingerprint {signing.fingerprint(pub)}", markup=False)
    console.print(f"audit event {ev.seq} {ev.hash}", markup=False)
