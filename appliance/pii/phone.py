"""Presidio's phone recognizer, asked only for the regions whose shortest valid number the text could hold.

Presidio's ``PhoneRecognizer`` runs python-phonenumbers' ``PhoneNumberMatcher`` once per supported region (eight by
default) over the whole text; on texts with digits that is most of its cost. A number the matcher accepts has a
national significant number of a length the number's region allows (at leniency POSSIBLE also a local-only
length), so its candidate holds at least that many digits, all in one run of digits joined by at most four
punctuation characters (the matcher's own candidate grammar). A region is skipped on a text whose longest such
run is shorter than the shortest number that region's matcher could accept:

* without a country code, a number of the region's own code: the shortest possible length over the regions
  sharing that code (libphonenumber metadata, ``general_desc``);
* with "+" (or "＋") before it, any country code: the shortest code-plus-number over every country code, with the
  non-geographic entities; with an international dialling prefix instead of "+", at least one digit more;
* where parsing rewrites national numbers (``national_prefix_transform_rule``: Norfolk Island, San Marino, Jersey,
  several NANPA islands ...), a rewrite can add digits, so such a region — as the region parsed in, or as the main
  region of a country code — counts one national digit.

The findings are exactly Presidio's, for any regions and leniency; ``tests/test_pii_phone.py`` checks that on texts
made to sit at each bound (default regions, and rewriting regions at every leniency), and that every character of
the matcher's punctuation counts as a joiner here.
"""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import NumberParseException
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import PhoneRecognizer

# a run of digits joined by at most four non-word characters; "x", "X", "_" and the katakana prolonged sound mark
# "ー" are word characters that the matcher's punctuation class also holds. "x"/"X" count as digits too: three
# letters in a candidate make phonenumbers read it as a vanity number, letter by letter.
_JOIN = r"(?:\W|[_xXー])"
_RUN = re.compile(rf"[\dxX](?:{_JOIN}{{0,4}}[\dxX])*")
_PLUS = re.compile("[+＋]")
_GROUP_REF = re.compile(r"\\\d|\$\d")  # a group reference in a transform rule: \1 or $1


def _meta(code: int, region: str) -> PhoneMetadata | None:
    return PhoneMetadata.metadata_for_region_or_calling_code(code, region)


def _shortest(metadata: PhoneMetadata | None, local: bool) -> int:
    """The region's shortest possible national number; with ``local`` (leniency POSSIBLE) also its local-only
    lengths, which ``is_possible_number`` accepts."""
    desc = metadata.general_desc if metadata is not None else None
    if desc is None:
        return 1
    lengths = [*(desc.possible_length or ()), *((desc.possible_length_local_only or ()) if local else ())]
    return min((n for n in lengths if n > 0), default=1)


def _added_digits(metadata: PhoneMetadata | None) -> int:
    """How many digits parsing can add to the region's national numbers: the literal digits of its
    ``national_prefix_transform_rule`` ("3\\1" in Norfolk Island turns 5 typed digits into 6; "\\2" in Brazil adds
    none)."""
    rule = metadata.national_prefix_transform_rule if metadata is not None else None
    return sum(c.isdigit() for c in _GROUP_REF.sub("", rule)) if rule else 0


def _fewest_typed(code: int, rewriter: PhoneMetadata | None, local: bool) -> int:
    """Fewest national digits typed for a valid number of country ``code``: the shortest number of the regions sharing
    it (any of them may validate it), less what ``rewriter``'s transform rule adds; at least one."""
    shortest = min(_shortest(_meta(code, r), local) for r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ()))
    return max(1, shortest - _added_digits(rewriter))


@cache
def _shortest_international(local: bool) -> int:
    """Fewest digits of any number written with its country code: the code plus the fewest national digits (the
    code's main region does the rewriting), over every code, the non-geographic ones too."""
    return min(
        len(str(code)) + _fewest_typed(code, _meta(code, phonenumbers.region_code_for_country_code(code)), local)
        for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    )


@cache
def _dialling_prefix(region: str) -> int:
    """Fewest digits of the region's international dialling prefix (its pattern tried on every string of 1–3
    digits; 4 when none matches)."""
    metadata = PhoneMetadata.metadata_for_region(region)
    pattern = metadata.international_prefix if metadata is not None else None
    if not pattern:
        return 1
    rx = re.compile(pattern)
    for n in (1, 2, 3):
        if any(rx.fullmatch(f"{i:0{n}d}") for i in range(10**n)):
            return n
    return 4


@cache
def _shortest_for(region: str, local: bool, plus: bool) -> int:
    """Fewest digits of a number that ``region``'s matcher could accept: one of the region's own code typed without
    it (the region does the rewriting), or one of any code after "+" (``plus``) or after the region's dialling
    prefix."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.country_code is None:
        return 1
    national = _fewest_typed(metadata.country_code, metadata, local)
    international = _shortest_international(local) + (0 if plus else _dialling_prefix(region))
    return min(national, international)


def longest_run(text: str) -> int:
    """Digits (and "x") in the longest run of ``text`` that a phone-number candidate could lie in."""
    return max((sum(c.isdigit() or c in "xX" for c in m.group()) for m in _RUN.finditer(text)), default=0)


def regions_for(text: str, regions: tuple[str, ...] | list[str], leniency: int | None = 1) -> list[str]:
    """The regions whose matcher (at ``leniency``; None is phonenumbers' default, VALID) could find a number in
    ``text``."""
    run = longest_run(text)
    if run == 0:
        return []
    local = leniency == 0  # POSSIBLE: is_possible_number, which also takes local-only lengths
    plus = _PLUS.search(text) is not None
    return [r for r in regions if run >= _shortest_for(r, local, plus)]


class PhoneRegionRecognizer(PhoneRecognizer):
    """``PhoneRecognizer`` with its per-region loop restricted to :func:`regions_for` (same findings, less work).

    The loop is a copy of Presidio's (``PhoneRecognizer.analyze``), over a local list of regions so that the
    recognizer stays safe to share between threads. Presidio's loop reuses its region variable for the region of a
    number written with "+", so its explanation text (never a span or score) can name another region than ours.
    """

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        for region in regions_for(text, self.supported_regions, self.leniency):
            # Presidio hands its leniency (an int, or None for phonenumbers' default) to the matcher as it is
            for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=self.leniency):  # type: ignore[arg-type]
                try:
                    found = phonenumbers.region_code_for_number(phonenumbers.parse(text[match.start : match.end]))
                except NumberParseException:
                    found = region
                results.append(self._get_recognizer_result(match, text, found, nlp_artifacts))  # type: ignore[no-untyped-call]
        return EntityRecognizer.remove_duplicates(results)
