"""The gate decision: run the checks on a batch's facts, record the decision, refuse on any failure.

Every decision — passed, refused, or the gate switched off by policy — is stored in ``gate_decisions``
and appended to the audit chain in the same transaction, before anything is written outside the
appliance. A refusal raises :class:`GateRefused` (exit 3) listing each failed check with its value
and threshold.

Two checks hold whatever the policy says (``gate.enabled: false`` or ``gate.require_dp: false``): a batch
whose prompt is not an exportable DP prompt (``--no-dp``, few-shot) is never exported, and neither
are labels that were not declared public schema at import (:func:`labels_check`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from appliance.audit.ledger import append_in_tx
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.errors import GateRefused
from appliance.gate.checks import Check, describe, evaluate, failures
from appliance.gate.facts import BatchFacts
from appliance.store import exports


def always_checks(bf: BatchFacts, checks: list[Check]) -> list[Check]:
    """The checks no policy key turns off, for those ``checks`` lacks: DP (``--no-dp``/few-shot never leave)."""
    names = {c.check for c in checks}
    extra = [] if "dp" in names else [Check("dp", "==", bf.facts.dp, True, bf.facts.dp is True)]
    return [*extra, labels_check(bf)]


def labels_check(bf: BatchFacts) -> Check:
    """Labels leave only as declared public schema (``seeds import --labels``): a label held by one private
    record would otherwise be disclosed by its presence on the synthetic records."""
    return Check("labels_public", "==", bf.labels_public, True, bf.labels_public)


@dataclass(frozen=True)
class Decision:
    id: int
    passed: bool
    enabled: bool
    checks: list[Check]
    failures: list[dict[str, Any]]
    event_seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "passed": self.passed,
            "enabled": self.enabled,
            "checks": [c.as_dict() for c in self.checks],
            "failures": self.failures,
        }


def decide(ctx: Context, bf: BatchFacts) -> Decision:
    """Check ``bf`` against the policy's gate; record the decision; raise :class:`GateRefused` if it failed."""
    gate = ctx.policy.gate
    checks = evaluate(bf.facts, gate, ctx.policy.privacy) if gate.enabled else []
    checks = [*always_checks(bf, checks), *checks]
    failed = failures(checks)
    passed = not failed
    batch = bf.batch
    kind = "gate.refused" if not passed else ("gate.passed" if gate.enabled else "gate.disabled")
    payload = {
        "batch_id": batch["id"],
        "dataset": batch["dataset"],
        "prompt_id": batch.get("prompt_id"),
        "model_sha256": batch["model_sha256"],
        "probe_id": bf.probe["id"] if bf.probe else None,
        "enabled": gate.enabled,
        "passed": passed,
        "n_checks": len(checks),
        "failures": failed,
        "policy_sha256": ctx.policy_sha256,
    }
    with transaction(ctx.db) as conn:
        ev = append_in_tx(conn, kind, payload, ctx.actor)
        decision_id = exports.insert_decision(
            conn,
            {
                "batch_id": batch["id"],
                "dataset": batch["dataset"],
                "passed": int(passed),
                "enabled": int(gate.enabled),
                "checks": json.dumps([c.as_dict() for c in checks]),
                "failures": json.dumps(failed),
                "probe_id": payload["probe_id"],
                "policy_sha256": ctx.policy_sha256,
                "actor": ctx.actor,
                "event_seq": ev.seq,
                "created_at": utc_now(),
            },
        )
    if not passed:
        few = (bf.probe or {}).get("summary", {}).get("too_few_records") or []
        note = (
            f"; too few records to test: {', '.join(few)} (probes need gate.probe_min_records per side)" if few else ""
        )
        raise GateRefused(
            f"export of batch {batch['id']} refused by the gate: {len(failed)} check(s) failed — {describe(failed)}"
            f"{note} (see `appliance probe`, `appliance audit report`; fix the data or the policy)",
            failed,
        )
    return Decision(decision_id, passed, gate.enabled, checks, failed, ev.seq)
