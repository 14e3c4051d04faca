"""Generation backend providers: a registry of engines by kind name (``generation.backend`` in the policy).

A provider knows how to get one engine ready on this machine and build it: which weights file to decode with
(``generation.weights``), whether a kernel self-test allows its fast paths, and what to do when decoding
crashed. The runner and the probes ask the registry for the policy's provider and never name an engine. The
shape follows simonw/llm's model registry (``register_models``): llama.cpp is registered here as the built-in
provider, and tests register their doubles through :func:`register` (``tests/conftest.py``), the way llm's
conftest registers its mock model, instead of patching the runner.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError
from appliance.generate.backend import GenerationBackend

DEFAULT_KIND = "llama.cpp"


@dataclass(frozen=True)
class Setup:
    """What a provider decided before decoding, for the batch's audit events."""

    path: Path  # the weights file decoded with
    sha256: str  # its SHA-256 ("sha256:<hex>")
    extra_bufts: bool  # llama.cpp's extra buffer types (CPU repack, AMX) on
    kernel_selftest: str  # ok | fallback:<signal> | forced | n/a
    selftest_event: dict[str, Any] | None = None  # a fresh self-test verdict to audit (None: cached or none)
    state: Any = field(default=None, compare=False)  # the provider's own record (llama.cpp: its Verdict)


@dataclass(frozen=True)
class CrashResponse:
    """What a provider changed after a native fault: the audit payload, and the clause the error message adds
    (the provider's own words, e.g. "extra buffer types are now off for this model on this machine")."""

    event: dict[str, Any]
    note: str


class Provider(abc.ABC):
    """One generation engine: how to prepare it on this machine and build a backend."""

    kind: str = ""

    def setup(self, model_path: Path, model_sha256: str, *, weights: str) -> Setup:
        """The weights to decode (``weights``: ``native`` or an engine's derivative such as ``f16``) and the
        kernel choice. Default: the verified model file as stored, no self-test."""
        return Setup(model_path, model_sha256, extra_bufts=False, kernel_selftest="n/a")

    @abc.abstractmethod
    def build(self, setup: Setup, *, isolate: bool, **options: Any) -> GenerationBackend:
        """A backend over ``setup.path``; ``isolate``: decode in a child process where the engine can."""

    def crashed(self, setup: Setup, signal_name: str) -> CrashResponse | None:
        """Decoding died of a native fault (``signal_name``) with ``setup``'s choice: record that, and return
        the changed choice's audit payload and a clause for the error message (None when nothing changed)."""
        return None


class LlamaCppProvider(Provider):
    """llama.cpp (llama-cpp-python): F16 batch weights, the extra-buffer-types self-test, decoding in a child."""

    kind = DEFAULT_KIND

    def setup(self, model_path: Path, model_sha256: str, *, weights: str) -> Setup:
        from appliance.generate.selftest import extra_bufts_safe
        from appliance.generate.weights import batch_weights

        path, sha = batch_weights(model_path, model_sha256) if weights == "f16" else (model_path, model_sha256)
        verdict = extra_bufts_safe(path, sha)
        fresh = None if verdict.cached else verdict.audit()
        return Setup(path, sha, verdict.extra_bufts, verdict.outcome, fresh, verdict)

    def build(self, setup: Setup, *, isolate: bool, **options: Any) -> GenerationBackend:
        if isolate:
            from appliance.generate.isolated import IsolatedBackend

            return IsolatedBackend(setup.path, use_extra_bufts=setup.extra_bufts, **options)
        from appliance.generate.llama import LlamaCppBackend

        return LlamaCppBackend(setup.path, use_extra_bufts=setup.extra_bufts, **options)

    def crashed(self, setup: Setup, signal_name: str) -> CrashResponse | None:
        from appliance.generate.selftest import record_crash

        verdict = setup.state
        if verdict is None or not setup.extra_bufts or verdict.outcome == "forced":
            return None
        event = record_crash(verdict, signal_name).audit()
        return CrashResponse(event, "llama.cpp's extra buffer types are now off for this model on this machine")


_PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider, *aliases: str) -> None:
    """Make ``provider`` available under its kind (and ``aliases``); a kind registered again is replaced."""
    if not provider.kind:
        raise ValueError("a provider needs a kind name")
    for name in (provider.kind, *aliases):
        _PROVIDERS[name] = provider


def unregister(kind: str) -> None:
    """Remove a kind and its aliases (the built-in llama.cpp provider cannot be removed)."""
    provider = _PROVIDERS.get(kind)
    if provider is None or provider.kind == DEFAULT_KIND:
        return
    for name in [n for n, p in _PROVIDERS.items() if p is provider]:
        del _PROVIDERS[name]


def kinds() -> list[str]:
    """The registered kinds, without aliases."""
    return sorted({p.kind for p in _PROVIDERS.values()})


def get(kind: str) -> Provider:
    """The provider registered as ``kind``, or a configuration error naming the known ones."""
    try:
        return _PROVIDERS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown generation backend {kind!r}; known: {', '.join(kinds())} — set generation.backend to one"
        ) from None


def build(
    kind: str, model_path: Path, model_sha256: str, *, weights: str = "native", isolate: bool = False, **options: Any
) -> GenerationBackend:
    """A backend of ``kind`` on the model's ``weights`` (``native``, or a derivative such as ``f16``), for the
    probes' scorer; the caller closes it."""
    provider = get(kind)
    return provider.build(provider.setup(model_path, model_sha256, weights=weights), isolate=isolate, **options)


register(LlamaCppProvider(), "llama_cpp", "llamacpp")
