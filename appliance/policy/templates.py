"""The label template, rendered the same way by the trainer, the generator and the probes.

``training.label_template`` may use ``{label}`` (the label as stored, e.g. ``card_arrival``) and
``{label_words}`` (its words, ``card arrival``): a verbaliser the model can read, so that the untrained
prompt already writes about the label and DP training only refines it.
"""

from __future__ import annotations

import re

_SPLIT = re.compile(r"[^0-9A-Za-z]+")
FIELDS = ("{label}", "{label_words}")


def label_words(label: str) -> list[str]:
    """The words of a label name: ``card_arrival`` → ``["card", "arrival"]`` (letters and digits, lower case)."""
    return [w.lower() for w in _SPLIT.split(label) if w]


def render_label_template(template: str, label: str) -> str:
    """``template`` with ``{label}`` and ``{label_words}`` filled in."""
    return template.format(label=label, label_words=" ".join(label_words(label)))
