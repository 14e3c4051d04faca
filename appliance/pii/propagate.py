"""One name, every mention: in a text written in lower case, a name found once is a name wherever it recurs.

In a speech transcript a patient's first name is cued once ("hi , karen .", "karen is a 34-year-old
female") and then recurs bare ("so karen tell me ...", "the remainder of your exam karen is normal"),
where neither capitals nor a cue mark it. :func:`propagate_names` adds a PERSON finding, with the score of
the finding it copies, at every other whole-word occurrence of a word of a PERSON finding scored at or
above the type's threshold — only in texts written in lower case (in cased text the capital and the NER
see every mention), only for words that are names (a lexicon name that is not an everyday word, or a
word English does not know; never vocabulary, titles or stop words), and, for names that are also common
words ("mark", "grace"), not after a determiner, a modal or "to" ("a mark", "to mark"). Pure: findings in,
findings out; a finding below the threshold copies nothing, so only what will be replaced spreads.
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

from appliance.pii import lexicon
from appliance.pii.casing import written_in_lower_case
from appliance.pii.engine import Finding

_WORD = regex.compile(r"\p{L}[\p{L}'’-]*")
_MENTION = regex.compile(r"\p{L}[\p{L}-]*(?:['’]\p{L}+)*?(?=['’]s\b|[^\p{L}'’-]|$)")  # "karen's" -> "karen"
_BEFORE = frozenset(
    {
        "a", "an", "the", "to", "will", "would", "can", "could", "should", "must", "might", "may", "this",
        "these", "those", "my", "your", "his", "her", "its", "our", "their", "no", "any", "some", "every", "each",
    }
)  # fmt: skip


_STOP = lexicon.stop_words()


def name_words(value: str) -> list[str]:
    """The words of a PERSON finding that identify on their own (case-folded)."""
    out = []
    for w in _WORD.findall(value):
        c = w.casefold()
        if len(c) < 2 or c in _STOP or c in lexicon.TITLES or lexicon.is_vocabulary(c):
            continue
        if lexicon.is_name(c) or not lexicon.is_known(c):
            out.append(c)
    return out


def propagate_names(text: str, findings: Iterable[Finding], *, threshold: float) -> list[Finding]:
    """``findings`` plus a PERSON finding at each further mention of a found name (lower-case text only)."""
    found = sorted(findings)
    if not written_in_lower_case(text):
        return found
    scores: dict[str, float] = {}
    for f in found:
        if f.type == "PERSON" and f.score >= threshold:
            for w in name_words(text[f.start : f.end]):
                scores[w] = max(scores.get(w, 0.0), f.score)
    if not scores:
        return found
    persons = [(f.start, f.end) for f in found if f.type == "PERSON"]
    common = lexicon.common_words()
    added: list[Finding] = []
    words = list(_MENTION.finditer(text))
    for i, m in enumerate(words):
        w = m.group().casefold()
        if w not in scores or any(s <= m.start() and m.end() <= e for s, e in persons):
            continue
        if w in common and i and words[i - 1].group().casefold() in _BEFORE:
            continue
        added.append(Finding(m.start(), m.end(), "PERSON", scores[w]))
    return sorted(found + added)
