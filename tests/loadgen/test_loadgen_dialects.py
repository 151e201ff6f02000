"""Dialects in the traffic model: each source's library per dialect, RudderStack's headers and fields."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from loadgen.dialects import DIALECTS, EVIDENCE, RUDDERSTACK_LIBRARIES, library_for, library_key
from loadgen.ids import IdStyle, decode_message_id
from loadgen.libraries import LIBRARIES, SOURCE_LIBRARY
from loadgen.profile import DEFAULT_PROFILE, ProfileError, load_profile


@pytest.fixture
def rudder(profile):
    return dataclasses.replace(profile, dialect="rudderstack", bad_input_share=0.0, replay_share=0.0,
                               duplicate_share=0.0)  # fmt: skip


def test_every_source_has_a_library_in_every_dialect_and_every_rudderstack_library_its_evidence(profile):
    for dialect in DIALECTS:
        for source in profile.sources:
            assert library_for(dialect, source).source_kind == LIBRARIES[SOURCE_LIBRARY[source]].source_kind
    assert set(EVIDENCE) == set(RUDDERSTACK_LIBRARIES)
    assert library_for("segment", "web") is LIBRARIES["analytics.js"]
    with pytest.raises(ValueError, match="unknown dialect 'kafka'"):
        library_key("kafka", "web")


def test_profile_key_and_its_error(tmp_path):
    good = tmp_path / "p.yaml"
    text = DEFAULT_PROFILE.read_text()
    good.write_text(text.replace("dialect: segment", "dialect: rudderstack"))
    assert load_profile(good).dialect == "rudderstack"
    good.write_text(text.replace("dialect: segment", "dialect: snowplow"))
    with pytest.raises(ProfileError, match=r"dialect: unknown dialect 'snowplow'; known: segment, rudderstack"):
        load_profile(good)


def test_rudderstack_browser_requests_carry_the_sdks_headers_and_fields(make_gen, rudder, decode):
    gen = make_gen(prof=rudder)
    for _ in range(200):
        req = gen.next_request("web")
        body = decode(req)
        assert req.path in ("/v1/track", "/v1/page", "/v1/identify", "/v1/group", "/v1/alias")
        assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"wk-web:").decode()
        assert "writeKey" not in body
        assert base64.b64decode(req.headers["AnonymousId"]).decode() == body["anonymousId"]
        assert req.headers["SentAt"] == body["sentAt"]
        assert body["integrations"] == {"All": True} and body["channel"] == "web"
        assert "originalTimestamp" in body and "timestamp" not in body
        assert body["context"]["library"] == {"name": "RudderLabs JavaScript SDK", "version": "3.34.1"}


def test_rudderstack_mobile_batches_name_their_device_and_keep_the_id_scheme(make_gen, rudder, messages_of):
    gen = make_gen(prof=rudder, run=31, stream=5)
    for source in ("android", "ios", "xamarin"):
        for _ in range(50):
            req = gen.next_request(source)
            messages = messages_of(req)
            assert req.path == "/v1/batch" and req.headers["Content-Encoding"] == "gzip"
            (anonymous,) = {m["anonymousId"] for m in messages}  # one device's queue
            assert base64.b64decode(req.headers["AnonymousId"]).decode() == anonymous
            for message in messages:
                ms, _, uuid = message["messageId"].partition("-")
                assert ms.isdigit() and len(uuid) == 36, message["messageId"]
                decoded = decode_message_id(message["messageId"])
                assert decoded is not None and (decoded.run, decoded.stream) == (31, 5)
                assert message["channel"] == "mobile"


def test_ms_id_style_wraps_and_decodes():
    assert IdStyle.MS.wrap("u" * 36, 1795000000123) == "1795000000123-" + "u" * 36
    assert IdStyle.MS.prefix(5) == b"5-" and IdStyle.PLAIN.prefix(5) == b""
    assert IdStyle.AJS_NEXT.prefix(7) == b"ajs-next-7-"
