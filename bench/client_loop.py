"""Contender (e) for bench/throughput.py: the harness's own HTTP client alone, no Locust, no generation.

Posts the pre-built requests of the mix (THROUGHPUT_MIX, written by bench/throughput.py) through
`harness.ingest_client.IngestClient`, one gevent greenlet per connection, until killed or
--seconds pass: the floor of the harness's sending path in Python on this machine.

Run by bench/throughput.py: python bench/client_loop.py URL --connections N --seconds S
"""

from __future__ import annotations

import argparse
import base64
import json
import os

import gevent

from harness.ingest_client import IngestClient
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    requests = load_mix(os.environ["THROUGHPUT_MIX"])
    workers = [
        gevent.spawn(post_forever, args.url, requests, k, args.connections) for k in range(args.connections)
    ]
    gevent.joinall(workers, timeout=args.seconds, raise_error=True)
    gevent.killall(workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
