"""Gate facts bound to the audit chain: each row the gate trusts is checked against the event that wrote it.

Rows (``prompts``, ``batches`` and their outputs, ``privacy_charges`` and ``unit_charges``, the records' budget
keys, ``curations``, ``evaluations``, ``probes``) can be edited with any SQLite
client; the event that recorded each of them cannot be changed without breaking the chain. Before the
gate decides, every fact it reads is compared with that event, whose own hash is recomputed and linked to
its successor's ``prev_hash``. A row without its event, or one that differs from it, is
:class:`ChainBroken` (exit 4): ``UPDATE prompts SET dp = 1, exportable = 1`` on a ``--no-dp`` prompt no
longer buys a signed export.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from appliance.audit import rows as event_rows
from appliance.audit.chain import event_hash, row_digest
from appliance.audit.rows import EventRow
from appliance.budget.ledger import CHARGE_EVENTS, CHARGE_FIELDS, charge_digest, stored_units_digest
from appliance.curate.kept import kept_digest, outputs_digest
from appliance.errors import ChainBroken
from appliance.ingest.digest import record_keys_digest, records_digest, splits_digest
from appliance.store import datasets, prompts

PROMPT_KINDS = ("train.run", "train.non_dp")
# row column -> audit payload key, for each table the gate reads
PROMPT_FIELDS = {
    "dataset": "dataset",
    "model_sha256": "model_sha256",
    "dp": "dp",
    "exportable": "exportable",
    "epsilon": "epsilon",
    "delta": "delta",
    "noise_multiplier": "noise_multiplier",
    "sample_rate": "sample_rate",
    "steps": "steps",
    "artifact_sha256": "artifact_sha256",
}
BATCH_FIELDS = {"dataset": "dataset", "mode": "mode", "prompt_id": "prompt_id", "model_sha256": "model_sha256"}
CURATION_FIELDS = {"kept_leak_hits": "kept_leak_hits", "kept_pii_hits": "kept_pii_hits", "n_kept": "n_kept"}
PROBE_FIELDS = {"summary": "summary", "batch_id": "batch_id", "prompt_id": "prompt_id"}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is not None and b is not None and bool(a) == bool(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, str) and isinstance(b, dict):
        a = json.loads(a)
    return bool(a == b)


def verified_event(conn: sqlite3.Connection, row: EventRow | None, what: str) -> tuple[str, dict[str, Any]]:
    """(kind, payload) of an ``events`` row after recomputing its hash and its link to the next event."""
    if row is None:
        raise ChainBroken(f"{what} has no audit event — the row was inserted outside the appliance", reason="missing")
    seq, kind, payload, h = row["seq"], row["kind"], row["payload"], row["hash"]
    if event_hash(row["prev_hash"], seq, row["ts"], row["actor"], kind, payload) != h:
        raise ChainBroken(f"audit event {seq} ({what}) was edited", seq=seq, reason="edited")
    nxt = event_rows.at(conn, seq + 1)
    if nxt is not None and nxt["prev_hash"] != h:
        raise ChainBroken(f"audit event {seq} ({what}) is not linked to its successor", seq=seq, reason="rewritten")
    return kind, json.loads(payload)


def _by_seq(conn: sqlite3.Connection, seq: Any, what: str) -> tuple[str, dict[str, Any]]:
    return verified_event(conn, None if seq is None else event_rows.at(conn, seq), what)


def _by_key(
    conn: sqlite3.Connection, kinds: tuple[str, ...], key: str, value: str, what: str
) -> tuple[str, dict[str, Any]]:
    return verified_event(conn, event_rows.first_with(conn, kinds, key, value), what)


def _compare(row: dict[str, Any], payload: dict[str, Any], fields: dict[str, str], what: str, seq: Any) -> None:
    for col, key in fields.items():
        if col in row and not _same(row[col], payload.get(key)):
            raise ChainBroken(
                f"{what}: column {col} differs from its audit event — the row was edited after it was recorded",
                seq=seq,
                reason="row edited",
            )


def _newest(conn: sqlite3.Connection, kind: str, match: dict[str, Any], seq: Any, what: str) -> None:
    """The row the gate reads is bound to the newest such event: a newer result's row was not deleted to bring
    an older, kinder one back."""
    newest = event_rows.last_matching(conn, kind, match)
    if newest is not None and newest["seq"] != seq:
        raise ChainBroken(
            f"{what}: a newer {kind} event (seq {newest['seq']}) has no row — the row was deleted after it was"
            " recorded",
            seq=newest["seq"],
            reason="row deleted",
        )


def check_prompt(conn: sqlite3.Connection, prompt: dict[str, Any]) -> None:
    """The prompt row is what its ``train.run`` / ``train.non_dp`` event says; a non-DP run is never DP."""
    what = f"prompt {prompt['id']}"
    kind, payload = _by_key(conn, PROMPT_KINDS, "prompt_id", prompt["id"], what)
    _compare(prompt, payload, PROMPT_FIELDS, what, None)
    bound = payload.get("row_sha256")  # the whole row's content hash (events written since issue 15)
    cols = payload.get("row_columns") or []
    if bound is not None and row_digest({c: prompt.get(c) for c in cols}) != bound:
        raise ChainBroken(
            f"{what}: the row differs from the content hash in its audit event — it was edited after it was recorded",
            reason="row edited",
        )
    if kind == "train.non_dp" and (prompt["dp"] or prompt["exportable"]):
        raise ChainBroken(f"{what} was trained without DP (train.non_dp) but its row says dp", reason="row edited")


def check_batch(conn: sqlite3.Connection, batch: dict[str, Any]) -> None:
    """The batch's mode, prompt and model are what its ``generate.start`` event says."""
    what = f"batch {batch['id']}"
    _, payload = _by_key(conn, ("generate.start",), "batch_id", batch["id"], what)
    _compare(batch, payload, BATCH_FIELDS, what, None)


