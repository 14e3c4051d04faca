"""Presidio's phone recognizer, asked only for the regions whose shortest valid number the text could hold.

Presidio's ``PhoneRecognizer`` runs python-phonenumbers' ``PhoneNumberMatcher`` once per supported region (eight by
default) over the whole text; on texts with digits that is most of its cost. A number the matcher accepts (leniency
POSSIBLE or stricter) has a national significant number of a length the number's region allows, so its candidate
holds at least that many digits, all in one run of digits joined by at most four punctuation characters (the
matcher's own candidate grammar). A region is skipped on a text whose longest such run is shorter than the shortest
number that region's matcher could accept:

* without an international prefix, a number of the region's own country code: the shortest possible length over
  the regions sharing that code (libphonenumber metadata, ``general_desc.possible_length``);
* with "+" (or "＋") before it, any country code: the shortest code-plus-number over every region and non-geographic
  entity; with an international dialling prefix instead of "+", at least one digit more.

The findings are exactly Presidio's; ``tests/test_pii_phone.py`` checks that on texts made to sit at each bound, and
that every character of the matcher's punctuation counts as a joiner here.
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


def _shortest(metadata: PhoneMetadata | None) -> int:
    desc = metadata.general_desc if metadata is not None else None
    lengths = [n for n in (desc.possible_length if desc is not None else ()) if n > 0]
    return min(lengths, default=1)


@cache
def _shortest_international() -> int:
    """Fewest digits of any number written with its country code: code plus shortest national number."""
    geo = (
        len(str(md.country_code)) + _shortest(md)
        for md in map(PhoneMetadata.metadata_for_region, phonenumbers.SUPPORTED_REGIONS)
        if md is not None
    )
    nongeo = (
        len(str(cc)) + _shortest(PhoneMetadata.metadata_for_nongeo_region(cc))
        for cc in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
    )
    return min([*geo, *nongeo])


@cache
def _shortest_national(region: str) -> int:
    """Fewest digits of a number of ``region``'s country code, written without it."""
    code = phonenumbers.country_code_for_region(region)
    group = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, (region,))
    return min(_shortest(PhoneMetadata.metadata_for_region(r)) for r in group)


def longest_run(text: str) -> int:
    """Digits (and "x") in the longest run of ``text`` that a phone-number candidate could lie in."""
    return max((sum(c.isdigit() or c in "xX" for c in m.group()) for m in _RUN.finditer(text)), default=0)


def regions_for(text: str, regions: tuple[str, ...] | list[str]) -> list[str]:
    """The regions whose matcher could find a number in ``text``."""
    run = longest_run(text)
    if run == 0:
        return []
    international = _shortest_international() + (0 if _PLUS.search(text) else 1)
    return [r for r in regions if run >= min(_shortest_national(r), international)]


class PhoneRegionRecognizer(PhoneRecognizer):
    """``PhoneRecognizer`` with its per-region loop restricted to :func:`regions_for` (same findings, less work).

    The loop is Presidio's own (``PhoneRecognizer.analyze``), over a local list of regions so that the recognizer
    stays safe to share between threads.
    """

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        for region in regions_for(text, self.supported_regions):
            # Presidio hands its leniency (an int, or None for phonenumbers' default) to the matcher as it is
            for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=self.leniency):  # type: ignore[arg-type]
                try:
                    found = phonenumbers.region_code_for_number(phonenumbers.parse(text[match.start : match.end]))
                except NumberParseException:
                    found = region
                results.append(self._get_recognizer_result(match, text, found, nlp_artifacts))  # type: ignore[no-untyped-call]
        return EntityRecognizer.remove_duplicates(results)
