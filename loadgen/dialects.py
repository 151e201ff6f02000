"""Dialects: which client libraries a run's sources speak as -- Segment's (the default) or RudderStack's.

Every source of a profile keeps its name, kind and share in both dialects; the dialect decides which
real library sends its traffic: endpoints, auth, headers, gzip, batching, retries, message fields,
`context.library` and messageId format. The messageId always carries the harness's UUIDv7 (any
library prefix is ignored by the decoder), so the audit works in every dialect.

Each RudderStack library below says where its facts come from, field by field in comments and in
`EVIDENCE` for the summary:
- `captured`: what the real SDK, installed from PyPI or npm, sent to a loopback capture server
  (tests/sdk do it again on every run and compare with this model);
- `source code`: read from the SDK's public source (rudderlabs/rudder-sdk-*), not run here;
- `assumption`: neither; a plausible value, labelled so it can be checked against a real capture.
"""

from __future__ import annotations

from dataclasses import replace

from loadgen.ids import IdStyle
from loadgen.libraries import LIBRARIES, SOURCE_LIBRARY, Auth, LibraryModel, RetryOn, RetryPolicy

DIALECTS = ("segment", "rudderstack")
DEFAULT_DIALECT = "segment"

_ALL = b'{"All":true}'
_MOBILE_RETRY = RetryPolicy(  # assumption: events stay in the SDK's SQLite queue, retried at the next flush
    max_attempts=10, base_delay=10.0, max_delay=10.0, multiplier=1.0, retry_on=RetryOn.ALL_BUT_4XX
)

