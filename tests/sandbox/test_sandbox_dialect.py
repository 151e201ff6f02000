"""The sandbox's `rudderstack` dialect over real HTTP: it answers each kind of request as RudderStack did."""

from __future__ import annotations

import gzip
from collections import Counter

import pytest

from sandbox.config import ConfigError, parse_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def rudder(sandbox_factory, receiver_factory, helpers):
    recv = receiver_factory()
    cfg = helpers.make_config([helpers.dest("hook", recv.url)], dialect="rudderstack")
    return sandbox_factory(cfg), recv, helpers


def _track(helpers, i: int) -> dict:
    return helpers.track(i)


def test_short_paths_are_not_found(rudder):
    sb, _, h = rudder
    for letter in "tpigasb":
        answer = sb.post(f"/v1/{letter}", _track(h, 1))
        assert (answer.status_code, answer.text) == (404, "404 page not found\n"), letter
    assert sb.post("/v1/track", _track(h, 2)).status_code == 200  # the long path is there


def test_write_key_only_from_the_basic_auth_header(rudder):
    sb, _, h = rudder
    body_only = sb.post("/v1/track", {**_track(h, 1), "writeKey": "key-web"}, key=None)
    assert (body_only.status_code, body_only.text) == (401, "Failed to read writeKey from header\n")
    bearer = sb.post("/v1/track", {**_track(h, 2), "writeKey": "key-web"}, key=None,
                     headers={"authorization": "Bearer some-token"})  # fmt: skip
    assert (bearer.status_code, bearer.text) == (401, "Failed to read writeKey from header\n")
    wrong = sb.post("/v1/track", _track(h, 3), key="no-such-key")
    assert (wrong.status_code, wrong.text) == (401, "Invalid Write Key\n")


def test_success_is_plain_ok_and_is_delivered(rudder):
    sb, recv, h = rudder
    answer = sb.post("/v1/batch", {"batch": [_track(h, 1), _track(h, 2)]})
    assert (answer.status_code, answer.text) == (200, "OK")
    assert answer.headers["content-type"].startswith("text/plain")
    no_event = {k: v for k, v in _track(h, 3).items() if k != "event"}
    assert sb.post("/v1/track", no_event).text == "OK"  # RudderStack accepts a track without event
    h.wait_until(lambda: len(recv.events()) >= 3)
    assert {e["messageId"] for e in recv.events()} == {"m-1", "m-2", "m-3"}


def test_one_id_less_item_refuses_the_whole_batch(rudder):
    sb, recv, h = rudder
    anonymous = {k: v for k, v in _track(h, 2).items() if k not in ("userId", "anonymousId")}
    answer = sb.post("/v1/batch", {"batch": [_track(h, 1), anonymous, _track(h, 3)]})
    assert (answer.status_code, answer.text) == (400, "Request neither has anonymousId nor userId\n")
    single = sb.post(
        "/v1/identify", {k: v for k, v in anonymous.items() if k != "event"} | {"type": "identify"}
    )
    assert single.status_code == 400
    assert sb.post("/v1/batch", {"batch": [_track(h, 4)]}).status_code == 200
    h.wait_until(lambda: len(recv.events()) >= 1)
    assert [e["messageId"] for e in recv.events()] == ["m-4"], "nothing of the refused batch is delivered"


def test_corrupt_gzip_is_answered_500_as_rudderstack_does(rudder):
    sb, _, _ = rudder
    good = gzip.compress(b'{"batch":[{"type":"track","event":"E","userId":"u","messageId":"g-1"}]}')
    answer = sb.post("/v1/batch", raw=good[:-9] + b"garbage!!", headers={"content-encoding": "gzip"})
    assert (answer.status_code, answer.text) == (500, "Failed to read body from request\n")
    assert sb.post("/v1/batch", raw=good, headers={"content-encoding": "gzip"}).status_code == 200


def test_no_dedupe_unless_enabled(sandbox_factory, receiver_factory, helpers):
    counts = {}
    for enabled in (None, True):
        recv = receiver_factory()
        dedupe = {} if enabled is None else {"enabled": enabled}
        cfg = helpers.make_config([helpers.dest("hook", recv.url)], dialect="rudderstack", dedupe=dedupe)
        sb = sandbox_factory(cfg)
        for _ in range(3):
            assert sb.post("/v1/track", _track(helpers, 7)).status_code == 200
        want = 3 if enabled is None else 1
        sb.wait_for(lambda s, want=want: s["delivered"].get("hook", 0) >= want and s["queued"]["hook"] == 0)
        counts[enabled] = Counter(e["messageId"] for e in recv.events())["m-7"]
    assert counts == {None: 3, True: 1}


def test_default_dialect_is_unchanged(sandbox_factory, receiver_factory, helpers):
    """`any` (the default): short paths, body keys and JSON answers as before; dedupe on."""
    recv = receiver_factory()
    sb = sandbox_factory(helpers.make_config([helpers.dest("hook", recv.url)]))
    assert sb.post("/v1/t", _track(helpers, 1)).json() == {"success": True}
    assert sb.post("/v1/track", {**_track(helpers, 2), "writeKey": "key-web"}, key=None).status_code == 200
    assert sb.post("/v1/track", _track(helpers, 2)).status_code == 200  # a duplicate, dropped
    helpers.wait_until(lambda: len(recv.events()) >= 2)
    assert sorted(e["messageId"] for e in recv.events()) == ["m-1", "m-2"]


def test_config_names_a_bad_dialect_or_dedupe_switch(helpers):
    with pytest.raises(ConfigError, match="dialect: expected one of"):
        parse_config(helpers.make_config(dialect="segment-ish"))
    with pytest.raises(ConfigError, match=r"dedupe\.enabled: expected true, false or null"):
        parse_config(helpers.make_config(dedupe={"enabled": "yes"}))
    assert not parse_config(helpers.make_config(dialect="rudderstack")).dedupe_enabled
    assert parse_config(helpers.make_config(dialect="rudderstack", dedupe={"enabled": True})).dedupe_enabled
