"""`appliance export`: approval → probes (run if missing) → gate → atomic file + signed manifest.

Promises: nothing is written at ``--out`` unless the gate passed; the file appears whole or not at all
(temporary file beside it, then a hard link to the final name, which fails rather than replace a file that
appeared while the probes ran: an export never overwrites anything); the export's database row, the hashes
of its records (provenance, so re-imports are flagged), the used approval and the ``export.complete`` audit event
commit in one transaction, and the manifest anchors that event's (seq, hash) under the appliance's
signature.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.audit import signing
from appliance.audit.ledger import append_in_tx
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.errors import BadInput
from appliance.export import manifest as mf
from appliance.export.order import spread_labels
from appliance.export.writers import FORMATS, sha256_path, sweep_stale_temps, temp_beside, write_temp
from appliance.gate import approval, bound
from appliance.gate.decide import Decision, decide
from appliance.gate.facts import BatchFacts, gather
from appliance.store import batches, datasets, exports


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    path: Path
    manifest_path: Path
    file_sha256: str
    n_records: int
    decision: Decision
    probe_ran: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "path": str(self.path),
            "manifest": str(self.manifest_path),
            "file_sha256": self.file_sha256,
            "records": self.n_records,
            "gate": self.decision.as_dict(),
            "probes_ran": self.probe_ran,
        }


def get_batch(ctx: Context, batch_id: str) -> dict[str, Any]:
    return batches.require(ctx.db, batch_id)


def kept_records(ctx: Context, batch_id: str, labeled: bool) -> list[dict[str, Any]]:
    """The batch's kept outputs as exported: labelled ones with each label spread through the file (see
    :mod:`appliance.export.order`), unlabelled ones in idx order."""
    rows = batches.kept(ctx.db, batch_id)
    if not labeled:
        return [{"text": r["text"]} for r in rows]
    return spread_labels([{"text": r["text"], "label": r["label"]} for r in rows])


def _check_out(out: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = out.expanduser().resolve()
    if not out.parent.is_dir():
        raise BadInput(f"directory {out.parent} does not exist — create it or choose another --out")
    for p in (out, mf.manifest_path(out)):
        if p.exists():
            raise BadInput(f"{p} already exists — exports never overwrite; choose another --out")
    return out


def _publish(tmp: Path, dest: Path) -> None:
    """Give the finished ``tmp`` the name ``dest`` only if nothing has it (``FileExistsError`` otherwise).

    ``os.link`` never replaces an existing name, unlike ``os.replace``; on a filesystem without hard links
    the fallback is an exclusive create (``O_EXCL``) and a copy.
    """
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        with open(tmp, "rb") as src, open(dest, "xb") as out:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())


def _publish_pair(tmp: Path, out: Path, tmp_manifest: Path, manifest: Path, eid: str) -> None:
    """Publish the file, then its manifest; if either name was taken meanwhile, leave nothing of ours there."""
    try:
        _publish(tmp, out)
    except FileExistsError:
        raise BadInput(
            f"{out} appeared while export {eid} ran; exports never overwrite, so nothing was written"
            " (the export is in the audit log without a file) — run the export again with another --out"
        ) from None
    try:
        _publish(tmp_manifest, manifest)
    except FileExistsError:
        if out.exists() and os.path.samefile(out, tmp):  # our own link, made a moment ago
            out.unlink()
        raise BadInput(
            f"{manifest} appeared while export {eid} ran; exports never overwrite, so nothing was written"
            " (the export is in the audit log without a file) — run the export again with another --out"
        ) from None


def _manifest_body(
    ctx: Context,
    bf: BatchFacts,
    eid: str,
    out: Path,
    fmt: str,
    digest: str,
    n: int,
    nbytes: int,
    req: dict[str, Any] | None,
    decision: Decision,
    head: tuple[int, str],
) -> dict[str, Any]:
    f = bf.facts
    return mf.public_body(
        export_id=eid,
        created_at=utc_now(),
        actor=ctx.actor,
        batch=bf.batch,
        prompt=bf.prompt,
        dp=f.dp,
        epsilon=f.epsilon,
        delta=f.delta,
        dataset_epsilon=f.dataset_epsilon,
        dataset_epsilon_cap=ctx.policy.privacy.dataset_epsilon_cap,
        policy_sha256=ctx.policy_sha256,
        budget={
            "unit": bf.budget_unit,
            "neighbouring": f"add/remove one {bf.budget_unit}",
            "epsilon_cap_per_unit": ctx.policy.privacy.dataset_epsilon_cap,
            "delta_cap_per_unit": ctx.policy.privacy.max_total_delta,
            "composition": "basic",
            "label_set": bound.label_set(ctx.db.conn, str(bf.batch["dataset"])),
        },
        gate=decision.as_dict(),
        approval=None
        if req is None
        else {"request_id": req["id"], "requested_by": req["requested_by"], "approved_by": req["approved_by"]},
        file={"name": out.name, "format": fmt, "sha256": digest, "bytes": nbytes, "records": n},
        audit_head=head,
    )


def export_batch(
    ctx: Context, batch_id: str, out: Path, fmt: str = "jsonl", *, run_probes: bool = True
) -> ExportResult:
    """Export the kept outputs of ``batch_id`` to ``out`` if the gate passes."""
    out = _check_out(out, fmt)
    key = signing.load_private(ctx.ws.keys)  # an unusable key is exit 1 before a gate decision is recorded
    batch = get_batch(ctx, batch_id)
    req = approval.approved_request(ctx.db.conn, batch_id) if ctx.policy.approval.required else None
    bf = gather(ctx.db, batch)
    probe_ran = False
    if bf.probe is None and run_probes and ctx.policy.gate.enabled:
        from appliance.probes.runner import run_probes as probe_batch

        probe_batch(ctx, batch_id)
        probe_ran = True
        bf = gather(ctx.db, batch)
    _check_out(out, fmt)  # again, before a decision is recorded: the probes may have run for minutes
    decision = decide(ctx, bf)  # raises GateRefused (exit 3) after recording the refusal
    records = kept_records(ctx, batch_id, datasets.field(ctx.db, batch["dataset"], "label_field") is not None)
    eid = "x-" + secrets.token_hex(6)
    for leftover in (out, mf.manifest_path(out)):  # temporary files of an export that was killed mid-write
        sweep_stale_temps(leftover)
    tmp = write_temp(out, records, fmt)
    tmp_manifest = temp_beside(mf.manifest_path(out))
    try:
        digest = sha256_path(tmp)
        nbytes = tmp.stat().st_size
        from appliance.curate.provenance import record_export_hashes
        from appliance.curate.text import text_hash

        with transaction(ctx.db) as conn:
            if req is not None:
                approval.mark_used(conn, req["id"], eid)
            n_new = record_export_hashes(conn, [text_hash(r["text"]) for r in records], eid)
            ev = append_in_tx(
                conn,
                "export.complete",
                {
                    "export_id": eid,
                    "batch_id": batch_id,
                    "dataset": batch["dataset"],
                    "format": fmt,
                    "file_sha256": digest,
                    "bytes": nbytes,
                    "records": len(records),
                    "new_record_hashes": n_new,
                    "gate_decision_id": decision.id,
                    "request_id": req["id"] if req else None,
                    "prompt_id": batch.get("prompt_id"),
                    "model_sha256": batch["model_sha256"],
                    "policy_sha256": ctx.policy_sha256,
                },
                ctx.actor,
            )
            body = _manifest_body(
                ctx, bf, eid, out, fmt, digest, len(records), nbytes, req, decision, (ev.seq, ev.hash)
            )
            doc = mf.sign(body, key)
            text = mf.dumps(doc)
            tmp_manifest.write_text(text, encoding="utf-8")
            exports.insert_export(
                conn,
                {
                    "id": eid,
                    "batch_id": batch_id,
                    "dataset": batch["dataset"],
                    "path": str(out),
                    "format": fmt,
                    "file_sha256": digest,
                    "n_records": len(records),
                    "manifest_path": str(mf.manifest_path(out)),
                    "manifest_sha256": sha256_path(tmp_manifest),
                    "request_id": req["id"] if req else None,
                    "gate_decision_id": decision.id,
                    "actor": ctx.actor,
                    "event_seq": ev.seq,
                    "created_at": utc_now(),
                },
            )
        _publish_pair(tmp, out, tmp_manifest, mf.manifest_path(out), eid)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_manifest.unlink(missing_ok=True)
    return ExportResult(eid, out, mf.manifest_path(out), digest, len(records), decision, probe_ran)
