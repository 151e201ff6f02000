"""`harness monitor`: run the delivery monitor."""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="YAML file of destinations, behaviours, deadline, canary and probes "
        "(default: the bundled monitor/default.yaml)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8089, help="port to listen on (default 8089)")
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="receiver processes sharing the port, one exact audit in the first (default 1)",
    )
    # internal: how the first process starts the others (monitor/workers.py)
    parser.add_argument("--worker-socket", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:  # returns only on a config error
    import asyncio
    import logging

    try:
        import uvloop
    except ImportError:  # not on every platform (Windows)
        uvloop = None

    from monitor.app import serve
    from monitor.config import ConfigError, load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"harness monitor: {exc}", file=sys.stderr)
        return 2
    run_loop = uvloop.run if uvloop is not None else asyncio.run  # uvloop: about half the CPU per request
    if args.worker_socket:
        from monitor.workers import serve_worker

        run_loop(serve_worker(config, args.host, args.port, args.worker_socket, args.worker_index))
    elif args.workers > 1:
        from monitor.workers import serve_primary

        run_loop(serve_primary(config, args))
    else:
        run_loop(serve(config, args.host, args.port))
    # everything is stopped and flushed by now: leave without finalizing the interpreter
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
