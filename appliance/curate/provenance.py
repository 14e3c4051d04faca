"""Provenance: remember what the appliance exported, and recognise it when it comes back as seeds.

The model-collapse guard: synthetic output must not silently become seed data. Export records the
hash of every exported record's normalised text (:func:`record_export_hashes`, hashes made with
:func:`appliance.curate.text.text_hash`); ``seeds import`` asks :func:`matches_exports` about the
raw seed texts and flags (or, per policy ``curation.export_match_action``, refuses) the matches.
Only hashes are stored, never text.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence

import sqlite_utils

from appliance.curate.text import text_hash
from appliance.db import utc_now
from appliance.errors import BadInput, PolicyViolation
from appliance.policy.schema import CurationPolicy
from appliance.store import exports

_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")

Conn = sqlite3.Connection | sqlite_utils.Database


def record_export_hashes(conn: Conn, hashes: Iterable[str], export_id: str | None = None) -> int:
    """Remember exported records' hashes (``sha256:<hex>`` of normalised text); returns how many were new.

    Runs on the caller's connection without opening a transaction, so an export can call it inside
    its own ``transaction()`` and commit the hashes atomically with its manifest.
    """
    rows = []
    for h in hashes:
        if not _HASH.match(h):
            raise BadInput("export hashes must be 'sha256:<64 hex>' of the normalised text — use text_hash()")
        rows.append({"hash": h, "export_id": export_id, "created_at": utc_now()})
    return exports.insert_hashes(conn, rows)


def matches_exports(conn: Conn, texts: Sequence[str]) -> list[bool]:
    """For each text, whether its normalised form was exported by this appliance before."""
    hashes = [text_hash(t) for t in texts]
    found = exports.known_hashes(conn, hashes)
    return [h in found for h in hashes]


def check_seed_provenance(conn: Conn, texts: Sequence[str], policy: CurationPolicy) -> list[int]:
    """Indices of seed texts that match an earlier export; raise when the policy refuses them.

    Called by ``seeds import`` on the raw (pre-redaction) texts. With ``export_match_action: flag``
    the caller records the count in its audit event and tells the operator; with ``refuse`` the import
    stops with exit 3 before anything is written.
    """
    hits = [i for i, m in enumerate(matches_exports(conn, texts)) if m]
    if hits and policy.export_match_action == "refuse":
        raise PolicyViolation(
            f"{len(hits)} seed records match records this appliance exported earlier (first at record {hits[0]})"
            " — remove synthetic records from the seed file, or set curation.export_match_action: flag"
        )
    return hits
