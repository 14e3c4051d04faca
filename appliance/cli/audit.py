"""`appliance audit log|head|verify`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from appliance.audit.chain import canonical_json
from appliance.cli.common import console, new_app, print_json, state
from appliance.errors import BadInput, ChainBroken

app = new_app("Read and verify the hash-chained audit log.")


@app.command("log")
def log(
    ctx: typer.Context,
    kind: str | None = typer.Option(None, "--kind", help="only events of this kind"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the last N events"),
    as_json: bool = typer.Option(False, "--json", help="print JSON lines"),
) -> None:
    """List audit events (oldest first)."""
    c = state(ctx).open()
    events = c.ledger.events(kind=kind, limit=limit)
    if as_json:
        for ev in events:
            typer.echo(canonical_json(ev.as_dict()))
        return
    for ev in events:
        typer.echo(
            f"{ev.seq:>6}  {ev.ts}  {ev.actor:<12}  {ev.kind:<22}  {ev.hash[:19]}…  {canonical_json(ev.payload)}"
        )


@app.command("head")
def head(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, "--out", help="write the signed head as JSON to this file"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Print the chain head (seq + hash) signed with the appliance key."""
    c = state(ctx).open()
    signed = c.ledger.signed_head(c.ws.keys)
    if out is not None:
        out.write_text(json.dumps(signed, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if as_json:
        print_json(signed)
        return
    console.print(f"seq {signed['seq']}\nhash {signed['hash']}", markup=False)
    console.print(f"signature {signed['signature']}", markup=False)
    console.print(f"key {signed['public_key_fingerprint']}", markup=False)
    if out is not None:
        console.print(f"written to {out}", markup=False)


@app.command("verify")
def verify(
    ctx: typer.Context,
    against_head: Path | None = typer.Option(
        None, "--against-head", help="also require this signed head (from `audit head --out`) to be in the chain"
    ),
    export_manifest: Path | None = typer.Option(
        None, "--export", help="also verify an export: PATH.manifest.json's signature, file SHA-256 and audit head"
    ),
    pubkey: Path | None = typer.Option(
        None,
        "--pubkey",
        help="check the signatures of --export / --against-head against this Ed25519 public key (PEM) that you hold,"
        " not the key in the workspace",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
) -> None:
    """Verify the chain: exit 0 'OK n events', or exit 4 with the first bad event and why."""
    from appliance.export.verify import load_pubkey

    if pubkey is not None and against_head is None and export_manifest is None:
        raise BadInput("--pubkey checks signatures: pass it with --export MANIFEST or --against-head FILE")
    officer_key = load_pubkey(pubkey) if pubkey is not None else None
    c = state(ctx).open()
    res = c.ledger.verify_or_raise()
    if against_head is not None:
        try:
            head_doc = json.loads(against_head.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadInput(f"cannot read head file {against_head}: {exc.__class__.__name__}") from None
        if not isinstance(head_doc, dict):
            raise BadInput(f"head file {against_head} must hold a JSON object")
        c.ledger.check_head(head_doc, c.ws.keys, public_key=officer_key)
        if int(head_doc["seq"]) > res.count:
            raise ChainBroken(f"signed head seq {head_doc['seq']} is beyond the chain's {res.count} events")
    if export_manifest is not None:
        from appliance.export.verify import verify_manifest

        checked = verify_manifest(c.ledger, c.ws.keys, export_manifest, public_key=officer_key)
        if as_json:
            print_json({"ok": True, "events": res.count, "export": checked})
            return
        console.print(
            f"OK export {checked['export_id']}: signature, sha256 {checked['file_sha256']}, "
            f"audit head seq {checked['audit_seq']} in chain",
            markup=False,
        )
    if as_json:
        print_json({"ok": True, "events": res.count})
        return
    console.print(f"OK {res.count} events", markup=False)


@app.command("report")
def report(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="HTML file to write (self-contained, print-friendly)"),
    dataset: str | None = typer.Option(None, "--dataset", help="only this dataset"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
) -> None:
    """Write the compliance report: chain, budgets, training runs, PII, probes, gate decisions, exports, activity."""
    from appliance.errors import NotFound
    from appliance.export.writers import sha256_path
    from appliance.report import write_report
    from appliance.store import datasets

    c = state(ctx).open()
    if dataset is not None and not datasets.has(c.db, dataset):
        raise NotFound(f"unknown dataset {dataset!r} — see `appliance seeds list`")
    if not out.expanduser().resolve().parent.is_dir():
        raise BadInput(f"directory {out.parent} does not exist — create it or choose another --out")
    path = write_report(c, out, dataset)
    digest = sha256_path(path)
    c.record("audit.report", {"sha256": digest, "dataset": dataset, "bytes": path.stat().st_size})
    if as_json:
        print_json({"path": str(path), "sha256": digest, "dataset": dataset})
        return
    console.print(f"report written to {path} ({digest})", markup=False)
