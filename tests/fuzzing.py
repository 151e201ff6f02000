"""Hypothesis strategies of HTTP requests for every endpoint of the sandbox and the monitor.

One definition for the fuzz tests (modest counts) and `bench/fuzz.py` (10,000+ per endpoint). Each
endpoint's strategy yields a `Request`; the servers are expected to answer every one below 500,
non-2xx answers as JSON `{"code", "message"}`. `MONITOR_CONFIG`/`SANDBOX_CONFIG` are the configs
the requests are written for (destination names, secrets, write keys, tokens).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyroaring import BitMap64

from loadgen import ids
from loadgen.ledger import LedgerDelta

MONITOR_TOKEN = "fuzz-monitor-token"
SANDBOX_TOKEN = "fuzz-sandbox-token"
HOOK_SECRET = "fuzz-hook-secret"
SANDBOX_SECRET = "fuzz-sandbox-secret"
WRITE_KEYS = {"web": "key-web", "server": "key-server"}
MONITOR_CONFIG = {
    "lost_after_seconds": 30,
    "max_body_bytes": 1 << 20,
    "max_ledger_bytes": 64 << 20,
    "max_ledger_bytes_per_run": 8 << 20,
    # `toy` takes the fuzzed behaviours (a flaky or down one answers 5xx on purpose) and no webhooks
    "destinations": {"hook": {"secret": HOOK_SECRET}, "open": {}, "toy": {}},
}


def sandbox_config(receiver_url: str, spool: str) -> dict:
    return {
        "seed": 7,
        "sources": [{"name": n, "write_key": k} for n, k in WRITE_KEYS.items()],
        "delivery": {"backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.5, "spool_path": spool},
        "destinations": [
            {
                "name": "d",
                "url": receiver_url,
                "secret": SANDBOX_SECRET,
                "batch_size": 100,
                "timeout_seconds": 2,
            }
        ],
    }


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, bytes] = field(default_factory=dict)
    content: bytes = b""


Answer = httpx.Response | httpx.HTTPError


METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
FIELDS = [
    "type",
    "event",
    "userId",
    "anonymousId",
    "messageId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "context",
    "integrations",
    "properties",
    "traits",
    "groupId",
    "previousId",
    "writeKey",
    "batch",
]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["track", "identify", "2026-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "key-web", "All"]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(FIELDS), kids, max_size=4)
    ),
    max_leaves=12,
)
messages = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10)


def encode(doc) -> bytes:
    return json.dumps(doc).encode()


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


deep = st.builds(_nested, st.integers(1, 200_000), st.sampled_from(["array", "object"]))
garbage = st.one_of(st.binary(max_size=300), json_values.map(encode), deep)
queries = st.one_of(
    st.just(""),
    st.text(max_size=40).map(lambda t: t.replace("#", "")),
    st.lists(
        st.tuples(
            st.sampled_from(["run", "destination", "limit", "x", ""]),
            st.one_of(
                st.text(max_size=20), st.integers(-5, 2**70).map(str), st.sampled_from(["hook", "open"])
            ),
        ),
        max_size=4,
    ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
)


def _url(path: str, query: str) -> str:
    return f"{path}?{quote(query, safe='=&')}" if query else path


# --- monitor -------------------------------------------------------------------------------------------

tokens = st.sampled_from(["right", "right", "right", "wrong", "none", "basic", "bad-bytes"])


def _bearer(choice: str, token: str) -> dict[str, bytes]:
    return {
        "right": {"authorization": f"Bearer {token}".encode()},
        "wrong": {"authorization": b"Bearer nope"},
        "basic": {"authorization": b"Basic " + base64.b64encode(token.encode())},
        "bad-bytes": {"authorization": "Bearer \u00ff\u00fe".encode("latin-1")},
        "none": {},
    }[choice]


def _events(run: int, stream: int, seqs: list[int], users: list) -> bytes:
    message_ids = ids.make_message_ids(
        ids.IdStyle.PLAIN, int(time.time() * 1000), run, stream, np.asarray(seqs, dtype=np.uint64)
    )
    return encode([{"messageId": m.decode(), "userId": u} for m, u in zip(message_ids, users, strict=False)])


# A few runs and streams, the edges of the id scheme among them: the audit's figures are per run, and
# a summary of all runs costs time per run held (thousands of runs make the fuzz measure that instead)
runs = st.sampled_from([0, 1, 2, 3, ids.MAX_RUN])
streams = st.sampled_from([0, 1, 2, ids.MAX_STREAM - 1, ids.MAX_STREAM])
our_events = st.builds(
    _events,
    runs,
    streams,
    st.lists(st.integers(0, ids.MAX_SEQ), min_size=1, max_size=20),
    st.lists(json_values, min_size=20, max_size=20),
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "messageId": st.one_of(st.text(max_size=60), st.integers(0, 2**40), st.none()),
        "userId": json_values,
        "anonymousId": json_values,
        "properties": json_values,
    },
)
webhook_bodies = st.one_of(
    garbage, our_events, st.lists(event_like, max_size=8).map(encode), event_like.map(encode)
)


def _webhook(name: str, method: str, body: bytes, signing: str, gzipped: bool) -> Request:
    headers: dict[str, bytes] = {}
    if gzipped:
        body = gzip.compress(body)
        headers["content-encoding"] = b"gzip"
    if signing == "right":
        headers["x-signature"] = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha1).hexdigest().encode()
    elif signing == "wrong":
        headers["x-signature"] = b"00" * 20
    elif signing == "bytes":
        headers["x-signature"] = "\u00e9\u00ff".encode("latin-1")
    return Request(method, f"/webhook/{name}", headers, body)


monitor_webhook = st.builds(
    _webhook,
    st.sampled_from(["hook", "hook", "open", "open", "nope", "", "hook/x"]),
    st.sampled_from(["POST"] * 8 + ["GET", "PUT"]),
    webhook_bodies,
    st.sampled_from(["right", "right", "wrong", "none", "bytes"]),
    st.booleans(),
)

bitmap_texts = st.one_of(
    st.lists(st.integers(0, ids.MAX_SEQ), max_size=30).map(
        lambda v: base64.b64encode(BitMap64(v).serialize()).decode()
    ),
    st.lists(st.integers(0, 2**64 - 1), max_size=5).map(
        lambda v: base64.b64encode(BitMap64(v).serialize()).decode()
    ),
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    json_scalars,
)
ledger_docs = st.fixed_dictionaries(
    {
        "format": st.sampled_from(["cdp-harness/ledger"] * 9 + ["other"]),
        "version": st.sampled_from([1] * 9 + [2]),
        "run": st.one_of(runs, st.integers(-2, 2**70), json_scalars),
        "stream": st.one_of(streams, st.integers(-2, 2**20), json_scalars),
        "sent_until_ms": st.one_of(st.integers(0, 2**48), st.integers(-2, 2**64), json_scalars),
    },
    optional={
        "run_name": st.one_of(st.text(max_size=40), json_scalars, st.just("x" * 300)),
        "final": st.one_of(st.booleans(), json_scalars),
        "accepted": st.one_of(st.dictionaries(st.text(max_size=10), bitmap_texts, max_size=4), json_values),
        "rejected": bitmap_texts,
        "abandoned": bitmap_texts,
        "duplicates": bitmap_texts,
    },
)


def _valid_ledger(run: int, stream: int, accepted: list[int], final: bool) -> dict:
    delta = LedgerDelta(run, stream, int(time.time() * 1000), run_name=f"fuzz-{run}", final=final)
    delta.accepted["web"] = BitMap64(accepted)
    return json.loads(delta.to_wire())


ledger_docs = ledger_docs | st.builds(
    _valid_ledger,
    runs,
    streams,
    st.lists(st.integers(0, ids.MAX_SEQ), max_size=50),
    st.booleans(),
)
monitor_ledger = st.builds(
    lambda doc, raw, use_raw, auth, method: Request(
        method, "/api/ledger", _bearer(auth, MONITOR_TOKEN), raw if use_raw else encode(doc)
    ),
    ledger_docs,
    garbage,
    st.sampled_from([False] * 4 + [True]),
    tokens,
    st.sampled_from(["POST"] * 9 + ["GET"]),
)


def _get(path: str, token: str):
    return st.builds(
        lambda query, auth, method, body: Request(method, _url(path, query), _bearer(auth, token), body),
        queries,
        tokens,
        st.sampled_from(["GET"] * 9 + ["POST", "DELETE"]),
        st.sampled_from([b"", b"", b"{}", b"\xff\x00{"]),
    )


behaviours = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.one_of(
            st.sampled_from(["healthy", "slow", "flaky", "rate_limited", "rejecting", "down"]), json_scalars
        ),
        "share": st.one_of(st.floats(0, 1), json_scalars),
        "status": st.one_of(st.integers(0, 700), json_scalars),
        "seconds": st.one_of(st.floats(0, 0.01), json_scalars),
        "distribution": st.one_of(
            st.sampled_from(["fixed", "uniform", "exponential", "lognormal"]), json_scalars
        ),
        "low": st.floats(0, 0.01),
        "high": st.floats(0, 0.01),
        "mean": st.floats(0, 0.01),
        "median": st.floats(0, 0.01),
        "sigma": st.floats(0, 2),
        "retry_after_seconds": st.one_of(st.floats(0, 5), json_scalars),
        "seed": json_scalars,
    },
)
monitor_behaviour = st.builds(
    lambda name, doc, raw, use_raw, auth: Request(
        "PUT",
        f"/api/destinations/{name}/behaviour",
        _bearer(auth, MONITOR_TOKEN),
        raw if use_raw else encode(doc),
    ),
    st.sampled_from(["toy", "toy", "nope", "", "a/b"]),
    behaviours,
    garbage,
    st.sampled_from([False] * 4 + [True]),
    tokens,
)
other_paths = st.builds(
    lambda path, method, body: Request(method, "/" + path.lstrip("/"), {}, body),
    st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#%"), max_size=30),
    METHODS,
    st.binary(max_size=50),
)

MONITOR_ENDPOINTS = {
    "POST /webhook/<destination>": monitor_webhook,
    "POST /api/ledger": monitor_ledger,
    "GET /api/summary": _get("/api/summary", MONITOR_TOKEN),
    "GET /api/lost": _get("/api/lost", MONITOR_TOKEN),
    "GET /api/destinations": _get("/api/destinations", MONITOR_TOKEN),
    "PUT /api/destinations/<name>/behaviour": monitor_behaviour,
    "GET /metrics": _get("/metrics", "unused"),
    "GET /healthz": _get("/healthz", "unused"),
    "any other path": other_paths,
}
"""The monitor's endpoints (behaviours are fuzzed on `toy` only, which no webhook request targets)."""

