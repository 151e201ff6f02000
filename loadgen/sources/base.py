"""What every source kind shares: its users and random draws, sessions, identity calls, headers and
the general message builder (for batches that may reach the size cap, replays and bad inputs).

One subclass per source kind builds its live requests (`event_request`); see loadgen/sources/.
Sources never see the generator: what the stream's sources share (seqs, ids, timestamps, the current
millisecond) comes in as a `StreamClock`.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import orjson

from loadgen.bad_inputs import basic_auth
from loadgen.encoding import MS3Q, StreamClock, gzip_bytes, gzip_function
from loadgen.event_pool import EventPool, categorical, categorical_cdf
from loadgen.ids import IdStyle
from loadgen.libraries import Auth, LibraryModel
from loadgen.limits import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from loadgen.population import Population
from loadgen.prepared import CALL_TYPES, GROUP, IDENTIFY, PAGE, SCREEN, TRACK, PreparedRequest
from loadgen.profile import Profile

BUFFER = 8192  # random draws made at once; a request reads the next rows
NO_SESSION: Iterator[tuple[bytes, bytes]] = iter(())
WARM_USERS = 8192  # per source: the most active users' ids and context are encoded at start-up
BATCH_GUARD = MAX_MESSAGE_BYTES + 1024  # room left under the batch cap before adding a message
MESSAGE_BYTES_ESTIMATE = 4096  # above any pooled message; smaller batches skip the size check


class Source:
    """One source (one client library) of one stream: its users, randomness and request shape."""

    kind: ClassVar[str]  # the library's source_kind
    single_calls: ClassVar[bool] = False  # a lone message goes to `single_path`, not the batch path
    per_message_users: ClassVar[bool] = False  # each message of a batch from its own user (servers)
    identity_tail: ClassVar[bytes] = b""  # closes an identify/group/alias message after the user tail
    message_close: ClassVar[bytes] = b""  # closes every message after its event tail
    close_start: ClassVar[bytes] = b'],"sentAt":"'  # what ends a live body before sentAt
    bulk_content_type: ClassVar[str | None] = None  # Content-Type of a bulk (replay, bad input) post

    def __init__(self, library: LibraryModel, name: str, index: int, share: float, write_key: str, *,
                 profile: Profile, seed: int, stream: int, events: EventPool, clock: StreamClock) -> None:  # fmt: skip
        self.name = name
        self.library = lib = library
        self.write_key = write_key
        self.seed = seed
        self.profile = profile
        self.rng = np.random.default_rng([seed, stream, index, 0x5EED])
        self.r = random.Random(f"{seed}:{stream}:{name}")
        users = max(100, round(profile.users * share))
        self.pop = Population(lib, count=users, zipf_exponent=profile.zipf_exponent,
                              identified_at_start=profile.identified_at_start[self.kind], seed=seed,
                              stream=stream, source_index=index)  # fmt: skip
        self.pop.warm(WARM_USERS)
        self.events = events
        self.scripts = [events.events[catalog] for catalog in events.catalogs]
        mix = profile.call_types[self.kind]
        self.type_cdf = categorical_cdf(np.array([mix.get(t, 0.0) for t in CALL_TYPES]))
        self.batch_guard = min(lib.max_batch_bytes, MAX_BATCH_BYTES) - BATCH_GUARD
        self.cursors: dict[int, Iterator[tuple[bytes, bytes]]] = {}
        self.identify_heads: dict[int, bytes] = {}
        self.group_heads: dict[int, bytes] = {}
        self.alias_heads: dict[int, bytes] = {}  # a known user's alias (from the email)
        self.offsets: dict[tuple[int, float], list[int]] = {}  # see build_messages
        self.headers_by_auth = {auth: self._headers(auth) for auth in Auth}
        self.shapes = {auth: (self.headers_by_auth[auth], self.body_key(auth, write_key)) for auth in Auth}
        # the browser's and iOS's own agent, and RudderStack's AnonymousId header, per user
        self.agent_per_user = not lib.user_agent or lib.anonymous_id_header
        self.per_request_headers = lib.anonymous_id_header or lib.sent_at_header
        self.anonymous_id_headers: dict[int, str] = {}
        self.single_paths = tuple(self.single_path(t) for t in CALL_TYPES)
        self.agent_headers: dict[tuple[Auth, str], dict[str, str]] = {}
        self.batch_path = lib.path if lib.batches else "/v1/batch"
        self.gzip_level = profile.gzip_level
        self.gzip_engine = profile.gzip_engine
        self.gzip = gzip_function(profile.gzip_level, profile.gzip_engine)
        self.id_prefixed = lib.id_style is not IdStyle.PLAIN
        self.id_opening = b',"messageId":"' + lib.id_style.prefix_format()
        self.batch_timestamp = lib.batch_timestamp
        self.close_end = b'"' + self.shapes[lib.auth][1] + b"}"
        self.clock = clock
        self.ids = clock.id_encoder(lib.timestamp_key)
        self.timestamps = clock.timestamps
        self.stamps = clock.timestamps.stamps  # cleared in place when full, never replaced
        self.seconds = clock.timestamps.seconds  # cleared in place when full, never replaced
        self.second = clock.timestamps.second
        self.retry_count_header = lib.retry.retry_count_header
        self.last_ms = -1
        self.last_id_open = self.last_close = b""
        # the subclass draws the first buffer (`_refill`) once its own state is set

    def event_request(self, sent_ms: int) -> PreparedRequest:
        """Live events as the library sends them now."""
        raise NotImplementedError

    @classmethod
    def mean_count(cls, library: LibraryModel, profile: Profile) -> float:
        """Messages a live request of `library` carries on average (no source needs building)."""
        return 1.0

    # request shape -----------------------------------------------------------------------------

    def _headers(self, auth: Auth) -> dict[str, str]:
        lib = self.library
        headers = {"Content-Type": lib.content_type}
        if lib.gzip:
            headers["Content-Encoding"] = "gzip"
        if auth in (Auth.BASIC, Auth.BASIC_AND_BODY):
            headers["Authorization"] = basic_auth(self.write_key)
        elif auth is Auth.BEARER_AND_BODY:
            token = hashlib.blake2b(f"{self.write_key}:{self.seed}".encode(), digest_size=24).digest()
            headers["Authorization"] = "Bearer " + base64.urlsafe_b64encode(token).decode("ascii")
        if lib.user_agent:
            headers["User-Agent"] = lib.user_agent
        headers.update(lib.extra_headers)
        return headers

    def add_rudder_headers(self, headers: dict[str, str], user: int, sent_at: bytes | None) -> None:
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
        """The writeKey member a body carries under `auth` (empty where the key goes in a header)."""
        if auth in (Auth.BODY, Auth.BASIC_AND_BODY, Auth.BEARER_AND_BODY):
            return b',"writeKey":' + orjson.dumps(write_key)
        return b""

    def request_auth(self, bulk: bool) -> Auth:
        """How this request proves the write key (bulk: a replay or bad-input post)."""
        return self.library.auth

    def single_path(self, call_type: str) -> str:
        """The path a single call of `call_type` goes to (where `single_calls`): the library's."""
        return self.library.single_path(call_type)

    def bad_input_headers(self) -> dict[str, str]:
        """Headers a bad-input request starts from: Basic auth where the library uses it, else none."""
        lib = self.library
        auth = Auth.BASIC if lib.auth in (Auth.BASIC, Auth.BASIC_AND_BODY) else Auth.BODY
        return dict(self.headers_by_auth[auth])

    def resend_headers(self, headers: dict[str, str], first: dict[str, Any]) -> None:
        """Adjust a duplicate re-send's headers to its first message (decoded) where the library must."""
        if self.library.anonymous_id_header and first.get("anonymousId"):  # its sender's own AnonymousId
            headers["AnonymousId"] = base64.b64encode(first["anonymousId"].encode()).decode("ascii")

    def agent_headers_for(self, auth: Auth, user: int, bulk: bool) -> dict[str, str]:
        """The headers of `auth` with the user's own User-Agent (browser, iOS), shared per agent."""
        agent = self.pop.user_agent(user)
        cached = self.agent_headers.get((auth, agent))
        if cached is None:
            cached = self.agent_headers[(auth, agent)] = dict(self.shapes[auth][0], **{"User-Agent": agent})
            if bulk and self.bulk_content_type:
                cached["Content-Type"] = self.bulk_content_type
        return cached

    def assemble(
        self, messages: list[bytes], kinds: Sequence[int], user: int, sent_ms: int, *, bulk: bool = False
    ) -> tuple[str, dict[str, str], bytes]:
        """Path, headers and encoded body for these messages as the library posts them."""
        auth = self.request_auth(bulk)
        headers, key = self.shapes[auth]
        sent_at = self.timestamps.encode(sent_ms)
        if len(messages) == 1 and not bulk and self.single_calls:
            path = self.single_paths[kinds[0]]
            body = b"".join((messages[0][:-1], b',"sentAt":"', sent_at, b'"', key, b"}"))
        else:
            path = self.batch_path
            stamp = b'"timestamp":"' + sent_at + b'",' if self.batch_timestamp else b""
            body = b"".join(
                (b'{"batch":[', b",".join(messages), b"],", stamp, b'"sentAt":"', sent_at, b'"', key, b"}")
            )
        if self.library.gzip:
            body = gzip_bytes(body, self.gzip_level, self.gzip_engine)
        if self.agent_per_user:
            headers = self.agent_headers_for(auth, user, bulk)
        headers = headers.copy()
        if self.per_request_headers:
            self.add_rudder_headers(headers, user, sent_at)
        return path, headers, body

    # random draws in bulk ----------------------------------------------------------------------

    def _refill(self) -> None:
        rng = self.rng
        self.types = categorical(rng, self.type_cdf, BUFFER).tolist()
        self.users = self.pop.users_at(rng.random(BUFFER)).tolist()
        # read once per session start: a memoryview hands out those few as ints, no list of 8,192
        self.catalog_draws = memoryview(categorical(rng, self.events.catalog_cdf, BUFFER))
        self._take_picks(rng.integers(0, 1 << 30, size=BUFFER))
        self.pos = 0

    def _take_picks(self, picks: np.ndarray) -> None:
        """Keep the buffer's picks: each message's choice of session, page or screen."""
        self.picks: Sequence[int] = picks.tolist()

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
        pop = self.pop
        events = self.events
        stamps = self.stamps
        stamp = self.timestamps.stamp
        clock = self.clock
        start = clock.next_seq
        id_parts = self.ids.tails(start, count)
        if sent_ms != self.last_ms:
            self._at_ms(sent_ms)
        id_open = self.last_id_open
        if self.pos + count + 1 > BUFFER:
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
        guard = MAX_BATCH_BYTES - BATCH_GUARD if bulk else self.batch_guard
        guarded = count * MESSAGE_BYTES_ESTIMATE > guard
        page_heads, page_tails, screen_heads = events.page_heads, events.page_tails, events.screen_heads
        identity_tail = self.identity_tail
        brace = self.message_close
        last = count - 1
        # each message's distance back from end_ms; a full batch's step depends on its size alone
        back = self.offsets.get((count, step_ms))
        if back is None:
            if len(self.offsets) > 1024:
                self.offsets.clear()
            back = self.offsets[(count, step_ms)] = [int(step_ms * k) for k in range(last, -1, -1)]
        if step_ms >= 1.0:  # events seconds apart (mobile queues, replay): a cache would rarely hit
            seconds, second, ms3q = self.seconds, self.second, MS3Q
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
                head, etail = next(cursors.get(user, NO_SESSION), None) or self._new_session(user, pick)
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
        clock.next_seq = start + len(messages)
        return messages, start, user, kinds

    def _new_session(self, user: int, pick: int) -> tuple[bytes, bytes]:
        """Start the user's next session; its first event's (head, tail)."""
        scripts = self.scripts[self.catalog_draws[pick % BUFFER]]
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

    def _at_ms(self, sent_ms: int) -> None:
        """Cache what this source's requests built in one millisecond share: id opening, body close."""
        clock = self.clock
        if clock.ms != sent_ms:
            clock.at_ms(sent_ms)
        self.last_ms = sent_ms
        opening = self.id_opening
        self.last_id_open = (opening % sent_ms if self.id_prefixed else opening) + clock.ms_half
        self.last_close = self.close_start + clock.sent_at + self.close_end
        if self.batch_timestamp and self.close_start.startswith(b"]"):  # the batch's own `timestamp`
            self.last_close = b'],"timestamp":"' + clock.sent_at + b'"' + self.last_close[1:]
