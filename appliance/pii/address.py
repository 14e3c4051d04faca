"""A street-address recognizer for Presidio (which has none): postal grammar, not a gazetteer.

Anchors are the parts of an address that are rarely anything else: a house number with a street
type (``12 Kent Street``, ``Via Roma 131``, ``Hansinegata 120``), a unit (``Suite 318``,
``P.O. Box 104``), a military address (``PSC 3294, Box 9168 APO AA 61487``) or a street corner.
A capitalised name followed by a house number (``Dunajska 56``) is a weak anchor that needs a context
word (``address``, ``lives``, ``located`` ...). Each anchor is then extended over the address block
that follows it — unit, city, region code, country, postal code — on the same line after a comma or
on the next lines, so that a whole multi-line address is one span.
"""

from __future__ import annotations

import regex
from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

_CAP = r"\p{Lu}[\p{L}'’.∆-]*"  # ∆ (U+2206) stands in for Greek capital delta in some sources
_WORD = r"\p{L}[\p{L}'’.-]*"
_S = r"[ \t]+"
_TYPE = (
    r"(?:(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|square|sq"
    r"|parkway|pkwy|highway|hwy|circle|trail|crescent|close|pass|route|turnpike|gateway|alley|row|walk|plaza"
    r"|path|pike|expressway|freeway|heights|park|view|grove|gardens|mews|hill|forges?|rapids|crossing|junction"
    r"|loop|ridge|str|straße|strasse|gasse|weg|platz|vej|vei|gate|gata|gatan|gade|katu|tie|kuja|utca|út|útja|tér"
    r"|körút|rkp|krt|trg|náměstí|nám|námestie|rynek|aleja)\b\.?|(?i:u|al)\.)"
)
_PREFIX = (
    r"(?i:rua|rúa|rue|calle|c/|avenida|avda\.|ul\.|ulica|plac|chemin|chaussée|praça|piazza|piazzale|largo|corso"
    r"|strada|viale|trg|náměstí)"
)
_PREFIX_NUMBERED = r"(?i:via|av\.|al\.|os\.|pl\.)"  # common words elsewhere: only with a house number
_SUFFIXED = (
    r"\p{L}+(?i:vej|veien|vegen|vägen|väg|gatan|gata|gate|gade|katu|tie|kuja|polku|kaari|strasse|straße|gasse|weg"
    r"|platz|straat|laan|utca|allee|damm|stræti|vegur|braut|gränd|stigen|torget)"
)
# street types that follow the name and come before the house number (Villacher Strasse 89, Luite tee 87,
# hegyalja út 98): only words that are not also everyday English nouns ("the trail 3 times", "Gate 12")
_TYPE_AFTER = (
    r"(?i:straße|strasse|str\.|gasse|weg|platz|vej|vei|veien|vegen|vägen|väg|gata|gatan|gade|katu|tie|kuja"
    r"|utca|út|útja|tér|körút|trg|tee|põik|terrasse|straat|laan|allee|stræti|vegur)"
)
_FUNCTION_WORDS = r"is|on|at|in|to|the|a|an|of|and|or|for|from|by|near|off|into|onto|my|our|your|his|her|their"
_FUNCTION = rf"(?i:{_FUNCTION_WORDS})"
_NAMEWORD = rf"(?!{_FUNCTION}\b){_WORD}"  # a street name's word: "is on Lindauer Strasse 4" starts at Lindauer
# between a house number and its street name: no lower-case function word ("1993 the Administrative Court",
# "9 of the ... Court Procedure Act"), but a capitalised one may start the name ("14 The Old Road")
_LEADWORD = rf"(?!(?-i:{_FUNCTION_WORDS})\b){_WORD}"
_UNIT = r"(?i:apt\.?|apartment|suite|ste\.|unit|p\.?[ ]?o\.?[ ]?box|postbox|box|floor|room)[ \t]*#?[ \t]*\d{1,6}\b"

