"""The unit of privacy accounting: one record (its redacted, normalised text) or one declared subject.

Pure functions. A record's unit is SHA-256 over its redacted text with every PII span as ``<TYPE>``
(``PiiResult.key_text``: pseudonyms differ per dataset, so the raw pseudonymised text would not do),
normalised as the split and the dedup normalise it. The same file imported under any dataset name, or an
overlapping one, therefore charges the same units. A subject's unit is HMAC-SHA256 of its id under the
workspace key: subject ids are short, guessable identifiers, and a bare hash of one could be reversed by
trying candidates; the id itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from appliance.curate.text import normalize

RECORD = "record"
SUBJECT = "subject"
KINDS = (RECORD, SUBJECT)
_RECORD_DOMAIN = b"appliance/unit/record/v1\x00"
_SUBJECT_DOMAIN = b"appliance/unit/subject/v1\x00"

Unit = tuple[str, str]  # (kind, key)


def record_unit(key_text: str) -> str:
    """The budget key of one record: its redacted text with PII as ``<TYPE>``, normalised (hex)."""
    return hashlib.sha256(_RECORD_DOMAIN + normalize(key_text).encode("utf-8")).hexdigest()


def row_unit(row: Mapping[str, Any]) -> str:
    """A stored record's budget key: its ``unit_key`` column, or, for rows from before that column, the key of
    its stored text."""
    return str(row["unit_key"] or record_unit(row["text"]))


def subject_unit(secret: bytes, subject: str) -> str:
    """The budget key of one subject: HMAC of its id (whitespace-trimmed) under the workspace key (hex)."""
    return hmac.new(secret, _SUBJECT_DOMAIN + subject.strip().encode("utf-8"), hashlib.sha256).hexdigest()


def run_units(records: Iterable[tuple[str, str | None]]) -> Counter[Unit]:
    """(kind, key) -> how many of a run's records it covers, from each record's (record key, subject key)."""
    units: Counter[Unit] = Counter()
    for rec, subj in records:
        units[(RECORD, rec)] += 1
        if subj is not None:
            units[(SUBJECT, subj)] += 1
    return units


def units_digest(units: Iterable[tuple[str, str, int]]) -> str:
    """``sha256:`` over the sorted ``kind:key:multiplicity`` lines of one charge (what its audit event binds)."""
    lines = sorted(f"{kind}:{key}:{int(m)}" for kind, key, m in units)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode("ascii")).hexdigest()
