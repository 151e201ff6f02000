"""The generator's fast-path building blocks agree with the plain, obviously-correct way."""

from __future__ import annotations

import dataclasses
import time
import uuid

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.encoding import TIMESTAMP_KEY, IdEncoder, TimestampCache
from loadgen.event_pool import categorical, categorical_cdf
from loadgen.ids import (
    MAX_RUN,
    MAX_SEQ,
    MAX_STREAM,
    IdStyle,
    encode_seq_halves,
    encode_uuids,
    make_message_id,
)
from loadgen.libraries import LIBRARIES
from loadgen.population import Population, uuid4_text, uuid4_texts
from loadgen.prepared import PreparedRequest, event_request


@settings(max_examples=50, deadline=None)
@given(st.integers(0, MAX_RUN), st.integers(0, MAX_STREAM), st.integers(0, MAX_SEQ - 1000))
def test_seq_halves_are_the_last_18_characters_of_the_uuids(run, stream, first):
    seqs = np.arange(first, first + 1000, dtype=np.uint64)
    assert (
        encode_seq_halves(run, stream, seqs) == encode_uuids(1_795_000_000_123, run, stream, seqs)[:, 18:]
    ).all()


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, (1 << 48) - 1),
    st.integers(0, MAX_RUN),
    st.integers(0, MAX_STREAM),
    st.sampled_from(list(IdStyle)),
)
def test_id_encoder_halves_join_to_the_scalar_message_id(sent_ms, run, stream, style):
    encoder = IdEncoder(run, stream)
    parts = encoder.tails(70_000, 3)  # a block that does not start at 0
    assert encoder.tail(70_001) == parts[1]
    for offset, part in enumerate(parts):
        assert part.endswith(TIMESTAMP_KEY)
        built = (encoder.head(style, sent_ms) + part[: -len(TIMESTAMP_KEY)]).decode()
        assert built == make_message_id(style, sent_ms, run, stream, 70_000 + offset)


def test_timestamp_cache_matches_strftime_and_survives_being_cleared():
    cache = TimestampCache(limit=5)
    for ms in (0, 999, 1_795_000_000_123, 1_795_000_000_999, 1_795_000_001_000, 1_700_000_000_007) * 3:
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
        assert cache.encode(ms).decode() == expected
        assert cache.stamp(ms).decode() == expected + '"'
    assert len(cache.stamps) <= 5 and len(cache.seconds) <= 5


def test_bulk_anonymous_ids_are_the_uuid_module_version_4_texts():
    raw = np.random.default_rng(7).bytes(16 * 2000)
    expected = [str(uuid.UUID(bytes=raw[16 * i : 16 * i + 16], version=4)) for i in range(2000)]
    assert uuid4_texts(raw) == expected


def test_user_tail_changes_ids_on_login_and_keeps_the_context(make_gen):
    gen = make_gen()
    for source in ("web", "android", "node"):
        pop = gen.population_of(source)
        user = next(u for u in range(pop.count) if not pop.identified[u])
        before = pop.tail(user)
        assert pop.log_in(user)
        after = pop.tail(user)
        ids = {"anonymousId": pop.anonymous_id(user)} if source != "node" else {}
        ids["userId"] = pop.user_id(user)
        context = before[before.index(b',"context":') :]
        assert after == b"," + orjson.dumps(ids)[1:-1] + context
        if source == "web":
            assert after.endswith(b',"page":')
        else:
            assert after.endswith(b',"integrations":{}}')
            message = orjson.loads(b'{"type":"track"' + after)
            assert message["context"] == pop.context(user)


