"""The receiver's fast paths give exactly what their reference paths give.

- `parse_delivery` (simdjson) against `parse_delivery_reference` (msgspec, then orjson), on random
  bodies: nested objects holding the same key names, odd shapes, escapes, invalid JSON.
- `UserOrder` (a numpy hash table) against a dict walked row by row.
- The batched audit (`Audit.flush` over many queued requests) against auditing each request alone,
  and its out-of-order count against a row-by-row reference.
"""

from __future__ import annotations

import gzip
import json
import random
import time

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgen import ids
from loadgen.ledger import SentLedger
from monitor.audit import FLUSH_ROWS, Audit
from monitor.behaviours import DISCARD, RETRY
from monitor.config import DestinationConfig
from monitor.ledger_store import LedgerBook
from monitor.order import NO_USER, UserOrder, user_keys_of
from monitor.receiver import FAST_PARSER, BodyError, parse_delivery, parse_delivery_reference

KEYS = ("messageId", "userId", "anonymousId")
RUN = ids.run_id_from_name("fast-paths")
NOW_MS = 1_790_000_000_000

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(KEYS)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(KEYS), children, max_size=4)
    ),
    max_leaves=12,
)
message_ids = st.one_of(
    st.builds(
        lambda seq, style: ids.make_message_id(style, NOW_MS, RUN, 1, seq),
        st.integers(0, 2**38 - 1),
        st.sampled_from(list(ids.IdStyle)),
    ),
    st.text(max_size=50),
    st.integers(0, 2**40),
    st.none(),
)
events = st.fixed_dictionaries(
    {},
    optional={
        "messageId": message_ids,
        "userId": st.text(max_size=12) | json_values,
        "anonymousId": st.text(max_size=12) | json_values,
        "properties": json_values,  # may hold nested messageId / userId / anonymousId keys
        "context": st.fixed_dictionaries({"messageId": st.text(max_size=8), "userId": json_values}),
    },
)


def _dump(doc: object, pretty: bool) -> bytes:
    return json.dumps(doc, indent=1 if pretty else None).encode() if pretty else orjson.dumps(doc)


bodies = st.one_of(
    st.builds(_dump, st.lists(events, max_size=6), st.booleans()),
    st.builds(_dump, events, st.booleans()),
    st.builds(_dump, st.lists(events | json_values, max_size=5), st.booleans()),
    json_values.map(orjson.dumps),
    st.binary(max_size=80),
    st.builds(lambda b, cut: b[:cut], st.lists(events, max_size=3).map(orjson.dumps), st.integers(0, 200)),
    # ensure_ascii=True writes every non-ASCII character (and some keys) as \\u escapes
    st.builds(lambda doc: json.dumps(doc, ensure_ascii=True).encode(), st.lists(events, max_size=4)),
)


def _outcome(parse, body: bytes) -> object:
    try:
        return parse(body)
    except BodyError as exc:
        return ("error", exc.status, exc.code)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_parse_fast_equals_reference(body: bytes) -> None:
    assert _outcome(parse_delivery, body) == _outcome(parse_delivery_reference, body)


def test_fast_path_reads_only_top_level_keys() -> None:
    nested = [
        {
            "properties": {"messageId": "nested-1", "userId": "nested-user", "anonymousId": "n"},
            "context": {"traits": {"messageId": "nested-2"}},
            "event": "messageId",
            "messageId": "top-1",
            "userId": "top-user",
        },
        {"properties": {"messageId": "only-nested"}, "anonymousId": ""},
        {"list": [{"messageId": "in-a-list"}], "userId": "u3", "anonymousId": "a3"},
    ]
    body = orjson.dumps(nested)
    fast = FAST_PARSER.parse(body)
    assert fast is not None, "a plain array of objects must take the fast path"
    assert fast.message_ids == ["top-1", None, None]
    assert fast.users == ["top-user", None, "a3"]
    assert fast == parse_delivery_reference(body)


def test_realistic_bodies_take_the_fast_path() -> None:
    seqs = np.arange(100, dtype=np.uint64)
    body = orjson.dumps(
        [
            {"messageId": m.decode(), "anonymousId": f"anon-{i}", "properties": {"price": 1.5, "n": [1, 2]}}
            for i, m in enumerate(ids.make_message_ids(ids.IdStyle.AJS_NEXT, NOW_MS, RUN, 2, seqs))
        ]
    )
    fast = FAST_PARSER.parse(body)
    assert fast is not None and len(fast.message_ids) == 100
    assert fast == parse_delivery_reference(body)
    assert ids.decode_many(fast.message_ids).seq.tolist() == seqs.tolist()


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b"[1, 2", b"\xff\xfe", b'[{"messageId": "x"}] trailing', b'["\\ud800"]', b"[1e999]"],
)
def test_malformed_bodies_are_refused_by_both_paths(body: bytes) -> None:
    assert FAST_PARSER.parse(body) is None
    with pytest.raises(BodyError) as fast:
        parse_delivery(body)
    with pytest.raises(BodyError) as reference:
        parse_delivery_reference(body)
    assert (
        (fast.value.status, fast.value.code)
        == (reference.value.status, reference.value.code)
        == (
            400,
            "malformed",
        )
    )


