"""`SdkUser`: a Locust user that sends through a real client library, its sends audited by the monitor.

Each user is one SDK `Client` (as one application process has one), making `track` calls at the
profile's `real_sdks.<library>.events_per_second` with harness messageIds from its process's
stream for that library (`Stream.ids_for_sdk`). The library does the rest its own way: queue,
batching, gzip, retries; the outcome of every batch reaches the ledger from the SDK's own code
(`harness.sdks`), and every upload request shows in Locust's statistics as
`/v1/batch (<library>)`. Off unless the profile gives the library users.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, ClassVar

from locust import User, task

from harness.plugin import Harness
from harness.sdks import sdk_client

EVENTS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")
USERS_PER_CLIENT = 50
"""Distinct userIds each SDK client sends for (round robin)."""
_CLIENT_NUMBERS = itertools.count()


class SdkUser(User):
    """Sends track calls through the real library named by `sdk` (a `loadgen.profile.REAL_SDKS` name)."""

    abstract = True
    sdk: ClassVar[str]

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        harness = Harness.of(environment)
        stream = harness.stream
        config = harness.profile().real_sdks.get(self.sdk)
        if stream is None or config is None:
            raise RuntimeError(f"{type(self).__name__} runs only under `locust -f scenarios` with users in real_sdks")
        self.stream = stream
        self.ids = stream.ids_for_sdk(self.sdk, config.source)
        self.source = config.source
        self.interval = 1.0 / config.events_per_second
        self.number = next(_CLIENT_NUMBERS)
        self.client = sdk_client(
            self.sdk,
            write_key=stream.wiring.write_keys[config.source],
            host=environment.host,
            ids=self.ids,
            source=config.source,
            gzip=True,
            max_retries=3,
            timeout=10,
            on_upload=self._uploaded,
        )
        self.calls = 0
        self.next_at = time.monotonic()

    def _uploaded(self, messages: int, seconds: float, error: BaseException | None) -> None:
        if error is None:
            self.stream.stats.record_accepted(self.source, messages)
        if self.stream.request_log is not None:
            failure = None if error is None else f"{type(error).__name__}: {error}"
            self.stream.request_log.record(f"/v1/batch ({self.sdk})", seconds * 1000.0, 0, failure)

    def wait_time(self) -> float:
        return max(0.0, self.next_at - time.monotonic())

    @task
    def track(self) -> None:
        """One track call with a harness messageId; the SDK queues it and sends it in its own batches."""
        self.next_at += self.interval
        n, self.calls = self.calls, self.calls + 1
        self.client.track(
            user_id=f"sdk-{self.number}-user-{n % USERS_PER_CLIENT}",
            event=EVENTS[n % len(EVENTS)],
            properties={"order_id": f"sdk-{self.number}-{n}", "revenue": round(n * 0.37 % 100, 2)},
            message_id=self.ids.new_id(),
        )

    def on_stop(self) -> None:
        """Send what is queued (the SDK's own flush) before the stream's final ledger goes out."""
        self.client.flush()
        self.client.join()
