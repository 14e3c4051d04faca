"""Numbers read out digit by digit, as speech transcripts write them: "five five five , two one four , eight
eight three nine". Seven or more digit words in a row are a phone (or account) number, whatever the cue."""

from __future__ import annotations

import regex
from presidio_analyzer import Pattern, PatternRecognizer

_ONE = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_DIGIT = rf"(?:{_ONE}|(?:double|triple)[ \t]+{_ONE})"
# a text without two digit words in a row cannot hold a match (see the engine's prefilter)
SPOKEN_PREFILTER = rf"(?i)\b(?:{_ONE}|double|triple)[ \t,.-]+{_ONE}\b"
_SEP = r"(?:[ \t]*[,.-]?[ \t]+|[ \t]*-[ \t]*)"


def spoken_digits_recognizer() -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity="PHONE_NUMBER",
        name="appliance_spoken_digits",
        patterns=[Pattern("seven_digit_words", rf"\b{_DIGIT}(?:{_SEP}{_DIGIT}){{6,}}\b", 0.6)],
        context=["phone", "number", "call", "reach", "cell", "mobile"],
        global_regex_flags=regex.IGNORECASE | regex.MULTILINE,
    )