RUDDERSTACK_LIBRARIES: dict[str, LibraryModel] = {
    # @rudderstack/analytics-js 3.34.1, run in headless Chromium against the capture server: captured
    "rudder-js": LibraryModel(
        name="RudderLabs JavaScript SDK",  # captured
        version="3.34.1",  # captured (the npm package installed by tests/sdk)
        source_kind="web",
        path="/v1/batch",  # captured from its source: only with the optional batching mode
        short_paths=False,  # captured: POST /v1/track, /v1/page, /v1/identify, /v1/group, /v1/alias
        auth=Auth.BASIC,  # captured: Authorization: Basic base64("<writeKey>:"), no writeKey in the body
        gzip=False,  # captured
        flush_at=1,  # captured: one event per request (XhrQueue)
        flush_interval_s=0.0,
        max_batch_bytes=32 * 1024,  # source code: events over 32 KB are logged, still sent
        id_style=IdStyle.PLAIN,  # captured: a random UUID
        # source code (DEFAULT_RETRY_QUEUE_OPTIONS): 10 attempts, 1 s doubling, at most 360 s
        retry=RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=360.0),
        user_agent="",  # the browser's own
        content_type="application/json;charset=UTF-8",  # captured
        extra_headers={"Accept": "application/json"},  # captured
        anonymous_id_header=True,  # captured: AnonymousId: base64(anonymousId)
        sent_at_header=True,  # captured: SentAt: the body's sentAt
        integrations=_ALL,  # captured
        message_extras=b',"channel":"web"',  # captured
        timestamp_key="originalTimestamp",  # captured
    ),
    # rudder-sdk-android 1.x, from rudderlabs/rudder-sdk-android core/: source code
    "rudder-android": LibraryModel(
        name="com.rudderstack.android.sdk.core",  # source code (RudderLibraryInfo)
        version="1.25.1",  # assumption: a recent 1.x release
        source_kind="mobile",
        path="/v1/batch",  # source code (FlushUtils: "v1/batch")
        auth=Auth.BASIC,  # source code (RudderNetworkManager)
        gzip=True,  # source code: gzip since 1.14.0 (CHANGELOG); on by default: assumption
        flush_at=30,  # source code (Constants.FLUSH_QUEUE_SIZE)
        flush_interval_s=10.0,  # source code (Constants.SLEEP_TIMEOUT)
        max_batch_bytes=500 * 1024,  # assumption: the data plane's limit
        id_style=IdStyle.MS,  # source code (RudderMessage: "%d-%s", currentTimeMillis, UUID)
        retry=_MOBILE_RETRY,
        user_agent="Dalvik/2.1.0 (Linux; U; Android 14)",  # assumption: HttpURLConnection's default
        anonymous_id_header=True,  # source code (RudderNetworkManager: "AnonymousId" header)
        integrations=_ALL,  # assumption
        message_extras=b',"channel":"mobile"',  # source code (RudderMessage.channel)
        timestamp_key="originalTimestamp",  # source code
    ),
    # rudder-sdk-ios 1.x, from rudderlabs/rudder-sdk-ios Sources/: source code
    "rudder-ios": LibraryModel(
        name="rudder-ios-library",  # source code (LibraryInfo)
        version="1.31.0",  # source code (a release seen in rudder-transformer's fixtures)
        source_kind="mobile",
        path="/v1/batch",  # source code (RSNetworkManager: BATCH_ENDPOINT)
        auth=Auth.BASIC,  # source code (authToken)
        gzip=True,  # assumption: as the Android SDK
        flush_at=30,  # source code (RSFlushQueueSize)
        flush_interval_s=10.0,  # source code (RSSleepTimeout)
        max_batch_bytes=500 * 1024,  # source code (MAX_BATCH_SIZE)
        id_style=IdStyle.MS,  # assumption: as the Android SDK
        retry=replace(_MOBILE_RETRY, retry_on=RetryOn.NETWORK_3XX_429_5XX),
        user_agent="",  # NSURLSession's default, set per device
        anonymous_id_header=True,  # source code (anonymousIdToken)
        integrations=_ALL,  # assumption
        message_extras=b',"channel":"mobile"',  # assumption: as the Android SDK
        timestamp_key="originalTimestamp",  # assumption: as the Android SDK
    ),
    # @rudderstack/rudder-sdk-node 3.0.13, run under node against the capture server: captured
    "rudder-node": LibraryModel(
        name="analytics-node",  # captured
        version="3.0.13",  # captured
        source_kind="server",
        path="/v1/batch",  # captured
        auth=Auth.BASIC,  # captured: Basic only, no writeKey in the body
        gzip=True,  # captured: on by default
        flush_at=20,  # source code (flushAt default 20)
        flush_interval_s=10.0,  # source code (flushInterval default 10,000 ms)
        max_batch_bytes=450 * 1024,  # source code (maxQueueSize default 450 KB)
        id_style=IdStyle.PLAIN,  # captured: a random UUID
        # source code: axios-retry, retryCount 3, exponential delay (100 ms doubling, jitter)
        retry=RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=10.0, jitter=0.2),
        user_agent="analytics-node/3.0.13",  # captured
        # captured: axios labels the gzipped JSON Buffer as a form (the data plane does not look)
        content_type="application/x-www-form-urlencoded",
        extra_headers={"Accept": "application/json, text/plain, */*"},  # captured
        integrations=None,  # captured: no integrations key
        message_extras=b',"channel":"server","_metadata":{"nodeVersion":"20.20.2"}',  # captured
        timestamp_key="originalTimestamp",  # captured
        batch_timestamp=True,  # captured: {"batch": [...], "timestamp": ..., "sentAt": ...}
    ),
    # rudder-sdk-python 2.1.9 (import rudderstack.analytics), run against the capture server: captured
    "rudder-python": LibraryModel(
        name="analytics-python",  # captured (the SDK reports Segment's name)
        version="2.1.9",  # captured
        source_kind="server",
        path="/v1/batch",  # captured
        auth=Auth.BASIC,  # captured: Basic only
        gzip=True,  # captured: on by default
        flush_at=100,  # source code (upload_size 100)
        flush_interval_s=0.5,  # source code (upload_interval 0.5)
        max_batch_bytes=475_000,  # assumption: its own cap is 4 MB; kept under the data plane's
        id_style=IdStyle.PLAIN,  # captured
        # source code: backoff.expo, max_tries = retries + 1 = 11; full jitter: assumption
        retry=RetryPolicy(max_attempts=11, base_delay=1.0, max_delay=60.0, jitter=1.0),
        user_agent="analytics-python/2.1.9",  # captured
        extra_headers={"Accept": "*/*"},  # captured (requests' default)
        integrations=_ALL,  # captured
        message_extras=b',"channel":"server"',  # captured
    ),
    # rudder-sdk-ruby 3.2.1, from rudderlabs/rudder-sdk-ruby lib/: source code
    "rudder-ruby": LibraryModel(
        name="rudderanalytics-ruby",  # source code (FieldParser.add_context!)
        version="3.2.1",  # source code (version.rb)
        source_kind="server",
        path="/v1/batch",  # source code (Defaults::Request::PATH)
        auth=Auth.BASIC,  # source code (basic_auth(write_key, nil))
        gzip=True,  # source code (config.gzip defaults to true)
        flush_at=100,  # source code (MessageBatch::MAX_SIZE)
        flush_interval_s=0.0,
        max_batch_bytes=512_000,  # source code
        id_style=IdStyle.PLAIN,  # source code (uid: a UUID)
        retry=RetryPolicy(max_attempts=11, base_delay=0.1, max_delay=10.0, multiplier=1.5, jitter=0.5),
        user_agent="rudderanalytics-ruby/3.2.1",  # source code
        extra_headers={"Accept": "application/json"},  # source code
        integrations=_ALL,  # source code
        message_extras=b',"channel":"server"',  # source code
    ),
    # rudderlabs/analytics-go (v4): source code for name and batching, the rest assumption
    "rudder-go": LibraryModel(
        name="analytics-go",  # source code (makeConfig)
        version="4.2.1",  # assumption
        source_kind="server",
        path="/v1/batch",  # assumption: RudderStack's HTTP API batch endpoint
        auth=Auth.BASIC,  # assumption: as Segment's analytics-go, which it forks
        gzip=False,  # assumption
        flush_at=250,  # source code (DefaultBatchSize)
        flush_interval_s=5.0,  # source code (DefaultInterval)
        max_batch_bytes=500_000,  # source code (the 500 KB note)
        id_style=IdStyle.PLAIN,  # source code (uid: uuid.NewRandom)
        # assumption: backo's defaults, any non-2xx retried as in Segment's analytics-go
        retry=RetryPolicy(
            max_attempts=10, base_delay=0.1, max_delay=10.0, jitter=0.5, retry_on=RetryOn.ANY_NON_2XX
        ),
        user_agent="analytics-go (version: 4.2.1)",  # assumption
        integrations=_ALL,  # assumption
        message_extras=b',"channel":"server"',  # assumption
    ),
    # rudderlabs/rudder-sdk-java (a fork of analytics-java): source code for the request, the rest assumption
    "rudder-java": LibraryModel(
        name="analytics-java",  # assumption: the fork keeps its parent's name
        version="3.1.3",  # assumption
        source_kind="server",
        path="/v1/batch",  # assumption: RudderStack's HTTP API batch endpoint
        auth=Auth.BASIC,  # assumption
        gzip=False,  # assumption
        flush_at=250,  # assumption: as analytics-java
        flush_interval_s=10.0,  # assumption
        max_batch_bytes=500 * 1024,  # assumption
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=60.0, jitter=0.5),  # assumption
        user_agent="analytics-java/3.1.3",  # assumption
        content_type="application/json",  # source code (RudderService @Headers)
        integrations=_ALL,  # assumption
        message_extras=b',"channel":"server"',  # assumption
    ),
    # rudderlabs/rudder-php-sdk: source code for the library name and channel, the rest assumption
    "rudder-php": LibraryModel(
        name="rudder-analytics-php",  # source code (tests' fixtures)
        version="2.1.0",  # assumption
        source_kind="server",
        path="/v1/batch",  # assumption
        auth=Auth.BASIC,  # assumption
        gzip=False,  # assumption: compress_request is opt-in, as in analytics-php
        flush_at=100,  # assumption
        flush_interval_s=0.0,  # flushes at the end of the PHP request
        max_batch_bytes=512_000,  # assumption
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(max_attempts=8, base_delay=0.1, max_delay=10.0),  # assumption
        user_agent="rudder-analytics-php/2.1.0",  # assumption
        integrations=_ALL,  # assumption
        message_extras=b',"channel":"server"',  # source code (tests' fixtures)
    ),
    # RudderStack .NET SDK (RudderAnalytics on NuGet): gzip on from 2.0.0 (its README), the rest assumption
    "rudder-dotnet": LibraryModel(
        name="RudderAnalytics.NET",  # assumption
        version="2.0.0",  # source code (README: latest version)
        source_kind="server",
        path="/v1/batch",  # assumption
        auth=Auth.BASIC,  # assumption
        gzip=True,  # source code (README: gzip enabled by default from 2.0.0)
        flush_at=20,  # assumption: as Analytics.NET, which it forks
        flush_interval_s=10.0,  # assumption
        max_batch_bytes=500 * 1024,  # assumption
        id_style=IdStyle.PLAIN,
        retry=RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=10.0),  # assumption
        user_agent="RudderAnalytics.NET/2.0.0",  # assumption
        integrations=_ALL,  # assumption
        message_extras=b',"channel":"server"',  # assumption
    ),
    # direct HTTP callers following RudderStack's HTTP API docs: assumption
    "rudder-http": replace(LIBRARIES["http"], auth=Auth.BASIC),  # Basic auth only (the data plane's rule)
}

