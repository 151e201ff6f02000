"""Which send a delivered copy came from (`monitor.copies`), and how the audit counts leaks and duplicates."""

from __future__ import annotations

import numpy as np

from monitor.audit import Cell
from monitor.copies import later_send_rows
from tests.monitor.conftest import iso_ms

T = 1_796_000_000_123  # a send time in ms


def test_the_first_sends_copies_say_so_and_a_later_sentAt_is_a_re_send():
    sent_ms = np.array([T, T, T, T + 7], dtype=np.uint64)
    texts = [iso_ms(T), iso_ms(T + 2500), None, iso_ms(T + 7)]
    assert later_send_rows(texts, sent_ms).tolist() == [False, True, False, False]


def test_other_spellings_of_the_same_instant_are_the_first_send():
    sent_ms = np.array([T, T, T], dtype=np.uint64)
    same = ["2026-11-30T00:53:20.123+00:00", "2026-11-30T00:53:20.123000", "not a time"]
    assert iso_ms(T) == "2026-11-30T00:53:20.123Z"
    assert later_send_rows(same, sent_ms) is None
    assert later_send_rows(None, sent_ms) is None
    later = later_send_rows(["2026-11-30T01:53:20.123+01:00", "2026-11-30T00:53:21Z", None], sent_ms)
    assert later.tolist() == [False, True, False]


def _seqs(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint32)


def _mask(*values: bool) -> np.ndarray:
    return np.array(values, dtype=bool)


def test_a_cell_tells_leaks_from_duplicates_in_any_arrival_order():
    cell = Cell()
    cell.accept(_seqs(1, 2, 3), None)
    cell.accept(_seqs(1), None)  # the pipeline delivered 1 twice
    cell.accept(_seqs(2, 2), None, _mask(True, True))  # 2's re-send passed the dedupe, delivered twice
    cell.accept(_seqs(4), None, _mask(True))  # 4's re-send first ...
    cell.accept(_seqs(4, 4), None)  # ... then its first send, twice
    cell.accept(_seqs(4), None, _mask(True))  # and the re-send again
    assert len(cell.resent) == 2  # leaks: 2 and 4
    assert cell.duplicate_deliveries == 1 + 1 + 1 + 1  # 1, 2's re-send, 4's first send, 4's re-send
    assert cell.arrivals == 10 and len(cell.delivered) == 4
    assert cell.arrivals == len(cell.delivered) + len(cell.resent) + cell.duplicate_deliveries
    assert not cell.resent_only  # 4's first send arrived after its re-send


def test_a_re_send_whose_first_send_never_arrived_is_a_leak_delivered_once():
    cell = Cell()
    cell.accept(_seqs(1, 2), None, _mask(True, False))
    assert len(cell.resent) == 1 and list(cell.resent_only) == [1] and cell.duplicate_deliveries == 0
    cell.accept(_seqs(1), None, _mask(True))
    assert cell.duplicate_deliveries == 1 and list(cell.resent_only) == [1]
    cell.accept(_seqs(1), None)
    assert cell.duplicate_deliveries == 1 and not cell.resent_only


def test_a_cell_without_sentAt_counts_every_repeat_as_a_duplicate():
    cell = Cell()
    cell.accept(_seqs(1, 2, 3, 3), None)
    cell.accept(_seqs(1, 2), None)
    assert cell.duplicate_deliveries == 3 and not cell.resent
