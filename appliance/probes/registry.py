"""The probe registry: each privacy probe under one unique name (duplicates are refused, as in opacus'
``accountants/registry.py``), run in registration order by the probe runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from appliance.probes.inputs import ProbeInputs


class Probe(Protocol):
    """A privacy probe: reads the batch's inputs, returns JSON-safe metrics (numbers, ids — never text)."""

    name: str

    def applies(self, inputs: ProbeInputs) -> str | None:
        """None when the probe can run on these inputs, else why not (stored as the probe's status)."""
        ...

    def run(self, inputs: ProbeInputs) -> dict[str, Any]: ...


_PROBES: dict[str, Callable[[], Probe]] = {}


def register(name: str) -> Callable[[Callable[[], Probe]], Callable[[], Probe]]:
    """Class decorator: register a probe factory under ``name``; a second registration is an error."""

    def deco(factory: Callable[[], Probe]) -> Callable[[], Probe]:
        if name in _PROBES:
            raise ValueError(f"probe {name!r} is already registered")
        _PROBES[name] = factory
        return factory

    return deco


def names() -> list[str]:
    return list(_PROBES)


def create(name: str) -> Probe:
    if name not in _PROBES:
        raise KeyError(f"unknown probe {name!r}; registered: {', '.join(_PROBES)}")
    return _PROBES[name]()
