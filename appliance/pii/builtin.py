"""The appliance's own recognizers, switched on by name in ``pii.builtin_recognizers``.

Each fills a gap in Presidio's defaults with general rules, not lists of known values:
``street_address`` (no address recognizer exists), ``phone_context`` and ``card_context`` (numbers in
local or unusual formats that Presidio's validators reject, accepted only next to a context word
such as "phone" or "card"), ``person_cues`` (names after a title or "my name is", which the small
spaCy model often misses or calls ORGANIZATION), ``ssn_format`` (SSN-formatted numbers Presidio
rejects as well-known samples, which must still not be stored), ``proper_nouns`` (unexplained proper
nouns), ``spoken_names`` (names in any letter case after cues, :mod:`.names`), ``date_of_birth``
(written and spoken dates after a birth cue, :mod:`.birth`) and ``spoken_digits`` (phone numbers read
out digit by digit, :mod:`.spoken`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy
import regex
from presidio_analyzer import AnalysisExplanation, EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from spacy.attrs import TAG

from appliance.pii import lexicon
from appliance.pii.address import StreetAddressRecognizer
from appliance.pii.birth import date_of_birth_recognizer
from appliance.pii.names import SpokenNameRecognizer
from appliance.pii.spoken import spoken_digits_recognizer

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts
    from spacy.tokens import Token

Factory = Callable[[], EntityRecognizer]
_REGISTRY: dict[str, Factory] = {}


def builtin(name: str) -> Callable[[Factory], Factory]:
    """Register a recognizer factory under ``name``; duplicates are refused."""

    def deco(fn: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"built-in recognizer {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def builtin_names() -> list[str]:
    return sorted(_REGISTRY)


def make(name: str) -> EntityRecognizer:
    if name not in _REGISTRY:
        raise ValueError(f"unknown built-in recognizer {name!r}; known: {', '.join(builtin_names())}")
    return _REGISTRY[name]()


_WORDS = regex.compile(r"\p{L}+")
CONTEXT_BEFORE, CONTEXT_AFTER, CONTEXT_BOOST = 5, 2, 0.35  # as Presidio's LemmaContextAwareEnhancer


class _DigitsRecognizer(PatternRecognizer):
    """A pattern recognizer that also checks how many digits the match holds."""

    def __init__(self, *, min_digits: int, max_digits: int, **kwargs: Any) -> None:
        self.min_digits, self.max_digits = min_digits, max_digits
        super().__init__(**kwargs)

    def validate_result(self, pattern_text: str) -> bool | None:
        n = sum(c.isdigit() for c in pattern_text)
        return None if self.min_digits <= n <= self.max_digits else False

    def enhance_using_context(
        self,
        text: str,
        raw_recognizer_results: list[RecognizerResult],
        other_raw_recognizer_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        """Context words counted from the match's own edges: Presidio's window starts at the first token
        of a match, so for "28-64-66-98 office" the word after the number is out of its reach."""
        for r in raw_recognizer_results:
            before = _WORDS.findall(text[max(0, r.start - 60) : r.start])[-CONTEXT_BEFORE:]
            after = _WORDS.findall(text[r.end : r.end + 40])[:CONTEXT_AFTER]
            words = [w.lower() for w in before + after]
            if any(c in w for c in self.context for w in words):
                r.score = min(max(r.score + CONTEXT_BOOST, 0.4), 1.0)
                r.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
        return raw_recognizer_results


@builtin("street_address")
def _street_address() -> EntityRecognizer:
    return StreetAddressRecognizer()


@builtin("phone_context")
def _phone_context() -> EntityRecognizer:
    group = r"(?:\(\d{1,4}\)|\d{1,5})"
    rx = (
        rf"(?<![\w+.-])(?:\+\d{{1,3}}[ .-]?)?{group}(?:[ .-]?(?:\(0\)[ ]?)?{group}){{1,5}}(?:[ ]?x\d{{1,5}})?(?!\w|-\d)"
    )
    return _DigitsRecognizer(
        min_digits=7,
        max_digits=15,
        supported_entity="PHONE_NUMBER",
        name="appliance_phone_context",
        patterns=[Pattern("phone_any_format", rx, 0.2)],
        context=[
            "phone",
            "call",
            "mobile",
            "cell",
            "tel",
            "telephone",
            "fax",
            "desk",
            "office",
            "contact",
            "reach",
            "sms",
            "whatsapp",
            "number",
            "registered",
            "answer",
            "dial",
        ],
    )


@builtin("card_context")
def _card_context() -> EntityRecognizer:
    return _DigitsRecognizer(
        min_digits=12,
        max_digits=19,
        supported_entity="CREDIT_CARD",
        name="appliance_card_context",
        patterns=[Pattern("card_digits", r"(?<![\w-])\d{4}(?:[ -]?\d{2,4}){2,4}(?![\w-])", 0.25)],
        context=["card", "credit", "debit", "cc", "visa", "mastercard", "amex", "maestro", "payment"],
    )


@builtin("ssn_format")
def _ssn_format() -> EntityRecognizer:
    return PatternRecognizer(
        supported_entity="US_SSN",
        name="appliance_ssn_format",
        patterns=[Pattern("ssn_dashed", r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])", 0.5)],
        context=["ssn", "social", "security", "ss#", "taxpayer"],
    )


_TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Mme|Herr|Frau)\.?"
# a middle initial is a lone capital ("Anna K. Brown"), never the first letter of the next word ("John S|mith")
_NAME = r"\p{Lu}[\p{L}'’-]+(?:[ ]\p{Lu}\.?(?![\p{L}'’-]))?(?:[ ]\p{Lu}[\p{L}'’-]+){0,2}"
_CUES = r"(?i:my name is|name is|name:|call me|named|called|dear|signed|regards,|sincerely,)"


@builtin("person_cues")
def _person_cues() -> EntityRecognizer:
    return PatternRecognizer(
        supported_entity="PERSON",
        name="appliance_person_cues",
        patterns=[
            Pattern("person_after_title", rf"(?<=\b{_TITLES}[ ]){_NAME}", 0.9),
            Pattern("person_after_cue", rf"(?<=\b{_CUES}[ \t\n]+){_NAME}", 0.9),
            Pattern("lowercase_after_name_cue", r"(?<=\b(?i:my name is|name:)[ ])\p{Ll}[\p{L}'’-]+", 0.6),
        ],
        global_regex_flags=regex.MULTILINE,
    )


# spaCy labels that say a span is not a name (other labels are often wrong on names it does not know)
NOT_NAMES = frozenset({"LAW", "DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "ORDINAL", "CARDINAL"})
_SENTENCE_OPENERS = frozenset({".", "!", "?", ":", ";", '"', "“", "(", "[", "-", "–", "*", "•", "#", ">"})


class ProperNounRecognizer(EntityRecognizer):
    """Runs of proper nouns (spaCy tags NNP/NNPS) that nothing else explains, reported as PERSON.

    The small spaCy model misses many names (single first names, lower-resource spellings); treating an
    unexplained proper noun as a name errs on the side of privacy. Scored 0.6 (the default PERSON
    threshold); a context word ("name", "told", "wife" ...) nearby raises it. Not a name: a word spaCy's
    NER puts in a LAW, a DATE or a number; a common English word that is not a lexicon name
    ("Convention", "Court", "Review", :mod:`.lexicon`); an ALL-CAPS word or a sentence's first word unless
    it is a lexicon name, and a lone sentence opener unless it is a first name (headers, acronyms,
    capitalised openers); a run made only of everyday words that
    are also names ("Will", "Hope"). Acronyms that are never PII belong in ``pii.allow_list``.
    """

    TAGS = frozenset({"NNP", "NNPS"})
    name: str  # set by EntityRecognizer.__init__, whose inferred type mypy cannot see

    def __init__(self, score: float = 0.6) -> None:
        self.base_score = score
        self._tag_ids: list[int] = []
        self._names = lexicon.names()
        self._first = lexicon.first_names()
        self._common = lexicon.common_words()
        self._everyday = lexicon.everyday()
        super().__init__(
            supported_entities=["PERSON"],
            name="appliance_proper_noun",
            supported_language="en",
            context=[
                "name",
                "named",
                "called",
                "told",
                "said",
                "asked",
                "wife",
                "husband",
                "daughter",
                "kid",
                "friend",
                "partner",
                "mother",
                "father",
                "dear",
                "hello",
            ],
        )

    def load(self) -> None:
        return None

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None or nlp_artifacts.tokens is None:
            return []
        doc = nlp_artifacts.tokens
        claimed = [(e.start_char, e.end_char) for e in nlp_artifacts.entities]
        claimed += [(e.start_char, e.end_char) for e in getattr(doc, "ents", ()) if e.label_ in NOT_NAMES]
        if doc.has_annotation("TAG"):  # visit only the tokens tagged NNP/NNPS (no Python object per token)
            if not self._tag_ids:
                self._tag_ids = [doc.vocab.strings.add(t) for t in sorted(self.TAGS)]  # stable string hashes
            tags = doc.to_array([TAG])
            visit = numpy.flatnonzero(numpy.isin(tags, self._tag_ids)).tolist()
        else:
            visit = list(range(len(doc)))
        out: list[RecognizerResult] = []
        run: list[Token] = []
        strong = initial = False
        for i in [*visit, None]:
            tok = doc[i] if i is not None else None
            contiguous = tok is not None and run and run[-1].i == tok.i - 1
            kind = self._kind(tok, _previous(tok)) if tok is not None else None
            if run and (kind is None or not contiguous):
                nxt = doc[run[-1].i + 1] if run[-1].i + 1 < len(doc) else None
                if strong and not (initial and len(run) == 1 and not self._opener_is_name(run[0], nxt)):
                    start, end = run[0].idx, run[-1].idx + len(run[-1].text)
                    if not any(s < end and start < e for s, e in claimed):
                        out.append(self._result(start, end))
                run, strong = [], False
            if tok is not None and kind is not None:
                if not run:
                    initial = _sentence_initial(tok, _previous(tok))
                run.append(tok)
                strong = strong or kind
        return out

    def _opener_is_name(self, tok: Token, nxt: Token | None) -> bool:
        """A lone sentence opener is a name when it is a first name ("Stephanie called"), a speaker label
        ("Vinka: ..."), heads a list of names ("Hleb, Sheila, ..."), or an uncommon word is the subject of a
        verb ("Irenka is ...") — not a clinical fragment ("Neck: Supple.", "Normocephalic, atraumatic.")."""
        if tok.lower_ in self._first or nxt is None:
            return tok.lower_ in self._first
        after = tok.doc[nxt.i + 1] if nxt.i + 1 < len(tok.doc) else None
        if nxt.text == ":" and tok.lower_ not in self._common:
            return _line_start(tok)
        if nxt.text in {",", "and", "&"}:
            return after is not None and after.tag_ in self.TAGS and after.is_title
        return nxt.tag_.startswith(("VB", "MD")) and tok.lower_ not in self._common

    def _kind(self, tok: Token, prev: Token | None) -> bool | None:
        """None: not part of a name; False: may continue a name (an everyday name); True: a name."""
        proper = tok.tag_ in self.TAGS if tok.tag_ else (tok.is_title or (tok.is_upper and len(tok.text) > 3))
        if not (proper and tok.is_alpha and len(tok.text) > 1 and tok.text[0].isupper()) or tok.is_stop:
            return None  # lower-case words are left to spoken_names, which checks them against the lexicon
        w = tok.lower_
        if w in lexicon.CALENDAR:
            return None
        name = w in self._names
        if w in self._common and not name:
            return None  # a capitalised common word: vocabulary, not a name
        if tok.is_upper and not name:
            return None  # an acronym or a header word (a lone sentence opener is judged by _opener_is_name)
        return not (name and w in self._everyday)

    def _result(self, start: int, end: int) -> RecognizerResult:
        return RecognizerResult(
            "PERSON",
            start,
            end,
            self.base_score,
            analysis_explanation=AnalysisExplanation(self.name, self.base_score, textual_explanation="proper noun"),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )


def _previous(tok: Token) -> Token | None:
    """The word before ``tok`` on its line (None at the start of the text or of a line)."""
    doc = tok.doc
    j = tok.i - 1
    while j >= 0 and doc[j].is_space:
        if "\n" in doc[j].text:
            return None
        j -= 1
    return doc[j] if j >= 0 else None


def _line_start(tok: Token) -> bool:
    """The token opens its line (only spaces before it)."""
    text = tok.doc.text
    line = text.rfind("\n", 0, tok.idx) + 1
    return not text[line : tok.idx].strip()


def _sentence_initial(tok: Token, prev: Token | None) -> bool:
    """First word of the text, of a line, or after sentence punctuation, a bracket or a bullet."""
    return prev is None or prev.text in _SENTENCE_OPENERS or (prev.text.endswith(".") and len(prev.text) > 1)


@builtin("proper_nouns")
def _proper_nouns() -> EntityRecognizer:
    return ProperNounRecognizer()


@builtin("spoken_names")
def _spoken_names() -> EntityRecognizer:
    return SpokenNameRecognizer()


@builtin("date_of_birth")
def _date_of_birth() -> EntityRecognizer:
    return date_of_birth_recognizer()


@builtin("spoken_digits")
def _spoken_digits() -> EntityRecognizer:
    return spoken_digits_recognizer()
