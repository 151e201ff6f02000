"""Every generated message is valid; builders and the fast path write the same fields."""

from __future__ import annotations

import dataclasses

from tests.support import messages as build
from tests.support.tracking_api import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_MESSAGE_BYTES,
    check_batch,
    check_message,
)


def test_every_generated_message_validates(make_gen, profile, decode, messages_of):
    prof = dataclasses.replace(profile, replay_share=0.05, bad_input_share=0.0)
    gen = make_gen(prof=prof)
    checked = 0
    for source in gen.sources:
        for _ in range(150):
            req = gen.next_request(source)
            doc = decode(req)
            if "batch" in doc:
                assert len(req.body) <= MAX_BATCH_BYTES or req.headers.get("Content-Encoding") == "gzip"
                assert check_batch(doc) == [], (source, check_batch(doc)[:3])
            else:
                assert check_message(doc) == [], (source, check_message(doc))
            checked += len(messages_of(req))
            assert len(messages_of(req)) == req.message_count == len(req.seqs)
    assert checked > 20_000


def test_validator_names_field_and_limit():
    ok = build.track(event="Product Viewed", properties={"price": 1.0}, message_id="m1",
                     timestamp="2026-01-01T00:00:00.000Z", anonymous_id="a1")  # fmt: skip
    assert check_message(ok) == []
    problems = {str(p) for p in check_message({**ok, "event": None})}
    assert "event: missing: a track call needs event" in problems
    no_user = {k: v for k, v in ok.items() if k != "anonymousId"}
    assert [str(p) for p in check_message(no_user)] == [
        "userId: missing: a message needs userId or anonymousId"
    ]
    long_id = {**ok, "messageId": "x" * 101}
    assert [str(p) for p in check_message(long_id)] == [
        "messageId: 101 characters exceeds the 100-character limit"
    ]
    big = {**ok, "properties": {"notes": "x" * MAX_MESSAGE_BYTES}}
    assert any(f"exceeds the {MAX_MESSAGE_BYTES}-byte message limit" in str(p) for p in check_message(big))
    wrong = {**ok, "userId": 5, "properties": [], "timestamp": "soon"}
    fields = {p.field for p in check_message(wrong)}
    assert fields == {"userId", "properties", "timestamp"}
    group = build.group(group_id="", traits={}, message_id="m", timestamp="2026-01-01T00:00:00Z", user_id="u")
    assert [p.field for p in check_message(group)] == ["groupId"]
    alias = {
        **build.alias(previous_id="p", message_id="m", timestamp="2026-01-01T00:00:00Z", user_id="u"),
        "userId": "",
    }
    assert "userId: missing: an alias call needs userId" in {str(p) for p in check_message(alias)}
    assert {p.field for p in check_message(alias)} == {"userId"}
    body = build.batch([ok] * (MAX_BATCH_EVENTS + 1), sent_at="2026-01-01T00:00:00Z")
    assert [str(p) for p in check_batch(body)] == [
        f"batch: {MAX_BATCH_EVENTS + 1} events exceeds the 2500-event limit"
    ]
    assert [p.field for p in check_batch({"batch": [ok, no_user]})] == ["batch[1].userId"]


def test_builders_cover_every_call_type():
    common = {"message_id": "m", "timestamp": "2026-01-01T00:00:00.000Z", "user_id": "u", "anonymous_id": "a"}
    calls = [
        build.identify(traits={"email": "a@example.com"}, **common),
        build.track(event="Order Completed", properties={"total": 1}, **common),
        build.page(name="Home", properties={"path": "/"}, **common),
        build.screen(name="Cart", properties={}, **common),
        build.group(group_id="g", traits={"name": "Acme"}, **common),
        build.alias(previous_id="a", **common),
    ]
    for call in calls:
        assert check_message(call) == []
        assert {"type", "messageId", "timestamp", "context", "integrations", "userId", "anonymousId"} <= set(
            call
        )


def test_fast_path_messages_have_the_builders_fields(make_gen, messages_of):
    """The generator's bytes hold the same common fields the clear-path builders write."""
    gen = make_gen()
    common = {"type", "messageId", "timestamp", "context", "integrations"}
    required = {"track": {"event", "properties"}, "page": {"name", "properties"}, "screen": {"name", "properties"},
                "identify": {"traits"}, "group": {"groupId", "traits"}, "alias": {"previousId", "userId"}}  # fmt: skip
    seen = set()
    for source in ("web", "android", "node", "http"):
        for _ in range(300):
            for message in messages_of(gen.next_request(source)):
                assert common <= set(message)
                assert required[message["type"]] <= set(message)
                seen.add(message["type"])
    assert seen == set(required)


def test_server_page_and_screen_calls_are_valid_messages(make_gen, profile, decode, messages_of):
    """Server libraries and HTTP callers may send page and screen calls: their context carries no page."""
    mix = {"track": 0.4, "identify": 0.2, "page": 0.2, "screen": 0.2}
    prof = dataclasses.replace(
        profile, bad_input_share=0.0, call_types={**profile.call_types, "server": mix, "http": mix}
    )
    gen = make_gen(prof=prof)
    seen = set()
    for source in ("node", "ruby", "http"):
        for _ in range(60):
            req = gen.next_request(source)
            doc = decode(req)
            assert (check_batch(doc) if "batch" in doc else check_message(doc)) == []
            for message in messages_of(req):
                seen.add(message["type"])
                assert "page" not in message.get("context", {})
    assert {"page", "screen"} <= seen
