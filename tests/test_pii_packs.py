"""Domain packs (pii.packs): validation, merging, their recognizers; readable pseudonymisation (real engine)."""

from __future__ import annotations

import pytest

from appliance.errors import ConfigError
from appliance.pii import PiiPipeline
from appliance.pii.packs import effective
from appliance.pii.pseudonym import match_case
from appliance.policy import default_policy_path, load_policy_file, parse_policy
from appliance.policy.schema import PiiPolicy, load_pack, shipped_packs

pytestmark = pytest.mark.slow  # real Presidio (the shipped recognizers) in every test

PACKS = ["clinical", "legal", "support", "forum"]


@pytest.fixture(scope="module")
def policy() -> PiiPolicy:
    return load_policy_file(default_policy_path()).pii


@pytest.fixture(scope="module")
def pipe(policy: PiiPolicy) -> PiiPipeline:
    return PiiPipeline.from_policy(policy, key=b"k" * 32, dataset="packs")


def values(pipe: PiiPipeline, text: str) -> list[tuple[str, str]]:
    return [(f["type"], text[f["start"] : f["end"]]) for f in pipe.scan([text])[0]]


def test_shipped_packs_are_valid_and_enabled_by_default(policy: PiiPolicy) -> None:
    assert set(PACKS) <= set(shipped_packs())
    assert policy.packs == PACKS
    for name in PACKS:
        pack = load_pack(name)
        assert pack.description and (pack.custom_recognizers or pack.allow_list)


def test_unknown_pack_is_an_error_naming_key_and_allowed_values() -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy({"pii": {"packs": ["clinical", "astrology"]}}, "p.yaml")
    msg = str(err.value)
    assert "p.yaml" in msg and "pii.packs" in msg and "astrology" in msg and "legal" in msg


def test_pack_schema_forbids_unknown_keys() -> None:
    from pydantic import ValidationError

    from appliance.policy.schema import PiiPack

    with pytest.raises(ValidationError):
        PiiPack.model_validate({"allow_list": ["x"], "recognisers": []})
    with pytest.raises(ValidationError):
        PiiPack.model_validate({"allow_patterns": ["(unclosed"]})


def test_merge_keeps_the_policy_first_and_is_idempotent(policy: PiiPolicy) -> None:
    data = policy.model_dump(mode="json")
    data["entities"]["CASE_NUMBER"] = {"action": "drop_record", "threshold": 0.9}
    merged = effective(PiiPolicy.model_validate(data))
    assert merged.packs == [] and effective(merged) == merged
    assert merged.entities["CASE_NUMBER"].action.value == "drop_record"  # the policy's rule wins
    assert merged.entities["MEDICAL_RECORD_NUMBER"].action.value == "redact"  # the pack's rule fills in
    entities = {c.entity for c in merged.custom_recognizers}
    assert {"EMPLOYEE_ID", "TICKET_ID", "CASE_NUMBER", "SOCIAL_HANDLE", "NATIONAL_ID"} <= entities
    assert "Convention" in merged.allow_list and "SSN" in merged.allow_list


def test_without_packs_their_types_are_not_found(policy: PiiPolicy) -> None:
    data = policy.model_dump(mode="json") | {"packs": []}
    bare = PiiPipeline.from_policy(PiiPolicy.model_validate(data), key=b"k" * 32, dataset="bare")
    text = "the complaint was registered as application no. 51234/07"
    assert "CASE_NUMBER" not in [f["type"] for f in bare.scan([text])[0]]


@pytest.mark.parametrize(
    ("text", "etype", "value"),
    [
        ("They lodged application no. 51234/07 in 2007.", "CASE_NUMBER", "51234/07"),
        ("applications nos. 3321/99 and 3322/99 were joined", "CASE_NUMBER", "3322/99"),
        ("Docket number 22-cv-04417 was reassigned.", "CASE_NUMBER", "22-cv-04417"),
        ("MRN: 88273105, admitted overnight", "MEDICAL_RECORD_NUMBER", "88273105"),
        ("patient id is ab-4471023 per the chart", "MEDICAL_RECORD_NUMBER", "ab-4471023"),
        ("follow me @quiet_fern_22 for updates", "SOCIAL_HANDLE", "@quiet_fern_22"),
        ("thanks u/orbital_llama for the link", "SOCIAL_HANDLE", "u/orbital_llama"),
        ("my passport number is P77120934, expiring soon", "PASSPORT_NUMBER", "P77120934"),
        ("driving licence: WOODS705110JA9LK", "DRIVER_LICENSE", "WOODS705110JA9LK"),
        ("national id 8801015009087 on the form", "NATIONAL_ID", "8801015009087"),
        ("my NI number is AB 12 34 56 D", "NATIONAL_ID", "AB 12 34 56 D"),
        ("customer id: CX-88412 (premium plan)", "CUSTOMER_ID", "CX-88412"),
        # a quoted value after its label, identifiers with letters after the digits, short labels
        ("his PAN card number 'BQRPS7731K' was leaked", "NATIONAL_ID", "BQRPS7731K"),
        ("TIN 47-2210934 on the W-9", "NATIONAL_ID", "47-2210934"),
        ("Voter ID 'XKD4410987' on file", "NATIONAL_ID", "XKD4410987"),
        ("a scan of passport 'ZT881204577' was shared", "PASSPORT_NUMBER", "ZT881204577"),
        ("MRN RX-2290417B on the chart", "MEDICAL_RECORD_NUMBER", "RX-2290417B"),
        ("insurance code QH-55012 was updated", "CUSTOMER_ID", "QH-55012"),
        ("refund sent to (ACC: NLB7730021456)", "CUSTOMER_ID", "NLB7730021456"),
        ("employee number 44120-OPS was exposed", "CUSTOMER_ID", "44120-OPS"),
        ("the card ending in 4421 was declined", "CUSTOMER_ID", "4421"),
        ("UserID 'quiet_fern' was locked", "SOCIAL_HANDLE", "quiet_fern"),
        ("or find me on discord as moss.lantern9 tonight", "SOCIAL_HANDLE", "moss.lantern9"),
        ("I stream on twitch as kev9 most nights", "SOCIAL_HANDLE", "kev9"),
    ],
)
def test_pack_recognizers(pipe: PiiPipeline, text: str, etype: str, value: str) -> None:
    start = text.index(value)
    assert any(
        f["type"] == etype and f["start"] <= start and start + len(value) <= f["end"] for f in pipe.scan([text])[0]
    ), values(pipe, text)


