"""Ingest stage: read seed files, scan them through the PII stage, split and store them atomically.

Nothing is stored before it is scanned, and only redacted/pseudonymised text is ever stored.
"""

from appliance.ingest.importer import ImportSummary, import_seeds
from appliance.ingest.readers import BadRecord, ReadResult, SeedRecord, read_seeds
from appliance.ingest.split import assign_splits, record_key

__all__ = [
    "BadRecord",
    "ImportSummary",
    "ReadResult",
    "SeedRecord",
    "assign_splits",
    "import_seeds",
    "read_seeds",
    "record_key",
]
