"""`appliance probe BATCH`: run every registered probe on a batch, store the record, audit the numbers.

The probe record and its ``probe.run`` audit event (metrics, model and prompt hashes — no text)
commit in one transaction. The gate reads the newest record of a batch.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from appliance.audit.ledger import append_in_tx
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.probes import probes as _probes
from appliance.probes import registry
from appliance.probes.inputs import load_inputs
from appliance.store import batches
from appliance.store import results as store_results


@dataclass(frozen=True)
class ProbeRecord:
    id: str
    batch_id: str
    summary: dict[str, Any]
    metrics: dict[str, Any]
    curves: dict[str, Any]
    seconds: float
    event_seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "batch_id": self.batch_id,
            "summary": self.summary,
            "metrics": self.metrics,
            "seconds": round(self.seconds, 2),
            "audit_seq": self.event_seq,
        }


def _audit_metrics(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A compact, text-free digest of the results for the audit event."""
    out: dict[str, Any] = {}
    for name, r in results.items():
        if r.get("status") != "ok":
            out[name] = {"status": r.get("status"), "reason": r.get("reason")}
            continue
        if name == "mia":
            out[name] = {
                k: {
                    "auc": a["auc"],
                    "auc_ci": a["auc_ci"],
                    "tpr_at_1pct_fpr": a["tpr_at_1pct_fpr"],
                    "n_members": a["n_members"],
                    "n_holdout": a["n_holdout"],
                }
                for k, a in r["attacks"].items()
            }
        elif name == "canary":
            out[name] = {
                "exposure_bits": [round(c["exposure_bits"], 4) for c in r["canaries"]],
                "output_hits": r["output_hits"],
            }
        else:
            out[name] = {k: v for k, v in r.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            if name == "dcr":
                out[name]["embedding_sha256"] = r.get("embedding_sha256")
    return out


def run_probes(ctx: Context, batch_id: str) -> ProbeRecord:
    """Run every registered probe on ``batch_id``; store and audit the result."""
    batch = batches.require(ctx.db, batch_id)
    t0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    curves: dict[str, Any] = {}
    with load_inputs(ctx, batch) as inputs:
        for name in registry.names():
            probe = registry.create(name)
            why = probe.applies(inputs)
            if why is not None:
                results[name] = {"status": "not_applicable", "reason": why}
                continue
            out = probe.run(inputs)
            curves.update(out.pop("curves", {}))
            results[name] = {"status": "ok", **out}
        prompt = inputs.prompt
        counts = {
            "members": len(inputs.members),
            "holdout": len(inputs.holdout),
            "synthetic": len(inputs.synthetic),
            "canaries": len(inputs.canaries),
        }
    summary = _probes.summarize(results)
    seconds = time.perf_counter() - t0
    pid = "p-" + secrets.token_hex(6)
    prompt_sha = prompt["artifact_sha256"] if prompt else None
    with transaction(ctx.db) as conn:
        ev = append_in_tx(
            conn,
            "probe.run",
            {
                "probe_id": pid,
                "batch_id": batch_id,
                "dataset": batch["dataset"],
                "prompt_id": batch.get("prompt_id"),
                "model_sha256": batch["model_sha256"],
                "prompt_sha256": prompt_sha,
                "summary": summary,
                "metrics": _audit_metrics(results),
                "counts": counts,
                "seconds": round(seconds, 3),
                "policy_sha256": ctx.policy_sha256,
            },
            ctx.actor,
        )
        store_results.insert_probe(
            conn,
            {
                "id": pid,
                "batch_id": batch_id,
                "dataset": batch["dataset"],
                "prompt_id": batch.get("prompt_id"),
                "model_sha256": batch["model_sha256"],
                "prompt_sha256": prompt_sha,
                "summary": json.dumps(summary),
                "metrics": json.dumps({**results, "counts": counts}),
                "curves": json.dumps(curves),
                "policy_sha256": ctx.policy_sha256,
                "actor": ctx.actor,
                "seconds": seconds,
                "event_seq": ev.seq,
                "created_at": utc_now(),
            },
        )
    return ProbeRecord(pid, batch_id, summary, {**results, "counts": counts}, curves, seconds, ev.seq)
