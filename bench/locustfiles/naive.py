"""Baseline (a) for bench/throughput.py: the naive locustfile, one `json=` dict per event.

What a first locustfile against a tracking API looks like: HttpUser, a dict built per event with a
uuid4 messageId and an ISO timestamp, posted to /v1/track with basic auth.
"""

import random
import uuid
from datetime import UTC, datetime

from locust import HttpUser, task

EVENTS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Products Searched")


class NaiveTrackUser(HttpUser):
    @task
    def track(self) -> None:
        event = {
            "type": "track",
            "event": random.choice(EVENTS),
            "userId": f"user-{random.randrange(100_000)}",
            "messageId": str(uuid.uuid4()),
            "timestamp": datetime.now(UTC).isoformat(),
            "properties": {"product_id": str(random.randrange(10_000)), "price": 19.99, "currency": "USD"},
            "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
        }
        self.client.post("/v1/track", json=event, auth=("bench-write-key", ""))
