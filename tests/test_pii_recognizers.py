"""Recognizer tables on the real Presidio engine under the shipped default policy (loaded once)."""

from __future__ import annotations

import pytest

from appliance.pii import PiiPipeline
from appliance.policy import default_policy_path, load_policy_file

pytestmark = pytest.mark.slow  # real Presidio (the shipped recognizers) in every test


@pytest.fixture(scope="module")
def pipe() -> PiiPipeline:
    return PiiPipeline.from_policy(load_policy_file(default_policy_path()).pii, key=b"t" * 32, dataset="tables")


def found(pipe: PiiPipeline, text: str) -> list[tuple[str, str]]:
    return [(f["type"], text[f["start"] : f["end"]]) for f in pipe.scan([text])[0]]


@pytest.mark.parametrize(
    ("text", "etype", "value"),
    [
        # Presidio rejects this well-known sample SSN; the appliance still treats it as an SSN
        ("My SSN is 078-05-1120", "US_SSN", "078-05-1120"),
        ("Here's my SSN: 219-09-9999", "US_SSN", "219-09-9999"),
        ("Email john.smith@gmail.com today", "EMAIL_ADDRESS", "john.smith@gmail.com"),
        ("Send it to laura.whitfield@northwind-mail.com.", "EMAIL_ADDRESS", "laura.whitfield@northwind-mail.com"),
        ("Call me at 212-555-1234", "PHONE_NUMBER", "212-555-1234"),
        ("Phone: 72 128 827", "PHONE_NUMBER", "72 128 827"),
        ("Can someone call me on 9472 7916?", "PHONE_NUMBER", "9472 7916"),
        ("my card 4111111111111111 expired", "CREDIT_CARD", "4111111111111111"),
        ("card number 630427373398 is lost", "CREDIT_CARD", "630427373398"),
        ("IBAN GB33BUKB20201555555555 please", "IBAN_CODE", "GB33BUKB20201555555555"),
        ("server at 192.168.10.20 is down", "IP_ADDRESS", "192.168.10.20"),
        ("She lives at 24 Clarke Avenue, Springfield", "STREET_ADDRESS", "24 Clarke Avenue, Springfield"),
        ("Ship it to Hansinegata 120, Oslo", "STREET_ADDRESS", "Hansinegata 120, Oslo"),
        ("PSC 3294, Box 9168\nAPO AA 61487", "STREET_ADDRESS", "PSC 3294, Box 9168\nAPO AA 61487"),
        (
            "Meet me at 5100 Quadra 104\n Suite 845\n Evionnaz\n Switzerland 05377",
            "STREET_ADDRESS",
            "5100 Quadra 104\n Suite 845\n Evionnaz\n Switzerland 05377",
        ),
        ("my zip code is 90010-170", "STREET_ADDRESS", "90010-170"),
        ("Dr. Alma Jensen will see you", "PERSON", "Alma Jensen"),
        ("My name is Martin", "PERSON", "Martin"),
        ("Contact Laura Whitfield tomorrow", "PERSON", "Laura Whitfield"),
        ("employee EMP-204518 badge", "EMPLOYEE_ID", "EMP-204518"),
        ("ticket INC-4471 closed", "TICKET_ID", "INC-4471"),
    ],
)
def test_finds(pipe: PiiPipeline, text: str, etype: str, value: str) -> None:
    start = text.index(value)
    spans = pipe.scan([text])[0]
    assert any(f["type"] == etype and f["start"] <= start and start + len(value) <= f["end"] for f in spans), spans


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("The NHS number 943 476 5919", "UK_NHS"),  # ignored type: false hits on phone/account numbers
        ("My SSN is 078-05-1120", "ORGANIZATION"),  # "SSN" is allow-listed, not an organization
        ("Please reset my PIN and SSN settings", "ORGANIZATION"),
        ("Email john.smith@gmail.com today", "URL"),  # fragments merged into the e-mail span
        ("We shipped 12 boxes on Monday", "PERSON"),  # calendar words are not names
        ("Pay 20 GBP or 25 EUR by SEPA transfer", "ORGANIZATION"),  # currency codes are not organizations
    ],
)
def test_known_presidio_errors_are_fixed(pipe: PiiPipeline, text: str, absent: str) -> None:
    assert absent not in [t for t, _ in found(pipe, text)]


@pytest.mark.parametrize(
    "text",
    ["The meeting is next week", "Please reset my PIN and SSN settings", "thanks, that works for me"],
)
def test_plain_text_has_no_findings(pipe: PiiPipeline, text: str) -> None:
    assert found(pipe, text) == []


