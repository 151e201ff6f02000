"""Traffic profiles: the YAML file that says which sources, call types and events to send, and how.

`load_profile` checks the whole file before any traffic is made and raises `ProfileError` naming the
file and the key for anything it cannot use (unknown key, unknown library, shares that do not sum
to 1, a negative rate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config_reader import SHARE_TOLERANCE, TOP, ConfigError, Reader
from loadgen.bad_inputs import CASE_NAMES
from loadgen.dialects import DEFAULT_DIALECT, DIALECTS
from loadgen.events import CATALOGS, Catalog
from loadgen.libraries import LIBRARIES, SOURCE_KIND_GROUP, SOURCE_LIBRARY
from loadgen.tracking_plan import PlanError, load_plan, parse_plan

DEFAULT_PROFILE = Path(__file__).parent / "profiles" / "default.yaml"

KINDS = ("mobile", "web", "server", "http")
GROUPS = ("mobile", "web", "server")
CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
GZIP_LEVELS = {"isal": (0, 3), "zlib": (1, 9)}
REAL_SDKS = ("segment-analytics-python", "rudder-sdk-python")
"""Client libraries that real-SDK users send through (the `real_sdks` section; `harness.sdks`)."""


class ProfileError(ConfigError):
    """A profile that cannot be used; the message names the file, line and key."""


@dataclass(frozen=True, slots=True)
class DelayClass:
    name: str
    weight: float
    min_seconds: float
    max_seconds: float


@dataclass(frozen=True, slots=True)
class RealSdk:
    """Users that send through a real client library, beside the modelled traffic."""

    library: str
    users: int
    events_per_second: float
    """Per user: track calls a second, each with a harness messageId."""
    source: str
    """The profile source whose write key they use (the ledger source the monitor routes by)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """A checked traffic profile. `sources` maps each source name to its share of all messages."""

    path: Path
    name: str
    messages_per_second: float
    sources: dict[str, float]
    sender_events_per_second: dict[str, float]
    call_types: dict[str, dict[str, float]]
    events: dict[str, dict[str, float]]
    funnel: dict[str, float]
    users: int
    zipf_exponent: float
    identified_at_start: dict[str, float]
    mobile_event_gap_seconds: float
    mobile_offline_share: float
    mobile_offline_delay_hours: tuple[float, float]
    duplicate_share: float
    duplicate_max_pending: int
    duplicate_delays: tuple[DelayClass, ...]
    replay_share: float
    replay_batch_size: int
    replay_age_days: tuple[float, float]
    bad_input_share: float
    bad_input_cases: dict[str, float]
    gzip_engine: str
    gzip_level: int
    dialect: str = "segment"  # whose client libraries the sources speak as: loadgen.dialects.DIALECTS
    catalogs: dict[str, Catalog] = field(default_factory=lambda: dict(CATALOGS))
    """Every catalog `events` may name: the built-in ones and the profile's tracking plans."""
    real_sdks: dict[str, RealSdk] = field(default_factory=dict)
    """Library → its real-SDK users; only libraries with users are listed (none by default)."""