# --- sandbox -------------------------------------------------------------------------------------------

INGEST_PATHS = [
    f"/v1/{p}"
    for p in (
        "identify",
        "track",
        "page",
        "screen",
        "group",
        "alias",
        "batch",
        "import",
        "t",
        "p",
        "i",
        "g",
        "a",
        "s",
        "b",
    )
]
BATCH_PATHS = ["/v1/batch", "/v1/import", "/v1/b"]
ingest_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(encode),
    messages.map(encode),
    st.lists(messages, max_size=5).map(lambda b: encode({"batch": b})),
    st.builds(
        lambda b, c, i, s: encode({"batch": b, "context": c, "integrations": i, "sentAt": s}),
        st.lists(messages | json_values, max_size=4),
        json_values,
        json_values,
        json_values,
    ),
    deep,
    st.integers(1, 1_500_000).map(lambda n: b'{"batch":"' + b"x" * n + b'"}'),
    st.binary(min_size=1, max_size=50).map(lambda b: b'{"event":"' + b + b'","type":"track"}'),
    st.builds(
        lambda n, props, batch: encode({"batch": [_valid(n, props)] * batch} if batch else _valid(n, props)),
        st.integers(0, 10**6),
        json_values,
        st.integers(0, 3),
    ),
    st.integers(200, 400).map(
        lambda n: encode(
            {"type": "track", "event": "e", "userId": "u", "properties": json.loads(_nested(n, "object"))}
        )
    ),
)


