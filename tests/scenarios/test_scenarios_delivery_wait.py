"""The end-of-run delivery wait: when it stops, and what it says about messages still arriving."""

from __future__ import annotations

from harness.delivery_wait import DeliveryWait


def _summary(*, final: bool = True, lost_after: float = 20.0, **counts: int) -> dict:
    row = {"pending": 0, "lost": 0, "delivered": 100, **counts}
    return {
        "lost_after_seconds": lost_after,
        "runs": [{"run": 7, "streams": [{"stream": 0, "final": final}]}],
        "destinations": {"webhook": row},
    }


def test_a_settled_run_stops_at_once_and_an_unfinished_ledger_waits():
    assert DeliveryWait(0.0, 30.0, 7, 1).over(0.5, _summary())
    assert not DeliveryWait(0.0, 30.0, 7, 1).over(0.5, _summary(final=False))
    assert not DeliveryWait(0.0, 30.0, 7, 1).over(0.5, None)
    assert DeliveryWait(0.0, 30.0, 7, 1).over(30.0, None)


def test_lost_messages_keep_the_wait_going_to_its_end_so_late_ones_can_arrive():
    wait = DeliveryWait(0.0, 30.0, 7, 1)
    assert not wait.over(5.0, _summary(lost=3))
    assert not wait.over(29.0, _summary(lost=3))
    assert wait.over(30.0, _summary(lost=3))
    assert DeliveryWait(0.0, 30.0, 7, 1).over(6.0, _summary(lost=0, late=3))


def test_pending_past_the_wait_waits_for_the_loss_deadline_within_a_bound():
    wait = DeliveryWait(0.0, 10.0, 7, 1)
    assert not wait.over(10.0, _summary(pending=2, lost_after=20.0))
    assert not wait.over(22.9, _summary(pending=2, lost_after=20.0))
    assert wait.over(23.0, _summary(pending=2, lost_after=20.0))
    # a monitor whose deadline is hours: at most MAX_DEADLINE_WAIT past --delivery-wait
    assert wait.over(610.0, _summary(pending=2, lost_after=36_000.0))
    assert not DeliveryWait(0.0, 10.0, 7, 1).over(609.0, _summary(pending=2, lost_after=36_000.0))


def test_arrivals_in_the_last_seconds_say_messages_were_still_arriving():
    wait = DeliveryWait(0.0, 30.0, 7, 1)
    for t, delivered in ((1.0, 10), (2.0, 20), (3.0, 50), (4.0, 90)):
        wait.over(t, _summary(lost=1, delivered=delivered))
    summary = wait.summary(4.5)
    assert summary["arriving_at_end"] == {"webhook": 70} and summary["window_seconds"] == 2.0
    assert summary["seconds"] == 4.5
