"""Audit stage: the hash-chained, append-only event ledger every other stage writes to."""

from appliance.audit.chain import GENESIS, canonical_json, event_hash
from appliance.audit.ledger import AuditLedger, Event, VerifyResult, append_in_tx

__all__ = ["GENESIS", "AuditLedger", "Event", "VerifyResult", "append_in_tx", "canonical_json", "event_hash"]
