"""Outputs that repeat the generation prompt's own public text instead of writing a record (pure functions).

The label prefix a soft prompt generates after ("A customer message about pin blocked (unblock):") is public:
the operator's template, the public label set and the DP-released keywords (:mod:`appliance.train.keywords`).
The model sometimes copies it: at ε = 1 the whole prefix came out as a record ("A customer message about fiat
currency support:"), and the keywords' parenthetical survives in a text ("I'm having trouble with my card
(help)", "(fee)"; bench/RESULTS.md, sessions 17–21). Both are dropped as ``prompt_echo``; reading them needs no
seed, so curation stays post-processing of the DP outputs.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from appliance.policy.templates import label_words

MIN_PHRASE_WORDS = 3  # a template's literal run shorter than this ("text", "label") is ordinary language
_PARENTHETICAL = re.compile(r"\(([^()]*)\)")


@dataclass(frozen=True)
class PromptText:
    """What of a prompt's label prefix an output must not repeat: the template's literal runs of at least
    ``MIN_PHRASE_WORDS`` words (as lower-case word tuples) and the released keywords of every label."""

    phrases: tuple[tuple[str, ...], ...] = ()
    keywords: frozenset[str] = frozenset()

    @classmethod
    def of(cls, template: str | None, keywords: Mapping[str, Sequence[str]] | None = None) -> PromptText:
        literals = [lit for lit, *_ in string.Formatter().parse(template)] if template else []
        phrases = tuple(p for p in (tuple(label_words(lit)) for lit in literals) if len(p) >= MIN_PHRASE_WORDS)
        words = frozenset(w.lower() for ws in (keywords or {}).values() for w in ws)
        return cls(phrases, words)


def _contains(words: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return any(tuple(words[i : i + n]) == tuple(phrase) for i in range(len(words) - n + 1))


def echoes_prompt(text: str, prompt: PromptText) -> bool:
    """True when ``text`` holds a literal phrase of the label template, or a parenthetical made only of
    released keywords ("(help)", "(fee, charged)"); a parenthetical that says anything else is prose."""
    if prompt.phrases:
        words = label_words(text)
        if any(_contains(words, p) for p in prompt.phrases):
            return True
    if prompt.keywords:
        for m in _PARENTHETICAL.finditer(text):
            inner = label_words(m.group(1))
            if inner and all(w in prompt.keywords for w in inner):
                return True
    return False
