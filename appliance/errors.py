"""One error hierarchy for the whole appliance.

The CLI translates these at its boundary into a one-line message and an exit code:

====  =====================================================
0     ok
1     bad input or configuration (:class:`BadInput`, :class:`ConfigError`)
2     usage error (raised by Typer/Click itself)
3     refused by policy (:class:`PolicyViolation` and subclasses)
4     integrity failure (:class:`IntegrityError` and subclasses)
====  =====================================================

Messages must say how to fix the problem, and must never contain raw seed text or PII values.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_INTEGRITY = 4


class ApplianceError(Exception):
    """Base class of every error the appliance raises on purpose."""

    exit_code: int = EXIT_BAD_INPUT


class BadInput(ApplianceError):
    """Raised when a user-supplied file, argument or record cannot be used as given."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(ApplianceError):
    """Raised when a policy file, workspace or model registry entry is missing or invalid."""

    exit_code = EXIT_BAD_INPUT


class WorkspaceMissing(ConfigError):
    """Raised when a command needs an initialised workspace and none exists at the home path."""


class NotFound(BadInput):
    """Raised when a named dataset, batch, prompt, model or request does not exist."""


class PolicyViolation(ApplianceError):
    """Raised when the effective policy refuses an action (exit 3)."""

    exit_code = EXIT_REFUSED


class BudgetExhausted(PolicyViolation):
    """Raised before training when a run would exceed the per-run or per-dataset privacy budget."""


class GateRefused(PolicyViolation):
    """Raised by the export gate when one or more policy thresholds fail."""

    def __init__(self, message: str, failures: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


class ApprovalRequired(PolicyViolation):
    """Raised when four-eyes approval is required and missing, or the requester tries to approve."""


class UnsafePayload(PolicyViolation):
    """Raised when an audit payload looks like it carries raw text (only counts, ids, hashes allowed)."""


class IntegrityError(ApplianceError):
    """Raised when stored data fails a cryptographic or structural check (exit 4)."""

    exit_code = EXIT_INTEGRITY


class ChainBroken(IntegrityError):
    """Raised when the audit hash chain is broken; carries the first bad sequence number."""

    def __init__(self, message: str, seq: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.seq = seq
        self.reason = reason


class ChecksumMismatch(IntegrityError):
    """Raised when a model, artifact or export file does not match its recorded SHA-256."""


class SignatureInvalid(IntegrityError):
    """Raised when an Ed25519 signature over a head or manifest does not verify."""