@pytest.mark.parametrize(
    "text",
    [
        "write to hello@example.org for help",  # an e-mail is not a handle
        "the score was 24/7 and 3/4 of the team agreed",
        "We met at 10:30 on 12/05 to discuss it",
        "the season ending in 2019 was long",
        "a tin of 12 biscuits and a tax of 5 percent",
        "the word 'hello' in quotes",
        "I use Instagram as well as Twitter as a hobby.",
        # a label word glued to a longer word, a verb that is also a label, years and scores after a label word
        "I played nintendo64 and drove a Nissan350Z; EpicGamer99 joined after the pandemic2020 idea2019",
        "an epic 2023-24 season, a tax file 2019-20 return and the voter 2019-2020 rolls",
        "the patient received the mRNA-1273 booster",
        "Please handle 'urgent' tickets first; I tried to handle \"the rest\" myself",
        'the Twitter "verified" badge',
        "It's on Steam as 19.99 right now, or on steam as e.g. a gift",
        "licensed under the license (GPLv3)",
        "my visa ending in 2025 soon",
    ],
)
def test_pack_recognizers_do_not_fire_on_plain_text(pipe: PiiPipeline, text: str) -> None:
    found = [t for t, _ in values(pipe, text)]
    packs = {"SOCIAL_HANDLE", "CASE_NUMBER", "NATIONAL_ID", "PASSPORT_NUMBER", "CUSTOMER_ID"}
    packs |= {"MEDICAL_RECORD_NUMBER", "DRIVER_LICENSE"}
    assert not packs & set(found), found


def test_custom_recognizers_still_work_next_to_packs(pipe: PiiPipeline) -> None:
    text = "employee EMP-204518 opened ticket INC-4471"
    assert {("EMPLOYEE_ID", "EMP-204518"), ("TICKET_ID", "INC-4471")} <= set(values(pipe, text))


# -- readable pseudonymisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "surrogate", "expected"),
    [
        ("stephanie", "Laura Chen", "laura chen"),
        ("STEPHANIE", "Laura", "LAURA"),
        ("Stephanie", "Laura", "Laura"),
        ("McDonald", "Laura", "Laura"),
        ("12-34", "Laura", "Laura"),
    ],
)
def test_match_case(original: str, surrogate: str, expected: str) -> None:
    assert match_case(original, surrogate) == expected


def test_surrogates_keep_the_case_of_lower_case_transcripts(pipe: PiiPipeline) -> None:
    text = "[doctor] hi , jennifer . how is the knee ?"
    [res] = pipe.process([text])
    assert res.text is not None and "jennifer" not in res.text
    start = text.index("jennifer")
    name = res.text[start : res.text.index(" .", start)]
    assert name and name == name.lower(), res.text


def test_headers_are_never_replaced(pipe: PiiPipeline) -> None:
    text = "REVIEW OF SYSTEMS\nConstitutional: negative.\nASSESSMENT AND PLAN\nContinue lisinopril."
    [res] = pipe.process([text])
    assert res.text == text


def test_only_findings_above_threshold_are_replaced(policy: PiiPolicy) -> None:
    data = policy.model_dump(mode="json")
    data["entities"]["PERSON"] = {"action": "pseudonymize", "threshold": 0.9}
    strict = PiiPipeline.from_policy(PiiPolicy.model_validate(data), key=b"k" * 32, dataset="strict")
    text = "bye , melissa . see you soon"  # a greeting cue scores 0.8, under this threshold
    assert [f["type"] for f in strict.scan([text], include_allowed=True)[0]] == []
    [res] = strict.process([text])
    assert res.text == text and res.findings == []


def test_prefilters_skip_work_not_findings(pipe: PiiPipeline) -> None:
    texts = [
        "application no. 51234/07 and MRN 88273105",
        "my passport number is P77120934 and my NI number is AB 12 34 56 D",
        "born on march third , nineteen seventy-eight ; call five five five two one four eight",
        "nothing to see here",
    ]
    engine = pipe.engine
    assert engine.analyze(texts) == [engine.analyze_one(t) for t in texts]
    assert "PASSPORT_NUMBER" in engine._skipped("nothing to see here")


def test_custom_recognizer_prefilter_must_compile() -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy(
            {"pii": {"custom_recognizers": [{"entity": "X_ID", "patterns": [{"name": "x", "regex": "X\\d+"}],
                                             "prefilter": "(unclosed"}]}},
            "p.yaml",
        )  # fmt: skip
    assert "prefilter" in str(err.value)
