"""`loadgen.external.HarnessIds`: ids in a run's id space, outcomes recorded in that run's ledger."""

from __future__ import annotations

import threading

import pytest

from loadgen import ids
from loadgen.external import DEFAULT_STREAM, HarnessIds
from loadgen.ledger import LedgerDelta


def test_ids_decode_to_the_run_stream_and_consecutive_seqs():
    harness_ids = HarnessIds("ext-run", stream=2100, first_seq=5, clock=lambda: 1_795_000_000.5)
    out = [*harness_ids.new_ids(3), harness_ids.new_id()]
    parts = [ids.decode_message_id(m) for m in out]
    assert [p.seq for p in parts] == [5, 6, 7, 8]
    assert {(p.run, p.stream, p.sent_ms) for p in parts} == {(ids.run_id_from_name("ext-run"), 2100, 1_795_000_000_500)}


def test_wrapped_styles_decode_too():
    message_id = HarnessIds("r", style=ids.IdStyle.AJS_NEXT).new_id()
    assert message_id.startswith("ajs-next-") and ids.decode_message_id(message_id).stream == DEFAULT_STREAM


def test_outcomes_land_in_the_ledger_delta():
    harness_ids = HarnessIds("ext-run", source="python")
    sent = harness_ids.new_ids(10)
    assert harness_ids.accepted(sent[:6]) == 6
    harness_ids.accepted(sent[6:7], source="web")
    harness_ids.rejected(sent[7:8])
    harness_ids.abandoned(sent[8:])
    assert harness_ids.totals == {"accepted": 7, "rejected": 1, "abandoned": 2, "duplicates": 0}
    delta = LedgerDelta.from_wire(harness_ids.take_delta(final=True).to_wire())
    assert delta.final and delta.run_name == "ext-run" and delta.stream == DEFAULT_STREAM
    assert list(delta.accepted["python"]) == list(range(6)) and list(delta.accepted["web"]) == [6]
    assert list(delta.rejected) == [7] and list(delta.abandoned) == [8, 9]
    assert delta.sent_until_ms == ids.decode_message_id(sent[-1]).sent_ms
    assert harness_ids.take_delta().is_empty()


def test_a_failed_post_is_restored():
    harness_ids = HarnessIds("ext-run")
    harness_ids.accepted(harness_ids.new_ids(4))
    harness_ids.restore(harness_ids.take_delta())
    assert len(harness_ids.take_delta().accepted_all()) == 4


def test_ids_from_elsewhere_are_refused_by_name():
    harness_ids = HarnessIds("ext-run", stream=2048)
    other = HarnessIds("ext-run", stream=2049).new_id()
    with pytest.raises(ValueError, match="was not handed out"):
        harness_ids.accepted([harness_ids.new_id(), other])
    with pytest.raises(ValueError, match="not handed out"):
        harness_ids.rejected(["order-17"])
    assert harness_ids.totals["accepted"] == 0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="run name"):
        HarnessIds("")
    with pytest.raises(ValueError, match="stream 4095"):
        HarnessIds("r", stream=4095)
    with pytest.raises(ValueError, match="first_seq"):
        HarnessIds("r", first_seq=-1)
    with pytest.raises(ValueError, match="no seqs left"):
        HarnessIds("r", first_seq=ids.MAX_SEQ).new_ids(2)


def test_threads_never_get_the_same_id():
    harness_ids = HarnessIds("ext-run")
    got: list[list[str]] = [[] for _ in range(8)]

    def work(out: list[str]) -> None:
        for _ in range(500):
            message_id = harness_ids.new_id()
            out.append(message_id)
            harness_ids.accepted([message_id])

    threads = [threading.Thread(target=work, args=(out,)) for out in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [m for out in got for m in out]
    assert len(set(every)) == 4000 and harness_ids.totals["accepted"] == 4000
    assert len(harness_ids.take_delta().accepted_all()) == 4000