def _valid(n: int, properties) -> dict:
    return {
        "type": "track",
        "event": "Fuzz",
        "userId": f"u{n}",
        "messageId": f"fuzz-{n}",
        "properties": {"p": properties},
    }


encodings = st.sampled_from([None, "gzip", "gzip-bad", "deflate", "br", "identity", "GZIP", "x\u00e9"])
ingest_auths = st.sampled_from(["basic", "basic-bad", "body", "bearer-body", "none", "garbage"])


def _ingest(path: str, body: bytes, encoding: str | None, auth: str, rnd: int) -> Request:
    headers = {"content-type": "text/plain" if rnd % 2 else "application/json"}
    if auth == "basic":
        headers["authorization"] = "Basic " + base64.b64encode(b"key-web:").decode()
    elif auth == "basic-bad":
        headers["authorization"] = "Basic " + base64.b64encode(b"nope:").decode()
    elif auth == "garbage":
        headers["authorization"] = "Basic \u00ff\u00fe=== \u2603"
    elif auth in ("body", "bearer-body"):
        try:
            doc = json.loads(body)
            if isinstance(doc, dict):
                doc["writeKey"] = "key-server"
                body = encode(doc)
        except (ValueError, RecursionError):
            pass
        if auth == "bearer-body":
            headers["authorization"] = "Bearer token"
    if encoding in ("gzip", "GZIP"):
        body = gzip.compress(body)
        headers["content-encoding"] = encoding
    elif encoding == "deflate":
        body = zlib.compress(body)
        headers["content-encoding"] = encoding
    elif encoding == "gzip-bad":
        body = gzip.compress(body)[: max(1, rnd % 30)]
        headers["content-encoding"] = "gzip"
    elif encoding is not None:
        headers["content-encoding"] = encoding
    # bytes header values: the non-ASCII ones go out as raw UTF-8 / Latin-1 bytes
    return Request("POST", path, {k: v.encode("utf-8") for k, v in headers.items()}, body)