def test_ids_and_timestamps_stay_right_across_milliseconds_and_id_blocks(make_gen, profile, decode):
    """Sources share per-millisecond parts; the seq block refills: every id and sentAt still matches."""
    ticks = iter(range(10**9))
    plain = dataclasses.replace(profile, bad_input_share=0.0, replay_share=0.0, duplicate_share=0.0)
    gen = make_gen(prof=plain, clock=lambda: 1_795_000_000.5 + next(ticks) // 3 / 1000)
    gen.stream_clock.next_seq = 65_530  # the first request crosses the end of the first id block
    gen.stream_clock.ids.tails(65_530, 1)
    for _ in range(60):
        for source in ("web", "android", "node", "http"):
            req = gen.next_request(source)
            doc = decode(req)
            sent_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(req.sent_ms // 1000))
            assert doc["sentAt"] == f"{sent_at}.{req.sent_ms % 1000:03d}Z"
            for seq, message in zip(req.seqs, doc.get("batch", [doc]), strict=True):
                style = gen.library_of(source).id_style
                assert message["messageId"] == make_message_id(style, req.sent_ms, 77, 3, seq)
                assert message["timestamp"].endswith("Z") and len(message["timestamp"]) == 24


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 60_000), st.floats(0.5, 2.0), st.integers(0, 2**32 - 1))
def test_user_draws_are_exactly_the_binary_search(count, exponent, seed):
    pop = Population(LIBRARIES["analytics.js"], count=count, zipf_exponent=exponent, identified_at_start=0.3,
                     seed=1, stream=2, source_index=0)  # fmt: skip
    u = np.random.default_rng(seed).random(4096)
    u[:3] = (0.0, np.nextafter(1.0, 0.0), 0.5)
    assert pop.users_at(u).tolist() == np.searchsorted(pop.cdf, u).tolist()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 128) - 1))
def test_device_uuid_text_is_the_uuid_module_version_4_text(value):
    assert uuid4_text(value) == str(uuid.UUID(int=value, version=4))


def test_shared_contexts_are_each_users_own_context(make_gen):
    """Browsers and server libraries share encoded contexts by key; each must still be the user's own."""
    gen = make_gen()
    for source in ("web", "node", "http", "android"):
        pop = gen.population_of(source)
        for user in range(0, pop.count, 7):
            tail = pop.tail(user)
            context = tail[tail.index(b',"context":') + len(b',"context":') :]
            if source == "web":
                assert context.endswith(b',"page":')
                assert orjson.loads(context.removesuffix(b',"page":') + b"}") == pop.context(user)
            else:
                assert orjson.loads(context.removesuffix(b',"integrations":{}}')) == pop.context(user)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4_102_444_800_000))
def test_timestamp_second_tables_match_strftime(ms):
    """The date-and-time-of-day tables write what strftime writes, for any millisecond to 2100."""
    cache = TimestampCache(limit=3)
    expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
    assert cache.encode(ms).decode() == expected
    assert cache.encode(ms + 86_400_000).decode()[:10] == time.strftime(
        "%Y-%m-%d", time.gmtime(ms // 1000 + 86_400)
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8).filter(lambda w: sum(w) > 0),
    st.integers(0, 2**32 - 1),
)
def test_categorical_draws_are_exactly_numpy_choice(weights, seed):
    """`categorical` gives rng.choice's answers from the same draws, and leaves the generator where it does."""
    p = np.array(weights) / sum(weights)
    expected_rng, rng = np.random.default_rng(seed), np.random.default_rng(seed)
    expected = expected_rng.choice(len(p), size=5000, p=p)
    assert categorical(rng, categorical_cdf(p), 5000).tolist() == expected.tolist()
    assert rng.random() == expected_rng.random()


def test_event_request_sets_every_field_as_the_class_does():
    """The hot path's request factory and the dataclass agree on every field, so a new field cannot be missed."""
    args = dict(source="web", library="analytics.js", path="/v1/t", headers={"A": "b"}, body=b"{}",
                seqs=range(4, 5), message_count=1, sent_ms=123, messages=[b"{}"], retry_count_header=None,
                call_types=(1,))  # fmt: skip
    fast = event_request(**args)
    plain = PreparedRequest(
        method="POST", kind="event", bad_case=None, expected_status=200, rejected_seqs=[], **args
    )
    for f in dataclasses.fields(PreparedRequest):
        assert getattr(fast, f.name) == getattr(plain, f.name), f.name
    assert fast == plain and fast.rejected_seqs is not event_request(**args).rejected_seqs
