"""Pure span logic: per-type thresholds, ignore/allow lists, and overlap resolution.

Recognizers overlap (an e-mail address also matches as URL fragments; a street address contains a
city). Before anything is replaced, overlapping findings are merged into one span covering their
union, so no fragment of an entity survives redaction; the merged span takes the type of its
strongest member (most severe action, then a confident score, then longest, then highest score).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from appliance.pii.engine import Finding
from appliance.policy.schema import PiiAction, PiiPolicy

_SEVERITY = {PiiAction.drop_record: 3, PiiAction.redact: 2, PiiAction.pseudonymize: 2, PiiAction.allow: 0}


@dataclass(frozen=True)
class Span:
    """A resolved, non-overlapping finding with the action the policy takes on it."""

    start: int
    end: int
    type: str
    score: float
    action: PiiAction

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "action": self.action.value,
        }


def _normal(term: str) -> str:
    return " ".join(term.split()).casefold()


def admitted(findings: Iterable[Finding], policy: PiiPolicy, text: str, *, include_allowed: bool = False) -> list[Span]:
    """Findings that pass the policy: not ignored, at or above their type's threshold, not allow-listed."""
    ignored = set(policy.ignore_entities)
    allow_terms = {_normal(t) for t in policy.allow_list}
    out: list[Span] = []
    for f in findings:
        if f.type in ignored or f.end <= f.start:
            continue
        rule = policy.rule_for(f.type)
        if f.score < (rule.threshold if rule.threshold is not None else policy.default_threshold):
            continue
        if rule.action is PiiAction.allow and not include_allowed:
            continue
        if allow_terms and _normal(text[f.start : f.end]) in allow_terms:
            continue
        out.append(Span(f.start, f.end, f.type, f.score, rule.action))
    return out


CONFIDENT = 0.95  # checksum-validated or context-confirmed findings
GENERIC = frozenset({"ORGANIZATION", "LOCATION", "NRP", "DATE_TIME"})  # spaCy's broad classes


def _rank(s: Span) -> tuple[int, bool, int, float, bool]:
    """Most severe action first; then a confident finding; then the longest; then the highest score; then a
    specific type over one of spaCy's broad classes (a name after a cue beats NER's ORGANIZATION guess)."""
    return (_SEVERITY[s.action], s.score >= CONFIDENT, s.end - s.start, s.score, s.type not in GENERIC)


def resolve(spans: Iterable[Span]) -> list[Span]:
    """Merge overlapping spans into their union, typed by the strongest member; sorted by start."""
    ordered = sorted(spans, key=lambda s: (s.start, -s.end))
    merged: list[Span] = []
    group: list[Span] = []
    end = -1
    for s in ordered:
        if group and s.start < end:
            group.append(s)
            end = max(end, s.end)
            continue
        if group:
            merged.append(_merge(group))
        group, end = [s], s.end
    if group:
        merged.append(_merge(group))
    return merged


def _merge(group: list[Span]) -> Span:
    if len(group) == 1:
        return group[0]
    best = max(group, key=_rank)
    return Span(min(s.start for s in group), max(s.end for s in group), best.type, best.score, best.action)
