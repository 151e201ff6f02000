"""Profiles: the default follows the seed figures; bad profiles fail naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loadgen.profile import DEFAULT_PROFILE, ProfileError, load_profile


def test_default_profile_follows_the_seed_figures(profile):
    s = profile.sources
    assert abs(sum(s.values()) - 1) < 1e-9
    mobile = s["android"] + s["ios"] + s["xamarin"]
    server = sum(s[k] for k in ("node", "python", "ruby", "java", "go", "php", "dotnet", "http"))
    assert mobile > s["web"] > 0
    assert abs(server - 0.25) < 1e-9
    assert s["android"] > s["ios"] > s["xamarin"]
    assert abs(s["http"] / server - 0.18) < 1e-9
    libraries = {k: s[k] for k in ("node", "python", "ruby", "java", "go", "php", "dotnet")}
    assert abs(sum(libraries.values()) / server - 0.82) < 1e-9
    assert max(libraries, key=libraries.get) == "node"


def test_every_unseeded_share_is_labelled_an_assumption():
    lines = DEFAULT_PROFILE.read_text().splitlines()
    start = lines.index("sources:")
    end = next(i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" "))
    numeric = [line for line in lines[start:end] if any(c.isdigit() for c in line.split("#")[0])]
    assert len(numeric) == 15  # 3 group shares + 12 libraries
    for line in numeric:
        label = line.split("#", 1)[1].strip() if "#" in line else ""
        assert label.startswith(("seed", "assumption")), f"unlabelled share: {line!r}"
    seeded = {line.split(":")[0].strip() for line in numeric if "# seed" in line}
    assert seeded == {"share", "http", "web"}  # server 25%, direct HTTP 18%, web = analytics.js
    # every other block of figures carries an assumption label where it is defined
    for block in ("sender_events_per_second:", "call_types:", "events:", "funnel:"):
        line = next(x for x in lines if x.startswith(block))
        body = lines[lines.index(line) : lines.index(line) + 8]
        assert any("# assumption" in x for x in body), block


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def base_doc() -> dict:
    return yaml.safe_load(DEFAULT_PROFILE.read_text())


def test_unknown_top_level_key(tmp_path, base_doc):
    base_doc["sourcez"] = {}
    path = _write(tmp_path, base_doc)
    with pytest.raises(ProfileError, match=rf"{path}:\d+: sourcez: unknown key"):
        load_profile(path)


def test_unknown_nested_key(tmp_path, base_doc):
    base_doc["duplicates"]["shar"] = 0.1
    with pytest.raises(ProfileError, match=r"profile.yaml:\d+: duplicates.shar: unknown key"):
        load_profile(_write(tmp_path, base_doc))


def test_unknown_library(tmp_path, base_doc):
    base_doc["sources"]["server"]["libraries"]["cobol"] = base_doc["sources"]["server"]["libraries"].pop(
        "php"
    )
    with pytest.raises(ProfileError, match=r"profile.yaml:\d+: sources.server.libraries.cobol: unknown library"):
        load_profile(_write(tmp_path, base_doc))


def test_library_under_the_wrong_group(tmp_path, base_doc):
    base_doc["sources"]["web"]["libraries"] = {"ios": 1.0}
    with pytest.raises(ProfileError, match=r"sources.web.libraries.ios: unknown library"):
        load_profile(_write(tmp_path, base_doc))


def test_shares_not_summing_to_one(tmp_path, base_doc):
    base_doc["sources"]["mobile"]["libraries"]["android"] = 0.6
    with pytest.raises(ProfileError, match=r"sources.mobile.libraries: shares sum to 1.1, not 1"):
        load_profile(_write(tmp_path, base_doc))


def test_group_shares_not_summing_to_one(tmp_path, base_doc):
    base_doc["sources"]["web"]["share"] = 0.2
    with pytest.raises(ProfileError, match=r"profile.yaml:\d+: sources: group shares sum to 0.9, not 1"):
        load_profile(_write(tmp_path, base_doc))


def test_call_type_mix_not_summing_to_one(tmp_path, base_doc):
    base_doc["call_types"]["web"]["track"] = 0.9
    with pytest.raises(ProfileError, match=r"call_types.web: shares sum to"):
        load_profile(_write(tmp_path, base_doc))


def test_negative_rate(tmp_path, base_doc):
    base_doc["rate"]["messages_per_second"] = -5
    with pytest.raises(ProfileError, match=r"profile.yaml:\d+: rate.messages_per_second: -5 is negative"):
        load_profile(_write(tmp_path, base_doc))


def test_negative_sender_rate(tmp_path, base_doc):
    base_doc["sender_events_per_second"]["server"] = -1
    with pytest.raises(ProfileError, match=r"sender_events_per_second.server: -1 is negative"):
        load_profile(_write(tmp_path, base_doc))


def test_unknown_event_catalog_and_bad_input_case(tmp_path, base_doc):
    base_doc["events"]["web"] = {"gaming": 1.0}
    with pytest.raises(ProfileError, match=r"events.web.gaming: unknown event catalog"):
        load_profile(_write(tmp_path, base_doc))
    base_doc = yaml.safe_load(DEFAULT_PROFILE.read_text())
    base_doc["bad_inputs"]["cases"] = {"nope": 1}
    with pytest.raises(ProfileError, match=r"bad_inputs.cases.nope: unknown case"):
        load_profile(_write(tmp_path, base_doc))


def test_not_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("sources: [unclosed")
    with pytest.raises(ProfileError, match=r"broken.yaml:1: not valid YAML"):
        load_profile(path)
    with pytest.raises(ProfileError, match=r"absent.yaml: cannot read"):
        load_profile(tmp_path / "absent.yaml")


def test_real_sdks_are_off_by_default_and_read_per_library(tmp_path, base_doc, profile):
    assert profile.real_sdks == {}
    base_doc["real_sdks"]["rudder-sdk-python"].update(users=3, events_per_second=2.5, source="node")
    sdk = load_profile(_write(tmp_path, base_doc)).real_sdks
    assert set(sdk) == {"rudder-sdk-python"}
    assert (sdk["rudder-sdk-python"].users, sdk["rudder-sdk-python"].events_per_second) == (3, 2.5)
    assert sdk["rudder-sdk-python"].source == "node"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"analytics-ruby": {"users": 1}}, r"real_sdks.analytics-ruby: unknown key"),
        ({"segment-analytics-python": {"users": 1, "source": "nowhere"}}, r"'nowhere' is not a source"),
        ({"segment-analytics-python": {"users": -1}}, r"real_sdks.segment-analytics-python.users"),
        ({"segment-analytics-python": {"users": 1, "events_per_second": 0}}, r"must be above 0"),
        ({"segment-analytics-python": {"user": 1}}, r"real_sdks.segment-analytics-python.user: unknown key"),
    ],
)
def test_bad_real_sdks_are_named(tmp_path, base_doc, change, problem):
    base_doc["real_sdks"] = change
    with pytest.raises(ProfileError, match=problem):
        load_profile(_write(tmp_path, base_doc))


def test_real_sdk_names_match_the_clients_the_harness_knows():
    from harness.sdks import SDK_CLIENTS
    from loadgen.profile import REAL_SDKS

    assert set(REAL_SDKS) == set(SDK_CLIENTS)
