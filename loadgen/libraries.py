"""One model per Segment client library: what it puts in `context`, how it batches, posts and retries.

Every figure comes from ../shared/docs/tracking-api-facts.md (the libraries' own defaults). Where the
facts give no figure (a library's exact version string, a retry cap it does not document) the value is
marked `# assumption`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from loadgen.ids import IdStyle

SourceKind = str
""""mobile", "web", "server" (a server library) or "http" (direct HTTP API callers)."""


class Auth(StrEnum):
    """How a library proves its write key."""

    BASIC = "basic"  # Authorization: Basic base64("key:")
    BODY = "body"  # "writeKey" in the JSON body, no header
    BASIC_AND_BODY = "basic+body"  # both (analytics-python, @segment/analytics-node)
    BEARER_AND_BODY = "bearer+body"  # Authorization: Bearer <token> plus "writeKey" in the body


class RetryOn(StrEnum):
    """Which answers a library retries."""

    NETWORK_429_5XX = "network,429,5xx"
    NETWORK_3XX_429_5XX = "network,3xx,429,5xx"  # analytics-ios
    ALL_BUT_4XX = "all but non-429 4xx"  # analytics-android
    ANY_NON_2XX = "any non-2xx"  # analytics-go retries even a 400


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A library's retry rule: which answers, how long to wait, how many attempts in all."""

    max_attempts: int
    base_delay: float
    max_delay: float
    multiplier: float = 2.0
    jitter: float = 0.0  # the wait is multiplied by a random factor in [1 - jitter, 1 + jitter]
    retry_on: RetryOn = RetryOn.NETWORK_429_5XX
    honours_retry_after: bool = False
    retry_count_header: str | None = None  # header naming the attempt number on a retry

    def should_retry(self, status: int | None) -> bool:
        """True when the library sends the same batch again after this answer (None: no answer)."""
        if status is None:
            return True
        if 200 <= status < 300:
            return False
        if self.retry_on is RetryOn.ANY_NON_2XX:
            return True
        if status == 429 or status >= 500:
            return True
        if 300 <= status < 400:
            return self.retry_on in (RetryOn.NETWORK_3XX_429_5XX, RetryOn.ALL_BUT_4XX)
        return False

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1 = the first retry)."""
        if self.honours_retry_after and retry_after is not None and retry_after >= 0:
            return float(retry_after)
        wait = min(self.max_delay, self.base_delay * self.multiplier ** max(0, attempt - 1))
        if self.jitter:
            wait *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return wait


@dataclass(frozen=True, slots=True)
class LibraryModel:
    """What one client library sends and how."""

    name: str  # context.library.name
    version: str  # context.library.version
    source_kind: SourceKind
    path: str  # batch endpoint; the browser posts each event to /v1/<first letter of its type>
    auth: Auth
    gzip: bool
    flush_at: int  # events that trigger a flush
    flush_interval_s: float  # seconds that trigger a flush
    max_batch_bytes: int
    id_style: IdStyle
    retry: RetryPolicy
    user_agent: str
    content_type: str = "application/json"
    extra_headers: dict[str, str] = field(default_factory=dict)
    # What RudderStack's SDKs add (see loadgen/dialects.py); the defaults are what Segment's libraries send.
    short_paths: bool | None = None  # single calls to /v1/<letter> (None: the browser does, others do not)
    anonymous_id_header: bool = False  # `AnonymousId: base64(anonymousId)` header on every request
    sent_at_header: bool = False  # `SentAt: <sentAt>` header on every request
    integrations: bytes | None = b"{}"  # each message's `integrations` value as JSON (None: no key)
    message_extras: bytes = b""  # more top-level message fields as JSON members, e.g. `,"channel":"web"`
    timestamp_key: str = "timestamp"  # the event-time field: "timestamp" or "originalTimestamp"
    batch_timestamp: bool = False  # a batch body's own `timestamp` (the send time) before its sentAt

    @property
    def batches(self) -> bool:
        return self.flush_at > 1

    @property
    def apple(self) -> bool:
        """An iOS library: Apple devices and a CFNetwork User-Agent per device."""
        return self.name in APPLE_LIBRARIES

    @property
    def message_end(self) -> bytes:
        """What follows a message's context: `,"integrations":..` and the library's extra fields (no brace)."""
        integrations = b"" if self.integrations is None else b',"integrations":' + self.integrations
        return integrations + self.message_extras

    def single_path(self, call_type: str) -> str:
        """The endpoint one call of `call_type` is posted to when sent alone."""
        short = self.source_kind == "web" if self.short_paths is None else self.short_paths
        return f"/v1/{call_type[0]}" if short else f"/v1/{call_type}"

    @property
    def automatic_context(self) -> tuple[str, ...]:
        """The context keys the library fills itself (the rest is the caller's)."""
        if self.source_kind == "web":
            return ("library", "page", "userAgent", "locale", "timezone", "campaign")
        if self.source_kind == "mobile":
            return ("library", "app", "device", "network", "os", "screen", "locale", "timezone")
        if self.source_kind == "server":
            return ("library",)
        return ()


APPLE_LIBRARIES = frozenset({"analytics-ios", "rudder-ios-library"})

_MOBILE_RETRY_AT_NEXT_FLUSH = 30.0  # mobile SDKs keep a failed batch on disk and retry at the next flush

LIBRARIES: dict[str, LibraryModel] = {
    "analytics.js": LibraryModel(
        name="analytics.js",
        version="npm:next-1.72.0",  # assumption: a current analytics-next release
        source_kind="web",
        path="/v1/t",
        auth=Auth.BODY,  # text/plain with writeKey in the body avoids a CORS preflight
        gzip=False,
        flush_at=1,
        flush_interval_s=0.0,
        max_batch_bytes=32 * 1024,
        id_style=IdStyle.AJS_NEXT,
        # backoff queue: 500 ms doubling with jitter; 10 attempts is an assumption from its retry queue
        retry=RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=60.0, jitter=0.5),
        user_agent="",  # the browser's own, set per visitor
        content_type="text/plain",
    ),
    "analytics-ios": LibraryModel(
        name="analytics-ios",
        version="4.1.8",
        source_kind="mobile",
        path="/v1/batch",
        auth=Auth.BASIC,
        gzip=True,
        flush_at=20,
        flush_interval_s=30.0,
        max_batch_bytes=475_000,
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(
            max_attempts=10,  # assumption: the queue is persisted, retried at every flush
            base_delay=_MOBILE_RETRY_AT_NEXT_FLUSH,
            max_delay=_MOBILE_RETRY_AT_NEXT_FLUSH,
            multiplier=1.0,
            retry_on=RetryOn.NETWORK_3XX_429_5XX,
        ),
        user_agent="",  # NSURLSession's default, set per device
    ),
    "analytics-android": LibraryModel(
        name="analytics-android",
        version="4.11.3",
        source_kind="mobile",
        path="/v1/import",
        auth=Auth.BASIC,
        gzip=True,
        flush_at=20,
        flush_interval_s=30.0,
        max_batch_bytes=475_000,
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(
            max_attempts=10,  # assumption: disk queue retried at every flush
            base_delay=_MOBILE_RETRY_AT_NEXT_FLUSH,
            max_delay=_MOBILE_RETRY_AT_NEXT_FLUSH,
            multiplier=1.0,
            retry_on=RetryOn.ALL_BUT_4XX,
        ),
        user_agent="analytics-android/4.11.3",
    ),
    "Analytics.Xamarin": LibraryModel(
        name="Analytics.Xamarin",
        version="3.3.2",  # assumption
        source_kind="mobile",
        path="/v1/import",
        auth=Auth.BASIC,
        gzip=False,
        flush_at=20,  # assumption: the Analytics.NET defaults it is built on
        flush_interval_s=10.0,
        max_batch_bytes=500 * 1024,
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=10.0),  # assumption: as Analytics.NET
        user_agent="Analytics.Xamarin/3.3.2",
    ),
    "@segment/analytics-node": LibraryModel(
        name="@segment/analytics-node",
        version="2.1.3",
        source_kind="server",
        path="/v1/batch",
        auth=Auth.BASIC_AND_BODY,
        gzip=False,
        flush_at=15,
        flush_interval_s=10.0,
        max_batch_bytes=480 * 1024,
        id_style=IdStyle.NODE_NEXT,
        retry=RetryPolicy(
            max_attempts=10,
            base_delay=0.5,
            max_delay=60.0,
            jitter=0.5,
            honours_retry_after=True,
            retry_count_header="X-Retry-Count",
        ),
        user_agent="analytics-node-next/latest",
    ),
    "analytics-python": LibraryModel(
        name="analytics-python",
        version="2.3.3",
        source_kind="server",
        path="/v1/batch",
        auth=Auth.BASIC_AND_BODY,
        gzip=False,  # opt-in (gzip=True); off by default
        flush_at=100,
        flush_interval_s=0.5,
        max_batch_bytes=475_000,
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=60.0, jitter=0.5),
        user_agent="analytics-python/2.3.3",
    ),
    "analytics-ruby": LibraryModel(
        name="analytics-ruby",
        version="2.4.3",
        source_kind="server",
        path="/v1/import",
        auth=Auth.BASIC,
        gzip=False,
        flush_at=100,
        flush_interval_s=0.0,  # flushes as soon as the worker thread wakes
        max_batch_bytes=512_000,
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(max_attempts=10, base_delay=0.1, max_delay=10.0, multiplier=1.5, jitter=0.5),
        user_agent="analytics-ruby/2.4.3",
    ),
    "analytics-go": LibraryModel(
        name="analytics-go",
        version="3.3.0",
        source_kind="server",
        path="/v1/batch",
        auth=Auth.BASIC,
        gzip=False,
        flush_at=250,
        flush_interval_s=5.0,
        max_batch_bytes=500_000,
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(
            max_attempts=10, base_delay=0.1, max_delay=10.0, jitter=0.5, retry_on=RetryOn.ANY_NON_2XX
        ),
        user_agent="analytics-go (version: 3.3.0)",
    ),
    "analytics-java": LibraryModel(
        name="analytics-java",
        version="3.5.1",
        source_kind="server",
        path="/v1/import",
        auth=Auth.BASIC,
        gzip=False,
        flush_at=250,
        flush_interval_s=10.0,
        max_batch_bytes=500 * 1024,
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=60.0, jitter=0.5),
        user_agent="analytics-java/3.5.1",
    ),
    "analytics-php": LibraryModel(
        name="analytics-php",
        version="3.7.0",
        source_kind="server",
        path="/v1/batch",
        auth=Auth.BASIC,
        gzip=False,  # opt-in compress_request
        flush_at=100,
        flush_interval_s=0.0,  # flushes at the end of the PHP request
        max_batch_bytes=512_000,
        id_style=IdStyle.PLAIN,
        # 0.1 s doubling while under 10 s: 0.1..6.4 s, so 8 attempts in all
        retry=RetryPolicy(max_attempts=8, base_delay=0.1, max_delay=10.0),
        user_agent="analytics-php/3.7.0",
    ),
    "Analytics.NET": LibraryModel(
        name="Analytics.NET",
        version="3.8.1",
        source_kind="server",
        path="/v1/import",
        auth=Auth.BASIC,
        gzip=False,
        flush_at=20,
        flush_interval_s=10.0,
        max_batch_bytes=500 * 1024,
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=10.0),  # attempts: assumption
        user_agent="Analytics.NET/3.8.1",
    ),
    "http": LibraryModel(
        name="http",  # direct HTTP API callers send no context.library
        version="",
        source_kind="http",
        path="/v1/batch",  # or /v1/<type> for single calls: see sources.http_api.HTTP_SINGLE_CALL_SHARE
        auth=Auth.BASIC,  # varied per caller: see sources.http_api.HTTP_AUTH_SHARES
        gzip=False,
        flush_at=50,  # assumption: hand-written batchers
        flush_interval_s=5.0,  # assumption
        max_batch_bytes=500 * 1024,
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=8.0),  # assumption
        user_agent="python-requests/2.32.3",  # assumption: a typical hand-written caller
    ),
}