_RUDDERSTACK_SOURCES = {
    "web": "rudder-js",
    "ios": "rudder-ios",
    "android": "rudder-android",
    # assumption: RudderStack has no Xamarin SDK; cross-platform apps (React Native, Flutter) post
    # through the native Android SDK, so this share sends what that SDK sends
    "xamarin": "rudder-android",
    "node": "rudder-node",
    "python": "rudder-python",
    "ruby": "rudder-ruby",
    "go": "rudder-go",
    "java": "rudder-java",
    "php": "rudder-php",
    "dotnet": "rudder-dotnet",
    "http": "rudder-http",
}

EVIDENCE: dict[str, str] = {
    "rudder-js": "captured (headless Chromium)",
    "rudder-android": "source code",
    "rudder-ios": "source code + assumption",
    "rudder-node": "captured",
    "rudder-python": "captured",
    "rudder-ruby": "source code",
    "rudder-go": "source code + assumption",
    "rudder-java": "assumption",
    "rudder-php": "source code + assumption",
    "rudder-dotnet": "source code (README) + assumption",
    "rudder-http": "assumption",
}
"""How the facts of each RudderStack library model were learned (its comments say which field how)."""

HTTP_AUTH_SHARES: dict[str, tuple[tuple[Auth, float], ...]] = {
    # assumption: how direct HTTP callers authenticate, by what the target's docs tell them
    "segment": ((Auth.BASIC, 0.60), (Auth.BODY, 0.25), (Auth.BEARER_AND_BODY, 0.15)),
    "rudderstack": ((Auth.BASIC, 1.0),),
}


def check_dialect(dialect: str) -> str:
    """`dialect` itself, or ValueError naming the known ones."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    return dialect


def library_key(dialect: str, source: str) -> str:
    """The key of the library that sends `source`'s traffic in `dialect` (LIBRARIES or RUDDERSTACK_LIBRARIES)."""
    table = SOURCE_LIBRARY if check_dialect(dialect) == "segment" else _RUDDERSTACK_SOURCES
    try:
        return table[source]
    except KeyError:
        raise KeyError(f"unknown source {source!r}; known: {', '.join(table)}") from None


def library_for(dialect: str, source: str) -> LibraryModel:
    """The library model that sends `source`'s traffic in `dialect`."""
    key = library_key(dialect, source)
    return LIBRARIES[key] if dialect == "segment" else RUDDERSTACK_LIBRARIES[key]
