"""Four-eyes export approval: one actor requests an export of a batch, a different actor approves it.

Used when the policy has ``approval.required: true``. A request is used up by the export it allows.
The requester can never approve their own request (:class:`ApprovalRequired`, exit 3); every request,
approval and refused self-approval is in the audit chain.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

from appliance.audit.ledger import append_in_tx
from appliance.context import Context
from appliance.db import transaction, utc_now
from appliance.errors import ApprovalRequired, BadInput, NotFound
from appliance.store import batches, exports


def get_request(conn: sqlite3.Connection, request_id: str) -> dict[str, Any]:
    row = exports.get_request(conn, request_id)
    if row is None:
        raise NotFound(f"unknown export request {request_id!r} — see `appliance export request BATCH`")
    return row


def request(ctx: Context, batch_id: str) -> dict[str, Any]:
    """Open a pending request to export ``batch_id`` on behalf of ``ctx.actor``."""
    rid = "r-" + secrets.token_hex(6)
    now = utc_now()
    with transaction(ctx.db) as conn:
        batches.require(conn, batch_id)
        exports.insert_request(
            conn, {"id": rid, "batch_id": batch_id, "requested_by": ctx.actor, "requested_at": now, "status": "pending"}
        )
        append_in_tx(
            conn,
            "export.request",
            {"request_id": rid, "batch_id": batch_id, "policy_sha256": ctx.policy_sha256},
            ctx.actor,
        )
    return {"id": rid, "batch_id": batch_id, "requested_by": ctx.actor, "requested_at": now, "status": "pending"}


def approve(ctx: Context, request_id: str) -> dict[str, Any]:
    """Approve a pending request; the approver must not be the requester."""
    with transaction(ctx.db) as conn:
        row = get_request(conn, request_id)
        if row["status"] != "pending":
            raise BadInput(f"export request {request_id} is already {row['status']} — open a new one")
        if row["requested_by"] == ctx.actor:
            append_in_tx(
                conn,
                "export.approve_refused",
                {"request_id": request_id, "batch_id": row["batch_id"], "reason": "self_approval"},
                ctx.actor,
            )
    if row["requested_by"] == ctx.actor:  # the refusal event above is committed
        raise ApprovalRequired(
            f"{ctx.actor} requested export {request_id} and cannot approve it — four-eyes: another actor must"
            " run `appliance export approve`"
        )
    now = utc_now()
    with transaction(ctx.db) as conn:
        approved = {"status": "approved", "approved_by": ctx.actor, "approved_at": now}
        n = exports.advance_request(conn, request_id, approved, from_status="pending")
        if n != 1:
            raise BadInput(f"export request {request_id} changed while approving — try again")
        append_in_tx(
            conn,
            "export.approve",
            {
                "request_id": request_id,
                "batch_id": row["batch_id"],
                "requested_by": row["requested_by"],
                "policy_sha256": ctx.policy_sha256,
            },
            ctx.actor,
        )
    return {**row, "status": "approved", "approved_by": ctx.actor, "approved_at": now}


def approved_request(conn: sqlite3.Connection, batch_id: str) -> dict[str, Any]:
    """The oldest approved, unused request for ``batch_id``, or :class:`ApprovalRequired` with the fix."""
    row = exports.oldest_approved_request(conn, batch_id)
    if row is None:
        raise ApprovalRequired(
            f"exporting batch {batch_id} needs four-eyes approval — run `appliance export request {batch_id}`,"
            " then a different actor runs `appliance export approve REQUEST_ID`"
        )
    return row


def mark_used(conn: sqlite3.Connection, request_id: str, export_id: str) -> None:
    """Inside the export's transaction: the request allowed this export and cannot be used again."""
    n = exports.advance_request(conn, request_id, {"status": "used", "export_id": export_id}, from_status="approved")
    if n != 1:
        raise ApprovalRequired(f"export request {request_id} was used by another export — request approval again")
