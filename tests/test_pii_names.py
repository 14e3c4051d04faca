"""Names and dates of birth in lower-case and spoken text; the proper-noun rule's precision (real engine)."""

from __future__ import annotations

import pytest

from appliance.pii import PiiPipeline, lexicon
from appliance.policy import default_policy_path, load_policy_file

pytestmark = pytest.mark.slow  # real Presidio (the shipped recognizers) in every test


@pytest.fixture(scope="module")
def pipe() -> PiiPipeline:
    return PiiPipeline.from_policy(load_policy_file(default_policy_path()).pii, key=b"n" * 32, dataset="names")


def covered(pipe: PiiPipeline, text: str, value: str, etype: str | None = None) -> bool:
    start = text.index(value)
    return any(
        f["start"] <= start and start + len(value) <= f["end"] and (etype is None or f["type"] == etype)
        for f in pipe.scan([text])[0]
    )


def values(pipe: PiiPipeline, text: str) -> list[tuple[str, str]]:
    return [(f["type"], text[f["start"] : f["end"]]) for f in pipe.scan([text])[0]]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[doctor] hello , jennifer . what brings you in ?", "jennifer"),  # greeting
        ("[patient] thanks , doctor . bye , melissa .", "melissa"),
        ("okay , so the next patient is brandon hughes . he is here for his back .", "brandon hughes"),
        ("hi , this is kimberly from the billing office", "kimberly"),
        ("um my name is xochitl and i have a question", "xochitl"),  # strong cue: any word, no lexicon needed
        ("yes i spoke with dr. abernathy last week", "abernathy"),  # title in lower case
        ("how long has it hurt , vanessa ?", "vanessa"),  # vocative
        ("so i told my husband , and then patricia called me back", "patricia"),  # bare name in lower-case text
        ("we saw jonathan spencer at the clinic yesterday", "jonathan spencer"),  # first name + surname
        ("HI , RACHEL . HOW ARE YOU ?", "RACHEL"),
        ("[doctor] so roger is a 62 year old male who presents with knee pain", "roger"),  # an introduction
        ("[doctor] great . um , beverly's a 24 year old female here today", "beverly"),
        ("[doctor] hey george how are you today", "george"),  # a greeting, whatever the tagger guesses
        ("[doctor] okay alright so karen tell me about the twitch", "karen"),  # unpunctuated vocative
        ("[doctor] that is all for today , take care julie .", "julie"),  # closing a turn
        ("[doctor] right so carolyn for your first problem we will start a statin", "carolyn"),
    ],
)
def test_spoken_names(pipe: PiiPipeline, text: str, value: str) -> None:
    assert covered(pipe, text, value, "PERSON"), values(pipe, text)


@pytest.mark.parametrize(
    "text",
    [
        "[doctor] hi , how are you feeling today ?",
        "this is great news , thank you so much .",
        "okay , i will call you back tomorrow .",  # "will" is a name only after a strong cue
        "i hope the swelling goes down , may i take a look ?",
        "we need to park the car and walk over to the clinic .",
        "thanks , that works for me .",
        "so mark your calendar for the next visit and we will mark the spot .",  # "mark" the verb
        "i have hay fever every spring and my colon is fine .",  # surnames that are English words
    ],
)
def test_spoken_text_without_names(pipe: PiiPipeline, text: str) -> None:
    assert [v for v in values(pipe, text) if v[0] == "PERSON"] == []


def test_a_name_found_once_is_found_at_every_mention(pipe: PiiPipeline) -> None:
    text = (
        "[doctor] hi , karen . how are you ?\n[patient] okay , my eye keeps twitching .\n"
        "[doctor] the remainder of your exam karen is pretty normal and karen's reflexes are fine ."
    )
    spans = [(f["start"], f["end"]) for f in pipe.scan([text])[0] if f["type"] == "PERSON"]
    starts = [i for i in range(len(text)) if text.startswith("karen", i)]
    assert [s for s, _ in spans] == starts, values(pipe, text)
    assert pipe.process([text])[0].text.count("karen") == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("date of birth is 07/24 , and i live alone", "07/24"),
        ("i was born on august twenty-second , nineteen eighty-four", "august twenty-second , nineteen eighty-four"),
        ("DOB: 1969-05-30", "1969-05-30"),
        ("her birthday is the ninth of january", "the ninth of january"),
    ],
)
def test_dates_of_birth(pipe: PiiPipeline, text: str, value: str) -> None:
    assert covered(pipe, text, value, "DATE_OF_BIRTH"), values(pipe, text)


