"""PII stage: Presidio scanning, then drop / redact / pseudonymise per the policy's ``pii`` section.

Nothing leaves this stage unscanned, and no raw PII value is ever returned in a finding:
findings carry types, offsets into the original text and scores only.

    from appliance.pii import PiiPipeline
    pipe = PiiPipeline.from_context(ctx, dataset)
    results = pipe.process(texts)   # list[PiiResult(text | None, dropped, findings)]
    findings = pipe.scan(texts)     # list[list[{type, start, end, score, action}]]
"""

from appliance.pii.engine import Finding, PiiEngine, build_engine, register_engine
from appliance.pii.pipeline import PiiPipeline, PiiResult

__all__ = ["Finding", "PiiEngine", "PiiPipeline", "PiiResult", "build_engine", "register_engine"]
