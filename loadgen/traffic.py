"""The traffic generator: realistic requests from every source of a profile, built fast.

`TrafficGenerator.next_request(source)` returns one ready-to-send request (body encoded, gzipped where
the library gzips) as the source's client library would send it: its path, headers, auth, batch
size and messageId format, messages from the source's own users in believable sessions. It may
instead hand out a due duplicate re-send, a bad-input case or a replay batch, per the profile.

The per-message work is one join of pre-encoded byte strings (event bodies encoded at start-up,
per-user ids and context encoded once, the most active users' at start-up, messageId halves and
timestamps from caches) with random choices drawn from numpy in bulk. What every request of one
millisecond shares (the UUID's first half, sentAt, a body's closing bytes) is built once per
millisecond. Each source kind has its own request builder (a browser's single event, a device's
queued batch, a server's or HTTP caller's batch; `build_messages` is the general one, for batches
that may reach the size cap, replays and bad inputs), and requests are made by `_event_request`,
so a request costs a few Python calls; see bench/generator.py for the figures.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import orjson

from loadgen.bad_inputs import CASES, basic_auth, build_bad_request
from loadgen.dialects import HTTP_AUTH_SHARES, library_for
from loadgen.encoding import MS3, IdEncoder, TimestampCache, gzip_bytes, gzip_function
from loadgen.events import CATALOGS, PAGES, SCREENS
from loadgen.ids import IdStyle
from loadgen.libraries import Auth, LibraryModel
from loadgen.limits import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from loadgen.population import BROWSER_AGENTS, Population
from loadgen.profile import Profile
from loadgen.resends import DuplicatePlan

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
IDENTIFY, TRACK, PAGE, SCREEN, GROUP, ALIAS = range(6)
_ONE_CALL_TYPE = tuple((t,) for t in range(len(CALL_TYPES)))  # a browser request's one message, shared
HTTP_SINGLE_CALL_SHARE = 0.7  # assumption: most direct HTTP callers post one call to /v1/<type>
SESSIONS_PER_CATALOG = 256
_NO_SESSION: Iterator[tuple[bytes, bytes]] = iter(())
_BUFFER = 8192
_WARM_USERS = 8192  # per source: the most active users' ids and context are encoded at start-up
_BATCH_GUARD = MAX_MESSAGE_BYTES + 1024  # room left under the batch cap before adding a message
_MESSAGE_BYTES_ESTIMATE = 4096  # above any pooled message; smaller batches skip the size check


@dataclass(slots=True)
class PreparedRequest:
    """One HTTP request ready to send, and what the harness needs to account for its messages.

    For `expected_status` 400 or 401 every seq in `seqs` is rejected; for 200, `rejected_seqs` are
    the items a correct API rejects inside an otherwise valid batch.
    """

    source: str
    library: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    seqs: range | list[int]
    message_count: int
    sent_ms: int
    kind: str = "event"  # "event" | "duplicate" | "replay" | "bad"
    bad_case: str | None = None
    expected_status: int = 200
    rejected_seqs: list[int] = field(default_factory=list)
    messages: list[bytes] | None = field(default=None, repr=False)  # each message's JSON (duplicate plan)
    retry_count_header: str | None = field(default=None, repr=False)
    call_types: Sequence[int] = field(default=(), repr=False)  # CALL_TYPES index of each new message

    def for_retry(self, attempt: int) -> PreparedRequest:
        """The same body (same messageIds) as the library re-sends it on retry number `attempt`."""
        headers = dict(self.headers)
        if self.retry_count_header:
            headers[self.retry_count_header] = str(attempt)
        return replace(self, headers=headers)


_new_object = object.__new__


def _event_request(source: str, library: str, path: str, headers: dict[str, str], body: bytes, seqs: range,
                   message_count: int, sent_ms: int, messages: list[bytes], retry_count_header: str | None,
                   call_types: Sequence[int]) -> PreparedRequest:  # fmt: skip
    """`PreparedRequest(source, library, "POST", path, ...)` for live events, without calling the class.

    Python 3.11 runs a class's `__init__` through C in a fresh interpreter frame; a plain function
    call stays in the interpreter loop, which makes a browser request's object a third cheaper.
    tests/loadgen check that this sets every field as the class does.
    """
    request = _new_object(PreparedRequest)
    request.source = source
    request.library = library
    request.method = "POST"
    request.path = path
    request.headers = headers
    request.body = body
    request.seqs = seqs
    request.message_count = message_count
    request.sent_ms = sent_ms
    request.kind = "event"
    request.bad_case = None
    request.expected_status = 200
    request.rejected_seqs = []
    request.messages = messages
    request.retry_count_header = retry_count_header
    request.call_types = call_types
    return request


class _EventPool:
    """Sessions of one source kind, each event encoded once: head bytes and (browser) page bytes.

    A browser event's tail is its page, closing the context, then integrations; the builder adds the
    message's closing brace, or in a request body sentAt and writeKey before it. Other kinds' user
    tails close the message themselves (see Population.tail).
    """

    def __init__(self, kind: str, profile: Profile, seed: int, end: bytes = b',"integrations":{}') -> None:
        """`end`: what closes a browser message after its context (its library's integrations, fields)."""
        rng = random.Random(f"{seed}:{kind}:events")
        self.heads: list[bytes] = []
        self.tails: list[bytes] = []
        self.sessions: dict[str, list[list[int]]] = {}
        self.events: dict[str, list[tuple[tuple[bytes, bytes], ...]]] = {}
        """Per catalog, each session's events as (head, tail) pairs: what a session cursor walks."""
        web = kind == "web"
        for catalog_name, share in profile.events.get(kind, {}).items():
            if not share:
                continue
            scripts = []
            for _ in range(SESSIONS_PER_CATALOG):
                script = []
                for event in CATALOGS[catalog_name].make_session(rng, profile.funnel):
                    script.append(len(self.heads))
                    head = orjson.dumps(
                        {"type": "track", "event": event.name, "properties": event.properties}
                    )
                    self.heads.append(head[:-1])
                    self.tails.append(page_tail(event.page or PAGES[0], end) if web else b"")
                scripts.append(script)
            self.sessions[catalog_name] = scripts
            self.events[catalog_name] = [
                tuple((self.heads[i], self.tails[i]) for i in script) for script in scripts
            ]
        self.catalogs = [c for c, s in profile.events.get(kind, {}).items() if s]
        weights = np.array([profile.events[kind][c] for c in self.catalogs]) if self.catalogs else np.ones(1)
        mean_len = (
            np.array([np.mean([len(s) for s in self.sessions[c]]) for c in self.catalogs])
            if self.catalogs
            else 1
        )
        # a catalog's share is of events: pick sessions in proportion to share / session length
        session_weights = weights / mean_len
        self.catalog_p = session_weights / session_weights.sum()
        self.catalog_cdf = categorical_cdf(self.catalog_p)
        self.page_heads = [
            orjson.dumps({"type": "page", "name": p["title"], "properties": p})[:-1] for p in PAGES
        ]
        self.page_tails = [
            page_tail(p, end) if web else b"" for p in PAGES
        ]  # a server's page call: no context.page
        self.account_tail = page_tail(_ACCOUNT_PAGE, end)  # a browser's identify, group and alias
        self.screen_heads = [
            orjson.dumps({"type": "screen", "name": s, "properties": {}})[:-1] for s in SCREENS
        ]


def categorical_cdf(p: np.ndarray) -> np.ndarray:
    """The cumulative distribution `Generator.choice(len(p), p=p)` draws from."""
    cdf = np.asarray(p, dtype=np.float64).cumsum()
    cdf /= cdf[-1]
    return cdf


def categorical(rng: np.random.Generator, cdf: np.ndarray, size: int) -> np.ndarray:
    """`rng.choice(len(cdf), size, p=p)` for a few categories: the same uniform draws and the same
    answers (searchsorted, side right, counts the edges at or below each draw), a few times faster
    because it compares against each edge instead of searching per draw."""
    uniform = rng.random(size)
    out = np.zeros(size, dtype=np.int64)
    for edge in cdf[:-1].tolist():
        out += uniform >= edge
    return out


def page_tail(page: Mapping[str, str], end: bytes = b',"integrations":{}') -> bytes:
    """The browser message's end: the page object closing its context, then integrations (`end`)."""
    return orjson.dumps(page) + b"}" + end


_MS3Q = [milli + b'"' for milli in MS3]  # a timestamp's milliseconds, Z and closing quote
_ACCOUNT_PAGE = {"path": "/account", "referrer": "", "search": "", "title": "Your account",
                 "url": "https://www.example-shop.com/account"}  # fmt: skip


class _Source:
    """One source (one client library) of one stream: its users, randomness and request shape."""

    def __init__(self, gen: TrafficGenerator, name: str, index: int, share: float, write_key: str) -> None:
        profile = gen.profile
        self.gen = gen
        self.name = name
        self.library: LibraryModel = library_for(profile.dialect, name)
        lib = self.library
        self.kind = lib.source_kind
        self.web = self.kind == "web"
        self.per_message_users = self.kind in ("server", "http")
        self.write_key = write_key
        self.rng = np.random.default_rng([gen.seed, gen.stream, index, 0x5EED])
        self.r = random.Random(f"{gen.seed}:{gen.stream}:{name}")
        users = max(100, round(profile.users * share))
        self.pop = Population(lib, count=users, zipf_exponent=profile.zipf_exponent,
                              identified_at_start=profile.identified_at_start[self.kind], seed=gen.seed,
                              stream=gen.stream, source_index=index)  # fmt: skip
        self.pop.warm(_WARM_USERS)
        self.events = gen.event_pool(self.kind)
        mix = profile.call_types[self.kind]
        self.type_p = np.array([mix.get(t, 0.0) for t in CALL_TYPES])
        self.type_cdf = categorical_cdf(self.type_p)
        self.rate = profile.sender_events_per_second[self.kind]
        interval = lib.flush_interval_s if lib.flush_interval_s > 0 else 0.1
        self.fill_lambda = self.rate * interval + (1.0 if lib.flush_interval_s == 0 else 0.0)
        self.batch_guard = min(lib.max_batch_bytes, MAX_BATCH_BYTES) - _BATCH_GUARD
        self.cursors: dict[int, Iterator[tuple[bytes, bytes]]] = {}
        self.identify_heads: dict[int, bytes] = {}
        self.headers_by_auth = {auth: self._headers(auth) for auth in Auth}
        self.shapes = {auth: (self.headers_by_auth[auth], self.body_key(auth, write_key)) for auth in Auth}
        self.agent_per_user = self.web or lib.apple or lib.anonymous_id_header
        self.auth_shares = HTTP_AUTH_SHARES[profile.dialect]
        self.single_paths = tuple(lib.single_path(t) for t in CALL_TYPES)
        self.agent_headers: dict[tuple[Auth, str], dict[str, str]] = {}
        self.single_calls = self.web or self.kind == "http"
        self.batches = lib.batches
        self.batch_path = lib.path if lib.batches else "/v1/batch"
        self.gzip_level = profile.gzip_level
        self.gzip_engine = profile.gzip_engine
        self.gzip = gzip_function(profile.gzip_level, profile.gzip_engine)
        self.group_heads: dict[int, bytes] = {}
        self.alias_heads: dict[int, bytes] = {}
        self.offsets: dict[
            tuple[int, float], list[int]
        ] = {}  # see build_messages  # a known user's alias (from the email)
        self.scripts = [self.events.events[catalog] for catalog in self.events.catalogs]
        self.id_prefixed = lib.id_style is not IdStyle.PLAIN
        self.id_opening = b',"messageId":"' + lib.id_style.prefix_format()
        self.close_start = b',"sentAt":"' if self.web else b'],"sentAt":"'
        self.close_end = b'"' + self.shapes[lib.auth][1] + b"}"
        self.batch_timestamp = lib.batch_timestamp
        self.ids = gen.id_encoder(lib.timestamp_key)
        self.per_request_headers = lib.anonymous_id_header or lib.sent_at_header
        self.anonymous_id_headers: dict[int, str] = {}
        self.stamps = gen.timestamps.stamps  # cleared in place when full, never replaced
        self.event_headers = self.headers_by_auth[lib.auth]
        self.retry_count_header = lib.retry.retry_count_header
        self.user_headers: dict[int, dict[str, str]] = {}
        self.last_ms = -1
        self.last_id_open = self.last_close = b""
        self.seconds, self.second = gen.timestamps.seconds, gen.timestamps.second  # seconds: cleared in place
        self.offline_share = profile.mobile_offline_share
        self.offline_low, self.offline_high = profile.mobile_offline_delay_hours
        self.timing = [self.batch_timing(count) for count in range(lib.flush_at + 1)] if lib.batches else []
        self.unguarded = self.batch_guard // _MESSAGE_BYTES_ESTIMATE  # larger batches may reach the cap
        self.live_messages = self.device_messages if self.kind == "mobile" else self.caller_messages
        if self.web:  # one header set per browser the population uses
            self.browser_headers = [
                dict(self.headers_by_auth[lib.auth], **{"User-Agent": agent}) for agent in BROWSER_AGENTS
            ]
            self.headers_of_user = [self.browser_headers[agent] for agent in self.pop.agent_index]
            self.page_parts = list(zip(self.events.page_heads, self.events.page_tails, strict=True))
            self.event_request: Callable[[int], PreparedRequest] = self.browser_request
        elif self.kind == "http":
            self.event_request = self.http_request
        else:
            self.event_request = self.batch_request
        self._refill()

    # request shape -----------------------------------------------------------------------------

    def _headers(self, auth: Auth) -> dict[str, str]:
        lib = self.library
        headers = {"Content-Type": lib.content_type}
        if lib.gzip:
            headers["Content-Encoding"] = "gzip"
        if auth in (Auth.BASIC, Auth.BASIC_AND_BODY):
            headers["Authorization"] = basic_auth(self.write_key)
        elif auth is Auth.BEARER_AND_BODY:
            token = hashlib.blake2b(f"{self.write_key}:{self.gen.seed}".encode(), digest_size=24).digest()
            headers["Authorization"] = "Bearer " + base64.urlsafe_b64encode(token).decode("ascii")
        if lib.user_agent:
            headers["User-Agent"] = lib.user_agent
        if self.web:
            headers["Origin"] = "https://www.example-shop.com"
            headers["Accept"] = "*/*"
        elif self.kind == "server" and lib.name == "analytics-ruby":
            headers["Accept"] = "application/json"
        headers.update(lib.extra_headers)
        return headers

    def _add_rudder_headers(self, headers: dict[str, str], user: int, sent_at: bytes | None) -> None:
        """RudderStack's per-request headers: `AnonymousId` (base64 of the user's) and `SentAt` (the body's)."""
        lib = self.library
        if lib.anonymous_id_header:
            value = self.anonymous_id_headers.get(user)
            if value is None:
                value = base64.b64encode(self.pop.anonymous_id(user).encode()).decode("ascii")
                self.anonymous_id_headers[user] = value
            headers["AnonymousId"] = value
        if lib.sent_at_header and sent_at is not None:
            headers["SentAt"] = sent_at.decode("ascii")

    @staticmethod
    def body_key(auth: Auth, write_key: str) -> bytes:
        if auth in (Auth.BODY, Auth.BASIC_AND_BODY, Auth.BEARER_AND_BODY):
            return b',"writeKey":' + orjson.dumps(write_key)
        return b""

    def pick_auth(self) -> Auth:
        if self.kind != "http":
            return self.library.auth
        roll = self.r.random()
        for auth, share in self.auth_shares:
            if roll < share:
                return auth
            roll -= share
        return self.auth_shares[-1][0]

    # random draws in bulk ----------------------------------------------------------------------

    def _refill(self) -> None:
        rng = self.rng
        self.types = categorical(rng, self.type_cdf, _BUFFER).tolist()
        self.users = self.pop.users_at(rng.random(_BUFFER)).tolist()
        # read once per session start: a memoryview hands out those few as ints, no list of 8,192
        self.catalog_draws = memoryview(categorical(rng, self.events.catalog_cdf, _BUFFER))
        picks = rng.integers(0, 1 << 30, size=_BUFFER)
        if self.web:  # the browser reads a pick only when a session starts; its lag and page come from it
            self.picks: Sequence[int] = memoryview(picks)
            self.event_lags = (2 + picks % 40).tolist()  # ms before sending, as build_messages draws it
            self.page_picks = (picks % len(self.events.page_heads)).tolist()
        else:
            self.picks = picks.tolist()
        lib = self.library
        if lib.batches:
            counts = np.clip(rng.poisson(self.fill_lambda, size=_BUFFER), 1, lib.flush_at)
            if self.kind == "http":
                counts[rng.random(_BUFFER) < HTTP_SINGLE_CALL_SHARE] = 1
            self.counts = counts.tolist()
        else:
            self.counts = [1] * _BUFFER
        self.pos = 0

    def mean_count(self) -> float:
        lib = self.library
        if not lib.batches:
            return 1.0
        rng = np.random.default_rng(12345)
        batch = float(np.clip(rng.poisson(self.fill_lambda, size=50_000), 1, lib.flush_at).mean())
        if self.kind == "http":
            return HTTP_SINGLE_CALL_SHARE + (1 - HTTP_SINGLE_CALL_SHARE) * batch
        return batch

    # messages ----------------------------------------------------------------------------------

    def build_messages(
        self,
        count: int,
        sent_ms: int,
        end_ms: int,
        step_ms: float,
        per_message_users: bool,
        bulk: bool = False,
    ) -> tuple[list[bytes], int, int, list[int]]:
        """`count` messages (fewer if the batch cap is reached): (messages, first seq, user, types).

        Message i's event time is end_ms - step_ms * (count - 1 - i): queued events, oldest first.
        This loop is the generator's hot path: it only joins six pre-encoded byte strings a message
        (event head, id opening, seq half with the timestamp key, timestamp, user tail, event tail).
        """
        gen = self.gen
        pop = self.pop
        events = self.events
        stamps = self.stamps
        stamp = gen.timestamps.stamp
        start = gen.next_seq
        id_parts = self.ids.tails(start, count)
        if sent_ms != self.last_ms:
            self._at_ms(sent_ms)
        id_open = self.last_id_open
        if self.pos + count + 1 > _BUFFER:
            self._refill()
        pos = self.pos
        self.pos = pos + count
        types, users, picks = self.types, self.users, self.picks
        cursors = self.cursors
        user = users[pos]
        user_tails = pop.tails
        tail = user_tails.get(user) or pop.tail(user)
        messages: list[bytes] = []
        append = messages.append
        join = b"".join
        size = 0
        guard = MAX_BATCH_BYTES - _BATCH_GUARD if bulk else self.batch_guard
        guarded = count * _MESSAGE_BYTES_ESTIMATE > guard
        page_heads, page_tails, screen_heads = events.page_heads, events.page_tails, events.screen_heads
        identity_tail = events.account_tail if self.web else b""
        brace = b"}" if self.web else b""  # a browser event's tail leaves the message open
        last = count - 1
        # each message's distance back from end_ms; a full batch's step depends on its size alone
        back = self.offsets.get((count, step_ms))
        if back is None:
            if len(self.offsets) > 1024:
                self.offsets.clear()
            back = self.offsets[(count, step_ms)] = [int(step_ms * k) for k in range(last, -1, -1)]
        if step_ms >= 1.0:  # events seconds apart (mobile queues, replay): a cache would rarely hit
            seconds, second, ms3q = gen.timestamps.seconds, gen.timestamps.second, _MS3Q
            when = [
                (seconds.get(sec := (ms := end_ms - off) // 1000) or second(sec)) + ms3q[ms % 1000]
                for off in back
            ]
        else:
            when = [stamps.get(ms) or stamp(ms) for ms in [end_ms - off for off in back]]
        n_screens, n_pages = len(screen_heads), len(page_heads)
        end = pos + count
        for t, each_user, pick, id_part, at in zip(
            types[pos:end], users[pos:end], picks[pos:end], id_parts, when, strict=True
        ):
            if per_message_users:
                user = each_user
                tail = user_tails.get(user) or pop.tail(user)
            if t == TRACK:  # the user's session goes on, or a new one starts
                head, etail = next(cursors.get(user, _NO_SESSION), None) or self._new_session(user, pick)
            elif t == SCREEN:
                head, etail = screen_heads[pick % n_screens], b""
            elif t == PAGE:
                k = pick % n_pages
                head, etail = page_heads[k], page_tails[k]
            else:
                head = self._identity_call(t, user)
                etail = identity_tail
                tail = user_tails.get(user) or pop.tail(user)  # logging in drops the cached tail
            message = join((head, id_open, id_part, at, tail, etail, brace))
            append(message)
            if guarded:
                size += len(message) + 1
                if size > guard:
                    break
        kinds = types[pos : pos + len(messages)]
        gen.next_seq = start + len(messages)
        return messages, start, user, kinds

    def _new_session(self, user: int, pick: int) -> tuple[bytes, bytes]:
        """Start the user's next session; its first event's (head, tail)."""
        scripts = self.scripts[self.catalog_draws[pick % _BUFFER]]
        cursor = iter(scripts[(pick >> 13) % len(scripts)])
        self.cursors[user] = cursor
        return next(cursor)

    def _identity_call(self, t: int, user: int) -> bytes:
        pop = self.pop
        if t == IDENTIFY:
            if not pop.identified[user]:
                pop.log_in(user)
            head = self.identify_heads.get(user)
            if head is None:
                head = orjson.dumps({"type": "identify", "traits": pop.traits(user)})[:-1]
                self.identify_heads[user] = head
            return head
        if t == GROUP:
            head = self.group_heads.get(user)
            if head is None:
                group_id, traits = pop.group(user)
                head = orjson.dumps({"type": "group", "groupId": group_id, "traits": traits})[:-1]
                self.group_heads[user] = head
            return head
        # alias: an anonymous visitor who registers links the anonymousId; a known user an old id
        if pop.log_in(user):
            return orjson.dumps({"type": "alias", "previousId": pop.anonymous_id(user)})[:-1]
        head = self.alias_heads.get(user)
        if head is None:
            head = self.alias_heads[user] = orjson.dumps({"type": "alias", "previousId": pop.email(user)})[
                :-1
            ]
        return head

    # timing --------------------------------------------------------------------------------------

    def batch_timing(self, count: int) -> tuple[float, float, list[int]]:
        """For a live batch of `count` events: (the draw's multiplier giving how long before sending
        the last event happened, ms between events, each event's ms before the last)."""
        lib = self.library
        if self.kind == "mobile":
            span = min(lib.flush_interval_s, count * self.gen.profile.mobile_event_gap_seconds) * 1000.0
            mult = 300.0 if count >= lib.flush_at else max(0.0, lib.flush_interval_s * 1000 - span)
        else:
            span = min(max(lib.flush_interval_s, 0.1), count / self.rate) * 1000.0 if count else 0.0
            mult = 50.0
        step = span / count if count else 0.0
        return mult, step, [int(step * k) for k in range(count - 1, -1, -1)]

    def live_event_times(self, sent_ms: int, count: int) -> tuple[int, float]:
        """(end_ms, step_ms) for a request sent now: queued events spread back over the flush window."""
        r = self.r.random()
        if not self.batches:
            return sent_ms - 2 - int(r * 40), 0.0
        mult, step, _ = self.timing[count]
        last = r * mult
        if self.kind == "mobile" and self.r.random() < self.offline_share:
            last += self.r.uniform(self.offline_low, self.offline_high) * 3_600_000
        return sent_ms - int(last), step

    # requests ----------------------------------------------------------------------------------

    def _at_ms(self, sent_ms: int) -> None:
        """Cache what this source's requests built in one millisecond share: id opening, body close."""
        gen = self.gen
        if gen.ms != sent_ms:
            gen.at_ms(sent_ms)
        self.last_ms = sent_ms
        opening = self.id_opening
        self.last_id_open = (opening % sent_ms if self.id_prefixed else opening) + gen.ms_half
        self.last_close = self.close_start + gen.sent_at + self.close_end
        if self.batch_timestamp and not self.web:  # the batch's own `timestamp` (rudder-sdk-node)
            self.last_close = b'],"timestamp":"' + gen.sent_at + b'"' + self.last_close[1:]

    def batch_request(self, sent_ms: int) -> PreparedRequest:
        """Live events of a batching library (mobile, server) as one POST of its batch endpoint."""
        pos = self.pos
        if pos >= _BUFFER:
            self._refill()
        count = self.counts[self.pos]
        if count > self.unguarded:  # a batch that may reach the size cap: the general path measures it
            end_ms, step_ms = self.live_event_times(sent_ms, count)
            messages, start, user, kinds = self.build_messages(
                count, sent_ms, end_ms, step_ms, self.per_message_users
            )
        else:
            messages, start, user, kinds = self.live_messages(count, sent_ms)
        body = b"".join((b'{"batch":[', b",".join(messages), self.last_close))  # set by the builder
        if self.library.gzip:
            body = self.gzip(body)
        headers = self.user_headers.get(user) if self.agent_per_user else self.event_headers
        if headers is None:
            headers = self.agent_headers_for(self.library.auth, user, False)
            if self.per_request_headers:  # a device's own AnonymousId on each of its batches (no SentAt:
                headers = dict(headers)  # only the browser SDK, which sends no batches here, writes one)
                self._add_rudder_headers(headers, user, None)
            self.user_headers[user] = headers
        n = len(messages)
        return _event_request(
            self.name,
            self.library.name,
            self.batch_path,
            headers.copy(),
            body,
            range(start, start + n),
            n,
            sent_ms,
            messages,
            self.retry_count_header,
            kinds,
        )

    def http_request(self, sent_ms: int) -> PreparedRequest:
        """Live events of a direct HTTP API caller: a single call or a batch, with its own auth."""
        if self.pos >= _BUFFER:
            self._refill()
        count = self.counts[self.pos]
        if count > self.unguarded:
            end_ms, step_ms = self.live_event_times(sent_ms, count)
            messages, start, user, kinds = self.build_messages(count, sent_ms, end_ms, step_ms, True)
        else:
            messages, start, user, kinds = self.live_messages(count, sent_ms)
        path, headers, body = self.assemble(messages, kinds, user, sent_ms)
        n = len(messages)
        return _event_request(
            self.name,
            self.library.name,
            path,
            headers,
            body,
            range(start, start + n),
            n,
            sent_ms,
            messages,
            self.retry_count_header,
            kinds,
        )

    def device_messages(self, count: int, sent_ms: int) -> tuple[list[bytes], int, int, list[int]]:
        """`build_messages` for a mobile batch under the size cap: one device's queued events.

        The same messages, written out for the one case most messages take: one user, so one
        tail and one session cursor for the whole batch, and event times from the batch size's table.
        """
        mult, _, back = self.timing[count]
        r = self.r
        last = r.random() * mult
        if r.random() < self.offline_share:
            last += r.uniform(self.offline_low, self.offline_high) * 3_600_000
        end_ms = sent_ms - int(last)
        start, id_parts, id_open, pos, end = self._claim(count, sent_ms)
        user = self.users[pos]
        pop = self.pop
        tail = pop.tails.get(user) or pop.tail(user)
        cursor = self.cursors.get(user, _NO_SESSION)
        seconds, second = self.seconds, self.second
        screen_heads, page_heads = self.events.screen_heads, self.events.page_heads
        n_screens = len(screen_heads)
        kinds = self.types[pos:end]
        messages: list[bytes] = []
        append = messages.append
        join = b"".join
        for t, pick, id_part, back_ms in zip(kinds, self.picks[pos:end], id_parts, back, strict=True):
            if t == TRACK:  # the device's session goes on, or a new one starts
                event = next(cursor, None)
                if event is None:
                    event = self._new_session(user, pick)
                    cursor = self.cursors[user]
                head = event[0]
            elif t == SCREEN:
                head = screen_heads[pick % n_screens]
            elif t == PAGE:  # profile files give mobile no page calls; a Profile built in code may
                head = page_heads[pick % len(page_heads)]
            else:
                head = self._identity_call(t, user)
                tail = pop.tails.get(user) or pop.tail(user)  # logging in drops the cached tail
            ms = end_ms - back_ms
            sec = ms // 1000
            append(join((head, id_open, id_part, seconds.get(sec) or second(sec), _MS3Q[ms % 1000], tail)))
        return messages, start, user, kinds

    def _claim(self, count: int, sent_ms: int) -> tuple[int, Sequence[bytes], bytes, int, int]:
        """Seqs, id halves and buffer rows for a live batch: (first seq, id parts, id opening, pos, end)."""
        gen = self.gen
        start = gen.next_seq
        gen.next_seq = start + count
        id_parts = self.ids.tails(start, count)
        if sent_ms != self.last_ms:
            self._at_ms(sent_ms)
        pos = self.pos
        if pos + count + 1 > _BUFFER:
            self._refill()
            pos = 0
        end = self.pos = pos + count
        return start, id_parts, self.last_id_open, pos, end

    def caller_messages(self, count: int, sent_ms: int) -> tuple[list[bytes], int, int, list[int]]:
        """`build_messages` for a server or HTTP batch under the size cap: each message its own user."""
        mult, _, back = self.timing[count]
        end_ms = sent_ms - int(self.r.random() * mult)
        start, id_parts, id_open, pos, end = self._claim(count, sent_ms)
        pop = self.pop
        tails = pop.tails
        cursors = self.cursors
        seconds, second = self.seconds, self.second
        events = self.events
        screen_heads, page_heads = events.screen_heads, events.page_heads
        n_screens, n_pages = len(screen_heads), len(page_heads)
        kinds = self.types[pos:end]
        messages: list[bytes] = []
        append = messages.append
        join = b"".join
        user = 0
        for t, user, pick, id_part, back_ms in zip(
            kinds, self.users[pos:end], self.picks[pos:end], id_parts, back, strict=True
        ):
            if t == TRACK:
                head = (next(cursors.get(user, _NO_SESSION), None) or self._new_session(user, pick))[0]
            elif t == PAGE:
                head = page_heads[pick % n_pages]
            elif t == SCREEN:
                head = screen_heads[pick % n_screens]
            else:
                head = self._identity_call(t, user)
            ms = end_ms - back_ms
            sec = ms // 1000
            append(
                join(
                    (head, id_open, id_part, seconds.get(sec) or second(sec), _MS3Q[ms % 1000],
                     tails.get(user) or pop.tail(user))
                )
            )  # fmt: skip
        return messages, start, user, kinds

    def browser_request(self, sent_ms: int) -> PreparedRequest:
        """analytics.js: one event per request, built inline (most requests of a run take this path)."""
        pos = self.pos
        if pos + 2 > _BUFFER:
            self._refill()
            pos = 0
        self.pos = pos + 1
        user = self.users[pos]
        t = self.types[pos]
        if t == TRACK:
            head, etail = next(self.cursors.get(user, _NO_SESSION), None) or self._new_session(
                user, self.picks[pos]
            )
        elif t == PAGE:
            head, etail = self.page_parts[self.page_picks[pos]]
        else:
            head, etail = self._identity_call(t, user), self.events.account_tail
        pop = self.pop
        tail = pop.tails.get(user) or pop.tail(user)
        gen = self.gen
        seq = gen.next_seq
        gen.next_seq = seq + 1
        ids = self.ids
        if (
            seq < ids.block_end and seq >= ids.block_start
        ):  # two compares: each one the interpreter specializes
            id_part = ids.block[seq - ids.block_start]
        else:
            id_part = ids.tail(seq)
        if sent_ms != self.last_ms:  # many requests share a millisecond: their id opening and sentAt too
            self._at_ms(sent_ms)
        ms = sent_ms - self.event_lags[pos]
        stamp = self.stamps.get(ms) or gen.timestamps.stamp(ms)
        id_open = self.last_id_open
        join = b"".join
        headers = self.headers_of_user[user].copy()
        if self.per_request_headers:
            self._add_rudder_headers(headers, user, gen.sent_at)
        return _event_request(self.name, self.library.name, self.single_paths[t], headers,
                              join((head, id_open, id_part, stamp, tail, etail, self.last_close)),
                              range(seq, seq + 1), 1, sent_ms,
                              [join((head, id_open, id_part, stamp, tail, etail, b"}"))], None,
                              _ONE_CALL_TYPE[t])  # fmt: skip

    def agent_headers_for(self, auth: Auth, user: int, bulk: bool) -> dict[str, str]:
        """The headers of `auth` with the user's own User-Agent (browser, iOS), shared per agent."""
        agent = self.pop.user_agent(user)
        cached = self.agent_headers.get((auth, agent))
        if cached is None:
            cached = self.agent_headers[(auth, agent)] = dict(self.shapes[auth][0], **{"User-Agent": agent})
            if bulk and self.web:
                cached["Content-Type"] = "application/json"
        return cached

    def assemble(
        self, messages: list[bytes], kinds: list[int], user: int, sent_ms: int, *, bulk: bool = False
    ) -> tuple[str, dict[str, str], bytes]:
        """Path, headers and encoded body for these messages as the library posts them."""
        lib = self.library
        auth = self.library.auth if self.kind != "http" else self.pick_auth()
        if bulk and self.web:
            auth = Auth.BASIC  # a bulk importer, not the browser: Basic auth and JSON
        headers, key = self.shapes[auth]
        sent_at = self.gen.timestamps.encode(sent_ms)
        if len(messages) == 1 and not bulk and self.single_calls:
            path = self.single_paths[kinds[0]]
            body = b"".join((messages[0][:-1], b',"sentAt":"', sent_at, b'"', key, b"}"))
        else:
            path = self.batch_path
            stamp = b'"timestamp":"' + sent_at + b'",' if lib.batch_timestamp else b""
            body = b"".join(
                (b'{"batch":[', b",".join(messages), b"],", stamp, b'"sentAt":"', sent_at, b'"', key, b"}")
            )
        if lib.gzip:
            body = gzip_bytes(body, self.gzip_level, self.gzip_engine)
        if self.agent_per_user:
            headers = self.agent_headers_for(auth, user, bulk)
        headers = headers.copy()
        if self.per_request_headers:
            self._add_rudder_headers(headers, user, sent_at)
        return path, headers, body


class TrafficGenerator:
    """Requests from every source of a profile, for one stream of one run."""

    def __init__(
        self,
        profile: Profile,
        *,
        seed: int,
        run: int,
        stream: int,
        write_keys: Mapping[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        missing = [s for s in profile.sources if s not in write_keys]
        if missing:
            raise ValueError(f"no write key for source(s): {', '.join(missing)}")
        self.profile = profile
        self.seed = seed
        self.run = run
        self.stream = stream
        self.clock = clock
        self.next_seq = 0
        self.ids = IdEncoder(run, stream)
        self._id_encoders = {"timestamp": self.ids}
        self.timestamps = TimestampCache()
        self.ms = -1
        self.ms_half = self.sent_at = b""
        self._pools: dict[str, _EventPool] = {}
        self._sources = {
            name: _Source(self, name, index, share, write_keys[name])
            for index, (name, share) in enumerate(profile.sources.items())
        }
        self._r = random.Random(f"{seed}:{stream}:plan")
        self._roll = self._r.random
        self.duplicates = DuplicatePlan(
            share=profile.duplicate_share,
            delays=profile.duplicate_delays,
            max_pending=profile.duplicate_max_pending,
            rng=random.Random(f"{seed}:{stream}:duplicates"),
        )
        self._special_share = profile.bad_input_share + profile.replay_share
        self._bad_names = [n for n, w in profile.bad_input_cases.items() if w > 0]
        self._bad_weights = [profile.bad_input_cases[n] for n in self._bad_names]

    # public API ----------------------------------------------------------------------------------

    @property
    def sources(self) -> dict[str, float]:
        """Source name -> share of messages."""
        return dict(self.profile.sources)

    def library_of(self, source: str) -> LibraryModel:
        return self._source(source).library

    def mean_messages_per_request(self, source: str) -> float:
        """Messages an event request of this source carries on average (for pacing to a message rate)."""
        src = self._source(source)
        if not hasattr(src, "_mean"):
            src._mean = src.mean_count()  # type: ignore[attr-defined]
        return src._mean  # type: ignore[attr-defined]

    def next_request(self, source: str) -> PreparedRequest:
        """One request built now: a due duplicate re-send, a bad input, a replay batch or live events."""
        src = self._sources.get(source) or self._source(source)
        sent_ms = int(self.clock() * 1000)
        duplicates = self.duplicates
        if duplicates.pending and duplicates.has_due(source, sent_ms):
            return self._duplicate_request(src, sent_ms)
        roll = self._roll()
        if roll < self._special_share:
            if roll < self.profile.bad_input_share and self._bad_names:
                case = self._r.choices(self._bad_names, self._bad_weights)[0]
                return self.bad_request(source, case, sent_ms=sent_ms)
            return self._replay_request(src, sent_ms)
        return src.event_request(sent_ms)

    def on_answer(self, req: PreparedRequest, status: int | None, accepted_seqs=None) -> None:
        """The ingest's answer to `req` (None: no answer), so accepted messages can be re-sent later."""
        if status is None or not 200 <= status < 300 or req.messages is None:
            return
        if accepted_seqs is None:
            rejected = set(req.rejected_seqs)
            accepted = [s for s in req.seqs if s not in rejected] if rejected else list(req.seqs)
        else:
            accepted = list(accepted_seqs)
        self.duplicates.offer(req.source, req.seqs, req.messages, accepted, req.sent_ms)

    # builders ------------------------------------------------------------------------------------

    def at_ms(self, sent_ms: int) -> None:
        """What every request built in millisecond `sent_ms` shares: the UUID's first half, sentAt."""
        self.ms = sent_ms
        self.ms_half = self.ids.ms_half(sent_ms)
        self.sent_at = self.timestamps.encode(sent_ms)

    def event_pool(self, kind: str) -> _EventPool:
        pool = self._pools.get(kind)
        if pool is None:
            end = b',"integrations":{}'
            if kind == "web":  # the browser library's own message end
                end = library_for(self.profile.dialect, "web").message_end
            pool = self._pools[kind] = _EventPool(kind, self.profile, self.seed, end)
        return pool

    def id_encoder(self, timestamp_key: str) -> IdEncoder:
        """The stream's messageId encoder for libraries whose event time is `timestamp_key`."""
        encoder = self._id_encoders.get(timestamp_key)
        if encoder is None:
            key = b'","' + timestamp_key.encode() + b'":"'
            encoder = self._id_encoders[timestamp_key] = IdEncoder(self.run, self.stream, key)
        return encoder

    def _source(self, source: str) -> _Source:
        try:
            return self._sources[source]
        except KeyError:
            raise KeyError(
                f"unknown source {source!r}; this profile has {', '.join(self._sources)}"
            ) from None

    def _replay_request(self, src: _Source, sent_ms: int) -> PreparedRequest:
        low, high = self.profile.replay_age_days
        base = sent_ms - int(src.r.uniform(low, high) * 86_400_000)
        step = src.r.randint(1_000, 60_000)
        count = self.profile.replay_batch_size
        end = base + (count - 1) * step
        messages, start, user, kinds = src.build_messages(count, sent_ms, end, step, True, bulk=True)
        path, headers, body = src.assemble(messages, kinds, user, sent_ms, bulk=True)
        return PreparedRequest(src.name, src.library.name, "POST", path, headers, body,
                               range(start, start + len(messages)), len(messages), sent_ms, kind="replay",
                               messages=messages, call_types=kinds)  # fmt: skip

    def _duplicate_request(self, src: _Source, sent_ms: int) -> PreparedRequest:
        limit = src.library.flush_at if src.library.batches else 1
        due = self.duplicates.take_due(src.name, sent_ms, limit)
        seqs = [seq for seq, _ in due]
        messages = [message for _, message in due]
        first = orjson.loads(messages[0])
        path, headers, body = src.assemble(messages, [CALL_TYPES.index(first["type"])], 0, sent_ms)
        if src.web:  # the same visitor's browser sends the retry
            headers["User-Agent"] = first["context"]["userAgent"]
        if src.library.anonymous_id_header and first.get("anonymousId"):  # and its own AnonymousId
            headers["AnonymousId"] = base64.b64encode(first["anonymousId"].encode()).decode("ascii")
        return PreparedRequest(src.name, src.library.name, "POST", path, headers, body, seqs, len(seqs), sent_ms,
                               kind="duplicate", retry_count_header=src.library.retry.retry_count_header)  # fmt: skip

    def bad_request(self, source: str, case: str, *, sent_ms: int | None = None) -> PreparedRequest:
        """A request from `source` broken the way bad-input `case` says (see loadgen.bad_inputs)."""
        if case not in CASES:
            raise KeyError(f"unknown bad-input case {case!r}; known: {', '.join(CASES)}")
        src = self._source(source)
        sent_ms = int(self.clock() * 1000) if sent_ms is None else sent_ms
        need = 2501 if case == "too_many_events" else 20
        messages: list[bytes] = []
        start = self.next_seq
        while len(messages) < need:  # the batch cap may cut one build short
            more, _, _, _ = src.build_messages(
                need - len(messages), sent_ms, sent_ms - 5, 0.0, True, bulk=True
            )
            messages += more
        decoded = [orjson.loads(m) for m in messages]
        lib = src.library
        auth = Auth.BASIC if lib.auth in (Auth.BASIC, Auth.BASIC_AND_BODY) else Auth.BODY
        headers = dict(src.headers_by_auth[auth])
        if src.web:
            headers["User-Agent"] = src.pop.user_agent(0)
        single = src.library.single_path if src.single_calls else None
        bad = build_bad_request(case, decoded, single_path=single, batch_path=lib.path if lib.batches else "/v1/batch",
                                headers=headers, write_key=src.write_key,
                                sent_at=self.timestamps.encode(sent_ms).decode(), rng=src.r)  # fmt: skip
        if src.web and bad.path == "/v1/batch":
            bad.headers["Content-Type"] = "application/json"
        if lib.gzip and case != "bad_gzip":
            bad.headers["Content-Encoding"] = "gzip"
            bad.body = gzip_bytes(bad.body, self.profile.gzip_level, self.profile.gzip_engine)
        self.next_seq = start + bad.message_count
        seqs = range(start, start + bad.message_count)
        return PreparedRequest(source, lib.name, "POST", bad.path, bad.headers, bad.body, seqs, bad.message_count,
                               sent_ms, kind="bad", bad_case=case, expected_status=bad.expected_status,
                               rejected_seqs=[start + i for i in bad.rejected])  # fmt: skip
