"""Preflight: before the load starts, one small valid request of every kind the profile sends.

A kind is an (endpoint, auth style, body encoding) triple: what decides whether a target takes a
request at all (RudderStack, for one, answers 404 to analytics.js's short paths and 401 to a write
key in the body). The kinds and the share of the profile's messages each stands for are found by
building a sample of each source's requests; the smallest request of each kind is then sent once.
Its messageIds are in the run's id space (stream PREFLIGHT_STREAM) and its outcome goes to a sent
ledger of its own, so the audit accounts for every preflight message like any other.
"""

from __future__ import annotations

import dataclasses
import gzip
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import gevent

from harness.ingest_client import Answer, IngestClient
from loadgen.dialects import DIALECTS
from loadgen.ids import MAX_STREAM
from loadgen.ledger import SentLedger
from loadgen.profile import Profile
from loadgen.traffic import PreparedRequest, TrafficGenerator

PREFLIGHT_STREAM = MAX_STREAM - 1
"""The preflight's own messageId stream (the canary has MAX_STREAM, workers count up from 0)."""
ATTEMPTS = 4
"""Sends of one probe at most while the answer is a 5xx or 429 (the same messageIds, as an SDK retries)."""
RETRY_DELAY = 0.25
SAMPLE_REQUESTS = 2000
SAMPLE_MESSAGES = 20_000
"""A source's sample ends at whichever comes first (HTTP callers, whose requests vary most: five times both)."""


@dataclass(frozen=True, order=True, slots=True)
class Kind:
    """What a target sees first in a request: endpoint, how the write key comes, body encoding."""

    path: str
    auth: str  # "Basic", "writeKey in body", "Bearer + writeKey in body"
    encoding: str  # "gzip" or "identity"


@dataclass(slots=True)
class Probe:
    """One kind: the share of the profile's messages it carries, its sources, and what the target said."""

    kind: Kind
    share: float = 0.0
    sources: set[str] = field(default_factory=set)
    request: PreparedRequest | None = None
    answer: Answer | None = None

    @property
    def accepted(self) -> bool:
        status = self.answer.status if self.answer else None
        return status is not None and 200 <= status < 300

    @property
    def refused(self) -> bool:
        """The target will not take this kind: no answer at all, or a 4xx other than 429.

        A 5xx or 429 that outlasted the retries says the target is struggling, not that it cannot
        take the kind: reported, not a reason to stop.
        """
        status = self.answer.status if self.answer else None
        return status is None or (400 <= status < 500 and status != 429)

    def answer_text(self) -> str:
        if self.answer is None:
            return "not sent"
        if self.answer.status is None:
            return f"no answer ({self.answer.error})"
        words = self.answer.body[:80].decode("utf-8", "replace").strip().replace("\n", " ")
        status = str(self.answer.status)
        return words if words.startswith(status) else f"{status} {words}".strip()


def kind_of(request: PreparedRequest) -> Kind:
    """The request's kind, read from what it carries (headers and body), as a target reads it."""
    encoding = request.headers.get("Content-Encoding", "identity")
    body = gzip.decompress(request.body) if encoding == "gzip" else request.body
    in_body = b'"writeKey":' in body
    scheme = request.headers.get("Authorization", "").partition(" ")[0]
    if scheme == "Basic":
        auth = "Basic + writeKey in body" if in_body else "Basic"
    elif scheme == "Bearer":
        auth = "Bearer + writeKey in body"
    else:
        auth = "writeKey in body" if in_body else "none"
    return Kind(request.path, auth, encoding)


