"""The messageId scheme and the sent ledger: the two contracts every part relies on."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen import ids
from loadgen.ids import (
    MAX_RUN,
    MAX_SEQ,
    MAX_STREAM,
    IdStyle,
    decode_many,
    decode_message_id,
    make_message_id,
    make_message_ids,
    make_uuid,
)
from loadgen.ledger import LedgerDelta, LedgerFormatError, SentLedger

fields = st.tuples(
    st.integers(0, (1 << 48) - 1),
    st.integers(0, MAX_RUN),
    st.integers(0, MAX_STREAM),
    st.integers(0, MAX_SEQ),
)


@given(fields, st.sampled_from(list(IdStyle)))
def test_every_id_is_a_valid_uuidv7_that_decodes_to_what_was_encoded(values, style):
    sent_ms, run, stream, seq = values
    message_id = make_message_id(style, sent_ms, run, stream, seq)
    parsed = uuid.UUID(message_id[-36:])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert int(parsed.hex[:12], 16) == sent_ms  # the UUIDv7 timestamp is the send time
    decoded = decode_message_id(message_id)
    assert decoded is not None
    assert (decoded.sent_ms, decoded.run, decoded.stream, decoded.seq) == values


def test_library_formats_wrap_the_uuid():
    u = make_uuid(1_700_000_000_123, 7, 3, 42)
    assert make_message_id(IdStyle.PLAIN, 1_700_000_000_123, 7, 3, 42) == u
    assert make_message_id(IdStyle.AJS_NEXT, 1_700_000_000_123, 7, 3, 42) == f"ajs-next-1700000000123-{u}"
    assert make_message_id(IdStyle.NODE_NEXT, 1_700_000_000_123, 7, 3, 42) == f"node-next-1700000000123-{u}"


def test_vectorised_encoding_matches_the_scalar_one_and_decodes_in_bulk():
    seqs = np.array([0, 1, 2, 10**9, MAX_SEQ], dtype=np.uint64)
    ids = make_message_ids(IdStyle.AJS_NEXT, 1_700_000_000_000, 513, 9, seqs)
    assert [i.decode() for i in ids] == [
        make_message_id(IdStyle.AJS_NEXT, 1_700_000_000_000, 513, 9, int(s)) for s in seqs
    ]
    decoded = decode_many(ids)
    assert decoded.valid.all()
    assert decoded.seq.tolist() == seqs.tolist()
    assert set(decoded.run.tolist()) == {513} and set(decoded.stream.tolist()) == {9}


def test_two_streams_never_share_an_id():
    a = set(make_message_ids(IdStyle.PLAIN, 1_700_000_000_000, 1, 0, np.arange(5000)))
    b = set(make_message_ids(IdStyle.PLAIN, 1_700_000_000_000, 1, 1, np.arange(5000)))
    assert len(a) == len(b) == 5000 and not a & b


@pytest.mark.parametrize(
    "foreign",
    [
        str(uuid.uuid4()),
        "ajs-next-1700000000000-" + str(uuid.uuid4()),
        "",
        "x" * 36,
        "a" * 101,
        b"\xff" * 40,
        42,
        None,
    ],
)
def test_foreign_and_malformed_ids_are_marked_not_crashing(foreign):
    decoded = decode_many([make_uuid(1, 2, 3, 4), foreign])
    assert decoded.valid.tolist() == [True, False]


_ours = st.tuples(
    st.sampled_from(list(IdStyle)),
    st.integers(0, ids.MAX_MS),
    st.integers(0, MAX_RUN),
    st.integers(0, MAX_STREAM),
    st.integers(0, MAX_SEQ),
).map(lambda t: make_message_id(*t))
_strings = st.one_of(
    _ours,
    _ours.map(str.upper),
    st.builds(lambda: str(uuid.uuid4())),
    st.text(min_size=30, max_size=110),
    st.text(alphabet="0123456789abcdefABCDEF- \t", min_size=36, max_size=36),
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.one_of(_strings, _strings, _strings, st.none(), st.integers(), st.binary()), max_size=30)
)
def test_the_fast_decoder_agrees_with_the_reference_one(rows):
    fast, reference = decode_many(rows), ids._decode_any(rows)
    assert np.array_equal(fast.valid, reference.valid)
    valid = reference.valid
    for name in ("run", "stream", "seq", "sent_ms"):
        assert np.array_equal(getattr(fast, name)[valid], getattr(reference, name)[valid]), name


def test_the_fast_path_takes_plain_wrapped_and_uppercase_ids():
    rows = [make_message_id(IdStyle.NODE_NEXT, 123, 4, 5, 6), make_uuid(1, 2, 3, 4).upper()]
    decoded = ids._decode_strings([rows[0], rows[0].upper(), rows[1]])
    assert decoded is not None and decoded.valid.tolist() == [True, True, True]
    assert decoded.seq.tolist() == [6, 6, 4]


def test_out_of_range_fields_are_refused_by_name():
    with pytest.raises(ValueError, match="stream=4096"):
        make_uuid(1, 1, MAX_STREAM + 1, 1)


def test_ledger_deltas_round_trip_and_restore_after_a_failed_post():
    ledger = SentLedger(run=7, stream=2, run_name="nightly")
    ledger.record_accepted("ios", range(0, 20), sent_ms=1_000)
    ledger.record_accepted("web", [20, 22], sent_ms=1_005)
    ledger.record_rejected([21], sent_ms=1_005)
    ledger.record_abandoned(range(23, 25), sent_ms=1_010)
    ledger.record_duplicates([3])
    delta = LedgerDelta.from_wire(ledger.take_delta().to_wire())
    assert (delta.run, delta.stream, delta.run_name, delta.sent_until_ms) == (7, 2, "nightly", 1_010)
    assert list(delta.accepted_all()) == [*range(20), 20, 22]
    assert (
        list(delta.rejected) == [21] and list(delta.abandoned) == [23, 24] and list(delta.duplicates) == [3]
    )
    assert ledger.take_delta().is_empty()

    ledger.record_accepted("ios", [30], sent_ms=2_000)
    failed = ledger.take_delta()
    ledger.record_accepted("ios", [31], sent_ms=2_001)
    ledger.restore(failed)  # the post failed: nothing accepted may be forgotten
    final = ledger.take_delta(final=True)
    assert list(final.accepted["ios"]) == [30, 31] and final.final and final.sent_until_ms == 2_001


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "not JSON"),
        (b'{"format": "other"}', "'format'"),
        (b'{"format": "cdp-harness/ledger", "version": 9}', "'version'"),
        (
            b'{"format": "cdp-harness/ledger", "version": 1, "run": -1, "stream": 0, "sent_until_ms": 0}',
            "'run'",
        ),
        (
            b'{"format": "cdp-harness/ledger", "version": 1, "run": 1, "stream": 0, "sent_until_ms": 0, '
            b'"accepted": {"ios": "@@@"}}',
            "'accepted.ios' is not base64",
        ),
        (
            b'{"format": "cdp-harness/ledger", "version": 1, "run": 1, "stream": 0, "sent_until_ms": 0, '
            b'"rejected": "AAAA"}',
            "'rejected' is not a serialized roaring bitmap",
        ),
    ],
)
def test_a_bad_ledger_document_names_the_field(body, field):
    """Each bad field is named; absent bitmaps are simply empty."""
    with pytest.raises(LedgerFormatError, match=field):
        LedgerDelta.from_wire(body)


def test_a_delta_without_bitmaps_is_an_empty_one():
    body = b'{"format": "cdp-harness/ledger", "version": 1, "run": 1, "stream": 0, "sent_until_ms": 5}'
    assert LedgerDelta.from_wire(body).is_empty()
