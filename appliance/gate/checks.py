"""The gate's checks: pure comparisons of a batch's measured facts against the policy's thresholds.

Every check yields its value, its threshold and the comparison, passed or not, so a refusal can list
exactly what failed and by how much. A value that was never measured (``None``) fails its check:
the gate refuses what it cannot show to be safe.
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass
from typing import Any

from appliance.policy.schema import GatePolicy, PrivacyPolicy

_OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class GateFacts:
    """What is known about a batch when it comes to the gate (numbers and flags only)."""

    mode: str
    dp: bool
    epsilon: float | None
    delta: float | None
    dataset_epsilon: float
    n_records: int
    curated: bool
    pii_findings: int | None
    verbatim_leaks: int | None
    evaluated: bool
    mauve: float | None
    mia_auc: float | None
    tpr_at_1pct_fpr: float | None
    canary_exposure_bits: float | None
    canary_output_hits: int | None
    dcr_ratio: float | None
    detection_auc: float | None = None  # can a classifier tell the real holdout from the outputs (0.5: no)
    label_fidelity: float | None = None  # share of outputs a real-data classifier gives their own label
    labelled: bool = False  # the batch's outputs carry labels (label fidelity applies)
    record_epsilon: float | None = None  # Σε of the dataset's most-charged record (or subject), any dataset name
    record_delta: float | None = None  # its Σδ
    leak_allowance: int = 0  # kept outputs with a seed n-gram that chance explains (held-out real records' rate)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    check: str
    op: str
    value: Any
    threshold: Any
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "op": self.op,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
        }


def _cmp(name: str, value: Any, op: str, threshold: Any) -> Check:
    ok = value is not None and bool(_OPS[op](value, threshold))
    if isinstance(value, float):
        value = round(value, 6)
    return Check(name, op, value, threshold, ok)


def evaluate(facts: GateFacts, gate: GatePolicy, privacy: PrivacyPolicy) -> list[Check]:
    """Every check the policy asks for, in a fixed order (DP first, then probes, then quality)."""
    checks: list[Check] = []
    if gate.require_dp:
        checks.append(_cmp("dp", facts.dp, "==", True))
    checks.append(_cmp("epsilon", facts.epsilon if facts.dp else None, "<=", gate.max_epsilon))
    checks.append(_cmp("dataset_epsilon", facts.dataset_epsilon, "<=", privacy.dataset_epsilon_cap))
    checks.append(_cmp("record_epsilon", facts.record_epsilon, "<=", privacy.dataset_epsilon_cap))
    checks.append(_cmp("record_delta", facts.record_delta, "<=", privacy.max_total_delta))
    checks.append(_cmp("records", facts.n_records, ">=", 1))
    checks.append(_cmp("curated", facts.curated, "==", True))
    checks.append(_cmp("mia_auc", facts.mia_auc, "<=", gate.max_mia_auc))
    checks.append(_cmp("tpr_at_1pct_fpr", facts.tpr_at_1pct_fpr, "<=", gate.max_tpr_at_1pct_fpr))
    checks.append(_cmp("canary_exposure_bits", facts.canary_exposure_bits, "<=", gate.max_canary_exposure_bits))
    checks.append(_cmp("canary_output_hits", facts.canary_output_hits, "<=", gate.max_canary_output_hits))
    checks.append(_cmp("dcr_ratio", facts.dcr_ratio, ">=", gate.min_dcr_ratio))
    checks.append(_cmp("pii_findings", facts.pii_findings, "<=", gate.max_pii_findings))
    allowance = facts.leak_allowance if gate.leak_chance_baseline else 0
    checks.append(_cmp("verbatim_leaks", facts.verbatim_leaks, "<=", gate.max_verbatim_leaks + allowance))
    if gate.require_evaluation:
        checks.append(_cmp("evaluation", facts.evaluated, "==", True))
    if gate.require_evaluation or facts.mauve is not None:
        checks.append(_cmp("mauve", facts.mauve, ">=", gate.min_mauve))
    # the quality floor: a batch that does not look like the seeds, or is not about its labels, is refused
    if gate.require_evaluation or facts.detection_auc is not None:
        checks.append(_cmp("detection_auc", facts.detection_auc, "<=", gate.max_detection_auc))
    if facts.labelled and (gate.require_evaluation or facts.label_fidelity is not None):
        checks.append(_cmp("label_fidelity", facts.label_fidelity, ">=", gate.min_label_fidelity))
    return checks


def failures(checks: list[Check]) -> list[dict[str, Any]]:
    """The failed checks as dicts (check, value, threshold, op)."""
    return [{k: v for k, v in c.as_dict().items() if k != "passed"} for c in checks if not c.passed]


# what to do about a failed check whose value alone does not say it
_FIX = {
    "curated": " — run `appliance curate BATCH`",
    "evaluation": " — run `appliance evaluate BATCH` after the latest curate (against the holdout: an evaluation"
    " against a --reference file is not the seeds)",
    # the levers measured on public data (bench/RESULTS.md); lowering the floor would export what it refused
    "detection_auc": " — the outputs are told apart from the real holdout: read some (`appliance batches show"
    " BATCH`), then describe the domain (training.init_text; training.label_template with {label_words} or"
    " {label_description}), turn on curation.dp_selection and generate about 1/keep_fraction as many, or train on"
    " more records (a new prompt spends ε on its records again)",
    "label_fidelity": " — the outputs are not about their labels: give each label words the model can read"
    " (training.label_template with {label_words}, training.label_descriptions), keep only outputs the prompt reads"
    " as their own label by a margin (curation.label_margin_nats), or turn on curation.dp_selection",
}


def describe(failed: list[dict[str, Any]]) -> str:
    """One line: ``mia_auc 0.81 (max 0.6); dp False (requires True)``."""
    words = {"<=": "max", ">=": "min", "==": "requires"}
    return "; ".join(
        f"{f['check']} {f['value']} ({words[f['op']]} {f['threshold']}){_FIX.get(f['check'], '')}" for f in failed
    )