def test_other_dates_are_not_dates_of_birth(pipe: PiiPipeline) -> None:
    text = "the appointment is on march third and the invoice is dated 03/04/2021"
    assert "DATE_OF_BIRTH" not in [t for t, _ in values(pipe, text)]


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("The Government argued that the Convention did not apply.", "Government"),
        ("Under Article 6 of the Convention the Court examines the length of the proceedings.", "Article"),
        ("The Minister referred to the Criminal Code and to Protocol No. 1.", "Minister"),
        ("The European Court of Human Rights held unanimously.", "Human Rights"),
        ("REVIEW OF SYSTEMS\nNegative for fever.", "REVIEW"),
        ("ASSESSMENT AND PLAN: continue current therapy.", "ASSESSMENT"),
        ("History of Present Illness: worsening cough for a week.", "History"),
        ("Normocephalic, atraumatic. Supple neck.", "Normocephalic"),  # a sentence opener, not a name
        ("Neck: Supple. No lymphadenopathy.", "Supple"),
        ("Summary: Doing well.\nPlan: Review in a week.", "Summary"),  # a header label is no speaker
        ("How to Calculate Compound Interest in a Spreadsheet", "Calculate"),
        ("Neck: Supple. No lymphadenopathy. Mild thyromegaly noted.", "thyromegaly"),  # lower case in cased text
        # a currency is no name (a demo output: "… between US Dollars and Euros?" was pseudonymised)
        ("Can you help me understand the exchange rate between US Dollars and Euros?", "Euros"),
        ("Do you change Pesos into Rupees at the airport?", "Pesos"),
    ],
)
def test_vocabulary_headers_and_openers_are_not_names(pipe: PiiPipeline, text: str, word: str) -> None:
    start = text.index(word)
    assert not [f for f in pipe.scan([text])[0] if f["type"] == "PERSON" and f["start"] <= start < f["end"]], values(
        pipe, text
    )


def test_a_header_label_is_never_replaced(pipe: PiiPipeline) -> None:
    text = (
        "PLAN\n\n• Medical Treatment: Initiate Ultram 50 mg twice daily.\n"
        "• Diagnostic Testing: Echocardiogram ordered.\n• Genitourinary: Denies dysuria.\n\n"
        "RESULTS\n\nEchocardiogram shows normal function."
    )
    out = pipe.process([text])[0].text
    assert out is not None
    for header in ("PLAN\n", "• Medical Treatment:", "• Diagnostic Testing:", "• Genitourinary: Denies", "RESULTS\n"):
        assert header in out, values(pipe, text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("The applicant, Mr Dragomir Kovačević, was arrested in 1994.", "Dragomir Kovačević"),
        ("I met Siobhan at the conference and she mentioned the delay.", "Siobhan"),
        ("PATIENT: MARGARET OYELARAN", "MARGARET"),  # a name in capitals after a header label
        ("Koppány: Who are you?\nEli: Nobody.", "Koppány"),  # a speaker label
        ('Heather: "Who are you?"\nMelvin: "Your neighbour."', "Heather"),  # a lexicon first name as a speaker
        ("They invited four: Hleb, Sheila, Donna and Ruth.", "Hleb"),  # a list of names
        ("Irenka is very reliable.", "Irenka"),  # an uncommon subject
    ],
)
def test_names_still_found_in_formal_text(pipe: PiiPipeline, text: str, value: str) -> None:
    assert covered(pipe, text, value), values(pipe, text)  # removed, whatever spaCy calls it


def test_lexicon_classes() -> None:
    assert lexicon.is_name("stephanie") and lexicon.is_name("Patel") and lexicon.is_name("james")
    assert not lexicon.is_name("will") and not lexicon.is_name("may")  # everyday words first
    assert not lexicon.is_name("brown")  # a surname, but first of all a common word
    assert lexicon.is_vocabulary("Convention") and lexicon.is_vocabulary("government")
    assert not lexicon.is_vocabulary("james") and not lexicon.is_vocabulary("brown")  # no name is vocabulary
    assert lexicon.is_rare("normocephalic") and not lexicon.is_rare("okonkwo")  # en_NG names are in the lexicon
