"""The traffic generator: realistic requests from every source of a profile, built fast.

`TrafficGenerator.next_request(source)` returns one ready-to-send request (body encoded, gzipped where
the library gzips) as the source's client library would send it: its path, headers, auth, batch
size and messageId format, messages from the source's own users in believable sessions. It may
instead hand out a due duplicate re-send, a bad-input case or a replay batch, per the profile.

Live events come from one object per source, of its kind's class (loadgen/sources/: browser,
mobile SDK, server library, direct HTTP caller). The per-message work is one join of pre-encoded
byte strings (event bodies encoded at start-up, per-user ids and context encoded once, messageId
halves and timestamps from caches) with random choices drawn from numpy in bulk; what every request
of one millisecond shares (the UUID's first half, sentAt) is built once per millisecond in the
stream's `StreamClock`. A request costs a few Python calls; see bench/generator.py for the figures.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping

import orjson

from loadgen.bad_inputs import CASES, build_bad_request
from loadgen.dialects import library_for
from loadgen.encoding import StreamClock, gzip_bytes
from loadgen.event_pool import EventPool
from loadgen.libraries import LibraryModel
from loadgen.population import Population
from loadgen.prepared import CALL_TYPES, PreparedRequest
from loadgen.profile import Profile
from loadgen.resends import DuplicatePlan
from loadgen.sources import SOURCE_CLASSES, Source, make_source

__all__ = ["CALL_TYPES", "PreparedRequest", "TrafficGenerator"]


def messages_per_request(profile: Profile, source: str) -> float:
    """Messages an event request of `source` carries on average, from the profile alone (for pacing)."""
    library = library_for(profile.dialect, source)
    return SOURCE_CLASSES[library.source_kind].mean_count(library, profile)


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
        self.stream_clock = StreamClock(run, stream)
        """Seqs, messageId halves and timestamps shared by this stream's sources."""
        self._pools: dict[str, EventPool] = {}
        self._write_keys = dict(write_keys)
        self._index = {name: index for index, name in enumerate(profile.sources)}
        self._sources: dict[str, Source] = {}
        """Built on first use: a worker that never sends a source never pays for its users."""
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

    @property
    def next_seq(self) -> int:
        """The seq the next new message of this stream gets."""
        return self.stream_clock.next_seq

    def library_of(self, source: str) -> LibraryModel:
        return self._source(source).library

    def population_of(self, source: str) -> Population:
        """The users `source` sends for."""
        return self._source(source).pop

    def mean_messages_per_request(self, source: str) -> float:
        """Messages an event request of this source carries on average (for pacing to a message rate)."""
        return messages_per_request(self.profile, source)

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

    def _event_pool(self, kind: str) -> EventPool:
        pool = self._pools.get(kind)
        if pool is None:
            end = b',"integrations":{}'
            if kind == "web":  # the browser library's own message end
                end = library_for(self.profile.dialect, "web").message_end
            pool = self._pools[kind] = EventPool(kind, self.profile, self.seed, end)
        return pool

    def _source(self, source: str) -> Source:
        src = self._sources.get(source)
        if src is None:
            if source not in self._index:
                raise KeyError(f"unknown source {source!r}; this profile has {', '.join(self._index)}")
            src = self._sources[source] = make_source(
                source,
                self._index[source],
                self.profile.sources[source],
                self._write_keys[source],
                profile=self.profile,
                seed=self.seed,
                stream=self.stream,
                event_pool=self._event_pool,
                clock=self.stream_clock,
            )
        return src

    def _replay_request(self, src: Source, sent_ms: int) -> PreparedRequest:
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

    def _duplicate_request(self, src: Source, sent_ms: int) -> PreparedRequest:
        limit = src.library.flush_at if src.library.batches else 1
        due = self.duplicates.take_due(src.name, sent_ms, limit)
        seqs = [seq for seq, _ in due]
        messages = [message for _, message in due]
        first = orjson.loads(messages[0])
        path, headers, body = src.assemble(messages, [CALL_TYPES.index(first["type"])], 0, sent_ms)
        src.resend_headers(headers, first)
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
        start = self.stream_clock.next_seq
        while len(messages) < need:  # the batch cap may cut one build short
            more, _, _, _ = src.build_messages(
                need - len(messages), sent_ms, sent_ms - 5, 0.0, True, bulk=True
            )
            messages += more
        decoded = [orjson.loads(m) for m in messages]
        lib = src.library
        bad = build_bad_request(case, decoded, single_path=src.single_path if src.single_calls else None,
                                batch_path=src.batch_path, headers=src.bad_input_headers(), write_key=src.write_key,
                                sent_at=self.stream_clock.timestamps.encode(sent_ms).decode(), rng=src.r)  # fmt: skip
        if src.bulk_content_type and bad.path == "/v1/batch":
            bad.headers["Content-Type"] = src.bulk_content_type
        if lib.gzip and case != "bad_gzip":
            bad.headers["Content-Encoding"] = "gzip"
            bad.body = gzip_bytes(bad.body, self.profile.gzip_level, self.profile.gzip_engine)
        self.stream_clock.next_seq = start + bad.message_count
        seqs = range(start, start + bad.message_count)
        return PreparedRequest(source, lib.name, "POST", bad.path, bad.headers, bad.body, seqs, bad.message_count,
                               sent_ms, kind="bad", bad_case=case, expected_status=bad.expected_status,
                               rejected_seqs=[start + i for i in bad.rejected])  # fmt: skip
