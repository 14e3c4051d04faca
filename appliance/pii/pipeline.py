"""The PII stage's front door: scan texts, then drop, redact or pseudonymise per the policy.

Promise: a text that leaves :meth:`PiiPipeline.process` carries no span the engine found at or above
its type's threshold, except types the policy marks ``allow``; nothing below its threshold is changed.
A surrogate keeps the letter case of the value it replaces (lower case, ALL CAPS or as generated).
Findings are reported as types, offsets into the *original* text and scores — never values. Types whose
action is ``allow`` are not reported by :meth:`process` or :meth:`scan` (they are not PII under the
policy) unless ``scan(..., include_allowed=True)`` asks for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.pii.engine import PiiEngine, build_engine
from appliance.pii.packs import effective
from appliance.pii.pseudonym import Pseudonymizer, load_key, match_case
from appliance.pii.spans import Span, admitted, resolve
from appliance.policy.schema import PiiAction, PiiPolicy

if TYPE_CHECKING:
    from appliance.context import Context


@dataclass(frozen=True)
class PiiResult:
    """One processed text: ``text`` is None when the policy dropped the record."""

    text: str | None
    dropped: bool
    findings: list[dict[str, Any]] = field(default_factory=list)
    # the text with every changed span as ``<TYPE>`` (pseudonyms too): what the train/holdout split and
    # dedup key on, so the same file splits the same way under any dataset name (pseudonyms differ per
    # dataset) and records identical after redaction share a split; never raw PII
    key_text: str | None = None


class PiiPipeline:
    """Policy-driven PII scanning and transformation for one dataset."""

    def __init__(self, engine: PiiEngine, policy: PiiPolicy, pseudonymizer: Pseudonymizer) -> None:
        self.engine = engine
        self.policy = effective(policy)
        self.pseudonymizer = pseudonymizer

    @classmethod
    def from_context(cls, ctx: Context, dataset: str) -> PiiPipeline:
        """Pipeline for ``dataset`` under the context's policy and workspace pseudonym key."""
        return cls.from_policy(ctx.policy.pii, key=load_key(ctx.ws.keys), dataset=dataset)

    @classmethod
    def from_policy(
        cls, policy: PiiPolicy, *, key: bytes, dataset: str, engine: PiiEngine | None = None
    ) -> PiiPipeline:
        """Pipeline from explicit parts (the engine is built and cached if not given)."""
        return cls(engine or build_engine(policy), policy, Pseudonymizer(key, dataset))

    def spans(self, texts: Sequence[str], *, include_allowed: bool = False) -> list[list[Span]]:
        """Resolved, policy-admitted spans per text."""
        raw = self.engine.analyze(list(texts))
        return [
            resolve(admitted(f, self.policy, t, include_allowed=include_allowed))
            for t, f in zip(texts, raw, strict=True)
        ]

    def scan(self, texts: Sequence[str], *, include_allowed: bool = False) -> list[list[dict[str, Any]]]:
        """Findings per text ({type, start, end, score, action}) without transforming anything."""
        return [[s.as_dict() for s in spans] for spans in self.spans(texts, include_allowed=include_allowed)]

    def process(self, texts: Sequence[str]) -> list[PiiResult]:
        """Scan and apply the policy: drop the record, or redact/pseudonymise each span."""
        return [self._apply(t, spans) for t, spans in zip(texts, self.spans(texts), strict=True)]

    def _apply(self, text: str, spans: list[Span]) -> PiiResult:
        findings = [s.as_dict() for s in spans]
        if any(s.action is PiiAction.drop_record for s in spans):
            return PiiResult(text=None, dropped=True, findings=findings)
        parts: list[str] = []
        keys: list[str] = []
        pos = 0
        for s in spans:
            parts.append(text[pos : s.start])
            keys.append(text[pos : s.start])
            value = text[s.start : s.end]
            parts.append(self._replacement(s, value))
            keys.append(value if s.action is PiiAction.allow else f"<{s.type}>")
            pos = s.end
        parts.append(text[pos:])
        keys.append(text[pos:])
        return PiiResult(text="".join(parts), dropped=False, findings=findings, key_text="".join(keys))

    def _replacement(self, span: Span, value: str) -> str:
        if span.action is PiiAction.pseudonymize:
            return match_case(value, self.pseudonymizer.surrogate(span.type, value))
        if span.action is PiiAction.allow:
            return value
        return f"<{span.type}>"
