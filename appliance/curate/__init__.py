"""Curation stage: mark every generated output kept or dropped with a reason; never delete.

Filters (order of precedence): PII still present on re-scan, verbatim leakage of a training seed span,
quality (length bounds, non-text, repeated n-grams), exact duplicates, near duplicates (MinHash LSH).
Provenance: hashes of exported records, so that seeds which are earlier exports are flagged at import.

    from appliance.curate import curate_batch
    report = curate_batch(ctx, "b-…")       # CurationReport: counts per reason, leak/PII hits
"""

from appliance.curate.provenance import check_seed_provenance, matches_exports, record_export_hashes
from appliance.curate.run import CurationReport, curate_batch, latest_curation
from appliance.curate.text import text_hash

__all__ = [
    "CurationReport",
    "check_seed_provenance",
    "curate_batch",
    "latest_curation",
    "matches_exports",
    "record_export_hashes",
    "text_hash",
]
