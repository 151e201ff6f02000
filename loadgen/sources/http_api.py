"""Direct HTTP API callers: hand-written code posting single calls or batches, each with its own auth."""

from __future__ import annotations

import numpy as np

from loadgen.dialects import HTTP_AUTH_SHARES
from loadgen.libraries import Auth, LibraryModel
from loadgen.prepared import PreparedRequest, event_request
from loadgen.profile import Profile
from loadgen.sources.base import BUFFER
from loadgen.sources.server import ServerSource

HTTP_SINGLE_CALL_SHARE = 0.7  # assumption: most direct HTTP callers post one call to /v1/<type>


class HttpSource(ServerSource):
    """Server-side traffic without a library: most requests one call to /v1/<type>, the rest batches."""

    kind = "http"
    single_calls = True

    def event_request(self, sent_ms: int) -> PreparedRequest:
        """Live events of a direct HTTP API caller: a single call or a batch, with its own auth."""
        messages, start, user, kinds = self.live_batch(sent_ms)
        path, headers, body = self.assemble(messages, kinds, user, sent_ms)
        n = len(messages)
        return event_request(self.name, self.library.name, path, headers, body, range(start, start + n), n,
                             sent_ms, messages, self.retry_count_header, kinds)  # fmt: skip


    def request_auth(self, bulk: bool) -> Auth:
        """Each request's auth drawn from HTTP_AUTH_SHARES: callers differ in how they send the key."""
        shares = HTTP_AUTH_SHARES[self.profile.dialect]
        roll = self.r.random()
        for auth, share in shares:
            if roll < share:
                return auth
            roll -= share
        return shares[-1][0]

    def _adjust_counts(self, counts: np.ndarray) -> np.ndarray:
        counts[self.rng.random(BUFFER) < HTTP_SINGLE_CALL_SHARE] = 1
        return counts

    @classmethod
    def mean_count(cls, library: LibraryModel, profile: Profile) -> float:
        return HTTP_SINGLE_CALL_SHARE + (1 - HTTP_SINGLE_CALL_SHARE) * super().mean_count(library, profile)
