"""`harness profile fit`: a profile fitted to `harness traffic` reproduces its shares and event names,
and a fitted profile carries no value of the sample (ids, emails, free text)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema
import orjson
import pytest

from loadgen.cli import request_lines
from loadgen.fit import fit, render
from loadgen.infer_schema import Privacy
from loadgen.profile import DEFAULT_PROFILE, Profile, load_profile
from loadgen.traffic import TrafficGenerator

REQUESTS = 50_000


def _traffic(profile: Profile, count: int, seed: int) -> list[dict]:
    """What `harness traffic --count N --seed S` prints, built in-process by the same function."""
    gen = TrafficGenerator(profile, seed=seed, run=1, stream=0,
                           write_keys={s: f"example-{s}-key" for s in profile.sources})  # fmt: skip
    return list(request_lines(gen, list(gen.sources), count, seed))


def _fit_and_load(lines: list[dict], path: Path) -> tuple[dict, Profile]:
    result = fit(lines)
    path.write_text(render(result))
    return result.profile, load_profile(path)


def _event_names(doc: dict) -> dict[str, set[str]]:
    return {plan["kinds"][0]: set(plan["events"]) for plan in doc["tracking_plans"].values()}


def test_a_profile_fitted_twice_keeps_shares_and_event_names(tmp_path):
    first_doc, first = _fit_and_load(
        _traffic(load_profile(DEFAULT_PROFILE), REQUESTS, 3), tmp_path / "a.yaml"
    )
    second_doc, second = _fit_and_load(_traffic(first, REQUESTS, 4), tmp_path / "b.yaml")
    assert set(first.sources) == set(second.sources)
    for source in first.sources:  # source (one library each) shares of all messages
        assert abs(first.sources[source] - second.sources[source]) <= 0.01, source
    for group, body in first_doc["sources"].items():  # group shares and library shares within the group
        assert abs(body["share"] - second_doc["sources"][group]["share"]) <= 0.01, group
        for library, share in body["libraries"].items():
            assert abs(share - second_doc["sources"][group]["libraries"].get(library, 0)) <= 0.01, library
    for kind, mix in first.call_types.items():
        for call_type in set(mix) | set(second.call_types[kind]):
            assert abs(mix.get(call_type, 0) - second.call_types[kind].get(call_type, 0)) <= 0.01, (
                kind,
                call_type,
            )
    assert _event_names(first_doc) == _event_names(second_doc)
    # and the first fit found the default profile's own figures, to within sampling noise (direct HTTP
    # callers send ~5,000 of the sample's messages: one standard deviation of a share is ~0.7%)
    default = load_profile(DEFAULT_PROFILE)
    for kind, mix in default.call_types.items():
        for call_type, share in mix.items():
            assert abs(first.call_types[kind].get(call_type, 0) - share) <= 0.02, (kind, call_type)
    for source, share in default.sources.items():
        assert abs(first.sources[source] - share) <= 0.01, source
    assert abs(first.sender_events_per_second["mobile"] - 0.3) < 0.03
    assert abs(first.mobile_event_gap_seconds - default.mobile_event_gap_seconds) < 0.5
    assert abs(first.mobile_offline_share - default.mobile_offline_share) < 0.015
    assert abs(first.zipf_exponent - default.zipf_exponent) < 0.1


def test_fitted_schemas_describe_the_traffic_they_came_from(tmp_path):
    """Messages of the sample validate against the schema fitted to them (types, shapes, formats,
    ranges); only enum values the privacy rules left out (id-like values) may fall outside."""
    lines = _traffic(load_profile(DEFAULT_PROFILE), 3000, 9)
    result = fit(lines, Privacy(enum_min_count=1), schema_sample=100_000)  # every enum value kept
    plans = result.profile["tracking_plans"]
    checked = 0
    enum_misses = 0
    formats = jsonschema.FormatChecker()
    for line in lines:
        if line["kind"] != "event":
            continue
        for message in line["body"].get("batch", [line["body"]]):
            if message["type"] != "track":
                continue
            kind = {"web": "web", "http": "http"}.get(line["source"]) or (
                "mobile" if line["source"] in ("android", "ios", "xamarin") else "server"
            )
            event = plans[f"fitted_{kind}"]["events"].get(message["event"])
            if event is None:  # a name seen once is left out
                continue
            for error in jsonschema.Draft202012Validator(event["schema"], format_checker=formats).iter_errors(
                message["properties"]
            ):
                assert error.validator == "enum", (message["event"], error.message)
                enum_misses += 1
            checked += 1
    assert checked > 3000
    assert enum_misses < 0.01 * checked


def _planted_sample() -> tuple[list[dict], list[str]]:
    """Messages carrying unique emails, user ids and free text, and one enum-like property."""
    planted: list[str] = []
    lines = []
    for i in range(3000):
        user = f"usr-{i % 700:05d}-{(i % 700) * 7919 % 100000:05d}"
        email = f"jane.doe.{i}.x{i * 31 % 997}@corp-mail.example"
        note = f"Please call me back about invoice {i * 13} before Friday, thanks {i % 37} times"
        customer = f"CUS{i * 7:09d}"
        account = 400_123_457 + i * 104_729  # a unique numeric id: its range must not name the first or last
        planted += [user, email, note, customer, str(account)]
        lines.append({
            "type": "track", "event": "Ticket Opened", "messageId": f"m-{i}", "userId": user,
            "anonymousId": f"anon-{i % 700}", "timestamp": "2026-03-01T10:00:00.000Z", "sentAt": f"2026-03-01T10:00:{i % 60:02d}.000Z",
            "context": {"library": {"name": "analytics-python", "version": "2.3.0"}, "traits": {"email": email}},
            "properties": {"contact": email, "note": note, "customer_id": customer, "account": account, "priority": ["low", "high", "urgent"][i % 3],
                           "owner_email": ["a.lead@corp-mail.example", "b.lead@corp-mail.example"][i % 2],
                           "by_user": {user: i}},
        })  # fmt: skip
        if i % 5 == 0:
            lines.append({"type": "identify", "messageId": f"i-{i}", "userId": user, "traits": {"email": email, "name": note},
                          "context": {"library": {"name": "analytics-python", "version": "2.3.0"}},
                          "timestamp": "2026-03-01T10:00:00.000Z", "sentAt": "2026-03-01T10:00:00.000Z"})  # fmt: skip
    return lines, planted


def test_no_planted_value_reaches_the_fitted_profile(tmp_path):
    lines, planted = _planted_sample()
    result = fit(lines, Privacy(enum_max_values=20, enum_min_count=5))
    text = render(result)
    (tmp_path / "fitted.yaml").write_text(text)
    load_profile(tmp_path / "fitted.yaml")
    leaked = [value for value in set(planted) if value in text]
    assert not leaked, leaked[:5]
    for fragment in ("corp-mail", "jane.doe", "invoice", "usr-", "CUS0", "anon-", "a.lead"):
        assert fragment not in text, fragment
    schema = result.profile["tracking_plans"]["fitted_server"]["events"]["Ticket Opened"]["schema"]
    props = schema["properties"]
    assert props["contact"]["format"] == "email"  # a shape, not the values
    assert props["customer_id"]["pattern"] == "^[A-Z]{3}[0-9]{9}$"
    assert "enum" not in props["note"] and props["note"]["maxLength"] >= props["note"]["minLength"] > 40
    assert sorted(props["priority"]["enum"]) == ["high", "low", "urgent"]  # enum-like: kept
    assert "enum" not in props["owner_email"]  # low-cardinality, but looks personal
    assert props["by_user"]["type"] == "object" and not props["by_user"].get("properties")
    assert props["account"]["minimum"] == 400_000_000 and props["account"]["maximum"] % 10_000_000 == 0
    assert "privacy:" in text and "no ids, emails, names or free text" in text
    # a stricter threshold keeps no enum at all
    strict = fit(lines, Privacy(enum_max_values=2, enum_min_count=5))
    strict_props = strict.profile["tracking_plans"]["fitted_server"]["events"]["Ticket Opened"]["schema"][
        "properties"
    ]
    assert "enum" not in strict_props["priority"]


@pytest.mark.e2e
def test_cli_fits_a_file_and_names_a_bad_line(tmp_path):
    lines, _ = _planted_sample()
    sample = tmp_path / "sample.jsonl"
    sample.write_bytes(b"\n".join(orjson.dumps(line) for line in lines[:600]) + b"\n")
    out = tmp_path / "mine.yaml"
    done = subprocess.run([sys.executable, "-m", "harness", "profile", "fit", str(sample), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "fitted from 600 messages" in done.stderr and "assumed, not fitted" in done.stderr
    assert load_profile(out).name == "mine"
    sample.write_text(sample.read_text() + "{not json\n")
    done = subprocess.run([sys.executable, "-m", "harness", "profile", "fit", str(sample), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and f"{sample}: line 601: not JSON" in done.stderr


def test_a_rudderstack_export_is_read_by_library_names_and_keys():
    """RudderStack's SDK names map to the modelled sources by their words; its own keys name the dialect."""
    libraries = [("RudderLabs JavaScript SDK", "web"), ("com.rudderstack.android.sdk.core", "android"),
                 ("rudder-ios-library", "ios"), ("@rudderstack/rudder-sdk-node", "node"),
                 ("rudder-sdk-python", "python"), ("analytics-go", "go")]  # fmt: skip
    lines = []
    for i in range(1200):
        name, _ = libraries[i % len(libraries)]
        lines.append({"type": "track", "event": "Song Played", "messageId": f"r-{i}", "rudderId": f"rid-{i}",
                      "channel": "web", "anonymousId": f"a-{i % 50}", "originalTimestamp": "2026-03-01T10:00:00.000Z",
                      "sentAt": f"2026-03-01T10:{i % 60:02d}:00.000Z", "context": {"library": {"name": name}},
                      "properties": {"genre": ["rock", "jazz"][i % 2]}})  # fmt: skip
    result = fit(lines)
    sources = {s: share for g in result.profile["sources"].values() for s, share in g["libraries"].items()}
    assert set(sources) == {source for _, source in libraries}
    assert result.profile["_dialect"] == "rudderstack"
    text = render(result)
    assert "dialect: rudderstack" in text
    assert "rid-" not in text and "a-1" not in text
