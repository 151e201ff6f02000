"""The bad-input catalogue: each case is what it claims, checked by the validator and by the sandbox."""

from __future__ import annotations

import zlib

import httpx
import orjson
import pytest

from loadgen.bad_inputs import CASE_NAMES, CASES, basic_auth
from loadgen.ids import decode_many
from loadgen.limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from tests.support.tracking_api import check_batch, check_message

SOURCES = ("web", "android", "node", "http", "java")
EXPECTED_PROBLEM = {
    "oversized_message": "message limit",
    "missing_user_id": "needs userId or anonymousId",
    "track_without_event": "track call needs event",
    "wrong_types": "must be",
    "message_id_too_long": "100-character limit",
}


def _raw(req):
    if req.headers.get("Content-Encoding") == "gzip":
        return zlib.decompress(req.body, 31)
    return req.body


@pytest.fixture(scope="module")
def shared_gen(profile):
    from loadgen.traffic import TrafficGenerator

    return TrafficGenerator(profile, seed=1, run=77, stream=3, write_keys={s: f"wk-{s}" for s in profile.sources},
                            clock=lambda: 1_795_000_000.123)  # fmt: skip


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("case", CASE_NAMES)
def test_each_case_is_what_it_claims(shared_gen, case, source):
    gen = shared_gen
    before = gen.next_seq
    req = gen.bad_request(source, case)
    assert req.kind == "bad" and req.bad_case == case
    assert gen.next_seq == before + req.message_count and list(req.seqs) == list(range(before, gen.next_seq))
    spec = CASES[case]
    if case == "bad_gzip":
        assert req.headers["Content-Encoding"] == "gzip"
        with pytest.raises(zlib.error):
            zlib.decompress(req.body, 31)
        assert req.expected_status == 400
        return
    raw = _raw(req)
    if case == "malformed_json":
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
        assert req.expected_status == 400
        return
    doc = orjson.loads(raw)
    items = doc.get("batch", [doc])
    assert len(items) == req.message_count
    if spec.item_level:
        problems = check_batch(raw) if "batch" in doc else check_message(doc)
        assert any(EXPECTED_PROBLEM[case] in str(p) for p in problems), problems
        if "batch" in doc:
            assert req.expected_status == 200 and len(req.rejected_seqs) == 1
            (bad_index,) = {int(p.field.split("]")[0].removeprefix("batch[")) for p in problems}
            assert req.rejected_seqs == [req.seqs[bad_index]]
            good = [m for i, m in enumerate(items) if i != bad_index]
            assert good and all(check_message(m) == [] for m in good)  # the valid ones must not be lost
            decoded = decode_many([m["messageId"] for m in good])
            assert decoded.valid.all() and req.rejected_seqs[0] not in decoded.seq.tolist()
        else:
            assert req.expected_status == 400
    elif case == "oversized_batch":
        assert len(raw) > MAX_BATCH_BYTES and all(check_message(m) == [] for m in items)
        assert req.expected_status == 400
    elif case == "too_many_events":
        assert len(items) == MAX_BATCH_EVENTS + 1 and len(raw) < MAX_BATCH_BYTES
        assert [str(p) for p in check_batch(raw)] == ["batch: 2501 events exceeds the 2500-event limit"]
        assert req.expected_status == 400
    elif case in ("bad_write_key", "missing_write_key"):
        assert check_batch(raw) == []  # only the key is wrong
        assert req.expected_status == 401
        key = doc.get("writeKey")
        auth = req.headers.get("Authorization")
        if case == "missing_write_key":
            assert key is None and auth is None
        else:
            assert key != f"wk-{source}" and (auth is None or auth != basic_auth(f"wk-{source}"))


def test_bad_inputs_appear_at_the_profile_share(make_gen, profile):
    import dataclasses

    gen = make_gen(prof=dataclasses.replace(profile, bad_input_share=0.05, duplicate_share=0.0))
    kinds = [gen.next_request("node").kind for _ in range(2000)]
    assert 60 < kinds.count("bad") < 140


def test_the_sandbox_answers_each_case_as_labelled(make_gen, sandbox):
    """Every case from several libraries, sent to the real sandbox over loopback; then a valid request."""
    gen = make_gen()
    mismatches = []
    with httpx.Client(base_url=sandbox, timeout=10) as client:
        for source in SOURCES:
            for case in CASE_NAMES:
                req = gen.bad_request(source, case)
                answer = client.post(req.path, content=req.body, headers=req.headers)
                if answer.status_code != req.expected_status:
                    mismatches.append(
                        (source, case, req.expected_status, answer.status_code, answer.text[:200])
                    )
                elif req.expected_status == 200:
                    assert answer.json()["rejected"] == len(req.rejected_seqs)
        for source in gen.sources:  # and valid traffic from every library is accepted
            for _ in range(3):
                good = gen.next_request(source)
                answer = client.post(good.path, content=good.body, headers=good.headers)
                assert answer.status_code == 200 and answer.json()["success"] is True, (source, answer.text)
    assert not mismatches, mismatches
