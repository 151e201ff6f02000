"""The duplicate plan: accepted messages come back with the same messageId, after the configured delay."""

from __future__ import annotations

import dataclasses

from loadgen.profile import DelayClass


def _profile(profile, **changes):
    base = dict(bad_input_share=0.0, replay_share=0.0, duplicate_share=0.1,
                duplicate_delays=(DelayClass("immediate", 1.0, 0.0, 0.0),))  # fmt: skip
    base.update(changes)
    return dataclasses.replace(profile, **base)


def test_accepted_messages_are_resent_with_the_same_bytes(make_gen, profile, messages_of):
    now = [1_795_000_000.0]
    gen = make_gen(prof=_profile(profile), clock=lambda: now[0])
    originals: dict[int, dict] = {}
    failed: set[int] = set()
    duplicates = []
    for step in range(3000):
        now[0] += 0.001
        source = ("node", "web", "android")[step % 3]
        req = gen.next_request(source)
        if req.kind == "duplicate":
            duplicates.append(req)
            continue
        for seq, message in zip(req.seqs, messages_of(req), strict=True):
            originals[seq] = message
        # the first few answers are errors or timeouts: nothing from them may come back
        if step > 30:
            gen.on_answer(req, 200)
        else:
            failed.update(req.seqs)
            gen.on_answer(req, None if step % 2 else 503)
    assert duplicates
    resent = 0
    for dup in duplicates:
        assert dup.seqs and dup.message_count == len(dup.seqs)
        items = messages_of(dup)
        for seq, message in zip(dup.seqs, items, strict=True):
            original = originals[seq]
            if "sentAt" in original:  # a browser request: sentAt is the re-send's own
                original = {**original, "sentAt": message["sentAt"]}
            assert message == original  # same messageId, same timestamp, same everything
            assert seq not in failed
            resent += 1
        lib = gen.library_of(dup.source)
        assert dup.path == (lib.path if lib.batches else dup.path) and len(items) <= max(1, lib.flush_at)
    total = len(originals)
    assert 0.05 < resent / total < 0.15  # the configured 10%


def test_delays_and_the_memory_bound(make_gen, profile):
    now = [1_795_000_000.0]
    prof = _profile(profile, duplicate_share=1.0, duplicate_max_pending=500,
                    duplicate_delays=(DelayClass("minutes", 1.0, 60.0, 120.0),))  # fmt: skip
    gen = make_gen(prof=prof, clock=lambda: now[0])
    for _ in range(100):
        gen.on_answer(gen.next_request("node"), 200)
    plan = gen.duplicates
    assert plan.pending == 500 and plan.dropped > 0  # bounded
    now[0] += 59
    assert gen.next_request("node").kind == "event"  # not due before the delay
    now[0] += 62
    req = gen.next_request("node")
    assert req.kind == "duplicate" and req.message_count == gen.library_of("node").flush_at


def test_rejected_items_are_never_duplicated(make_gen, profile):
    gen = make_gen(prof=_profile(profile, duplicate_share=1.0))
    req = gen.bad_request("node", "missing_user_id")
    assert req.expected_status == 200 and req.rejected_seqs
    req.messages = None  # bad requests carry no reusable messages
    gen.on_answer(req, 200)
    assert gen.duplicates.pending == 0
    ok = gen.next_request("node")
    gen.on_answer(ok, 200, accepted_seqs=list(ok.seqs)[:3])
    assert gen.duplicates.pending == 3
