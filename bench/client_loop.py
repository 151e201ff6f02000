"""Contenders (e) and (f) for bench/throughput.py: the harness's sending paths alone, no Locust, no generation.

Posts the pre-built requests of the mix (THROUGHPUT_MIX, written by bench/throughput.py) until
killed or --seconds pass, either through `harness.ingest_client.IngestClient`, one gevent greenlet
per connection (the users' own client), or with --engine through `harness.engine.SendingEngine`
over the same number of connections, every connection sending again as soon as it is answered:
the floor of each sending path in Python on this machine.

Run by bench/throughput.py: python bench/client_loop.py URL --connections N --seconds S [--engine]
"""

from __future__ import annotations

import argparse
import base64
import json
import os

import gevent

from harness.engine import Attempt, Outcome, SendingEngine
from harness.ingest_client import IngestClient, Target
from loadgen.traffic import PreparedRequest


def load_mix(path: str) -> list[PreparedRequest]:
    with open(path, encoding="utf-8") as mix:
        return [
            PreparedRequest(
                source="mix",
                library="mix",
                method="POST",
                path=row["path"],
                headers=row["headers"],
                body=base64.b64decode(row["body"]),
                seqs=range(0),
                message_count=0,
                sent_ms=0,
            )
            for row in map(json.loads, mix)
        ]


def post_forever(url: str, requests: list[PreparedRequest], offset: int, step: int) -> None:
    client = IngestClient(url)
    i = offset
    while True:
        answer = client.send(requests[i % len(requests)])
        if answer.status != 200:
            raise SystemExit(f"client loop: {answer}")
        i += step


class MixFeed:
    """A `harness.engine.Feed` whose every slot is due at once: the mix, round and round."""

    def __init__(self, requests: list[PreparedRequest]) -> None:
        self.requests = requests
        self.sent = 0

    def next_due(self, source: str, now: float) -> float:
        return now

    def take(self, source: str, now: float) -> tuple[float, PreparedRequest]:
        self.sent += 1
        return now, self.requests[self.sent % len(self.requests)]

    def follow_up(self, request: PreparedRequest) -> None:
        return None

    def record(self, attempts: list[Attempt], outcomes: list[Outcome]) -> None:
        for attempt in attempts:
            if attempt.status != 200:
                raise SystemExit(f"engine loop: {attempt.status} {attempt.error}")


def run_engine(url: str, requests: list[PreparedRequest], connections: int, seconds: float) -> None:
    engine = SendingEngine(Target(url), MixFeed(requests), {"mix": None})
    for _ in range(connections):
        engine.attach("mix")
    engine.start()
    gevent.sleep(seconds)
    engine.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--engine", action="store_true", help="send through harness.engine.SendingEngine")
    args = parser.parse_args()
    requests = load_mix(os.environ["THROUGHPUT_MIX"])
    if args.engine:
        run_engine(args.url, requests, args.connections, args.seconds)
        return 0
    workers = [
        gevent.spawn(post_forever, args.url, requests, k, args.connections) for k in range(args.connections)
    ]
    gevent.joinall(workers, timeout=args.seconds, raise_error=True)
    gevent.killall(workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
