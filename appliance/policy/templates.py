"""The label template, rendered the same way by the trainer, the generator and the probes.

``training.label_template`` may use ``{label}`` (the label as stored, e.g. ``card_arrival``), ``{label_words}``
(its words, ``card arrival``) and ``{label_description}`` (the operator's public description of the label from
``training.label_descriptions``, e.g. "a new card that has not arrived yet"; its words where none is given): a
verbaliser the model can read, so that the untrained prompt already writes about the label and DP training only
refines it.

``{label_keywords}`` adds the words the label's seeds use most, more than the other labels' seeds do, as released
by the DP keyword histogram at training (``training.label_keywords``, :mod:`appliance.train.keywords`):
`` (link, app)`` — a space, then the words in parentheses — or nothing where none was released, so
"about {label_words}{label_keywords}:" reads "about card linking (link, app):" or "about card linking:".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_SPLIT = re.compile(r"[^0-9A-Za-z]+")
FIELDS = ("{label}", "{label_words}", "{label_description}")  # each names the label: a template needs one


def label_words(label: str) -> list[str]:
    """The words of a label name: ``card_arrival`` → ``["card", "arrival"]`` (letters and digits, lower case)."""
    return [w.lower() for w in _SPLIT.split(label) if w]


def keywords_text(words: Sequence[str]) -> str:
    """What ``{label_keywords}`` renders to: `` (a, b)``, or "" for no words."""
    return f" ({', '.join(words)})" if words else ""


def render_label_template(
    template: str,
    label: str,
    descriptions: Mapping[str, str] | None = None,
    keywords: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """``template`` with ``{label}``, ``{label_words}``, ``{label_description}`` and ``{label_keywords}`` filled
    in."""
    words = " ".join(label_words(label))
    return template.format(
        label=label,
        label_words=words,
        label_description=(descriptions or {}).get(label) or words,
        label_keywords=keywords_text((keywords or {}).get(label) or ()),
    )
