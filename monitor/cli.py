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
    parser.add_argument(
        "--port", type=int, default=8090, help="port to listen on (default 8090; 8089 is Locust's web UI)"
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        default=None,
        help="keep the audit state in DIR (a snapshot plus a log of every change), so a restarted "
        "monitor on the same DIR continues the audit where it stopped (default: memory only)",
    )


def run(args: argparse.Namespace) -> int:  # returns only on a config error
    import asyncio
    import logging

    from monitor.app import serve
    from monitor.auth import check_bind, token_from_env
    from monitor.config import ConfigError, load_config
    from monitor.durable import StateError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"harness monitor: {exc}", file=sys.stderr)
        return 2
    token = token_from_env()
    refusal = check_bind(args.host, token)
    if refusal:
        print(f"harness monitor: {refusal}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config, args.host, args.port, token, args.state_dir))
    except StateError as exc:
        print(f"harness monitor: --state-dir {args.state_dir}: {exc}", file=sys.stderr)
        return 2
    # granian's embedded Rust runtime panics if the interpreter finalizes while its threads
    # still exist; everything is stopped and flushed by now, so leave without finalizing.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
