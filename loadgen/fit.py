"""Fit a traffic profile to a sample of real events: `harness profile fit SAMPLE -o PROFILE`.

The sample is JSON lines of messages (what Segment and RudderStack export to object storage or a
warehouse) or of captured requests (what `harness traffic` prints: `body` holds the decoded request
body); each line is told apart by its keys. The fit measures source and library shares, the dialect,
the call-type mix and track events per source kind, each event's property schema, batch sizes per
library, user activity skew, the anonymous share and mobile timestamp lag, and writes a profile that
`loadgen.profile` loads, with one tracking plan per source kind inline.

Nothing of the sample's values travels: ids, emails, names and free text become shapes (see
`loadgen.infer_schema`); only enum-like strings seen often enough are kept.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

from loadgen.infer_schema import Privacy, Shape, looks_personal
from loadgen.libraries import LIBRARIES, SOURCE_KIND_GROUP, SOURCE_LIBRARY, batch_fill_lambda
from loadgen.profile import CALL_TYPES, Profile
from loadgen.sources.http_api import HTTP_SINGLE_CALL_SHARE

KIND_OF_SOURCE = {s: LIBRARIES[lib].source_kind for s, lib in SOURCE_LIBRARY.items()}
SOURCE_OF_LIBRARY = {LIBRARIES[lib].name: s for s, lib in SOURCE_LIBRARY.items()}
# a library name we do not model: the first source whose words it contains (RudderStack's SDKs, ports)
_NAME_HINTS = (
    (re.compile(r"javascript|analytics\.js|analytics-next|browser|\bweb\b"), "web"),
    (re.compile(r"xamarin"), "xamarin"),
    (re.compile(r"android|kotlin"), "android"),
    (re.compile(r"\bios\b|swift|-ios|ios-"), "ios"),
    (re.compile(r"node"), "node"),
    (re.compile(r"python"), "python"),
    (re.compile(r"ruby"), "ruby"),
    (re.compile(r"java"), "java"),
    (re.compile(r"php"), "php"),
    (re.compile(r"\.net|dotnet|csharp"), "dotnet"),
    (re.compile(r"\bgo\b|golang|-go\b|go-"), "go"),
)
_RUDDER_KEYS = ("rudderId", "channel", "originalTimestamp")
OFFLINE_LAG_S = (
    600.0  # a mobile batch whose newest event waited longer than this was sent after going offline
)
REPLAY_AGE_S = 86_400.0  # a batch whose newest event is older than a day is a replay (backfill)
SPAN_FOR_RATE_S = 60.0  # a sample shorter than this says nothing about the message rate
ZIPF_TOP_USERS = 50  # the rank-frequency fit reads the most active users: the tail is cut by the sample
ZIPF_MIN_COUNT = 5  # and of them only those with this many messages


class FitError(ValueError):
    """A sample that cannot be read; the message names the file and line."""


@dataclass
class FitResult:
    """The fitted profile document and the fit report's lines."""

    profile: dict[str, Any]
    report: list[str]
    messages: int
    requests: int


