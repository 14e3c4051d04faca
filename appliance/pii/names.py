"""Names in text whose letter case says nothing: speech transcripts, chat, lower-cased exports.

:class:`SpokenNameRecognizer` (built-in ``spoken_names``) reads a name after a cue — a title ("dr. patel"), a
naming phrase ("my name is x", "patient is nicole miller"), a greeting or vocative ("hi , stephanie .",
"thanks , john"), a speaker label ("Alice: who are you?"), or an introduction after it ("roger is a 62 year
old male") — and checks the words against the name lexicon (:mod:`.lexicon`), in any letter case. In a text
written in lower case (where capitals cannot mark names) speech-recognition output has no commas to mark a
vocative, so a first name between a discourse marker and the rest of the clause ("so karen tell me", "okay
michael so") or closing a turn ("take care julie .") counts too; otherwise a lexicon name counts there only
when spaCy's tagger reads it as a noun, or, for a first name that is not a common word, as anything but a
function word. Everyday words that are also names ("will", "may", "hope") are never taken without a strong
cue; common words never without a cue.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING

import regex
from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

from appliance.pii import lexicon
from appliance.pii.casing import written_in_lower_case

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts
    from spacy.tokens import Doc

_Add = Callable[[int, int, str], None]  # add(start, end, how): a candidate name and the rule that found it

_TITLE = r"(?:mr|mrs|ms|miss|mx|dr|prof|mme|herr|frau)\.?"  # not "sir" / "madam": mostly vocatives
_STRONG = (
    r"(?:my|her|his|their|the\s+patient's|patient's|your)\s+(?:full\s+|first\s+|last\s+)?name(?:\s+is|'s|\s*:)"
    r"|name\s+is|called\s+me|known\s+as|goes\s+by|named"
)
_GREET = r"hi|hello|hey|hiya|bye|goodbye|thanks|thank\s+you|good\s+(?:morning|afternoon|evening)|morning|welcome|dear"
_MEDIUM = (
    r"(?:nice|pleasure|good)\s+to\s+(?:meet|see)\s+you|patient(?:\s+is|\s+was)?|this\s+is|i'm|i\s+am|it's"
    r"|speaking\s+with|speak\s+(?:to|with)|spoke\s+(?:to|with)|talk(?:ed)?\s+(?:to|with)|ask(?:ed)?\s+for"
    r"|(?:my|her|his|your)\s+(?:wife|husband|son|daughter|mother|mom|father|dad|brother|sister|friend|partner"
    r"|colleague|boss|manager|neighbou?r|doctor|nurse)|(?:wife|husband|son|daughter)\s+is"
)
_CUE = regex.compile(
    rf"(?i)\b(?:(?P<title>{_TITLE})[ \t]+"  # a title right before the name ("TL;DR: bank" is no title)
    rf"|(?:(?P<strong>{_STRONG})|(?P<greet>{_GREET})|(?P<medium>{_MEDIUM}))(?:[ \t]*[,:])?[ \t]+)(?=\p{{L}})"
)
# a vocative: ", name ." / ", name ," — or a name opening an utterance: "name , ..."
_VOCATIVE = regex.compile(r"(?:,[ \t]*|(?:^|[\]:>])[ \t]*)(?P<w>\p{L}[\p{L}'’-]*)(?=[ \t]*[,.?!](?!\w))", regex.M)
# an introduction: "roger is a 62 year old male", "beverly's a 24 year old", "x is a pleasant 60-year-old"
_INTRO = regex.compile(
    r"(?i)(?<![\p{L}'’-])(?P<w>\p{L}[\p{L}'’-]*?)(?=(?:[ \t]+is|['’]s)[ \t]+an?\b[^\n.,;:?!]{0,40}?"
    r"\b(?:years?|yrs?|months?|weeks?)[ \t]*-?[ \t]*old\b)"
)
# unpunctuated vocatives in speech-recognition output: a discourse marker, the name, the rest of the clause
_MARKED = regex.compile(
    r"(?i)\b(?:so|okay|ok|alright|all[ \t]+right|well|now|hey[ \t]+there|hi[ \t]+there)[ \t]*,?[ \t]+"
    r"(?P<w>\p{L}[\p{L}'’-]*)(?=[ \t]*,?[ \t]+(?:i|i'm|you|you're|your|tell|what|how|do|does|did|have|has"
    r"|let|let's|we|so|my|can|any)\b)"
)
# a name closing a turn or sentence after a farewell or address: "take care julie .", "questions logan ?"
_CLOSING = regex.compile(
    r"(?i)\b(?:you|care|again|today|there|thanks|morning|bye|questions)[ \t]*,?[ \t]+(?P<w>\p{L}[\p{L}'’-]*)"
    r"(?=[ \t]*(?:[.?!]|$))",
    regex.M,
)
# a speaker label opening a line of dialogue: "Alice: Who are you?", "> Heather: ...", 'Ella:"I'm ...'
_SPEAKER = regex.compile(r"^[ \t>]*(?P<w>\p{Lu}[\p{Ll}'’-]+)[ \t]*:(?=[ \t]*[\"“'‘]?\p{L})", regex.M)
_WORD = regex.compile(r"\p{L}[\p{L}'’-]*")
_NEXT_WORD = regex.compile(r"[ \t]+(\p{L}[\p{L}'’-]*)")
_PREV_WORD = regex.compile(r"(?<![\p{L}'’-])(\p{L}[\p{L}'’-]*)[ \t]+$")

NOUNISH = frozenset({"NN", "NNS", "NNP", "NNPS", "FW", "UH", "XX", "ADD", ""})
# after a cue the tagger only vetoes: on a lower-case name it guesses JJ, RB or (for "ahmed") VBN, but a
# function-word tag, or a verb tag on a common word, is right
VETO = ("MD", "PRP", "DT", "IN", "CC", "TO", "WDT", "WP", "WRB", "EX", "POS", "RP")
SCORES = {
    "title": 0.85, "strong": 0.85, "greet": 0.8, "medium": 0.8, "intro": 0.8,
    "vocative": 0.7, "speaker": 0.7, "pair": 0.7, "bare": 0.65,
}  # fmt: skip
MAX_WORDS = 3


class SpokenNameRecognizer(EntityRecognizer):
    """PERSON after cues and, in lower-case texts, bare lexicon names the tagger reads as nouns."""

    name: str  # set by EntityRecognizer.__init__, whose inferred type mypy cannot see

    def __init__(self) -> None:
        self._names = lexicon.names()
        self._common = lexicon.common_words()
        self._everyday = lexicon.everyday()
        self._first = lexicon.first_names()
        super().__init__(supported_entities=["PERSON"], name="appliance_spoken_names", supported_language="en")

    def load(self) -> None:
        return None

    # -- word classes ---------------------------------------------------------------------------
    def _name(self, w: str) -> bool:
        w = w.casefold()
        return w in self._names and w not in self._everyday

    def _any_name(self, w: str) -> bool:
        w = w.casefold()
        return w in self._names and w not in lexicon.CALENDAR and w not in _STOP

    def _first_name(self, w: str) -> bool:
        w = w.casefold()
        return w in self._first and w not in self._everyday

    def _rare(self, w: str) -> bool:
        w = w.casefold()
        return len(w) > 2 and w not in self._common and w not in self._names

    # -- recognition ----------------------------------------------------------------------------
    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        tags = _Tags(nlp_artifacts)
        out: dict[tuple[int, int], tuple[float, str]] = {}

        def add(start: int, end: int, how: str) -> None:
            score = SCORES[how]
            if out.get((start, end), (0.0, ""))[0] < score:
                out[(start, end)] = (score, how)

        self._cued(text, tags, add)
        for m in _INTRO.finditer(text):
            w = m.group("w")
            named = self._name(w) or not (lexicon.is_known(w) or w.casefold() in _STOP)
            if named and not tags.tag(m.start()).startswith(VETO):
                add(self._extend_back(text, m.start()), m.end(), "intro")
        for m in _SPEAKER.finditer(text):  # a first name as a speaker label, in any letter case of the rest
            w = m.group("w")
            if self._first_name(w) and not tags.vetoed(m.start("w"), w):
                add(m.start("w"), m.end("w"), "speaker")
        lower = written_in_lower_case(text)
        for m in _VOCATIVE.finditer(text) if lower or "," in text else ():
            w = m.group("w")
            if not (lower or m.group().startswith(",")):
                continue  # in cased text a capitalised word after a bracket or colon is a header's value
            if self._name(w) and not tags.vetoed(m.start("w"), w):
                add(m.start("w"), self._extend(text, m.end("w")), "vocative")
        if lower:
            for m in (*_MARKED.finditer(text), *_CLOSING.finditer(text)):
                w = m.group("w")
                tag = tags.tag(m.start("w"))
                # a first name that is also a common word ("mark your calendar") only where tagged a noun
                fits = tag in NOUNISH if w.casefold() in self._common else not tag.startswith(VETO)
                if self._first_name(w) and fits:
                    add(m.start("w"), m.end("w"), "vocative")
            self._bare(text, tags, add)
        return [self._result(s, e, sc, how) for (s, e), (sc, how) in sorted(out.items())]

    def _cued(self, text: str, tags: _Tags, add: _Add) -> None:
        """Names right after a title, a naming phrase, or a greeting or other medium cue."""
        for m in _CUE.finditer(text):
            how = m.lastgroup or "medium"
            first = _WORD.match(text, m.end())
            if first is None:
                continue
            w = first.group()
            if how == "title":  # "dr. cho", "mrs. patel": after a title, any word that is not a function word
                ok = w.casefold() not in _STOP and not tags.vetoed(first.start(), w)
            elif how == "strong":
                ok = (self._any_name(w) or self._rare(w) or w[0].isupper()) and not lexicon.is_vocabulary(w)
                ok = ok or self._name(w)
            else:  # a lexicon name, or a word English does not know ("nice to meet you , kwame")
                ok = (self._name(w) or not lexicon.is_known(w)) and not tags.vetoed(first.start(), w)
                # after a greeting the tagger's verb guess on a first name ("hey george how are you": VBP) is wrong
                ok = ok or (how == "greet" and self._first_name(w) and not tags.tag(first.start()).startswith(VETO))
            if ok:
                add(first.start(), self._extend(text, first.end()), how)

    def _extend(self, text: str, end: int) -> int:
        """Extend a name over following surname-like words (lexicon names, or words English does not know:
        "nicole miller", "marcus o'neill", not "patel prescribed"), up to MAX_WORDS."""
        for _ in range(MAX_WORDS - 1):
            m = _NEXT_WORD.match(text, end)
            if m is None:
                break
            w = m.group(1)
            if not (self._any_name(w) or (self._rare(w) and not lexicon.is_known(w))):
                break
            end = m.end(1)
        return end

    def _extend_back(self, text: str, start: int) -> int:
        """Start a name at the word before ``start`` when that word is a first name ("sharon brooks is a ...")."""
        lo = max(0, start - 40)
        m = _PREV_WORD.search(text[lo:start])
        return lo + m.start(1) if m is not None and self._first_name(m.group(1)) else start

    def _bare(self, text: str, tags: _Tags, add: _Add) -> None:
        """Lower-case text: a first name and surname pair, or one uncommon lexicon name read as a noun."""
        words = list(_WORD.finditer(text))
        i = 0
        while i < len(words):
            m = words[i]
            w = m.group()
            if self._name(w) and tags.nounish(m.start()):
                j = i + 1
                while j < len(words) and j - i < MAX_WORDS and self._any_name(words[j].group()):
                    if text[words[j - 1].end() : words[j].start()].strip():
                        break  # punctuation between the words: not one name
                    j += 1
                if j - i >= 2:
                    add(m.start(), words[j - 1].end(), "pair")
                    i = j
                    continue
                if w.casefold() not in self._common and (w.casefold() in self._first or not lexicon.is_known(w)):
                    add(m.start(), m.end(), "bare")  # a surname that is an English word ("hay", "colon") needs a cue
            elif self._first_name(w) and w.casefold() not in self._common and not tags.tag(m.start()).startswith(VETO):
                add(m.start(), m.end(), "bare")  # the tagger guesses RB or JJ for "carolyn", "sophia"
            i += 1

    def _result(self, start: int, end: int, score: float, how: str) -> RecognizerResult:
        return RecognizerResult(
            "PERSON",
            start,
            end,
            score,
            analysis_explanation=AnalysisExplanation(self.name, score, textual_explanation=f"name ({how})"),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )


class _Tags:
    """spaCy's fine-grained tag of the token starting at a character offset ('' when unknown)."""

    def __init__(self, nlp_artifacts: NlpArtifacts | None) -> None:
        self.doc: Doc | None = getattr(nlp_artifacts, "tokens", None)
        self.starts: list[int] = getattr(nlp_artifacts, "tokens_indices", None) or []

    def tag(self, char: int) -> str:
        if self.doc is None or not self.starts:
            return ""
        i = bisect_right(self.starts, char) - 1
        return self.doc[i].tag_ if i >= 0 and self.starts[i] == char else ""

    def nounish(self, char: int) -> bool:
        return self.tag(char) in NOUNISH

    def vetoed(self, char: int, word: str) -> bool:
        tag = self.tag(char)
        return tag.startswith(VETO) or (tag.startswith("VB") and word.casefold() in lexicon.common_words())


_STOP = lexicon.stop_words()
