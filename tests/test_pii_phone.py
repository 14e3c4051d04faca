"""The phone recognizer's region prefilter: exactly Presidio's findings, on texts made to sit at its bounds."""

from __future__ import annotations

import json
import random
import re

import pytest

pytestmark = pytest.mark.slow  # imports Presidio and phonenumbers' metadata

REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")  # Presidio's default supported regions


@pytest.fixture(scope="module")
def pair():  # type: ignore[no-untyped-def]
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    from appliance.pii.phone import PhoneRegionRecognizer

    return PhoneRecognizer(), PhoneRegionRecognizer()


def findings(rec, text: str) -> list[tuple[int, int, str, float]]:  # type: ignore[no-untyped-def]
    return sorted((r.start, r.end, r.entity_type, r.score) for r in rec.analyze(text, ["PHONE_NUMBER"]))


def texts_at_the_bounds() -> list[str]:
    """Example numbers of every default region and of the shortest-number regions, in every format, cut short digit
    by digit, with "+", with an international prefix, spelled with "x" and full-width characters."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat as F

    out: list[str] = []
    for region in (*REGIONS, "AT", "IR", "NU", "SH", "TK", "LU", "UY"):
        for kind in (None, phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.TOLL_FREE):
            if kind is None:
                number = phonenumbers.example_number(region)
            else:
                number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for fmt in (F.NATIONAL, F.INTERNATIONAL, F.E164, F.RFC3966):
                written = phonenumbers.format_number(number, fmt)
                digits = [i for i, c in enumerate(written) if c.isdigit()]
                for cut in range(len(digits) + 1):  # drop the last `cut` digits
                    short = written[: digits[-cut]] if cut else written
                    out += [f"call {short} now", f"tel. {short}", f"00{short.lstrip('+')} or 011 {short}"]
            national = str(number.national_number)
            out += [f"ring {national[:n]}" for n in range(1, len(national) + 1)]
            out += [f"+{number.country_code} {national[:n]}" for n in range(1, len(national) + 1)]
    out += ["＋４９ ３０ １２３４", "49-xxx-12", "1-800-xxx-4567", "030 1234", "0301 23", "ext. 12 x 3456"]
    out += ["box 12x3x4", "+1 (650) 253-0000 ext. 12"]
    return out


def test_every_punctuation_of_the_matcher_joins_a_run() -> None:
    from phonenumbers.phonenumberutil import _VALID_PUNCTUATION

    from appliance.pii.phone import _JOIN

    punct, join = re.compile(f"[{_VALID_PUNCTUATION}]"), re.compile(_JOIN)
    missing = [hex(cp) for cp in range(0x110000) if punct.fullmatch(chr(cp)) and not join.fullmatch(chr(cp))]
    assert missing == []


def test_same_findings_as_presidio_at_the_bounds(pair) -> None:  # type: ignore[no-untyped-def]
    presidio, ours = pair
    texts = texts_at_the_bounds()
    assert len(texts) > 1000
    found = 0
    for text in texts:
        expected = findings(presidio, text)
        assert findings(ours, text) == expected, text
        found += bool(expected)
    assert found > 300  # the texts hold real numbers, not only near misses


def test_same_findings_as_presidio_on_random_and_public_text(pair, shared_data) -> None:  # type: ignore[no-untyped-def]
    presidio, ours = pair
    rng = random.Random(16)
    alphabet = "0123456789" * 4 + " -.()/+x＋ー_ab" + "\u00ad\u2010\u3000"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 30))) for _ in range(1500)]
    synth = json.loads((shared_data / "pii_presidio_synth" / "synth_dataset_v2.json").read_text())
    texts += [r["full_text"] for r in synth[:600]]
    for text in texts:
        assert findings(ours, text) == findings(presidio, text), text


@pytest.mark.parametrize("leniency", [0, 1, 2, 3])
@pytest.mark.parametrize("regions", [REGIONS, ("NF",), ("SM",), ("JE",), ("GG",), ("AG", "MG", "CC", "CX")])
def test_same_findings_for_other_regions_and_leniencies(regions: tuple[str, ...], leniency: int) -> None:
    """Local-only lengths count at POSSIBLE; regions whose parsing rewrites national numbers are never skipped."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    from appliance.pii.phone import PhoneRegionRecognizer

    presidio = PhoneRecognizer(supported_regions=regions, leniency=leniency)
    ours = PhoneRegionRecognizer(supported_regions=regions, leniency=leniency)
    digits = "9125348670"
    texts = [f"call {digits[:n]} now" for n in range(1, len(digits) + 1)]
    texts += [f"call +{cc} {digits[:n]}" for cc in ("1", "44", "672", "378", "261") for n in range(1, 8)]
    texts += ["call 51234 now", "call 912345 now", "call 456789", "call 256789", "call 123 now", "call 12 now"]
    for text in texts:
        assert findings(ours, text) == findings(presidio, text), (regions, leniency, text)


def test_regions_are_skipped_only_below_their_shortest_number() -> None:
    from appliance.pii.phone import regions_for

    assert regions_for("no digits here", REGIONS) == []
    assert regions_for("call 1234", REGIONS) == ["DE"]  # German numbers can be 4 digits long
    assert regions_for("call 12345", REGIONS) == ["DE"]
    assert regions_for("call +12345", REGIONS) == ["DE"]  # "+" and 5 digits: no country code and number so short
    assert regions_for("call +123456", REGIONS) == list(REGIONS)  # "+" and 6: Austria's, Germany's, Iran's
    assert regions_for("call 123-4567", REGIONS) == ["US", "GB", "DE", "IL", "CA"]  # not yet FR, IN, BR (8)
    assert regions_for("call 1234", REGIONS, leniency=0) == ["GB", "DE"]  # possible: GB's local-only lengths
    assert regions_for("call 12345", ("NF",)) == ["NF"]  # Norfolk Island turns 5 typed digits into 6