def check_curation(conn: sqlite3.Connection, cur: dict[str, Any]) -> dict[str, Any]:
    """The curation's counters, and the batch's kept outputs (what export writes), are what ``curate.run`` says;
    returns that verified event's payload."""
    what = f"curation {cur['id']} of batch {cur['batch_id']}"
    seq = cur.get("event_seq")
    _, payload = _by_seq(conn, seq, what)
    if payload.get("batch") != cur["batch_id"]:
        raise ChainBroken(f"{what} names another batch's audit event", seq=seq, reason="row edited")
    _compare(cur, payload, CURATION_FIELDS, what, seq)
    _newest(conn, "curate.run", {"batch": cur["batch_id"]}, seq, what)
    bound = payload.get("kept_sha256")
    if bound is None:
        raise ChainBroken(
            f"{what}: its audit event does not bind the kept outputs (curated by an older version) — run"
            f" `appliance curate {cur['batch_id']}` again",
            seq=seq,
            reason="unbound",
        )
    if kept_digest(conn, cur["batch_id"]) != bound:
        raise ChainBroken(
            f"{what}: the kept outputs differ from its audit event — an output's status, text or label was edited"
            " after curation",
            seq=seq,
            reason="row edited",
        )
    return payload


def check_evaluation(conn: sqlite3.Connection, ev: dict[str, Any]) -> None:
    """The evaluation's metrics (MAUVE and the rest the gate reads) are what its ``evaluate.run`` event says."""
    what = f"evaluation {ev['id']} of batch {ev['batch_id']}"
    _, payload = _by_seq(conn, ev.get("event_seq"), what)
    if payload.get("batch") != ev["batch_id"]:
        raise ChainBroken(f"{what} names another batch's audit event", seq=ev.get("event_seq"), reason="row edited")
    metrics = payload.get("metrics") or {}
    fields = {"metrics": "metrics", "reference": "reference", "curation_id": "curation_id"}
    _compare(ev, payload, fields, what, ev.get("event_seq"))
    _compare(ev, metrics, {"mauve": "mauve"}, what, ev.get("event_seq"))
    match = {"batch": ev["batch_id"], "reference": ev["reference"], "curation_id": ev["curation_id"]}
    _newest(conn, "evaluate.run", match, ev.get("event_seq"), what)


def check_probe(conn: sqlite3.Connection, probe: dict[str, Any]) -> None:
    what = f"probe record {probe['id']}"
    _, payload = _by_seq(conn, probe.get("event_seq"), what)
    if payload.get("probe_id") != probe["id"]:
        raise ChainBroken(f"{what} names another audit event", seq=probe.get("event_seq"), reason="row edited")
    _compare(probe, payload, PROBE_FIELDS, what, probe.get("event_seq"))
    _newest(conn, "probe.run", {"batch_id": probe["batch_id"]}, probe.get("event_seq"), what)


def import_event(conn: sqlite3.Connection, dataset: str) -> tuple[str, dict[str, Any]]:
    """The dataset's verified ``seeds.import`` event (where its public label set is declared)."""
    return _by_key(conn, ("seeds.import",), "dataset", dataset, f"dataset {dataset}")