sandbox_ingest = st.builds(
    _ingest, st.sampled_from(INGEST_PATHS), ingest_bodies, encodings, ingest_auths, st.integers(0, 1000)
)
fault_docs = st.dictionaries(
    st.sampled_from(["ingest", "destinations", "other"]),
    json_values
    | st.dictionaries(st.sampled_from(["error_5xx", "error_429", "accept_then_5xx", "d", "x"]), json_values)
    | st.fixed_dictionaries(
        {"d": st.dictionaries(st.sampled_from(["drop", "duplicate", "delay"]), json_values)}
    ),
    max_size=3,
)
sandbox_faults = st.builds(
    lambda doc, raw, use_raw, auth, method: Request(
        method, "/admin/faults", _bearer(auth, SANDBOX_TOKEN), raw if use_raw else encode(doc)
    ),
    fault_docs | json_values,
    garbage,
    st.sampled_from([False] * 4 + [True]),
    tokens,
    st.sampled_from(["PUT"] * 8 + ["GET", "POST"]),
)

SANDBOX_ENDPOINTS = {
    "POST /v1/<type>": sandbox_ingest,
    "GET /admin/stats": _get("/admin/stats", SANDBOX_TOKEN),
    "GET /metrics": _get("/metrics", "unused"),
    "GET /healthz": _get("/healthz", "unused"),
    "any other path": other_paths,
    "PUT /admin/faults": sandbox_faults,
}
"""The sandbox's endpoints, `/admin/faults` last: the faults it sets make ingest answer 5xx on purpose,
so the caller fuzzes it after the others and clears the faults after it."""


def fuzz(
    client: httpx.Client,
    strategy: st.SearchStrategy,
    count: int,
    on_answer: Callable[[Request, Answer], None],
) -> None:
    """Send `count` requests drawn from `strategy` (generation only, no shrinking); `on_answer` gets each
    request with its response, or with the `httpx.HTTPError` when none came."""

    @settings(
        max_examples=count,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=strategy)
    def one(request: Request) -> None:
        try:
            answer: Answer = client.request(
                request.method, request.path, headers=request.headers, content=request.content
            )
        except httpx.HTTPError as exc:
            answer = exc
        on_answer(request, answer)

    one()


def fuzz_endpoints(client: httpx.Client, endpoints: dict, count: int) -> tuple[list[str], set[int]]:
    """`count` requests to each endpoint: the problems found (`answer_problem`) and the statuses seen."""
    problems: list[str] = []
    statuses: set[int] = set()

    def check(request: Request, answer: Answer) -> None:
        if isinstance(answer, httpx.Response):
            statuses.add(answer.status_code)
        problem = answer_problem(request, answer)
        if problem:
            problems.append(problem)

    for strategy in endpoints.values():
        fuzz(client, strategy, count, check)
    return problems, statuses


def answer_problem(request: Request, answer: Answer) -> str | None:
    """What is wrong with an answer (None when it is fine): none, a 5xx, or an error that is not a named JSON one."""
    if isinstance(answer, httpx.HTTPError):
        return f"no answer to {request.method} {request.path}: {type(answer).__name__}: {answer}"
    status, body = answer.status_code, answer.content
    if status >= 500:
        return f"{status} to {request.method} {request.path}: {body[:300]!r}"
    if status < 400 or request.method == "HEAD":
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return f"{status} without JSON to {request.method} {request.path}: {body[:200]!r}"
    if not (isinstance(doc, dict) and doc.get("code") and doc.get("message")):
        return f"{status} without code and message to {request.method} {request.path}: {doc!r:.200}"
    return None
