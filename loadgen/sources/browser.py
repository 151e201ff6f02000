"""The browser (analytics.js): every event its own request, sent at once from the visitor's browser."""

from __future__ import annotations

from typing import Any

import numpy as np

from loadgen.libraries import Auth
from loadgen.population import BROWSER_AGENTS
from loadgen.prepared import ONE_CALL_TYPE, PAGE, TRACK, PreparedRequest, event_request
from loadgen.sources.base import BUFFER, NO_SESSION, Source


class BrowserSource(Source):
    """analytics.js: one event per POST to /v1/<first letter of the type>, writeKey in the body."""

    kind = "web"
    single_calls = True
    message_close = b"}"  # a browser event's tail leaves the message open
    close_start = b',"sentAt":"'
    bulk_content_type = "application/json"  # a bulk importer, not the browser: Basic auth and JSON

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.identity_tail = self.events.account_tail  # the page an identify, group or alias is made on
        # one header set per browser the population uses
        self.browser_headers = [
            dict(self.headers_by_auth[self.library.auth], **{"User-Agent": agent}) for agent in BROWSER_AGENTS
        ]
        self.headers_of_user = [self.browser_headers[agent] for agent in self.pop.agent_index]
        self.page_parts = list(zip(self.events.page_heads, self.events.page_tails, strict=True))
        self._refill()

    def event_request(self, sent_ms: int) -> PreparedRequest:
        """One event, built inline (most requests of a run take this path)."""
        pos = self.pos
        if pos + 2 > BUFFER:
            self._refill()
            pos = 0
        self.pos = pos + 1
        user = self.users[pos]
        t = self.types[pos]
        if t == TRACK:
            head, etail = next(self.cursors.get(user, NO_SESSION), None) or self._new_session(
                user, self.picks[pos]
            )
        elif t == PAGE:
            head, etail = self.page_parts[self.page_picks[pos]]
        else:
            head, etail = self._identity_call(t, user), self.identity_tail
        pop = self.pop
        tail = pop.tails.get(user) or pop.tail(user)
        clock = self.clock
        seq = clock.next_seq
        clock.next_seq = seq + 1
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
        stamp = self.stamps.get(ms) or self.timestamps.stamp(ms)
        id_open = self.last_id_open
        join = b"".join
        headers = self.headers_of_user[user].copy()
        if self.per_request_headers:
            self.add_rudder_headers(headers, user, clock.sent_at)
        return event_request(self.name, self.library.name, self.single_paths[t], headers,
                             join((head, id_open, id_part, stamp, tail, etail, self.last_close)),
                             range(seq, seq + 1), 1, sent_ms,
                             [join((head, id_open, id_part, stamp, tail, etail, b"}"))], None,
                             ONE_CALL_TYPE[t])  # fmt: skip

    def _take_picks(self, picks: np.ndarray) -> None:
        # read only when a session starts; the event's lag and page come from the pick
        self.picks = memoryview(picks)
        self.event_lags = (2 + picks % 40).tolist()  # ms before sending, as build_messages draws it
        self.page_picks = (picks % len(self.events.page_heads)).tolist()


    def request_auth(self, bulk: bool) -> Auth:
        return Auth.BASIC if bulk else self.library.auth

    def _headers(self, auth: Auth) -> dict[str, str]:
        headers = super()._headers(auth)
        headers["Origin"] = "https://www.example-shop.com"
        headers["Accept"] = "*/*"
        headers.update(self.library.extra_headers)
        return headers

    def bad_input_headers(self) -> dict[str, str]:
        headers = super().bad_input_headers()
        headers["User-Agent"] = self.pop.user_agent(0)
        return headers

    def resend_headers(self, headers: dict[str, str], first: dict[str, Any]) -> None:
        super().resend_headers(headers, first)
        headers["User-Agent"] = first["context"]["userAgent"]  # the same visitor's browser sends the retry