def check_charges(conn: sqlite3.Connection) -> None:
    """Every privacy charge (all datasets: a record's budget spans them) is what its latest audit event says.

    The event carries the hash of the charge row and of its unit rows; a changed ε, δ or status, a deleted
    unit row or a deleted charge is exit 4, so no edit can lower what a record has spent.
    """
    latest: dict[int, EventRow] = {}
    for key, row in event_rows.latest_by(conn, CHARGE_EVENTS, "charge_id").items():
        latest[int(key)] = row
    seen = set()
    for charge in prompts.charges(conn, CHARGE_FIELDS):
        cid = int(charge["id"])
        seen.add(cid)
        what = f"privacy charge {cid} of dataset {charge['dataset']}"
        _, payload = verified_event(conn, latest.get(cid), what)
        if payload.get("charge_sha256") != charge_digest(charge):
            raise ChainBroken(
                f"{what} differs from its audit event — the row was edited after it was recorded", reason="row edited"
            )
        if stored_units_digest(conn, cid) != charge["units_sha256"]:
            raise ChainBroken(
                f"{what}: its per-record charges differ from its audit event — unit rows were edited or deleted",
                reason="row edited",
            )
    gone = sorted(set(latest) - seen)
    if gone:
        raise ChainBroken(
            f"privacy charge {gone[0]} is in the audit chain but not in the database — the row was deleted",
            reason="row deleted",
        )


def _import_payload(conn: sqlite3.Connection, dataset: str) -> dict[str, Any] | None:
    """The dataset's verified ``seeds.import`` payload; None for a dataset imported before events bound it."""
    row = event_rows.first_with(conn, ("seeds.import",), "dataset", dataset)
    return None if row is None else verified_event(conn, row, f"dataset {dataset}")[1]


def check_records(conn: sqlite3.Connection, dataset: str) -> None:
    """The dataset's records carry the texts, splits and budget keys its ``seeds.import`` event bound (see
    :mod:`appliance.ingest.digest`); a digest the event lacks (imported by an older version) is not checked."""
    payload = _import_payload(conn, dataset)
    if payload is None:
        return
    rows = datasets.unit_rows(conn, dataset, split=None)
    for key, digest, what in (
        ("records_sha256", records_digest, "texts"),
        ("splits_sha256", splits_digest, "train/holdout splits"),
        ("units_sha256", record_keys_digest, "budget keys (unit_key, subject_key)"),
    ):
        if payload.get(key) is not None and digest(rows) != payload[key]:
            raise ChainBroken(
                f"dataset {dataset}: its records' {what} differ from its import's audit event — the records were"
                " edited after import",
                reason="row edited",
            )


def check_outputs(conn: sqlite3.Connection, batch_id: str) -> None:
    """The batch's outputs (index, text, label, canary count) are what every ``generate.finish`` and
    ``generate.interrupted`` event bound when it was recorded — the probes' inputs and what curation chose from.

    Each event binds the outputs stored by then (an interrupted run names which), so an output edited after any
    of them is exit 4, resumed or not. A batch started by a version that binds outputs but with no such event
    has not finished generating; one started by an older version is not checked.
    """
    closes = event_rows.all_matching(conn, ("generate.finish", "generate.interrupted"), {"batch_id": batch_id})
    bound = False
    for row in closes:
        _, payload = verified_event(conn, row, f"batch {batch_id}'s {row['kind']}")
        digest = payload.get("outputs_sha256")
        if digest is None:
            continue
        bound = True
        if outputs_digest(conn, batch_id, payload.get("outputs_idx")) != digest:
            raise ChainBroken(
                f"batch {batch_id}: its outputs differ from its {row['kind']} audit event (seq {row['seq']}) — an"
                " output's text, label or canary count was edited after generation",
                seq=row["seq"],
                reason="row edited",
            )
    start = event_rows.first_with(conn, ("generate.start",), "batch_id", batch_id)
    if not bound and start is not None and verified_event(conn, start, f"batch {batch_id}")[1].get("binds_outputs"):
        raise ChainBroken(
            f"batch {batch_id} has no audit event binding its outputs — its generation never finished: run"
            f" `appliance generate --resume {batch_id}`",
            seq=start["seq"],
            reason="missing",
        )


def budget_unit(conn: sqlite3.Connection, dataset: str) -> str:
    """``"subject"`` when the dataset's verified ``seeds.import`` event declared a subject field, else ``"record"``.

    Read from the event, not the mutable ``datasets`` row, since it goes into the signed manifest; a dataset
    without an import event (written before events bound it) is claimed at the weaker, record level.
    """
    payload = _import_payload(conn, dataset)
    return "subject" if payload and payload.get("subject_field") else "record"


def label_set(conn: sqlite3.Connection, dataset: str) -> dict[str, Any] | None:
    """Where a dataset's exportable labels come from, per its verified ``seeds.import`` event: a declared
    public schema, or a DP partition selection whose (ε, δ) is charged to every labelled record (and so already part of
    the dataset's spent ε); None when no label set was declared or selected (labels never leave)."""
    payload = _import_payload(conn, dataset)
    if payload is None:
        return None
    sel = payload.get("label_selection")
    if sel:
        return {"source": "dp-selection", **{k: sel[k] for k in ("mechanism", "epsilon", "delta")}}
    return {"source": "declared"} if payload.get("labels_public") is not None else None
