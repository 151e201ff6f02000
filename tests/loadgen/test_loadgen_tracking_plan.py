"""Tracking plans as event catalogs: every generated message validates against the plan's JSON Schemas
(checked with the `jsonschema` library and its format checker), and bad plans fail naming what is wrong."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
import yaml

from loadgen.profile import DEFAULT_PROFILE, ProfileError, load_profile
from loadgen.tracking_plan import PlanError, load_plan, parse_plan

PLANS = Path(__file__).parent / "plans"
SEGMENT_PLAN = PLANS / "segment_shop.json"
FORMATS = jsonschema.FormatChecker()  # every format the library knows, uuid included


def _validator(schema: dict) -> jsonschema.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=FORMATS)


def test_the_format_checker_really_checks_formats():
    """The [format-nongpl] extra is installed: a wrong date-time, uri or email is an error, not ignored."""
    for fmt, bad in (("date-time", "2026-13-99T25:00:00Z"), ("uri", "not a uri"), ("email", "nobody"),
                     ("uuid", "1234"), ("ipv4", "999.1.1.1"), ("date", "2026-02-31")):  # fmt: skip
        assert not FORMATS.conforms(bad, fmt), fmt


def _plan_profile(tmp_path: Path, plans: dict[str, str], events: dict) -> Path:
    doc = yaml.safe_load(DEFAULT_PROFILE.read_text())
    doc["tracking_plans"] = plans
    doc["events"] = events
    doc["duplicates"]["share"] = 0.0
    doc["bad_inputs"]["share"] = 0.0
    path = tmp_path / "plan-profile.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_every_message_from_a_segment_plan_validates(tmp_path, make_gen, messages_of):
    plan = load_plan(SEGMENT_PLAN)
    assert plan.format == "segment" and len(plan.events) >= 20
    relative = Path("plans") / SEGMENT_PLAN.name  # a plan path is relative to the profile's folder
    (tmp_path / "plans").mkdir()
    (tmp_path / relative).write_bytes(SEGMENT_PLAN.read_bytes())
    only_plan = {kind: {"shop": 1.0} for kind in ("web", "mobile", "server", "http")}
    profile = load_profile(_plan_profile(tmp_path, {"shop": str(relative)}, only_plan))
    validators = {e.name: _validator(e.message_schema) for e in plan.events}
    assert not validators["Order Completed"].is_valid(
        {"event": "Order Completed", "properties": {"total": 1}}
    )
    gen = make_gen(prof=profile)
    seen: Counter[str] = Counter()
    for source in profile.sources:
        for _ in range(150):
            for message in messages_of(gen.next_request(source)):
                if message["type"] != "track":
                    continue
                assert message["event"] in validators, message["event"]  # only the plan's events
                errors = list(validators[message["event"]].iter_errors(message))
                assert not errors, (message["event"], errors[0].message, errors[0].json_path)
                seen[message["event"]] += 1
    assert set(seen) == set(validators)  # every planned event is sent, nested and all
    assert sum(seen.values()) > 2000


def test_a_plan_beside_the_built_in_catalogs_keeps_its_share(tmp_path, make_gen, messages_of):
    profile = load_profile(
        _plan_profile(
            tmp_path,
            {"music": str(PLANS / "short.yaml")},
            {
                "web": {"music": 0.5, "ecommerce": 0.5},
                "mobile": {"music": 1.0},
                "server": {"email": 1.0},
                "http": {"email": 1.0},
            },
        )
    )
    plan = load_plan(PLANS / "short.yaml")
    names = {e.name for e in plan.events}
    gen = make_gen(prof=profile)
    web = Counter(names.__contains__(m["event"]) for _ in range(3000)
                  for m in messages_of(gen.next_request("web")) if m["type"] == "track")  # fmt: skip
    assert 0.4 < web[True] / sum(web.values()) < 0.6
    mobile_events = {m["event"] for _ in range(300) for m in messages_of(gen.next_request("android"))
                     if m["type"] == "track"}  # fmt: skip
    assert mobile_events == names  # the plan's weights: even the 0.2-weight event shows up


@pytest.mark.parametrize("name", ["short.yaml", "rudderstack.json"])
def test_short_yaml_and_rudderstack_plans_generate_valid_properties(name):
    plan = load_plan(PLANS / name)
    assert plan.format == {"short.yaml": "yaml", "rudderstack.json": "rudderstack"}[name]
    rng = random.Random(5)
    for event in plan.events:
        check = _validator(event.message_schema)
        for _ in range(200):
            message = {"type": "track", "event": event.name, "properties": event.make_properties(rng)}
            check.validate(message)
    if name == "rudderstack.json":  # identify rules are not track events
        assert [e.name for e in plan.events] == ["Song Played", "Subscription Started"]
    else:
        weights = {e.name: e.weight for e in plan.events}
        assert weights["Song Played"] == 5 and weights["App Rated"] == 0.2


def test_public_api_rules_are_read():
    doc = {"data": {"rules": [
        {"type": "COMMON", "key": "", "jsonSchema": {"type": "object"}},
        {"type": "TRACK", "key": "Report Run", "version": 1, "jsonSchema": {"type": "object", "properties": {
            "properties": {"type": "object", "properties": {"rows": {"type": "integer", "minimum": 1}},
                           "required": ["rows"]}}}},
    ]}}  # fmt: skip
    plan = parse_plan(doc, "api.json", "api")
    assert plan.format == "segment-public-api" and [e.name for e in plan.events] == ["Report Run"]
    assert plan.events[0].make_properties(random.Random(1))["rows"] >= 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"events": {"A": {"properties": {"x": "strng"}}}}, r"event 'A': property 'x': unknown type 'strng'"),
        ({"events": {"A": {"weight": -1}}}, r"event 'A': weight: must be a number above 0"),
        ({"events": {"A": {"schema": {"type": "object", "properties": {"x": {"not": {}}}}}}},
         r"event 'A': properties/properties/x: cannot generate values for keyword\(s\) not"),
        ({"events": {"A": {"schema": {"properties": {"x": {"type": "string", "pattern": "("}}}}}},
         r"event 'A': .*pattern: not a regular expression"),
        ({"events": {"A": {"schema": {"type": "string"}}}}, r"event 'A': properties must be described as an object"),
        ({"rules": {"events": [{"name": "A"}, {"name": "A"}]}}, r"event 'A': listed twice"),
        ({"events": {}}, r"the plan has no track events"),
        ({"tracking": []}, r"not a tracking plan"),
        ({"events": {"A": 1}, "kinds": ["tv"]}, r"kinds: must be a non-empty list"),
        ({"events": {"A": {"schema": {"properties": {"x": {"$ref": "#/definitions/nope"}}}}}},
         r"event 'A': .*\$ref: '#/definitions/nope' does not resolve"),
    ],
)  # fmt: skip
def test_bad_plans_name_the_event_and_the_problem(doc, message):
    with pytest.raises(PlanError, match=rf"^plan.yaml: .*{message}"):
        parse_plan(doc, "plan.yaml", "p")


def test_profile_errors_name_the_tracking_plan_key(tmp_path):
    path = _plan_profile(
        tmp_path, {"mine": "missing.json"}, {k: {"mine": 1.0} for k in ("web", "mobile", "server", "http")}
    )
    with pytest.raises(ProfileError, match=r"tracking_plans.mine: .*missing.json: cannot read"):
        load_profile(path)
    path = _plan_profile(tmp_path, {"video": str(PLANS / "short.yaml")}, {"web": {"video": 1.0}})
    with pytest.raises(ProfileError, match=r"tracking_plans.video: 'video' is a built-in catalog's name"):
        load_profile(path)
    path = _plan_profile(tmp_path, {"mine": str(PLANS / "short.yaml")},
                         {k: {"theirs": 1.0} for k in ("web", "mobile", "server", "http")})  # fmt: skip
    with pytest.raises(ProfileError, match=r"events.\w+.theirs: unknown event catalog; known: .*mine"):
        load_profile(path)
    inline = {"mine": {"kinds": ["server"], "events": {"Job Ran": {"properties": {"ms": "integer"}}}}}
    path = _plan_profile(tmp_path, inline, {"web": {"video": 1.0}, "mobile": {"video": 1.0},
                                            "server": {"mine": 1.0}, "http": {"mine": 1.0}})  # fmt: skip
    with pytest.raises(ProfileError, match=r"events.http.mine: catalog mine is not sent by http sources"):
        load_profile(path)
