"""Each fault knob produces exactly the effect it counts (compared against what a receiver saw)."""

from __future__ import annotations

import json
import time
from collections import Counter

N = 400


def send(sb, helpers, n=N, prefix="m"):
    for start in range(0, n, 100):
        body = {"batch": [helpers.track(i, prefix=prefix) for i in range(start, min(n, start + 100))]}
        assert sb.post("/v1/batch", body).status_code == 200


def test_drop_and_duplicate_counted_exactly(sandbox_factory, receiver_factory, helpers):
    recv, clean = receiver_factory(), receiver_factory()
    cfg = helpers.make_config(
        [helpers.dest("lossy", recv.url, batch_size=25), helpers.dest("clean", clean.url, batch_size=25)],
        faults={"destinations": {"lossy": {"drop": 0.2, "duplicate": 0.15}}},
    )
    sb = sandbox_factory(cfg)
    send(sb, helpers)
    st = sb.wait_for(lambda s: s["queued"]["lossy"] == 0 and s["delivered"].get("clean") == N)
    drops, dups = st["faults"]["drop"]["lossy"], st["faults"]["duplicate"]["lossy"]
    assert 40 <= drops <= 130 and 25 <= dups <= 100, (drops, dups)
    counts = Counter(e["messageId"] for e in recv.events())
    assert N - len(counts) == drops, "each dropped message is missing exactly once"
    assert sum(1 for c in counts.values() if c == 2) == dups and max(counts.values()) <= 2
    assert st["delivered"]["lossy"] == N - drops + dups
    assert len(clean.events()) == N and "clean" not in st["faults"].get("drop", {}), (
        "faults are per destination"
    )
    text = sb.client.get(f"{sb.url}/metrics").text
    assert f'sandbox_faults_injected_total{{kind="drop",target="lossy"}} {float(drops)}' in text
    assert f'sandbox_faults_injected_total{{kind="duplicate",target="lossy"}} {float(dups)}' in text


def test_same_seed_same_decisions(sandbox_factory, receiver_factory, helpers, tmp_path):
    results = []
    for run in range(2):
        recv = receiver_factory()
        cfg = helpers.make_config(
            [helpers.dest("d", recv.url, batch_size=50)], faults={"destinations": {"d": {"drop": 0.3}}}
        )
        cfg["delivery"]["spool_path"] = str(tmp_path / f"s{run}.jsonl")
        sb = sandbox_factory(cfg)
        send(sb, helpers, n=200)
        sb.wait_for(
            lambda s: (
                s["queued"]["d"] == 0
                and sum(s["faults"]["drop"].values()) + s["delivered"].get("d", 0) == 200
            )
        )
        results.append(sorted(e["messageId"] for e in recv.events()))
        sb.stop()
    assert results[0] == results[1] and len(results[0]) < 200


def test_delay_distribution_counted_and_applied(sandbox_factory, receiver_factory, helpers):
    recv = receiver_factory()
    cfg = helpers.make_config(
        [helpers.dest("d", recv.url, batch_size=50)],
        faults={"destinations": {"d": {"delay": {"share": 0.5, "kind": "fixed", "seconds": 1.0}}}},
    )
    sb = sandbox_factory(cfg)
    sent = time.time()
    send(sb, helpers, n=100)
    st = sb.wait_for(lambda s: s["delivered"].get("d") == 100)
    delayed = st["faults"]["delay"]["d"]
    assert 25 <= delayed <= 75
    assert abs(st["fault_delay_seconds"]["d"] - delayed * 1.0) < 1e-6
    late = [r for r in recv.requests for _ in range(len(json.loads(r["body"]))) if r["time"] - sent >= 0.95]
    assert len(late) == delayed


def test_delay_kinds_via_admin(sandbox_factory, receiver_factory, helpers):
    recv = receiver_factory()
    sb = sandbox_factory(helpers.make_config([helpers.dest("d", recv.url, batch_size=100)]))
    total = 0
    for spec in (
        {"kind": "uniform", "low": 0.01, "high": 0.05},
        {"kind": "exponential", "mean": 0.02},
        {"kind": "lognormal", "mu": -4, "sigma": 0.5},
    ):
        assert sb.set_faults({"destinations": {"d": {"delay": {"share": 1.0, **spec}}}}).status_code == 200
        send(sb, helpers, n=50, prefix=spec["kind"])
        total += 50
        st = sb.wait_for(lambda s, t=total: s["delivered"].get("d") == t)
        assert st["faults"]["delay"]["d"] == total
    assert 0 < st["fault_delay_seconds"]["d"] < 150 * 0.1


def test_ingest_faults_counted_exactly(sandbox_factory, receiver_factory, helpers):
    recv = receiver_factory()
    cfg = helpers.make_config(
        [helpers.dest("d", recv.url)],
        faults={"ingest": {"error_5xx": 0.2, "error_429": 0.2, "accept_then_5xx": 0.2}},
    )
    sb = sandbox_factory(cfg)
    statuses = Counter()
    kept = []
    for i in range(150):
        r = sb.post("/v1/track", helpers.track(i))
        statuses[r.status_code] += 1
        body = r.json()
        if r.status_code == 429:
            assert r.headers["retry-after"] == "1" and body["code"] == "injected_fault"
        if r.status_code == 200 or (r.status_code == 500 and "kept" in body["message"]):
            kept.append(f"m-{i}")
    st = sb.wait_for(lambda s: s["delivered"].get("d") == len(kept))
    f = st["faults"]
    assert f["error_5xx"]["ingest"] == statuses[503]
    assert f["error_429"]["ingest"] == statuses[429]
    assert f["accept_then_5xx"]["ingest"] == statuses[500]
    assert statuses[200] + statuses[500] + statuses[503] + statuses[429] == 150
    assert all(statuses[s] > 10 for s in (200, 500, 503, 429)), statuses
    assert sorted(e["messageId"] for e in recv.events()) == sorted(kept)
    assert st["requests"]["track"] == {str(k): v for k, v in statuses.items()}
