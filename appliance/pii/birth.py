"""Dates of birth, written or spoken: "DOB: 09/18/1975", "date of birth is 09/18", "born on march third,
nineteen seventy five". A date is a date of birth only after a birth cue; other dates stay DATE_TIME."""

from __future__ import annotations

import regex
from presidio_analyzer import Pattern, PatternRecognizer

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_UNIT_ORD = r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth"
_ORDINAL = (
    rf"(?:(?:twenty|thirty)[- ](?:{_UNIT_ORD})|{_UNIT_ORD}|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth"
    r"|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth)"
)
_DAY = rf"(?:\d{{1,2}}(?:st|nd|rd|th)?|{_ORDINAL})"
_UNIT = r"one|two|three|four|five|six|seven|eight|nine"
_TENS = r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_TEEN = r"ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_SPOKEN_YEAR = (
    rf"(?:nineteen|twenty)(?:[- ](?:(?:{_TENS})(?:[- ](?:{_UNIT}))?|{_TEEN}|hundred|oh[- ](?:{_UNIT})))"
    rf"|two[- ]thousand(?:(?:[- ]and)?[- ](?:{_TEEN}|{_UNIT}|(?:{_TENS})(?:[- ](?:{_UNIT}))?))?"
)
_YEAR = rf"(?:(?:19|20)\d{{2}}|{_SPOKEN_YEAR})"
_DATE = (
    r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}(?:[/.-](?:\d{4}|\d{2}))?"
    rf"|{_MONTH}[ \t]+(?:the[ \t]+)?{_DAY}(?:[ \t]*,?[ \t]+{_YEAR})?"
    rf"|(?:the[ \t]+)?{_DAY}[ \t]+(?:of[ \t]+)?{_MONTH}(?:[ \t]*,?[ \t]+{_YEAR})?"
    rf"|{_MONTH}[ \t]+{_YEAR})"
)
_CUE = (
    r"\b(?:date[ \t]+of[ \t]+birth|birth[ \t]*date|birthday|d\.?o\.?b\.?|born(?:[ \t]+(?:on|in))?)"
    r"(?:[ \t]+(?:is|was|of))?(?:[ \t]*[:#,-])?[ \t]*"
)
_CUE_WORD = r"(?:\b(?:birth|birthday|born|dob)\b|\bd\.o\.b\b\.?)"
BIRTH_PREFILTER = r"(?i)birth|d\.?o\.?b|born"  # a text without it cannot hold a match (see the engine's prefilter)


def date_of_birth_recognizer() -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity="DATE_OF_BIRTH",
        name="appliance_date_of_birth",
        patterns=[
            Pattern("date_after_birth_cue", rf"(?<={_CUE}){_DATE}(?![\w/])", 0.85),
            # the answer a few words or a turn later: "date of birth ? [patient] june twelfth , nineteen ninety"
            Pattern("date_soon_after_birth_cue", rf"(?<={_CUE_WORD}[^\d]{{1,80}}){_DATE}(?![\w/])", 0.7),
            Pattern("year_after_born_in", rf"(?<=\bborn[ \t]+in[ \t]+){_YEAR}\b", 0.6),
        ],
        global_regex_flags=regex.IGNORECASE | regex.MULTILINE,
    )