def plan_probes(profile: Profile, *, seed: int, run: int, write_keys: Mapping[str, str]) -> list[Probe]:
    """Every kind the profile's live traffic uses, with its message share and its smallest request."""
    plain = dataclasses.replace(profile, bad_input_share=0.0, replay_share=0.0, duplicate_share=0.0)
    generator = TrafficGenerator(plain, seed=seed, run=run, stream=PREFLIGHT_STREAM, write_keys=write_keys)
    probes: dict[Kind, Probe] = {}
    for source, share in plain.sources.items():
        if share <= 0:
            continue
        scale = 5 if generator.library_of(source).source_kind == "http" else 1
        messages: dict[Kind, int] = defaultdict(int)
        sampled = 0
        for _ in range(SAMPLE_REQUESTS * scale):
            if sampled >= SAMPLE_MESSAGES * scale:
                break
            request = generator.next_request(source)
            sampled += request.message_count
            kind = kind_of(request)
            messages[kind] += request.message_count
            probe = probes.setdefault(kind, Probe(kind))
            probe.sources.add(source)
            if probe.request is None or request.message_count < probe.request.message_count:
                probe.request = request
        total = sum(messages.values())
        for kind, n in messages.items():
            probes[kind].share += share * n / total
    return sorted(probes.values(), key=lambda p: (-p.share, p.kind))


def run_preflight(probes: list[Probe], target: str, ledger: SentLedger,
                  send: Callable[[PreparedRequest], Answer] | None = None) -> list[Probe]:  # fmt: skip
    """Send each probe's request (again on a 5xx or 429) and record the outcome in `ledger`; returns the
    refused probes."""
    client = IngestClient(target) if send is None else None
    send = send or client.send  # type: ignore[union-attr]
    try:
        for probe in probes:
            request = probe.request
            if request is None:
                continue
            probe.answer = send(request)
            for _ in range(ATTEMPTS - 1):
                status = probe.answer.status
                if status is None or not (status == 429 or status >= 500):
                    break
                gevent.sleep(RETRY_DELAY)
                probe.answer = send(request)
            status = probe.answer.status
            if probe.accepted:
                ledger.record_accepted(request.source, request.seqs, request.sent_ms)
            elif status is not None and 400 <= status < 500 and status != 429:
                ledger.record_rejected(request.seqs, request.sent_ms)
            else:
                ledger.record_abandoned(request.seqs, request.sent_ms)
    finally:
        if client is not None:
            client.close()
    return [p for p in probes if p.refused]


def table(probes: list[Probe], target: str, dialect: str) -> str:
    """The compatibility table as printed before the load."""
    head = ("", "endpoint", "auth", "encoding", "sources", "share", "answer")
    rows = [
        (
            "ok" if p.accepted else "REFUSED" if p.refused else "5xx/429",
            f"POST {p.kind.path}",
            p.kind.auth,
            p.kind.encoding,
            ",".join(sorted(p.sources)),
            f"{p.share:6.1%}" if p.share >= 0.0005 else "  <0.1%",
            p.answer_text(),
        )
        for p in probes
    ]
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    lines = [
        f"Preflight: {len(probes)} kinds of request the profile sends ({dialect} dialect), one each to {target}"
    ]
    for row in (head, *rows):
        lines.append("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def refusal_message(refused: list[Probe], dialect: str, *, sandbox: bool = False) -> str:
    """Why the run stops, naming each refused endpoint, its answer and the fix."""
    share = sum(p.share for p in refused)
    other = next(d for d in DIALECTS if d != dialect)
    sources = sorted({s for p in refused for s in p.sources})
    lines = [f"Preflight: the target refused {len(refused)} kind(s) of request, {share:.1%} of the profile's "
             "messages; the load was not started:"]  # fmt: skip
    for p in refused:
        lines.append(f"  POST {p.kind.path} ({p.kind.auth}, {p.kind.encoding}) -> {p.answer_text()}")
    lines.append(
        f"Fix: if the target speaks the other dialect, run with --dialect {other}; or use a profile without "
        f"the refused source(s) ({', '.join(sources)}); or --preflight warn to send anyway."
    )
    if sandbox:
        lines.append(
            "(The bundled sandbox was started with --sandbox-dialect; it answers as that target does.)"
        )
    return "\n".join(lines)
