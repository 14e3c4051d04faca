"""What an audit payload may carry: counts, ids, hashes and metrics, never raw text.

Strings are limited to :data:`MAX_STRING` characters and :data:`MAX_SPACES` spaces (no prose),
unless they are hashes (``sha256:<hex>`` or bare hex digests) or absolute file paths without
whitespace. Free text in an event is the way raw seed text or PII would leak into a log that is kept
forever, so the append API refuses it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from appliance.errors import UnsafePayload

MAX_STRING = 96
MAX_SPACES = 3
MAX_PATH = 400
MAX_DEPTH = 8
_HASH = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
_PATH = re.compile(r"^/[^\s]*$")


def check_payload(payload: Any, path: str = "payload", depth: int = 0) -> None:
    """Raise :class:`UnsafePayload` if anything in ``payload`` looks like free text."""
    if depth > MAX_DEPTH:
        raise UnsafePayload(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if payload is None or isinstance(payload, bool | int):
        return
    if isinstance(payload, float):
        if not math.isfinite(payload):
            raise UnsafePayload(f"{path}: non-finite number {payload!r}; store null instead")
        return
    if isinstance(payload, str):
        if _HASH.match(payload) or (len(payload) <= MAX_PATH and _PATH.match(payload)):
            return
        if len(payload) > MAX_STRING or payload.count(" ") > MAX_SPACES or "\n" in payload:
            raise UnsafePayload(
                f"{path}: free text refused ({len(payload)} characters; limit {MAX_STRING} characters, "
                f"{MAX_SPACES} spaces); audit payloads carry counts, ids, hashes and metrics only — hash the text"
            )
        return
    if isinstance(payload, dict):
        for key, value in payload.items():
            if not isinstance(key, str) or len(key) > MAX_STRING:
                raise UnsafePayload(f"{path}: keys must be short strings")
            check_payload(value, f"{path}.{key}", depth + 1)
        return
    if isinstance(payload, list | tuple):
        for i, value in enumerate(payload):
            check_payload(value, f"{path}[{i}]", depth + 1)
        return
    raise UnsafePayload(f"{path}: type {type(payload).__name__} is not allowed in an audit payload")
