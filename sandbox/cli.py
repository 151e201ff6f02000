"""`harness sandbox`: run the bundled reference pipeline (ingest → dedupe → queues → webhooks)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="YAML config (default: the bundled sandbox/default.yaml)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8088, help="port to listen on (default: 8088)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--check", action="store_true", help="check the config and exit (2 if it is bad)")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import sys

    from sandbox.auth import check_bind, token_from_env
    from sandbox.config import ConfigError, load_config

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"sandbox: bad config: {exc}", file=sys.stderr)
        return 2
    token = token_from_env()
    refusal = check_bind(args.host, token)
    if refusal:
        print(f"sandbox: {refusal}", file=sys.stderr)
        return 2
    if args.check:
        return 0
    problem = _port_problem(args.host, args.port)
    if problem:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {problem}", file=sys.stderr)
        return 1
    return asyncio.run(_serve(config, args.host, args.port, token))


def _port_problem(host: str, port: int) -> str | None:
    """granian binds with SO_REUSEPORT on Linux, so a second sandbox on a busy port would silently
    share its traffic; a plain bind first turns that into a clear error."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # allow TIME_WAIT leftovers only
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


async def _serve(config, host: str, port: int, token: str | None) -> int:
    import asyncio
    import gc
    import logging
    import signal

    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    from sandbox.app import Pipeline, SandboxApp

    log = logging.getLogger("sandbox")
    pipeline = Pipeline(config)
    await pipeline.start()
    # Every request allocates many short-lived dicts; with the default gen-0 threshold (700) the
    # cyclic GC runs constantly and rescans queued messages (~30% of ingest CPU, measured). The hot
    # path creates no reference cycles, so collect rarely and leave start-up objects out of it.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    server = Server(
        SandboxApp(pipeline, token),
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        http=HTTPModes.http1,
        websockets=False,
        log_enabled=False,
        backlog=1024,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    log.info(
        "sandbox listening on http://%s:%d (%d source(s), %d destination(s))",
        host,
        port,
        len(config.sources),
        len(config.destinations),
    )
    try:
        await server.serve()
    finally:
        await pipeline.stop()
        # granian's Rust runtime threads are still winding down when serve() returns; if the
        # interpreter finalizes meanwhile, pyo3 aborts one with "panic in a function that cannot
        # unwind" on stderr (seen in about 1 of 10 exits, none in 45 with this pause)
        await asyncio.sleep(0.1)
        log.info("sandbox stopped")
    return 0
