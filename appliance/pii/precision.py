"""Second opinion on name-like findings from spaCy NER and the proper-noun rule (pure, per finding).

A PERSON or ORGANIZATION finding is dropped when every content word in it is vocabulary: a common
English word that is no name ("the Court", "Human Rights", "Government"), a term of the policy's
allow-list (packs add their domain's terms) or a word matching one of its ``allow_patterns``; a title
vouches for a name ("Ms Dubois"). Any name-like finding inside a section header ("REVIEW OF SYSTEMS",
"History of Present Illness:") is dropped unless it holds a lexicon name or a word English does not
use (a speaker label such as "Koppány:" is a name); one that starts in a header and runs past it
("Medical Treatment: Initiate Ultram") is cut to what follows the header and judged like a header; a
lone acronym ("DMV", "MD") is dropped. In a text not written in lower case, an NER finding without a
capital letter and without a lexicon name ("mild thyromegaly", "bowel") is dropped: there names are
capitalised. Findings of cue-based and pattern
recognizers are never touched: the cue already explains them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import regex

from appliance.pii import lexicon
from appliance.pii.casing import written_in_lower_case

if TYPE_CHECKING:  # Presidio's result type, only named here: importing this module does not load Presidio
    from presidio_analyzer import RecognizerResult

RECOGNIZER_NAME_KEY = "recognizer_name"  # presidio_analyzer.RecognizerResult.RECOGNIZER_NAME_KEY

GUARDED_RECOGNIZERS = frozenset({"SpacyRecognizer", "appliance_proper_noun"})
VOCABULARY_TYPES = frozenset({"PERSON", "ORGANIZATION"})
HEADER_TYPES = frozenset({"PERSON", "ORGANIZATION", "LOCATION", "NRP"})
_WORD = regex.compile(r"\p{L}[\p{L}'’]*")
_ROMAN = regex.compile(r"M{0,3}(?:C[MD]|D?C{0,3})(?:X[CL]|L?X{0,3})(?:I[XV]|V?I{0,3})")
_ACRONYM = regex.compile(r"\p{Lu}{2,5}s?")
_CAPITAL = regex.compile(r"[\p{Lu}\d]")
_SMALL = r"(?:of|and|or|the|to|for|in|on|with|a|an|&)"
# a line opening with ALL-CAPS words up to a colon or the line's end, or Title-case words up to a colon
_HEADER = regex.compile(
    r"^[ \t#*•>-]*(?:"
    r"(?:[\p{Lu}\d][\p{Lu}\d'’&/().,-]*[ \t]*)+(?=:|[ \t]*$)"
    rf"|\p{{Lu}}[\p{{L}}'’-]*(?:[ \t]+(?:{_SMALL}|\p{{Lu}}[\p{{L}}'’-]*|\(\p{{Lu}}+\)))*(?=[ \t]*:)"
    r")",
    regex.M,
)


class PrecisionFilter:
    """Drops vocabulary and header findings; built once per engine from the (pack-merged) policy."""

    def __init__(self, allow_terms: Iterable[str] = (), allow_patterns: Sequence[str] = ()) -> None:
        self.vocabulary = frozenset(w.casefold() for t in allow_terms for w in _WORD.findall(t))
        self.patterns = [regex.compile(p, regex.IGNORECASE) for p in allow_patterns]
        self.stop = lexicon.stop_words()

    def apply(self, text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
        guarded = [r for r in results if r.entity_type in HEADER_TYPES and _recognizer(r) in GUARDED_RECOGNIZERS]
        if not guarded:
            return results
        headers = [m.span() for m in _HEADER.finditer(text) if _WORD.search(m.group())]
        cut = {id(r) for r in guarded if _cut_header(text, r, headers)}
        cased = not written_in_lower_case(text)
        drop = {id(r) for r in guarded if self._drop(text, r, headers, cased=cased, cut=id(r) in cut)}
        return [r for r in results if id(r) not in drop] if drop else results

    def _drop(self, text: str, r: RecognizerResult, headers: list[tuple[int, int]], *, cased: bool, cut: bool) -> bool:
        words = _WORD.findall(text[r.start : r.end])
        if not words:
            return True
        named = any(lexicon.is_name(w) for w in words)
        if cased and _recognizer(r) == "SpacyRecognizer" and not named and not _CAPITAL.search(text[r.start : r.end]):
            return True  # the NER on lower-case words of a cased text: "mild thyromegaly", "bowel"
        in_header = cut or any(s <= r.start and r.end <= e for s, e in headers)
        if in_header and not (named or any(not lexicon.is_known(w) for w in words)):
            return True  # a header (or its value) of English words; an unknown word may be a speaker's name
        if len(words) == 1 and _ACRONYM.fullmatch(words[0]) and not lexicon.is_name(words[0]):
            return True  # an acronym ("DMV", "ISP", "MD") names an agency, a title or a unit, not a person
        if r.entity_type not in VOCABULARY_TYPES:
            return False
        titled = [w for w in words if w.casefold() in lexicon.TITLES]
        if len(titled) == len(words):
            return True  # a title alone ("dr.") is no name
        before = _WORD.findall(text[max(0, r.start - 6) : r.start])
        if titled or any(w.casefold() in lexicon.TITLES for w in before[-1:]):
            return False  # "Ms Dubois", "Dr. Bernstein": a title vouches for the name
        content = [w for w in words if w.casefold() not in self.stop] or words
        return all(self.is_vocabulary(w) for w in content)

    def is_vocabulary(self, word: str) -> bool:
        w = word.casefold()
        if word.isupper() and _ROMAN.fullmatch(word):
            return True  # "Cranial nerves II through XII", "Part IV"
        return w in self.vocabulary or lexicon.is_vocabulary(w) or any(p.fullmatch(w) for p in self.patterns)


def _cut_header(text: str, r: RecognizerResult, headers: list[tuple[int, int]]) -> bool:
    """Start a finding that begins inside a header and runs past it at the first word after the header."""
    for s, e in headers:
        if s <= r.start < e < r.end:
            m = _WORD.search(text, e, r.end)
            if m is not None:
                r.start = m.start()
            return True
    return False


def _recognizer(r: RecognizerResult) -> str:
    name: str = (r.recognition_metadata or {}).get(RECOGNIZER_NAME_KEY, "")
    return name