def read_sample(path: str | Path) -> Iterator[dict[str, Any]]:
    """The sample's JSON objects, one a line (blank lines skipped); FitError names file and line."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise FitError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise FitError(f"{path}: line {number}: not JSON: {exc}") from None
            if not isinstance(doc, dict):
                raise FitError(f"{path}: line {number}: expected a JSON object, got {type(doc).__name__}")
            yield doc


def _ms(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000.0
    except ValueError:
        return None


def _micro_shares(counts: Mapping[str, float]) -> dict[str, float]:
    """Shares summing to exactly 1 at 1e-6 resolution (largest remainder), zeros left out."""
    total = sum(counts.values())
    exact = {k: v / total * 1_000_000 for k, v in counts.items() if v > 0}
    units = {k: math.floor(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: units[k] - exact[k])[: 1_000_000 - sum(units.values())]:
        units[k] += 1
    return {k: u / 1_000_000 for k, u in units.items() if u}


@dataclass
class _Batch:
    source: str
    count: int = 0
    times: list[float] = field(default_factory=list)  # mobile only: each message's timestamp, ms
    sent_ms: float | None = None
    replay: bool = False


class Fitter:
    """Reads the sample a line at a time and keeps counts and shapes only."""

    def __init__(
        self, privacy: Privacy | None = None, schema_sample: int = 1000, min_event_count: int = 2
    ) -> None:
        self.privacy = privacy or Privacy()
        self.schema_sample = schema_sample
        self.min_event_count = min_event_count
        self.seen_ids: set[str] = set()
        self.messages = self.requests = self.duplicates = self.bad = self.invalid = 0
        self.unbatched = 0
        self.by_source: Counter[str] = Counter()
        self.types: dict[str, Counter[str]] = defaultdict(Counter)
        self.events: dict[str, Counter[str]] = defaultdict(Counter)
        self.shapes: dict[tuple[str, str], Shape] = {}
        self.users: dict[str, Counter[str]] = defaultdict(Counter)
        self.first_identified: dict[str, Counter[bool]] = defaultdict(Counter)
        self.batches: dict[Any, _Batch] = {}
        self.unknown_libraries: Counter[str] = Counter()
        self.rudder = 0
        self.sent_range = [math.inf, -math.inf]
        self.line = 0

    # reading -------------------------------------------------------------------------------------

    def add(self, doc: Mapping[str, Any]) -> None:
        """One sample line: a captured request (has `body`, or is a `{"batch": [...]}` body) or a message."""
        self.line += 1
        if "body" in doc or "method" in doc:
            self.add_request(doc)
        elif isinstance(doc.get("batch"), list):
            self.add_request({"body": doc})
        else:
            self.add_message(doc, doc.get("sentAt"), None)

    def add_request(self, doc: Mapping[str, Any]) -> None:
        self.requests += 1
        body = doc.get("body")
        status = doc.get("expected_status")
        if (
            doc.get("kind") == "bad"
            or (isinstance(status, int) and status >= 400)
            or not isinstance(body, dict)
        ):
            self.bad += 1
            return
        items = body["batch"] if isinstance(body.get("batch"), list) else [body]
        key = ("request", self.line)
        replay = doc.get("kind") == "replay"
        for item in items:
            if isinstance(item, dict):
                self.add_message(item, body.get("sentAt", item.get("sentAt")), key)
        batch = self.batches.get(key)
        if batch is not None:
            batch.replay = batch.replay or replay

    def add_message(self, message: Mapping[str, Any], sent_at: Any, batch_key: Any) -> None:
        kind_of_call = message.get("type")
        if isinstance(kind_of_call, str):
            kind_of_call = kind_of_call.lower()  # some exports write Track, Identify
        message_id = message.get("messageId")
        if kind_of_call not in CALL_TYPES or not isinstance(message_id, str):
            self.invalid += 1
            return
        if message_id in self.seen_ids:
            self.duplicates += 1
            return
        self.seen_ids.add(message_id)
        self.messages += 1
        source = self.source_of(message)
        kind = KIND_OF_SOURCE[source]
        self.by_source[source] += 1
        self.types[kind][kind_of_call] += 1
        if any(k in message for k in _RUDDER_KEYS):
            self.rudder += 1
        if kind_of_call == "track":
            self.add_track(kind, message)
        anonymous, user_id = message.get("anonymousId"), message.get("userId")
        user = anonymous or user_id if kind in ("web", "mobile") else user_id or anonymous
        if isinstance(user, str | int):
            users = self.users[source]
            if user not in users:
                self.first_identified[kind][bool(user_id)] += 1
            users[user] += 1
        sent_ms = _ms(sent_at)
        if batch_key is None and sent_ms is None:
            self.unbatched += 1  # a message without sentAt: its batch is unknown
            return
        key = batch_key if batch_key is not None else ("sentAt", source, sent_at)
        batch = self.batches.get(key)
        if batch is None:
            batch = self.batches[key] = _Batch(source, sent_ms=sent_ms)
            if sent_ms is not None:
                self.sent_range = [min(self.sent_range[0], sent_ms), max(self.sent_range[1], sent_ms)]
        batch.count += 1
        if kind == "mobile" or batch.count == 1:
            stamp = _ms(message.get("timestamp") or message.get("originalTimestamp"))
            if stamp is not None:
                batch.times.append(stamp)

    def add_track(self, kind: str, message: Mapping[str, Any]) -> None:
        name = message.get("event")
        if not isinstance(name, str):
            self.invalid += 1
            return
        counts = self.events[kind]
        counts[name] += 1
        if counts[name] <= self.schema_sample:
            shape = self.shapes.get((kind, name))
            if shape is None:
                shape = self.shapes[(kind, name)] = Shape()
            props = message.get("properties")
            shape.add(props if isinstance(props, dict) else {}, self.privacy)

    def source_of(self, message: Mapping[str, Any]) -> str:
        """The modelled source whose library sent `message`: by context.library.name, else by hints."""
        context = message.get("context")
        library = context.get("library") if isinstance(context, dict) else None
        name = library.get("name") if isinstance(library, dict) else None
        if not isinstance(name, str) or not name:
            return "http"  # direct HTTP API callers send no context.library
        source = SOURCE_OF_LIBRARY.get(name)
        if source is not None:
            return source
        self.unknown_libraries[name] += 1
        lowered = name.lower()
        for pattern, guess in _NAME_HINTS:
            if pattern.search(lowered):
                return guess
        if isinstance(context, dict) and ("device" in context or "os" in context):
            return "android"
        return "web" if isinstance(context, dict) and "page" in context else "node"

    # fitting -------------------------------------------------------------------------------------

    def result(self, name: str = "fitted") -> FitResult:
        if not self.messages:
            raise FitError("the sample holds no usable messages (need type and messageId on each)")
        self._mark_replays()
        report: list[str] = []
        assumed: list[str] = []
        doc: dict[str, Any] = {"name": name}
        span_s = (self.sent_range[1] - self.sent_range[0]) / 1000.0
        if span_s >= SPAN_FOR_RATE_S:
            doc["rate"] = {"messages_per_second": round(self.messages / span_s, 3)}
            report.append(
                f"rate: {doc['rate']['messages_per_second']} messages/s over {span_s:.0f} s of sentAt"
            )
        else:
            assumed.append(
                f"rate (the sample spans {max(span_s, 0):.0f} s of sentAt; the default 1000/s is kept)"
            )

        groups: dict[str, Counter[str]] = defaultdict(Counter)
        for source, n in self.by_source.items():
            groups[SOURCE_KIND_GROUP[KIND_OF_SOURCE[source]]][source] += n
        group_shares = _micro_shares({g: sum(c.values()) for g, c in groups.items()})
        doc["sources"] = {
            g: {"share": group_shares[g], "libraries": _micro_shares(groups[g])} for g in group_shares
        }
        shares = ", ".join(f"{s} {n / self.messages:.1%}" for s, n in self.by_source.most_common())
        report.append(f"sources (share of messages): {shares}")
        if self.unknown_libraries:
            names = ", ".join(
                f"{n} ({c})" for n, c in self.unknown_libraries.most_common(8) if not looks_personal(n)
            )
            report.append(f"library names not modelled, mapped by their words: {names}")
        dialect = "rudderstack" if self.rudder > self.messages / 2 else "segment"
        report.append(
            f"dialect: {dialect} ({self.rudder} of {self.messages} messages carry RudderStack-only keys)"
        )
        doc["_dialect"] = dialect
        kinds = sorted({KIND_OF_SOURCE[s] for s in self.by_source})
        doc["sender_events_per_second"], batch_notes = self._sender_rates(kinds)
        report += batch_notes
        doc["call_types"] = {}
        for kind in kinds:
            mix = {t: n for t, n in self.types[kind].items() if not _impossible(kind, t)}
            left = sum(self.types[kind].values()) - sum(mix.values())
            if left:
                report.append(
                    f"call types: {left} {kind} page/screen calls left out (the {kind} libraries do not send them)"
                )
            if not sum(mix.values()):
                mix = {"track": 1}
                report.append(f"call_types.{kind}: no usable call types; track only assumed")
            doc["call_types"][kind] = _micro_shares(mix)
        doc["events"], doc["tracking_plans"], event_notes = self._plans(kinds)
        report += event_notes
        doc["population"], population_notes = self._population(kinds)
        report += population_notes
        if "mobile" in kinds:
            doc["mobile"], mobile_notes = self._mobile()
            report += mobile_notes
        doc["duplicates"] = {"share": round(self.duplicates / self.messages, 6)}
        report.append(f"duplicates: {self.duplicates} re-sent messageIds ({doc['duplicates']['share']:.2%})")
        assumed.append("duplicate delays (the default classes are kept)")
        live = [b for b in self.batches.values() if not b.replay]
        replays = len(self.batches) - len(live)
        batches = max(1, len(self.batches))
        doc["replay"] = {"share": round(replays / (batches + self.bad), 6)}
        doc["bad_inputs"] = {"share": round(self.bad / (batches + self.bad), 6)}
        report.append(
            f"replay batches: {replays}; unusable or refused requests: {self.bad}; invalid messages: {self.invalid}"
        )
        assumed += [
            "page and screen names and properties (the built-in pages and screens)",
            "identify traits, group traits and context shapes (the built-in population)",
            "funnel steps (plans have no funnel) and gzip settings",
        ]
        head = [
            f"fitted from {self.messages} messages"
            + (f" in {self.requests} requests" if self.requests else "")
        ]
        privacy = [
            "privacy: the profile carries counts, shares and shapes only: no ids, emails, names or free text;",
            f"  strings became formats, patterns or lengths; enum values kept only with at most "
            f"{self.privacy.enum_max_values} distinct values, each seen {self.privacy.enum_min_count}+ times",
        ]
        return FitResult(doc, head + report + privacy + ["assumed, not fitted: " + "; ".join(assumed)],
                         self.messages, self.requests)  # fmt: skip

    def _mark_replays(self) -> None:
        """Unlabelled batches from a server or HTTP source whose newest event is over a day old."""
        for batch in self.batches.values():
            if (
                batch.times
                and batch.sent_ms is not None
                and KIND_OF_SOURCE[batch.source] in ("server", "http")
            ):
                batch.replay = batch.replay or batch.sent_ms - max(batch.times) > REPLAY_AGE_S * 1000

    def _sender_rates(self, kinds: list[str]) -> tuple[dict[str, float], list[str]]:
        sizes: dict[str, list[int]] = defaultdict(list)
        for batch in self.batches.values():
            if not batch.replay:
                sizes[batch.source].append(batch.count)
        rates: dict[str, float] = {}
        notes = []
        for kind in kinds:
            estimates: list[tuple[float, float]] = []
            for source, counts in sizes.items():
                lib = LIBRARIES[SOURCE_LIBRARY[source]]
                if KIND_OF_SOURCE[source] != kind or not lib.batches or not counts:
                    continue
                mean = float(np.mean(counts))
                notes.append(
                    f"batches: {source} {len(counts)} requests, {mean:.1f} messages each (flush_at {lib.flush_at})"
                )
                if kind == "http":
                    mean = max(1.0, (mean - HTTP_SINGLE_CALL_SHARE) / (1 - HTTP_SINGLE_CALL_SHARE))
                if mean >= 0.98 * lib.flush_at:
                    continue  # always full: says only that the rate is high
                estimates.append((_rate_for_mean(lib, mean), len(counts) * mean))
            if estimates:
                total = sum(w for _, w in estimates)
                rates[kind] = round(sum(r * w for r, w in estimates) / total, 4)
                notes.append(
                    f"sender_events_per_second.{kind}: {rates[kind]} (from batch sizes and flush policies)"
                )
        return rates, notes

    def _plans(self, kinds: list[str]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        events: dict[str, Any] = {}
        plans: dict[str, Any] = {}
        notes = []
        for kind in kinds:
            counts = self.events.get(kind, Counter())
            kept = {n: c for n, c in counts.items() if c >= self.min_event_count and not looks_personal(n)}
            dropped = len(counts) - len(kept)
            if not kept:
                events[kind] = {"ecommerce": 1.0}
                notes.append(
                    f"events.{kind}: no track events in the sample; the built-in ecommerce catalog stands in"
                )
                continue
            plan_name = f"fitted_{kind}"
            left_out: Counter[str] = Counter()
            plan_events = {}
            for event, n in sorted(kept.items(), key=lambda kv: -kv[1]):
                schema = self.shapes[(kind, event)].schema(self.privacy, left_out)
                if schema.get("type") != "object":
                    schema = {"type": "object", "properties": {}}
                plan_events[event] = {"weight": n, "schema": schema}
            plans[plan_name] = {"kinds": [kind], "events": plan_events}
            events[kind] = {plan_name: 1.0}
            sampled = sum(min(c, self.schema_sample) for c in kept.values())
            notes.append(
                f"events.{kind}: {len(kept)} event names from {sum(counts.values())} track calls, schemas from "
                f"{sampled}" + (f"; {dropped} rare or personal-looking names left out" if dropped else "")
            )
            if left_out:
                notes.append(
                    f"  left out of {plan_name}'s schemas: "
                    + ", ".join(f"{k} {v}" for k, v in left_out.items())
                )
        return events, plans, notes

    def _population(self, kinds: list[str]) -> tuple[dict[str, Any], list[str]]:
        notes = []
        users = sum(len(c) for c in self.users.values())
        fits: list[tuple[float, float]] = []
        for counter in self.users.values():
            exponent = _zipf_exponent(np.array(sorted(counter.values(), reverse=True), dtype=np.float64))
            if exponent is not None:
                fits.append((exponent, float(sum(counter.values()))))
        population: dict[str, Any] = {"users": max(1, min(users, 10_000_000))}
        notes.append(f"population.users: {users} distinct users seen (a lower bound)")
        if fits:
            exponent = sum(e * w for e, w in fits) / sum(w for _, w in fits)
            population["zipf_exponent"] = round(min(max(exponent, 0.0), 5.0), 3)
            notes.append(
                f"population.zipf_exponent: {population['zipf_exponent']} (rank-frequency fit over each source's {ZIPF_TOP_USERS} most active users, {len(fits)} sources)"
            )
        else:
            notes.append(
                f"population.zipf_exponent: too few users with {ZIPF_MIN_COUNT}+ messages; the default is kept"
            )
        identified = {}
        for kind in kinds:
            first = self.first_identified.get(kind)
            if first and sum(first.values()):
                identified[kind] = round(first[True] / sum(first.values()), 4)
        population["identified_at_start"] = identified
        notes.append(
            "population.identified_at_start: " + ", ".join(f"{k} {v:.0%}" for k, v in identified.items())
        )
        return population, notes

    def _mobile(self) -> tuple[dict[str, Any], list[str]]:
        gaps: list[float] = []
        lags_s: list[float] = []
        for batch in self.batches.values():
            if batch.replay or KIND_OF_SOURCE[batch.source] != "mobile" or not batch.times:
                continue
            if batch.sent_ms is not None:
                lags_s.append((batch.sent_ms - max(batch.times)) / 1000.0)
            lib = LIBRARIES[SOURCE_LIBRARY[batch.source]]
            if len(batch.times) >= 2:
                step = (max(batch.times) - min(batch.times)) / (len(batch.times) - 1) / 1000.0
                if step * len(batch.times) < 0.95 * lib.flush_interval_s:  # not stretched to the window
                    gaps.append(step)
        out: dict[str, Any] = {}
        notes = []
        if gaps:
            out["event_gap_seconds"] = round(float(np.median(gaps)), 3)
            notes.append(
                f"mobile.event_gap_seconds: {out['event_gap_seconds']} (median of {len(gaps)} batches)"
            )
        if lags_s:
            offline = [lag for lag in lags_s if lag > OFFLINE_LAG_S]
            out["offline_share"] = round(len(offline) / len(lags_s), 4)
            notes.append(
                f"mobile.offline_share: {out['offline_share']:.1%} of {len(lags_s)} batches waited over {OFFLINE_LAG_S:.0f} s"
            )
            if offline:
                hours = np.array(offline) / 3600.0
                out["offline_delay_hours"] = [
                    round(float(np.percentile(hours, 1)), 2),
                    round(float(np.percentile(hours, 99)), 2),
                ]
        return out, notes


def _impossible(kind: str, call_type: str) -> bool:
    return (kind == "web" and call_type == "screen") or (kind == "mobile" and call_type == "page")


def _clipped_poisson_mean(lam: float, cap: int) -> float:
    """E[min(max(X, 1), cap)] for X ~ Poisson(lam)."""
    k = np.arange(cap, dtype=np.float64)
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, cap, dtype=np.float64)))))
    pmf = np.exp(k * math.log(max(lam, 1e-12)) - lam - log_fact)
    below = pmf.sum()
    return float(pmf[0] * 1 + (k[1:] * pmf[1:]).sum() + cap * max(0.0, 1.0 - below))


def _rate_for_mean(lib: Any, mean: float) -> float:
    """The events/s whose batches average `mean` messages under the library's flush policy."""
    low, high = 1e-6, 1e6
    for _ in range(100):
        mid = math.sqrt(low * high)
        if _clipped_poisson_mean(batch_fill_lambda(lib, mid), lib.flush_at) < mean:
            low = mid
        else:
            high = mid
    return math.sqrt(low * high)


