"""The PII engine interface and its provider: what every detector must offer the pipeline.

An engine turns texts into raw findings (entity type, character offsets into the text, score). It
knows nothing about policy actions; :mod:`appliance.pii.pipeline` applies thresholds and actions.
Engines are built by :func:`build_engine` from the policy's ``pii`` section and cached per process,
so the expensive load (spaCy + recognizers, ~5 s) happens once.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.audit.chain import canonical_json
from appliance.policy.schema import PiiPolicy


@dataclass(frozen=True, order=True)
class Finding:
    """One detected entity: offsets into the original text (end-exclusive), never the value."""

    start: int
    end: int
    type: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "start": self.start, "end": self.end, "score": round(self.score, 4)}


class PiiEngine(ABC):
    """A PII detector. Implementations must be deterministic for a given text and configuration."""

    name: str = "abstract"

    @abstractmethod
    def analyze(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Findings for each text (batched; may use several processes)."""

    @abstractmethod
    def analyze_one(self, text: str) -> list[Finding]:
        """Findings for one text, in-process (the naive path; used for small inputs)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Engine name, versions and model hash for the audit log (short strings and hashes only)."""


EngineFactory = Callable[[PiiPolicy], PiiEngine]
_FACTORIES: dict[str, EngineFactory] = {}
_CACHE: dict[tuple[str, str], PiiEngine] = {}
_LOCK = threading.Lock()


def register_engine(name: str) -> Callable[[EngineFactory], EngineFactory]:
    """Register an engine factory under ``name``; duplicates are refused."""

    def deco(factory: EngineFactory) -> EngineFactory:
        if name in _FACTORIES:
            raise ValueError(f"PII engine {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return deco


def engine_names() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def build_engine(policy: PiiPolicy, kind: str = "presidio") -> PiiEngine:
    """The engine for ``policy`` with its packs merged (built once per process and configuration, then reused)."""
    from appliance.pii.packs import effective

    _load_builtin()
    if kind not in _FACTORIES:
        raise ValueError(f"unknown PII engine {kind!r}; known: {', '.join(sorted(_FACTORIES))}")
    policy = effective(policy)
    key = (kind, _detection_key(policy))
    with _LOCK:
        engine = _CACHE.get(key)
        if engine is None:
            engine = _FACTORIES[kind](policy)
            _CACHE[key] = engine
        return engine


def _detection_key(policy: PiiPolicy) -> str:
    """What the engine depends on: everything but the actions (thresholds still set its score floor)."""
    data = policy.model_dump(mode="json")
    data["default_action"] = None
    for rule in data["entities"].values():
        rule["action"] = None
    return canonical_json(data)


def _load_builtin() -> None:
    import appliance.pii.presidio_engine  # noqa: F401  (registers "presidio")
