"""The generator: realized shares, library request shapes, ids, determinism, users, timing."""

from __future__ import annotations

import base64
import dataclasses
from collections import Counter

import numpy as np
import orjson
import pytest

from loadgen.dialects import DIALECTS, library_for
from loadgen.events import ECOMMERCE_EVENTS
from loadgen.ids import IdStyle, decode_many
from loadgen.libraries import LIBRARIES, SOURCE_LIBRARY
from loadgen.traffic import CALL_TYPES

FIXED_TIME = 1_795_000_000.123  # the fixed clock of conftest.make_gen


def _plain(profile):
    return dataclasses.replace(profile, bad_input_share=0.0, replay_share=0.0, duplicate_share=0.0)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_realized_shares_match_the_profile_over_200k_messages(make_gen, profile, dialect):
    """Sources drawn per request as a paced scenario does; message shares within ±1 point, in each dialect."""
    gen = make_gen(prof=dataclasses.replace(_plain(profile), dialect=dialect))
    names = list(gen.sources)
    weights = np.array([gen.sources[s] / gen.mean_messages_per_request(s) for s in names])
    order = np.random.default_rng(5).choice(len(names), size=400_000, p=weights / weights.sum()).tolist()
    per_source: Counter[str] = Counter()
    per_source_requests: Counter[str] = Counter()
    per_library: Counter[str] = Counter()
    per_library_requests: Counter[str] = Counter()
    per_kind_type: dict[str, Counter[str]] = {}
    total = i = 0
    while total < 200_000:
        req = gen.next_request(names[order[i]])
        i += 1
        per_source[req.source] += req.message_count
        per_source_requests[req.source] += 1
        per_library[req.library] += req.message_count
        per_library_requests[req.library] += 1
        total += req.message_count
        counter = per_kind_type.setdefault(gen.library_of(req.source).source_kind, Counter())
        for message in req.messages:  # the encoded messages: type is the first field
            counter[message[9 : message.index(b'"', 9)].decode()] += 1
    library_share: Counter[str] = Counter()  # two sources may speak through one library (rudderstack)
    for source, share in profile.sources.items():
        # ±1 point, or 4 standard errors of the source's request count for the big-batch libraries
        # (Go and Java send up to 250 messages a request: a few dozen requests in 200,000 messages)
        tolerance = max(0.01, 4 * share / per_source_requests[source] ** 0.5)
        assert abs(per_source[source] / total - share) < tolerance, (source, per_source[source] / total, share)
        library_share[library_for(dialect, source).name] += share
    for library, share in library_share.items():
        tolerance = max(0.01, 4 * share / per_library_requests[library] ** 0.5)
        assert abs(per_library[library] / total - share) < tolerance, (library, per_library[library] / total)
    kind_share = {kind: sum(counter.values()) / total for kind, counter in per_kind_type.items()}
    overall = sum(per_kind_type.values(), Counter())
    for call_type in CALL_TYPES:
        expected = sum(kind_share[k] * profile.call_types[k].get(call_type, 0.0) for k in kind_share)
        assert abs(overall[call_type] / total - expected) < 0.01, (
            call_type,
            overall[call_type] / total,
            expected,
        )
    for kind, counter in per_kind_type.items():
        n = sum(counter.values())
        for call_type, share in profile.call_types[kind].items():
            # per kind: ±1 point, or 4 standard errors for the small kinds (direct HTTP is 4.5% of traffic)
            tolerance = max(0.01, 4 * (share * (1 - share) / n) ** 0.5)
            assert abs(counter[call_type] / n - share) < tolerance, (
                kind,
                call_type,
                counter[call_type] / n,
                share,
            )


def test_mean_messages_per_request_matches_what_is_built(make_gen, profile):
    gen = make_gen(prof=_plain(profile))
    for source in gen.sources:
        reqs = [gen.next_request(source) for _ in range(400)]
        mean = sum(r.message_count for r in reqs) / len(reqs)
        expected = gen.mean_messages_per_request(source)
        assert abs(mean - expected) <= max(0.1 * expected, 0.3), (source, mean, expected)