STRONG = [
    # 12 Kent Street / 33787 590 Edington Drive / 1987 74 Diakou Street
    rf"\b\d{{1,6}}(?:{_S}\d{{1,5}})?{_S}(?:{_LEADWORD}{_S}){{0,3}}{_CAP}{_S}{_TYPE}(?:{_S}\d{{1,5}}\b)?",
    # Via Roma 131 / ul. Słowicza 10 / rue des lieutemants Thomazo
    rf"(?:\b\d{{1,6}}{_S}){{0,2}}\b{_PREFIX}{_S}(?:{_WORD}{_S}){{0,3}}(?:{_CAP}|\d{{1,5}}\b)(?:{_S}\d{{1,5}}\b)?",
    rf"(?:\b\d{{1,6}}{_S}){{0,2}}\b{_PREFIX_NUMBERED}{_S}(?:{_CAP}{_S}){{1,3}}\d{{1,5}}\b",
    # Avenue du Golf / Paseo del Atlántico 81 / 36 rue de pologne: street type first, then a Romance particle
    rf"(?:\b\d{{1,6}}{_S}){{0,2}}\b(?i:avenue|av\.|boulevard|bd|paseo|quai|impasse|allée|rue|calle|via|viale|rua"
    rf"|avenida){_S}(?i:du|de|des|del|della|dei|delle|di|da|do|dos|das|la|le|d’|d')(?:{_S}|(?<=[’']))"
    rf"(?:(?i:la|le|los|las){_S})?{_WORD}(?:{_S}\d{{1,5}}\b)?",
    # Hansinegata 120 / 0269 Stensås terrasse 38 is caught by the weak rule
    rf"(?:\b\d{{1,6}}{_S}){{0,2}}\b{_SUFFIXED}(?:{_S}{_WORD})?{_S}\d{{1,5}}\b",
    # Villacher Strasse 89 / Árpád fejedelem útja 3 / hegyalja út 98: name, street type, house number; not a year
    rf"(?:\b\d{{1,6}}{_S}){{0,2}}\b(?:{_NAMEWORD}{_S}){{1,3}}{_TYPE_AFTER}{_S}(?!(?:19|20)\d\d\b)\d{{1,5}}\b",
    # Király u. 15: the Hungarian abbreviation after a capitalised name (chat "u." is lower-case before it)
    rf"\b(?:{_CAP}{_S}){{1,3}}u\.{_S}\d{{1,5}}\b",
    # PSC 3294, Box 9168 APO AA 61487 / USS Lorenzen FPO AE 25990, in either case
    r"\b(?i:(?:PSC|Unit|CMR)\s+\d{3,5},?\s+Box\s+\d{3,5}\s+(?:APO|FPO|DPO)\s+A[AEP]\s+\d{5})\b",
    rf"\b(?i:(?:USNS|USNV|USS|USCGC)\s+{_WORD}\s+(?:FPO|APO|DPO)\s+A[AEP]\s+\d{{5}})\b",
    # the corner of X and Y
    rf"(?i:\bthe\s+)?(?i:\bcorner\s+of)\s+[^\n,;?!]{{3,60}}?\s+and\s+(?:{_CAP}|\d{{1,5}}\b)(?:\s+(?:{_WORD}|\d{{1,5}}\b)){{0,3}}",
    # a unit on its own: Suite 318, Apt. 117, P.O. Box 104
    rf"\b{_UNIT}",
    # a postal code after its label: "ZIP: 6280", "my zip code is 90010-170", "postcode B0J 2H0"
    r"(?<=\b(?i:zip|zip code|postal code|postcode|post code)(?:[ \t]*:|[ \t]+is)?[ \t]+)"
    r"(?:[A-Z0-9]{3,6}(?:[ -][A-Z0-9]{2,4})?)\b",
]
# a capitalised word that numbers a part of a document or a list, never a street: "Rule 52", "Article 6", "Page 3"
_NUMBERED = (
    r"(?i:rule|rules|article|articles|section|sections|paragraph|paragraphs|protocol|chapter|part|annex|appendix"
    r"|schedule|clause|page|pages|table|figure|item|note|volume|step|level|grade|class|version|question|exhibit)"
)
# Dunajska 56 / 0269 Stensås terrasse 38: plausible, but needs a context word
WEAK = [rf"(?:\b\d{{1,6}}{_S})?\b(?!{_NUMBERED}{_S}\d){_CAP}(?:{_S}{_CAP}){{0,2}}{_S}\d{{1,5}}\b(?![.,:/-]\d)"]

