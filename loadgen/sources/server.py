"""Server libraries (Node, Python, Ruby, Go, Java, PHP, .NET): batches of many users' events."""

from __future__ import annotations

from loadgen.encoding import MS3Q
from loadgen.libraries import Auth
from loadgen.prepared import PAGE, SCREEN, TRACK
from loadgen.sources.base import NO_SESSION
from loadgen.sources.batch import BatchSource


class ServerSource(BatchSource):
    """An application process's batch: each message from the user of the web request behind it."""

    kind = "server"
    per_message_users = True

    def _headers(self, auth: Auth) -> dict[str, str]:
        headers = super()._headers(auth)
        if self.library.name == "analytics-ruby":
            headers["Accept"] = "application/json"
        return headers

    def live_messages(self, count: int, sent_ms: int) -> tuple[list[bytes], int, int, list[int]]:
        """`build_messages` for a server or HTTP batch under the size cap: each message its own user."""
        mult, _, back = self.timing[count]
        end_ms = sent_ms - int(self.last_event_back(mult))
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
                head = (next(cursors.get(user, NO_SESSION), None) or self._new_session(user, pick))[0]
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
                    (head, id_open, id_part, seconds.get(sec) or second(sec), MS3Q[ms % 1000],
                     tails.get(user) or pop.tail(user))
                )
            )  # fmt: skip
        return messages, start, user, kinds