def test_bodies_simdjson_refuses_but_json_allows_still_parse() -> None:
    """simdjson stops at 64-bit integers; such a body is valid JSON and reaches the reference path."""
    body = b'[{"messageId": "m", "userId": "u", "properties": {"big": 123456789012345678901234567890}}]'
    assert FAST_PARSER.parse(body) is None
    assert parse_delivery(body) == parse_delivery_reference(body)
    assert parse_delivery(body).message_ids == ["m"]
    assert FAST_PARSER.parse(b'[{"messageId": "m"}]') is not None  # the parser is usable afterwards


def test_duplicate_keys_read_one_occurrence_and_count_one_event() -> None:
    """RFC 8259 leaves repeated names undefined: path 1 reads the first, the reference the last."""
    body = b'[{"messageId": "first", "userId": "u", "messageId": "second"}]'
    assert parse_delivery(body).message_ids == ["first"]
    assert parse_delivery_reference(body).message_ids == ["second"]
    assert len(parse_delivery(gzip.decompress(gzip.compress(body))).message_ids) == 1


# --- per-user order ---------------------------------------------------------------------------------


def _order_reference(last: dict, keys: list[int], seqs: list[int]) -> int:
    out_of_order = 0
    for key, seq in zip(keys, seqs, strict=True):
        previous = last.get(key)
        if previous is None or seq > previous:
            last[key] = seq
        elif seq < previous:
            out_of_order += 1
    return out_of_order


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 40), st.integers(0, 2**32 - 1) | st.integers(0, 60)), max_size=80),
        max_size=12,
    ),
    salt=st.integers(0, 2**62),
)
def test_user_order_equals_row_by_row(batches: list[list[tuple[int, int]]], salt: int) -> None:
    table, reference = UserOrder(), {}
    for batch in batches:
        # hashes of the users' names: spread over the int64 range, as in the receiver
        keys = [hash(f"user-{u}-{salt}") for u, _ in batch]
        seqs = [s for _, s in batch]
        expected = _order_reference(reference, keys, seqs)
        got = table.check(np.array(keys, dtype=np.int64), np.array(seqs, dtype=np.uint32))
        assert got == expected
    assert len(table) == len(reference)


def test_user_order_grows_and_keeps_every_user() -> None:
    rng = np.random.default_rng(7)
    table, reference = UserOrder(), {}
    for _ in range(30):
        users = rng.integers(0, 50_000, 2_000)
        keys = [hash(f"u{u}") for u in users.tolist()]
        seqs = rng.integers(0, 1_000_000, 2_000).tolist()
        assert table.check(np.array(keys, dtype=np.int64), np.array(seqs, dtype=np.uint32)) == (
            _order_reference(reference, keys, seqs)
        )
    assert len(table) == len(reference) > 20_000
    assert table.nbytes() <= 4 * 20 * len(reference)  # at least a quarter full: 20 B a slot


def test_user_order_with_colliding_keys() -> None:
    """Keys that share their low bits all start in one bucket: full buckets, long probe chains."""
    rng = np.random.default_rng(11)
    table, reference = UserOrder(), {}
    pool = [(i << 24) - 5 * (i % 3) for i in range(1, 3000)]
    for _ in range(12):
        keys = [pool[i] for i in rng.integers(0, len(pool), 700).tolist()]
        seqs = rng.integers(0, 5_000, 700).tolist()
        assert table.check(np.array(keys, dtype=np.int64), np.array(seqs, dtype=np.uint32)) == (
            _order_reference(reference, keys, seqs)
        )
    assert len(table) == len(reference)


def test_user_keys_mark_missing_users() -> None:
    keys = user_keys_of(["a", None, "b", "a"])
    assert keys[1] == NO_USER and keys[0] == keys[3] == hash("a") and keys[2] == hash("b")


# --- batched audit -----------------------------------------------------------------------------------


