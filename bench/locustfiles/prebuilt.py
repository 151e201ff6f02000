"""Baseline (b) for bench/throughput.py: stock FastHttpUser posting pre-built requests of the mix.

The requests (path, headers, body) come from the traffic model, written by bench/throughput.py to
the JSON-lines file named by THROUGHPUT_MIX; each user walks them in turn. Nothing is built per
request, so this measures Locust's stock client path alone.
"""

import base64
import itertools
import json
import os

from locust import FastHttpUser, task

with open(os.environ["THROUGHPUT_MIX"], encoding="utf-8") as mix:
    REQUESTS = [(row["path"], row["headers"], base64.b64decode(row["body"])) for row in map(json.loads, mix)]


class PrebuiltUser(FastHttpUser):
    def on_start(self) -> None:
        self.requests = itertools.cycle(REQUESTS)

    @task
    def post(self) -> None:
        path, headers, body = next(self.requests)
        self.client.post(path, data=body, headers=headers)
