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
from typing import Any

from loadgen.dialects import DIALECTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="default", help="profile YAML file, or 'default' (the bundled one)"
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


def run(args: argparse.Namespace) -> int:
    import numpy as np
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
    # requests in proportion to each source's message share / messages per request
    weights = np.array([gen.sources[s] / gen.mean_messages_per_request(s) for s in names])
    order = np.random.default_rng([args.seed, 7]).choice(
        len(names), size=args.count, p=weights / weights.sum()
    )
    out = sys.stdout.buffer
    for index in order.tolist():
        req = gen.next_request(names[index])
        line = {
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
        out.write(orjson.dumps(line) + b"\n")
        gen.on_answer(req, req.expected_status)
    out.flush()
    return 0