_TOP_KEYS = (
    "name",
    "rate",
    "sources",
    "sender_events_per_second",
    "call_types",
    "events",
    "tracking_plans",
    "funnel",
    "population",
    "mobile",
    "duplicates",
    "replay",
    "bad_inputs",
    "gzip",
    "real_sdks",
    "dialect",
)
_FUNNEL_KEYS = ("view_after_search", "add_after_view", "checkout_after_add", "order_after_checkout")


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile file; raises ProfileError naming the file, line and key on any problem."""
    doc, reader = Reader.load(path, ProfileError)
    return parse_profile(doc, Path(path), reader)


def parse_profile(doc: Any, path: Path, reader: Reader | None = None) -> Profile:
    """Check an already-parsed profile document (see `load_profile`)."""
    r = reader or Reader(path, error=ProfileError)
    doc = r.mapping(doc, TOP, _TOP_KEYS)
    for required in ("sources", "call_types", "events"):
        if required not in doc:
            raise r.fail(required, "missing")

    rate = r.mapping(doc.get("rate", {}), "rate", ("messages_per_second",))
    messages_per_second = r.number(rate.get("messages_per_second", 1000), "rate.messages_per_second")

    groups = r.mapping(doc["sources"], "sources", GROUPS)
    sources: dict[str, float] = {}
    group_total = 0.0
    for group, body in groups.items():
        key = f"sources.{group}"
        body = r.mapping(body, key, ("share", "libraries"))
        if "share" not in body or "libraries" not in body:
            raise r.fail(key, "needs both 'share' and 'libraries'")
        share = r.number(body["share"], f"{key}.share", maximum=1.0)
        group_total += share
        allowed = tuple(
            s for s, lib in SOURCE_LIBRARY.items() if SOURCE_KIND_GROUP[LIBRARIES[lib].source_kind] == group
        )
        libs = r.shares(body["libraries"], f"{key}.libraries", allowed, f"library for {group} sources")
        for source, lib_share in libs.items():
            if share * lib_share > 0:
                sources[source] = share * lib_share
    if abs(group_total - 1.0) > SHARE_TOLERANCE:
        raise r.fail("sources", f"group shares sum to {group_total:.6g}, not 1")

    kinds_used = sorted({LIBRARIES[SOURCE_LIBRARY[s]].source_kind for s in sources})
    rates = r.mapping(doc.get("sender_events_per_second", {}), "sender_events_per_second", KINDS)
    sender_rates = {"mobile": 0.3, "web": 0.2, "server": 40.0, "http": 5.0}
    for kind, value in rates.items():
        sender_rates[kind] = r.number(value, f"sender_events_per_second.{kind}")
        if sender_rates[kind] == 0:
            raise r.fail(f"sender_events_per_second.{kind}", "must be above 0")

    call_types = _per_kind(r, doc["call_types"], "call_types", kinds_used, CALL_TYPES, "call type")
    for kind, mix in call_types.items():
        wrong = {"web": "screen", "mobile": "page"}.get(kind)
        if wrong and mix.get(wrong):
            raise r.fail(f"call_types.{kind}.{wrong}", f"{kind} libraries do not send {wrong} calls")
    catalogs = _catalogs(r, doc.get("tracking_plans", {}))
    events = _per_kind(r, doc["events"], "events", kinds_used, tuple(catalogs), "event catalog")
    for kind, mix in events.items():
        for catalog, share in mix.items():
            if share and kind not in catalogs[catalog].kinds:
                raise r.fail(f"events.{kind}.{catalog}", f"catalog {catalog} is not sent by {kind} sources")

    funnel_doc = r.mapping(doc.get("funnel", {}), "funnel", _FUNNEL_KEYS)
    funnel = {
        "view_after_search": 0.75,
        "add_after_view": 0.25,
        "checkout_after_add": 0.55,
        "order_after_checkout": 0.65,
    }
    for key, value in funnel_doc.items():
        funnel[key] = r.number(value, f"funnel.{key}", maximum=1.0)

    pop = r.mapping(
        doc.get("population", {}), "population", ("users", "zipf_exponent", "identified_at_start")
    )
    users = r.integer(pop.get("users", 50000), "population.users", minimum=1, maximum=10_000_000)
    zipf = r.number(pop.get("zipf_exponent", 1.05), "population.zipf_exponent", maximum=5.0)
    identified = {"web": 0.3, "mobile": 0.45, "server": 0.95, "http": 0.95}
    ident_doc = r.mapping(pop.get("identified_at_start", {}), "population.identified_at_start", KINDS)
    for kind, value in ident_doc.items():
        identified[kind] = r.number(value, f"population.identified_at_start.{kind}", maximum=1.0)

    mobile = r.mapping(
        doc.get("mobile", {}), "mobile", ("event_gap_seconds", "offline_share", "offline_delay_hours")
    )
    gap = r.number(mobile.get("event_gap_seconds", 4.0), "mobile.event_gap_seconds")
    offline_share = r.number(mobile.get("offline_share", 0.05), "mobile.offline_share", maximum=1.0)
    offline_hours = r.span(mobile.get("offline_delay_hours", [1, 48]), "mobile.offline_delay_hours")

    dup = r.mapping(doc.get("duplicates", {}), "duplicates", ("share", "max_pending", "delays"))
    dup_share = r.number(dup.get("share", 0.0), "duplicates.share", maximum=1.0)
    max_pending = r.integer(dup.get("max_pending", 50000), "duplicates.max_pending")
    delays: list[DelayClass] = []
    delay_doc = r.mapping(
        dup.get("delays", {"immediate": {"weight": 1, "seconds": [0, 1]}}), "duplicates.delays"
    )
    for name, body in delay_doc.items():
        key = f"duplicates.delays.{name}"
        body = r.mapping(body, key, ("weight", "seconds"))
        low, high = r.span(body.get("seconds", [0, 0]), f"{key}.seconds")
        delays.append(DelayClass(str(name), r.number(body.get("weight", 1.0), f"{key}.weight"), low, high))
    if dup_share and not sum(d.weight for d in delays):
        raise r.fail("duplicates.delays", "weights sum to 0")

    replay = r.mapping(doc.get("replay", {}), "replay", ("share", "batch_size", "age_days"))
    replay_share = r.number(replay.get("share", 0.0), "replay.share", maximum=1.0)
    replay_batch = r.integer(replay.get("batch_size", 500), "replay.batch_size", minimum=1, maximum=2500)
    replay_age = r.span(replay.get("age_days", [1, 28]), "replay.age_days")

    bad = r.mapping(doc.get("bad_inputs", {}), "bad_inputs", ("share", "cases"))
    bad_share = r.number(bad.get("share", 0.0), "bad_inputs.share", maximum=1.0)
    cases_doc = bad.get("cases", "all")
    if cases_doc == "all":
        bad_cases = dict.fromkeys(CASE_NAMES, 1.0)
    else:
        cases_doc = r.mapping(cases_doc, "bad_inputs.cases")
        bad_cases = {}
        for name, weight in cases_doc.items():
            if name not in CASE_NAMES:
                raise r.fail(f"bad_inputs.cases.{name}", f"unknown case; known: {', '.join(CASE_NAMES)}")
            bad_cases[name] = r.number(weight, f"bad_inputs.cases.{name}")
        if bad_share and not sum(bad_cases.values()):
            raise r.fail("bad_inputs.cases", "weights sum to 0")
    if replay_share + bad_share > 1.0:
        raise r.fail("replay.share", "replay.share + bad_inputs.share exceed 1")

    gz = r.mapping(doc.get("gzip", {}), "gzip", ("engine", "level"))
    gzip_engine = gz.get("engine", "isal")
    if gzip_engine not in GZIP_LEVELS:
        raise r.fail("gzip.engine", f"unknown engine {gzip_engine!r}; known: {', '.join(GZIP_LEVELS)}")
    low, high = GZIP_LEVELS[gzip_engine]
    gzip_level = r.integer(
        gz.get("level", 1 if gzip_engine == "isal" else 6), "gzip.level", minimum=low, maximum=high
    )

    real_sdks = _real_sdks(r, doc.get("real_sdks", {}), sources)
    dialect = doc.get("dialect", DEFAULT_DIALECT)
    if dialect not in DIALECTS:
        raise r.fail("dialect", f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")

    return Profile(
        path=path,
        name=str(doc.get("name", path.stem)),
        messages_per_second=messages_per_second,
        sources=sources,
        sender_events_per_second=sender_rates,
        call_types=call_types,
        events=events,
        funnel=funnel,
        users=users,
        zipf_exponent=zipf,
        identified_at_start=identified,
        mobile_event_gap_seconds=gap,
        mobile_offline_share=offline_share,
        mobile_offline_delay_hours=offline_hours,
        duplicate_share=dup_share,
        duplicate_max_pending=max_pending,
        duplicate_delays=tuple(delays),
        replay_share=replay_share,
        replay_batch_size=replay_batch,
        replay_age_days=replay_age,
        bad_input_share=bad_share,
        bad_input_cases=bad_cases,
        gzip_engine=gzip_engine,
        gzip_level=gzip_level,
        dialect=dialect,
        catalogs=catalogs,
        real_sdks=real_sdks,
    )


def _catalogs(r: Reader, value: Any) -> dict[str, Catalog]:
    """The built-in catalogs and the profile's tracking plans (a file path, relative to the profile,
    or the plan itself inline), by name."""
    plans = r.mapping(value, "tracking_plans")
    catalogs = dict(CATALOGS)
    for name, body in plans.items():
        key = f"tracking_plans.{name}"
        if name in CATALOGS:
            raise r.fail(key, f"{name!r} is a built-in catalog's name; choose another")
        try:
            if isinstance(body, str):
                plan = load_plan(Path(r.source).parent / body, name)
            else:
                plan = parse_plan(body, "inline plan", name)
        except PlanError as exc:
            raise r.fail(key, str(exc)) from None
        catalogs[name] = plan.catalog(name)
    return catalogs


def _per_kind(
    r: Reader, value: Any, key: str, kinds_used: list[str], allowed: tuple[str, ...], what: str
) -> dict[str, dict[str, float]]:
    doc = r.mapping(value, key, KINDS)
    out = {kind: r.shares(mix, f"{key}.{kind}", allowed, what) for kind, mix in doc.items()}
    for kind in kinds_used:
        if kind not in out:
            raise r.fail(f"{key}.{kind}", f"missing, and the profile has {kind} sources")
    return out


def _real_sdks(r: Reader, value: Any, sources: dict[str, float]) -> dict[str, RealSdk]:
    """The `real_sdks` section: per library, users, their event rate and the source they send as."""
    out: dict[str, RealSdk] = {}
    for library, body in r.mapping(value, "real_sdks", REAL_SDKS).items():
        key = f"real_sdks.{library}"
        body = r.mapping(body, key, ("users", "events_per_second", "source"))
        users = r.integer(body.get("users", 0), f"{key}.users", maximum=10_000)
        rate = r.number(body.get("events_per_second", 5.0), f"{key}.events_per_second", maximum=10_000.0)
        source = r.text(body.get("source", "python"), f"{key}.source")
        if users and rate <= 0:
            raise r.fail(f"{key}.events_per_second", "must be above 0 when there are users")
        if users and source not in sources:
            raise r.fail(
                f"{key}.source",
                f"{source!r} is not a source of this profile (its write key is the one used); "
                f"one of {', '.join(sources)}",
            )
        if users:
            out[library] = RealSdk(library, users, rate, source)
    return out