SOURCE_LIBRARY: dict[str, str] = {
    "web": "analytics.js",
    "ios": "analytics-ios",
    "android": "analytics-android",
    "xamarin": "Analytics.Xamarin",
    "node": "@segment/analytics-node",
    "python": "analytics-python",
    "ruby": "analytics-ruby",
    "go": "analytics-go",
    "java": "analytics-java",
    "php": "analytics-php",
    "dotnet": "Analytics.NET",
    "http": "http",
}
"""Source name (one per library, used in profiles, ledgers and metrics) -> key in LIBRARIES."""

SOURCE_KIND_GROUP: dict[str, str] = {"mobile": "mobile", "web": "web", "server": "server", "http": "server"}
"""Profile group of each library kind: direct HTTP callers count as server traffic (seed figure)."""


def batch_fill_lambda(library: LibraryModel, events_per_second: float) -> float:
    """Mean events queued when `library` flushes, for a sender producing `events_per_second`: the
    Poisson mean of a live batch's size before the `flush_at` cap. A library that flushes as soon
    as its worker wakes (interval 0) holds the event that woke it plus 0.1 s of others."""
    interval = library.flush_interval_s if library.flush_interval_s > 0 else 0.1
    return events_per_second * interval + (1.0 if library.flush_interval_s == 0 else 0.0)