# What may follow an anchor inside the same address block (unit, city, region, country, postcode)
# lower-case particles inside place names: Mora de Rubielos, Caxias do Sul, Chomutice u Horic v Podkrkonoší
_PART = r"(?:de|del|della|do|dos|da|das|di|du|la|le|u|v|na|nad|pod|am|an|im|sur|en|y|van|von|der|den|z)[ \t]+"
_ITEM = (
    rf"(?:{_UNIT}|\(\p{{L}}+\)|\d{{3,6}}(?:[ -]\d{{2,4}})?\b"
    rf"|\d{{2}}(?=[ \t]*\n?[ \t]*\d{{4,6}}\b)"  # a two-digit region code before a postcode: ", 32\n 60810"
    rf"|(?:{_PART})?(?:{_CAP}|nan\b)(?:[ \t]+(?:{_PART})?(?:{_CAP}|\d{{3,6}}\b|[A-Z]{{1,3}}\b)){{0,4}})"
)
_TAIL = regex.compile(
    rf"(?:(?:\.(?=[ \t]*\n))?(?:[ \t]*,[ \t]*|[ \t]*\n(?:[ \t>?]*\n)?[ \t>?]*(?:,[ \t]*)?|[ \t]+){_ITEM})+"
)  # a period may close the street line ("Király u. 15.") only where the block goes on on the next line
# in lower-case text the block's items are lower-case words after commas: "2407 tawastintie 6, sé, portugal"
_LOWER_TAIL = regex.compile(r"(?:[ \t]*,[ \t]*(?:\p{Ll}+(?:[ \t]+\p{Ll}+){0,2}(?:[ \t]+\d{3,6}\b)?|\d{3,6}\b))+")
# a street intersection written as "Leon and Eyrarodda 66": the first street's name belongs to the address
_CROSS = regex.compile(rf"\b{_CAP}(?:[ \t]+{_CAP})?[ \t]+and[ \t]+\Z")
# house or unit numbers written before an anchor that did not take them in: "3747 3911 fourth avenue"
_HEAD = regex.compile(r"(?:(?<![\d.,:/-])\b\d{1,6}[ \t]+){1,2}\Z")

_BLOCK = regex.compile(rf"{_UNIT}|\n[^\n]*\n")
STRONG_SCORE, WEAK_SCORE = 0.6, 0.3

CONTEXT = [
    "address",
    "live",
    "lives",
    "located",
    "location",
    "street",
    "moved",
    "move",
    "send",
    "ship",
    "deliver",
    "corner",
    "office",
    "apartment",
    "return",
    "mail",
    "visit",
    "meet",
    "drop",
    "stop",
    "house",
    "home",
]


class StreetAddressRecognizer(PatternRecognizer):
    """Street addresses as one span each, from a house-number/street-type grammar (see module doc)."""

    def __init__(self, supported_language: str = "en") -> None:
        patterns = [Pattern(f"address_strong_{i}", rx, STRONG_SCORE) for i, rx in enumerate(STRONG)]
        patterns += [Pattern(f"address_weak_{i}", rx, WEAK_SCORE) for i, rx in enumerate(WEAK)]
        super().__init__(
            supported_entity="STREET_ADDRESS",
            name="appliance_street_address",
            supported_language=supported_language,
            patterns=patterns,
            context=CONTEXT,
            global_regex_flags=regex.MULTILINE,
        )

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None, regex_flags: int | None = None
    ) -> list[RecognizerResult]:
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        for r in results:
            head = _HEAD.search(text, max(0, r.start - 16), r.start)
            if head:
                r.start = head.start()
            cross = _CROSS.search(text, max(0, r.start - 40), r.start)
            if cross:
                r.start = cross.start()
            m = _TAIL.match(text, r.end)
            if not m and not any(c.isupper() for c in text[r.start : r.end]):
                m = _LOWER_TAIL.match(text, r.end)
            if m:
                r.end = m.end()
                if r.score < STRONG_SCORE and _BLOCK.search(m.group()):
                    r.score = STRONG_SCORE  # a weak anchor followed by a unit or a multi-line block
        return results
