"""Canaries as the probes see them (draft until the trainer lands)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Canary:
    secret: str
    text: str
    template: str
    digits: int
    label: str | None


def load_canaries(ctx: Any, prompt: dict[str, Any]) -> list[Canary]:
    return []


def end_token_id(backend: Any, prompt: dict[str, Any]) -> int | None:
    return None