def test_each_library_request_shape_matches_the_facts(make_gen, profile, decode, messages_of):
    gen = make_gen(prof=_plain(profile))
    for source in gen.sources:
        lib = gen.library_of(source)
        assert LIBRARIES[SOURCE_LIBRARY[source]] is lib
        for _ in range(40):
            req = gen.next_request(source)
            headers = req.headers
            assert req.method == "POST"
            assert ("Content-Encoding" in headers) == lib.gzip
            assert headers.get("Content-Encoding", "gzip") == "gzip"
            doc = decode(req)
            auth = headers.get("Authorization", "")
            if source == "web":
                assert req.path in {"/v1/t", "/v1/p", "/v1/i", "/v1/g", "/v1/a"}
                assert req.path == f"/v1/{doc['type'][0]}"
                assert headers["Content-Type"] == "text/plain"
                assert auth == "" and doc["writeKey"] == "wk-web"
                assert (
                    headers["User-Agent"].startswith("Mozilla/5.0")
                    and headers["User-Agent"] == doc["context"]["userAgent"]
                )
            elif source == "http":
                assert req.path in {"/v1/batch"} | {f"/v1/{t}" for t in CALL_TYPES}
                assert auth.startswith(("Basic ", "Bearer ")) or doc["writeKey"] == "wk-http"
                if auth.startswith("Bearer "):
                    assert doc["writeKey"] == "wk-http"
            else:
                expected_path = (
                    "/v1/import"
                    if source in ("ruby", "java", "android", "dotnet", "xamarin")
                    else "/v1/batch"
                )
                assert req.path == expected_path, source
                assert headers["Content-Type"] == "application/json"
                assert base64.b64decode(auth.removeprefix("Basic ")) == f"wk-{source}:".encode()
                assert ("writeKey" in doc) == (source in ("node", "python")), source
                assert len(doc["batch"]) <= lib.flush_at
            if lib.user_agent:
                assert headers["User-Agent"] == lib.user_agent
            if source == "ios":
                assert " CFNetwork/" in headers["User-Agent"] and " Darwin/" in headers["User-Agent"]
            for message in messages_of(req):
                context = message["context"]
                if lib.source_kind == "http":
                    assert "library" not in context
                    continue
                assert context["library"] == {"name": lib.name, "version": lib.version}
                assert set(context) <= set(lib.automatic_context), (source, set(context))
                if lib.source_kind == "server":
                    assert set(context) == {"library"}
                elif lib.source_kind == "mobile":
                    assert set(context) == set(lib.automatic_context)
                    assert set(context["app"]) >= {"name", "version", "build"}
                    assert set(context["device"]) == {"type", "id", "advertisingId", "adTrackingEnabled", "manufacturer",
                                                      "model", "name"}  # fmt: skip
                    assert set(context["network"]) == {"carrier", "cellular", "wifi"}
                    assert set(context["os"]) == {"name", "version"}
                    assert set(context["screen"]) == {"height", "width", "density"}
                    if source == "ios":
                        assert (
                            context["device"]["type"] == "ios"
                            and context["device"]["manufacturer"] == "Apple"
                        )
                    if source == "android":
                        assert context["device"]["type"] == "android"
                else:
                    assert {"library", "page", "userAgent", "locale", "timezone"} <= set(context)
                    assert set(context["page"]) == {"path", "referrer", "search", "title", "url"}
                style = lib.id_style
                if style is IdStyle.PLAIN:
                    assert len(message["messageId"]) == 36
                else:
                    assert message["messageId"].startswith(f"{style.value}-{req.sent_ms}-")


