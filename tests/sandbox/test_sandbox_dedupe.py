"""Dedupe: inside and outside the window, per source, bounded memory, persistence."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.dedupe import Deduper, id_hash, tick_of


def keys(source: str, ids) -> list[int]:
    return [id_hash(source, str(i)) for i in ids]


def test_window_in_and_out_across_tiers():
    d = Deduper(window_seconds=60, max_ids=1_000_000, buffer_size=100, mid_size=1000)
    t0 = 1_800_000_000.0
    for start in range(0, 5350, 100):  # spills into the mid and big tiers
        chunk = keys("s", range(start, min(5350, start + 100)))
        assert d.seen_many(chunk, t0) == [False] * len(chunk)
    assert len(d.big_keys) == 5000 and len(d.mid_keys) == 300 and len(d.buffer) == 50
    # the scalar path (≤ 8 keys) and the vectorized path both see every tier
    for i in (0, 4999, 5000, 5299, 5300, 5349):
        assert d.seen_many(keys("s", [i]), t0 + 59) == [True], i
    assert d.seen_many(keys("s", [7, 6000, 5310]), t0 + 59) == [True, False, True]
    assert d.seen_many(keys("s", range(5350)), t0 + 59) == [True] * 5350
    assert d.seen_many(keys("s", range(5350, 5360)), t0 + 59) == [False] * 10
    assert d.seen_many(keys("s", [4000]), t0 + 61) == [False], "expired in a sorted tier (scalar path)"
    # outside the window: a re-send is new again, and remembered afresh
    assert d.seen_many(keys("s", range(10)), t0 + 61) == [False] * 10
    assert d.seen_many(keys("s", range(10)), t0 + 62) == [True] * 10
    assert d.hits == 5360 + 8


def test_duplicates_inside_one_call_and_per_source():
    d = Deduper(window_seconds=60, max_ids=10_000)
    assert d.seen_many(keys("a", [1, 2, 1]), 1e9) == [False, False, True]
    assert d.seen_many(keys("b", [1]), 1e9) == [False], "the same messageId from another source is not a dup"


def test_max_ids_bounds_memory_and_evicts_oldest():
    d = Deduper(window_seconds=3600, max_ids=2000, buffer_size=100, mid_size=500)
    t0 = 1_800_000_000.0
    for step in range(50):
        d.seen_many(keys("s", range(step * 100, step * 100 + 100)), t0 + step)
    assert len(d) <= 2000 and d.evicted >= 3000
    assert d.seen_many(keys("s", range(4900, 4950)), t0 + 60) == [True] * 50, "newest ids kept"
    assert d.seen_many(keys("s", range(0, 50)), t0 + 60) == [False] * 50, "oldest ids evicted"


def test_bytes_per_id_is_small():
    d = Deduper(window_seconds=3600, max_ids=10_000_000)
    now = time.time()
    for start in range(0, 300_000, 1000):
        d.seen_many(keys("s", range(start, start + 1000)), now)
    d._flush(int((now - 1_577_836_800) * 10))
    assert d.nbytes() / len(d) <= 12.0


def test_save_and_load(tmp_path):
    d = Deduper(window_seconds=3600, max_ids=100_000, buffer_size=50)
    d.seen_many(keys("s", range(500)))
    d.save(tmp_path / "state.npz")
    e = Deduper(window_seconds=3600, max_ids=100_000)
    assert e.load(tmp_path / "state.npz") == 500
    assert e.seen_many(keys("s", range(490, 510))) == [True] * 10 + [False] * 10


def test_http_dedupe_inside_and_outside_window(sandbox_factory, receiver_factory, helpers):
    recv = receiver_factory()
    cfg = helpers.make_config([helpers.dest("d", recv.url)], dedupe={"window_seconds": 1.0})
    sb = sandbox_factory(cfg)
    batch = {"batch": [helpers.track(i) for i in range(5)]}
    assert sb.post("/v1/batch", batch).status_code == 200
    assert sb.post("/v1/batch", batch).json() == {"success": True}, "a duplicate is accepted, not delivered"
    assert sb.post("/v1/batch", batch, key="key-server").status_code == 200  # other source: new
    st = sb.wait_for(lambda s: s["delivered"].get("d") == 10)
    assert st["dedupe_hits"] == {"web": 5}
    time.sleep(1.3)  # the behaviour under test is the window's expiry: 1.0 s after the first post
    assert sb.post("/v1/batch", batch).status_code == 200  # outside the window: delivered again
    st = sb.wait_for(lambda s: s["delivered"].get("d") == 15)
    assert st["delivered"]["d"] == 15 and st["dedupe_hits"] == {"web": 5}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.integers(0, 60), max_size=30), st.integers(0, 15)),
        min_size=1,
        max_size=40,
    )
)
def test_tiers_match_a_plain_dict_model(calls):
    """Any mix of scalar (≤ 8 keys) and vectorized calls, repeats and expiries, across the buffer
    and both sorted tiers, answers exactly what a dict of last-remembered times answers."""
    d = Deduper(window_seconds=2.0, max_ids=1_000_000, buffer_size=4, mid_size=16)
    model: dict[int, int] = {}
    t = 1_800_000_000.0
    dups = 0
    for ids, advance in calls:
        t += advance / 10
        tick = tick_of(t)
        ks = keys("s", ids)
        expected = []
        for k in ks:
            dup = k in model and model[k] >= tick - 20
            if not dup:
                model[k] = tick
            expected.append(dup)
        assert d.seen_many(ks, t) == expected
        dups += expected.count(True)
    assert d.hits == dups
