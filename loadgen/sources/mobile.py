"""Mobile SDKs (analytics-ios, analytics-android, Analytics.Xamarin): one device's queued events."""

from __future__ import annotations

from loadgen.encoding import MS3Q
from loadgen.prepared import PAGE, SCREEN, TRACK
from loadgen.sources.base import NO_SESSION
from loadgen.sources.batch import BatchSource


class MobileSource(BatchSource):
    """A device's batch: one user's events seconds apart, some held back while the app was offline."""

    kind = "mobile"

    def __init__(self, *args, **kwargs) -> None:
        profile = kwargs["profile"]
        self.event_gap_s = profile.mobile_event_gap_seconds  # batch_timing reads it during setup
        self.offline_share = profile.mobile_offline_share
        self.offline_low, self.offline_high = profile.mobile_offline_delay_hours
        super().__init__(*args, **kwargs)

    def batch_timing(self, count: int) -> tuple[float, float, list[int]]:
        lib = self.library
        span = min(lib.flush_interval_s, count * self.event_gap_s) * 1000.0
        mult = 300.0 if count >= lib.flush_at else max(0.0, lib.flush_interval_s * 1000 - span)
        return self._timing(mult, span, count)

    def last_event_back(self, mult: float) -> float:
        r = self.r
        last = r.random() * mult
        if r.random() < self.offline_share:
            last += r.uniform(self.offline_low, self.offline_high) * 3_600_000
        return last

    def live_messages(self, count: int, sent_ms: int) -> tuple[list[bytes], int, int, list[int]]:
        """`build_messages` for a mobile batch under the size cap: one device's queued events.

        The same messages, written out for the one case most messages take: one user, so one
        tail and one session cursor for the whole batch, and event times from the batch size's table.
        """
        mult, _, back = self.timing[count]
        end_ms = sent_ms - int(self.last_event_back(mult))
        start, id_parts, id_open, pos, end = self._claim(count, sent_ms)
        user = self.users[pos]
        pop = self.pop
        tail = pop.tails.get(user) or pop.tail(user)
        cursor = self.cursors.get(user, NO_SESSION)
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
            append(join((head, id_open, id_part, seconds.get(sec) or second(sec), MS3Q[ms % 1000], tail)))
        return messages, start, user, kinds