def test_retry_policies_follow_the_facts():
    node, go, android, ios, python = (LIBRARIES[n] for n in ("@segment/analytics-node", "analytics-go",
                                                            "analytics-android", "analytics-ios", "analytics-python"))  # fmt: skip
    assert node.retry.max_attempts == 10 and node.retry.retry_count_header == "X-Retry-Count"
    assert node.retry.delay(3, retry_after=7) == 7.0
    assert python.retry.delay(3, retry_after=7) != 7.0 or python.retry.honours_retry_after
    for lib in LIBRARIES.values():
        assert lib.retry.should_retry(None) and lib.retry.should_retry(500) and lib.retry.should_retry(429)
        assert not lib.retry.should_retry(200)
        assert lib.retry.delay(1) <= lib.retry.max_delay * (1 + lib.retry.jitter)
    assert (
        go.retry.should_retry(400)
        and not node.retry.should_retry(400)
        and not android.retry.should_retry(401)
    )
    assert (
        android.retry.should_retry(302) and ios.retry.should_retry(302) and not node.retry.should_retry(302)
    )
    ruby = LIBRARIES["analytics-ruby"].retry
    assert (ruby.base_delay, ruby.max_delay, ruby.multiplier, ruby.max_attempts) == (0.1, 10.0, 1.5, 10)


def test_for_retry_keeps_the_body_and_adds_node_retry_count(make_gen):
    gen = make_gen()
    req = gen.next_request("node")
    again = req.for_retry(2)
    assert again.body == req.body and again.seqs == req.seqs
    assert again.headers["X-Retry-Count"] == "2" and "X-Retry-Count" not in req.headers
    assert "X-Retry-Count" not in gen.next_request("android").for_retry(1).headers


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ids_decode_to_what_was_encoded(make_gen, profile, messages_of, dialect):
    """The id scheme the audit reads survives every library's messageId format, in each dialect."""
    ticks = iter(range(10**9))
    prof = dataclasses.replace(_plain(profile), dialect=dialect)
    gen = make_gen(stream=9, run=4242, prof=prof, clock=lambda: FIXED_TIME + next(ticks) / 1000)
    expected_seq = 0
    for _ in range(300):
        for source in gen.sources:
            req = gen.next_request(source)
            ids = [m["messageId"] for m in messages_of(req)]
            decoded = decode_many(ids)
            assert decoded.valid.all()
            assert set(decoded.run.tolist()) == {4242} and set(decoded.stream.tolist()) == {9}
            assert decoded.seq.tolist() == list(req.seqs)
            assert set(decoded.sent_ms.tolist()) == {req.sent_ms}
            assert req.seqs[0] == expected_seq  # consecutive per stream from 0
            expected_seq = req.seqs[-1] + 1


def test_two_streams_never_share_ids_or_users(make_gen, messages_of):
    a, b = make_gen(stream=1), make_gen(stream=2)
    ids_a, ids_b, users_a, users_b = set(), set(), set(), set()
    for gen, ids, users in ((a, ids_a, users_a), (b, ids_b, users_b)):
        for _ in range(200):
            for source in ("node", "android", "web"):
                for m in messages_of(gen.next_request(source)):
                    ids.add(m["messageId"])
                    users.update(x for x in (m.get("userId"), m.get("anonymousId")) if x)
    assert len(ids_a) > 1000 and not ids_a & ids_b
    assert not users_a & users_b


def test_same_seed_same_traffic_and_another_seed_differs(make_gen):
    def traffic(seed):
        gen = make_gen(seed=seed)
        return [(r.path, r.body, tuple(r.headers.items())) for s in gen.sources for r in
                (gen.next_request(s) for _ in range(30))]  # fmt: skip

    assert traffic(7) == traffic(7)
    assert traffic(7) != traffic(8)


