"""The label template, rendered the same way by the trainer, the generator and the probes.

``training.label_template`` may use ``{label}`` (the label as stored, e.g. ``card_arrival``), ``{label_words}``
(its words, ``card arrival``) and ``{label_description}`` (the operator's public description of the label from
``training.label_descriptions``, e.g. "a new card that has not arrived yet"; its words where none is given): a
verbaliser the model can read, so that the untrained prompt already writes about the label and DP training only
refines it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_SPLIT = re.compile(r"[^0-9A-Za-z]+")
FIELDS = ("{label}", "{label_words}", "{label_description}")


def label_words(label: str) -> list[str]:
    """The words of a label name: ``card_arrival`` → ``["card", "arrival"]`` (letters and digits, lower case)."""
    return [w.lower() for w in _SPLIT.split(label) if w]


def render_label_template(template: str, label: str, descriptions: Mapping[str, str] | None = None) -> str:
    """``template`` with ``{label}``, ``{label_words}`` and ``{label_description}`` filled in."""
    words = " ".join(label_words(label))
    return template.format(label=label, label_words=words, label_description=(descriptions or {}).get(label) or words)