def test_allowed_types_only_on_request(pipe: PiiPipeline) -> None:
    text = "The invoice is dated 2021-03-04"
    assert "DATE_TIME" not in [t for t, _ in found(pipe, text)]
    assert "DATE_TIME" in [f["type"] for f in pipe.scan([text], include_allowed=True)[0]]


@pytest.mark.parametrize(
    "text",
    [
        "I paid via bank transfer",  # "via" is a word before it is a street prefix
        "I have 3 things for u. What now?",  # chat "u." is not a Hungarian street type
        "Do you support the U.S. and Europe?",
        "Please refund 20 dollars via Google Pay",
        "I paid 300 at the avenue of the stars store",  # no Romance particle, no house-number grammar
        "My card ending 4321. Then I called you",  # a period ends the sentence, not an address block
        "Boarding at Departure Gate 12 now",  # an English word for a street type only when suffixed (Storgate 3)
        "We walked the trail 3 times",
        "thank u. 5 stars from me",
        "The Supreme Court 2019 ruling stands",
        # legal text (TAB's ECHR judgments): a year before a court, a numbered rule or section, is no address
        "On 3 May 1993 the Administrative Court dismissed the appeal",
        "under section 9 of the Administrative Court Procedure Act",
        "The Court decided, in accordance with Rule 52 § 1 of the Rules of Court, to assign it to the Section",
        "Before moving to the address in Article 6 § 1 of the Convention",
    ],
)
def test_address_grammar_does_not_fire_on_plain_text(pipe: PiiPipeline, text: str) -> None:
    assert "STREET_ADDRESS" not in [t for t, _ in found(pipe, text)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Ship to 808 Kálmán Imre u. 12. please", "Kálmán Imre u. 12"),
        # a capitalised "The" may start a street name after the house number (a lower-case "the" may not)
        ("He lives at 14 The Old Road, Leeds", "14 The Old Road, Leeds"),
        ("It is at Via Roma 131, Milano", "Via Roma 131, Milano"),
        ("She moved to 5586 Þórunnarstræti 31, Arnsdorf, Germany", "5586 Þórunnarstræti 31, Arnsdorf, Germany"),
        ("Call 28-64-66-98 office for details", "28-64-66-98"),
        # street type first with a Romance particle, house numbers before it
        ("Mail it to 010 63 Avenue du Golf Arabe, Hellendoorn", "010 63 Avenue du Golf"),
        ("He lives at 36 rue de pologne now", "36 rue de pologne"),
        ("Office: 48010 Paseo del Atlántico 81", "48010 Paseo del Atlántico 81"),
        # a number written before a unit anchor belongs to the address
        ("Deliver to 77 Suite 318 tomorrow", "77 Suite 318"),
        # name, street type, house number (the order of most of Europe), in either case
        ("The stop is on Lindauer Strasse 41", "Lindauer Strasse 41"),
        ("meet me at hegyalja út 12 tomorrow", "hegyalja út 12"),
        ("The office is at Kossuth u. 7.", "Kossuth u. 7"),
        # military addresses in lower case, and lower-case blocks after a comma
        ("send it to psc 1234, box 5678\napo ae 09012", "psc 1234, box 5678\napo ae 09012"),
        ("ship to 12 ringvej 4, odense, denmark 5000", "12 ringvej 4, odense, denmark 5000"),
        # place names with lower-case particles, a region code before the postcode, a street intersection
        ("Mail: 9 Main Street Apt. 3, Villar de Olmos, Spain 28001", "9 Main Street Apt. 3, Villar de Olmos, Spain"),
        ("Go to 14 Oak Drive\nSan Isidro\n, 21\n 40510", "14 Oak Drive\nSan Isidro\n, 21\n 40510"),
        ("Meet at Bruno and Storgatan 15 at noon", "Bruno and Storgatan 15"),
        # a period closing the street line does not end the block when it continues on the next line
        ("Ship to 808 Kálmán Imre u. 12.\nLyss 50662", "808 Kálmán Imre u. 12.\nLyss 50662"),
    ],
)
def test_more_address_and_phone_forms(pipe: PiiPipeline, text: str, value: str) -> None:
    start = text.index(value)
    assert any(f["start"] <= start and start + len(value) <= f["end"] for f in pipe.scan([text])[0])


def test_precision_reads_presidios_recognizer_name_key() -> None:
    from presidio_analyzer import RecognizerResult

    from appliance.pii.precision import RECOGNIZER_NAME_KEY

    assert RecognizerResult.RECOGNIZER_NAME_KEY == RECOGNIZER_NAME_KEY


def test_the_stop_word_list_is_spacys_own() -> None:
    from spacy.lang.en.stop_words import STOP_WORDS

    from appliance.pii import lexicon

    assert lexicon.stop_words() == frozenset(STOP_WORDS)