def test_users_log_in_keep_their_ids_and_activity_is_skewed(make_gen, profile, messages_of):
    gen = make_gen(prof=_plain(profile))
    anon_to_user: dict[str, str] = {}
    per_user: Counter[str] = Counter()
    logged_in_then_anonymous = 0
    for _ in range(6000):
        (m,) = messages_of(gen.next_request("web"))
        anon = m["anonymousId"]
        per_user[anon] += 1
        if m["type"] == "identify":
            assert m["userId"] and m["traits"]["email"].endswith("@example.com")
            anon_to_user.setdefault(anon, m["userId"])
        if anon in anon_to_user:
            logged_in_then_anonymous += m.get("userId") != anon_to_user[anon]
    assert anon_to_user and logged_in_then_anonymous == 0
    counts = sorted(per_user.values(), reverse=True)
    top = sum(counts[: max(1, len(counts) // 100)])
    assert top / sum(counts) > 0.2  # the top 1% of visitors send over a fifth of the traffic


def test_sessions_follow_the_funnel_and_orders_add_up(make_gen, profile, messages_of):
    gen = make_gen(prof=_plain(profile))
    names: Counter[str] = Counter()
    for _ in range(3000):
        for m in messages_of(gen.next_request("web")):
            if m["type"] != "track":
                continue
            names[m["event"]] += 1
            p = m["properties"]
            if m["event"] == "Order Completed":
                revenue = round(sum(x["price"] * x["quantity"] for x in p["products"]) - p["discount"], 2)
                assert abs(p["revenue"] - revenue) < 0.011
                assert abs(p["total"] - (p["revenue"] + p["shipping"] + p["tax"])) < 0.011
                assert p["currency"] in {"USD", "EUR", "GBP", "CAD", "AUD", "JPY", "BRL"}
                assert all(
                    {"product_id", "sku", "name", "brand", "price", "quantity"} <= set(x)
                    for x in p["products"]
                )
    funnel = [
        names[e]
        for e in (
            "Products Searched",
            "Product Viewed",
            "Product Added",
            "Checkout Started",
            "Order Completed",
        )
    ]
    assert funnel[0] > funnel[2] > funnel[3] > funnel[4] > 0, funnel
    ecommerce = {
        n
        for n in names
        if n.startswith(("Product", "Order", "Checkout", "Cart", "Coupon", "Promotion", "Payment"))
    }
    assert ecommerce <= set(ECOMMERCE_EVENTS)


def test_mobile_batches_queue_earlier_events_from_one_device(make_gen, profile, decode):
    gen = make_gen(prof=_plain(profile))
    sent = orjson.loads(orjson.dumps(FIXED_TIME))
    offline = 0
    for _ in range(400):
        req = gen.next_request("android")
        doc = decode(req)
        assert doc["sentAt"].startswith("2026-11-18T")
        items = doc["batch"]
        assert len({m["anonymousId"] for m in items}) == 1
        stamps = [
            np.datetime64(m["timestamp"].rstrip("Z")).astype("datetime64[ms]").astype(np.int64) for m in items
        ]
        assert stamps == sorted(stamps) and stamps[-1] <= req.sent_ms
        assert stamps[0] <= req.sent_ms - 1000 or len(items) == 1 or stamps[-1] < req.sent_ms - 3_600_000
        offline += stamps[-1] < req.sent_ms - 3_600_000
    assert 0 < offline < 60  # about 5% of batches waited hours on the device
    assert sent


def test_replay_sends_old_events_in_bulk(make_gen, profile, decode):
    prof = dataclasses.replace(_plain(profile), replay_share=1.0)
    gen = make_gen(prof=prof)
    for source in ("node", "android", "web"):
        req = gen.next_request(source)
        assert req.kind == "replay" and req.path in ("/v1/batch", "/v1/import")
        doc = decode(req)
        assert 100 <= len(doc["batch"]) <= 500 and len(req.body) < 500 * 1024
        oldest = (
            np.datetime64(doc["batch"][0]["timestamp"].rstrip("Z")).astype("datetime64[ms]").astype(np.int64)
        )
        assert req.sent_ms - oldest >= 86_400_000  # at least a day old
        assert req.sent_ms - oldest <= 30 * 86_400_000


def test_each_request_names_the_call_type_of_every_new_message(profile, make_gen):
    """`call_types` (what the load metrics count by type) matches the messages actually built."""
    gen = make_gen()
    seen: set[str] = set()
    for source in profile.sources:
        for _ in range(100):
            request = gen.next_request(source)
            if request.kind not in ("event", "replay"):
                continue
            types = [orjson.loads(message)["type"] for message in request.messages]
            assert [CALL_TYPES[t] for t in request.call_types] == types
            seen.update(types)
    assert seen == set(CALL_TYPES)