def _zipf_exponent(counts: np.ndarray) -> float | None:
    """The slope of log(count) against log(rank) over the ZIPF_TOP_USERS most active users (the sample
    cuts the tail short: users seen once or never flatten a fit over all of them)."""
    top = counts[:ZIPF_TOP_USERS]
    top = top[top >= ZIPF_MIN_COUNT]
    if len(top) < 10:
        return None
    ranks = np.log(np.arange(1, len(top) + 1, dtype=np.float64))
    slope = np.polyfit(ranks, np.log(top), 1)[0]
    return float(-slope)


def fit(
    records: Iterable[Mapping[str, Any]], privacy: Privacy | None = None, name: str = "fitted", **options: Any
) -> FitResult:
    """Fit a profile to sample records (parsed JSON lines; see `read_sample`)."""
    fitter = Fitter(privacy, **options)
    for record in records:
        fitter.add(record)
    return fitter.result(name)


def render(result: FitResult) -> str:
    """The profile as YAML, headed by the fit report as comments."""
    doc = dict(result.profile)
    dialect = doc.pop("_dialect", "segment")
    if "dialect" in {f.name for f in fields(Profile)}:  # a profile format that has the key
        doc = {"name": doc.pop("name"), "dialect": dialect, **doc}
    lines = ["# Traffic profile fitted by `harness profile fit`: check it, then pass it with --profile.", "#"]
    lines += [f"# {line}" for line in result.report]
    if "dialect" not in doc:
        lines.append(
            f"# dialect: {dialect} (inferred; this profile format has no dialect key, so it is noted here)"
        )
    return "\n".join(lines) + "\n\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
