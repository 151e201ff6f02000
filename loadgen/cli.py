"""`harness traffic`: print the HTTP requests the traffic model would send, one JSON object a line.

Each line holds the request as sent (method, path, headers) with its body decoded (gunzipped and
parsed) so anyone can read it, plus what the model knows about it (source, kind, expected answer).
The write keys are placeholders (`example-<source>-key`): this command never reads real secrets.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import zlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadgen.traffic import PreparedRequest, TrafficGenerator

from loadgen.dialects import DIALECTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--traffic-profile",
        "--profile",
        dest="profile",
        default="default",
        help="traffic profile YAML file, or 'default' (the bundled one); --profile is an alias",
    )
    parser.add_argument("--count", type=int, default=20, help="number of requests to print (default 20)")
    parser.add_argument(
        "--seed", type=int, default=1, help="random seed: the same seed gives the same traffic"
    )
    parser.add_argument("--run", type=int, default=1, help="run number written into the messageIds")
    parser.add_argument("--stream", type=int, default=0, help="stream number written into the messageIds")
    parser.add_argument("--source", action="append", help="only these sources (repeatable)")
    parser.add_argument(
        "--dialect",
        choices=DIALECTS,
        default=None,
        help="whose client libraries the sources speak as (default: the profile's, else segment)",
    )
    parser.add_argument(
        "--at",
        type=float,
        default=None,
        help="fixed send time, unix seconds (default: now); makes output repeatable",
    )


def decode_body(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The body as JSON, gunzipped first where the headers say gzip; an error note when it is neither."""
    import orjson

    raw = body
    if headers.get("Content-Encoding") == "gzip":
        try:
            raw = zlib.decompress(body, 31)
        except zlib.error as exc:
            return {"body": None, "body_error": f"not gzip: {exc}", "body_bytes": len(body)}
    try:
        return {"body": orjson.loads(raw)}
    except orjson.JSONDecodeError as exc:
        return {
            "body": None,
            "body_error": f"not JSON: {exc}",
            "body_text": raw[:2000].decode("utf-8", "replace"),
        }


def source_order(weights: Sequence[float], count: int, seed: int) -> list[int]:
    """`count` source indexes in proportion to `weights` (largest remainder: exact to one request, so
    a source whose requests carry hundreds of messages keeps its share), in a seeded random order."""
    import numpy as np

    p = np.asarray(weights, dtype=np.float64)
    p = p / p.sum()
    exact = p * count
    counts = np.floor(exact).astype(np.int64)
    short = count - int(counts.sum())
    counts[np.argsort(counts - exact, kind="stable")[:short]] += 1
    order = np.repeat(np.arange(len(p)), counts)
    np.random.default_rng([seed, 7]).shuffle(order)
    return order.tolist()


def request_lines(
    gen: TrafficGenerator, names: Sequence[str], count: int, seed: int
) -> Iterator[dict[str, Any]]:
    """What `harness traffic` prints: `count` requests from `names`, each source's requests in proportion
    to its message share / messages per request, every answer taken as the expected one. As under load,
    a due duplicate re-send goes out beside the slot's new events, not instead of them."""
    weights = [gen.sources[s] / gen.mean_messages_per_request(s) for s in names]
    printed = 0
    for index in source_order(weights, count, seed):
        # a due re-send rides on top: the slot still carries new events (as under load)
        while printed < count:
            req = gen.next_request(names[index])
            printed += 1
            yield _line(req)
            gen.on_answer(req, req.expected_status)
            if req.kind != "duplicate":
                break


def _line(req: PreparedRequest) -> dict[str, Any]:
    return {
        "method": req.method,
        "path": req.path,
        "headers": req.headers,
        **decode_body(req.body, req.headers),
        "source": req.source,
        "library": req.library,
        "kind": req.kind,
        "bad_case": req.bad_case,
        "expected_status": req.expected_status,
        "seqs": list(req.seqs),
        "rejected_seqs": req.rejected_seqs,
        "body_bytes": len(req.body),
    }


def run(args: argparse.Namespace) -> int:
    import orjson

    from loadgen.profile import DEFAULT_PROFILE, ProfileError, load_profile
    from loadgen.traffic import TrafficGenerator

    if args.count < 0:
        print("harness traffic: --count must be 0 or more", file=sys.stderr)
        return 2
    try:
        profile = load_profile(DEFAULT_PROFILE if args.profile == "default" else args.profile)
    except ProfileError as exc:
        print(f"harness traffic: {exc}", file=sys.stderr)
        return 2
    if args.dialect:
        profile = dataclasses.replace(profile, dialect=args.dialect)
    clock = (lambda: args.at) if args.at is not None else None
    kwargs = {"clock": clock} if clock else {}
    gen = TrafficGenerator(profile, seed=args.seed, run=args.run, stream=args.stream,
                           write_keys={s: f"example-{s}-key" for s in profile.sources}, **kwargs)  # fmt: skip
    names = [s for s in gen.sources if not args.source or s in args.source]
    if not names:
        print(
            f"harness traffic: no such source in the profile; it has {', '.join(gen.sources)}",
            file=sys.stderr,
        )
        return 2
    out = sys.stdout.buffer
    for line in request_lines(gen, names, args.count, args.seed):
        out.write(orjson.dumps(line) + b"\n")
    out.flush()
    return 0