def _requests(seed: int, count: int) -> list[tuple[str, list, list, float, str | None]]:
    """Random delivery requests: duplicates, foreign ids, canaries, other streams and runs, refusals."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        n = rng.randint(0, 40)
        rows_ids, rows_users = [], []
        for _ in range(n):
            kind = rng.random()
            stream = rng.choice((1, 2, 3))
            run = RUN if kind > 0.05 else RUN + 1
            seq = rng.randint(0, 400) + (rng.random() < 0.1) * (5 << 32)  # a second 32-bit range
            if kind < 0.03:
                mid = "foreign-" + str(i)
            elif kind < 0.05:
                mid = ids.make_message_id(ids.IdStyle.PLAIN, NOW_MS, RUN, ids.CANARY_STREAM, seq)
            else:
                mid = ids.make_message_id(
                    rng.choice(list(ids.IdStyle)), NOW_MS - rng.randint(0, 10**6), run, stream, seq
                )
            rows_ids.append(mid)
            rows_users.append(None if rng.random() < 0.1 else f"user-{rng.randint(0, 15)}")
        refusal = rng.choices((None, RETRY, DISCARD), weights=(8, 1, 1))[0]
        dest = rng.choice(("a", "b"))
        out.append((dest, rows_ids, rows_users, float(NOW_MS + i), refusal))
    return out


def _audit() -> Audit:
    ledgers = LedgerBook(lost_after_seconds=1.0)
    ledger = SentLedger(RUN, 1)
    ledger.record_accepted("web", range(0, 300), NOW_MS - 10_000)
    ledger.record_duplicates(range(0, 300, 7))
    ledgers.add(ledger.take_delta())
    audit = Audit({n: DestinationConfig(name=n) for n in ("a", "b")}, ledgers)
    audit.sweep(NOW_MS)  # seqs 0..299 of stream 1 are past their deadline: deliveries are late
    return audit


def _figures(audit: Audit) -> dict:
    doc = {}
    for name, dest in audit.destinations.items():
        for run in sorted(audit.runs_seen()):
            doc[name, run] = audit.stats(dest, run)
        doc[name, "foreign"] = dest.foreign_ids
        doc[name, "latency"] = {
            r: (h.count, h.buckets.tolist(), h.fine.tolist(), h.max_ms, round(h.sum_ms, 3))
            for r, h in dest.latency.items()
        }
        doc[name, "order"] = {k: c.out_of_order for k, c in dest.cells.items()}
    return doc


@pytest.mark.parametrize("seed", range(6))
def test_batched_audit_equals_request_by_request(seed: int) -> None:
    requests = _requests(seed, 300)
    one_by_one, batched = _audit(), _audit()
    canary_calls: dict[str, list] = {"one": [], "batched": []}
    one_by_one.canary_hook = lambda *a: canary_calls["one"].append((a[0], a[2].tolist(), a[4]))
    batched.canary_hook = lambda *a: canary_calls["batched"].append((a[0], a[2].tolist(), a[4]))
    for dest_name, message_ids, users, arrival, refusal in requests:
        one_by_one.record(one_by_one.destinations[dest_name], message_ids, users, arrival, refusal)
        one_by_one.flush()
        batched.record(batched.destinations[dest_name], message_ids, users, arrival, refusal)
    assert batched._pending  # still queued: the figures below make it flush
    assert _figures(batched) == _figures(one_by_one)
    assert sorted(canary_calls["batched"]) == sorted(canary_calls["one"]) != []

    # out of order, row by row over accepted first deliveries (after 400-refused ones are dropped)
    delivered: dict = {}
    discarded: dict = {}
    last: dict = {}
    expected: dict = {}
    for dest_name, message_ids, users, _, refusal in requests:
        decoded = ids.decode_many(message_ids)
        for row, user in enumerate(users):
            if not decoded.valid[row] or decoded.stream[row] == ids.CANARY_STREAM:
                continue
            run, stream, seq = int(decoded.run[row]), int(decoded.stream[row]), int(decoded.seq[row])
            cell = (dest_name, run, stream, seq >> 32)
            if refusal == DISCARD:
                discarded.setdefault(cell, set()).add(seq)
            if (
                refusal is not None
                or seq in discarded.get(cell, ())
                or seq in delivered.setdefault(cell, set())
            ):
                continue
            delivered[cell].add(seq)
            if user is not None:
                expected[cell] = expected.get(cell, 0) + _order_reference(
                    last.setdefault(cell, {}), [user], [seq & 0xFFFFFFFF]
                )
    got = {(d, *k): c.out_of_order for d, dest in batched.destinations.items() for k, c in dest.cells.items()}
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}


def test_queue_flushes_itself_and_before_every_read() -> None:
    audit = _audit()
    dest = audit.destinations["a"]
    seqs = np.arange(300, 310 + FLUSH_ROWS, dtype=np.uint64)
    message_ids = [m.decode() for m in ids.make_message_ids(ids.IdStyle.PLAIN, NOW_MS, RUN, 1, seqs)]
    audit.record(dest, message_ids[:10], ["u"] * 10, time.time() * 1000, None)
    assert audit._pending and not any(c.delivered for c in dest.cells.values())
    assert audit.stats(dest, RUN).delivered == 10  # a read flushes
    audit.record(dest, message_ids[10:], ["u"] * FLUSH_ROWS, time.time() * 1000, None)
    assert not audit._pending  # FLUSH_ROWS reached
    assert sum(len(c.delivered) for c in dest.cells.values()) == FLUSH_ROWS + 10
