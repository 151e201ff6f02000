"""The lean HTTP client against real servers on loopback: the sandbox, and a server that answers
with each framing and failure a real ingest API or proxy can produce."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.ingest_client import IngestClient
from harness.processes import free_port
from tests.support.scripted_server import request


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/plain", 200, b'{"success": true}'),
        ("/chunked", 200, b'{"success": true}'),
        ("/close-delimited", 200, b'{"success": true}'),
        ("/http10", 200, b'{"success": true}'),
        ("/no-content", 204, b""),
    ],
)
def test_every_response_framing_is_read_to_its_end(scripted: str, path: str, status: int, body: bytes):
    client = IngestClient(scripted)
    try:
        for _ in range(3):  # the connection stays usable (or is reopened) after each framing
            answer = client.send(request(path))
            assert (answer.status, answer.body, answer.error) == (status, body, "")
    finally:
        client.close()


def test_a_body_larger_than_the_socket_buffer_is_sent_whole(scripted: str):
    client = IngestClient(scripted)
    try:
        body = b"x" * 8_000_000  # far beyond one send(): the rest goes out with sendall
        answer = client.send(request("/echo-head", body=body))
        assert answer.status == 200 and b"content-length: 8000000" in answer.body.lower()
        assert client.send(request("/plain")).status == 200  # the server read exactly that many bytes
    finally:
        client.close()


def test_retry_after_is_read_and_headers_are_sent_as_given(scripted: str):
    client = IngestClient(scripted + "/base")
    try:
        answer = client.send(request("/echo-head", headers={"Authorization": "Basic eDo=", "X-A": "b"}))
    finally:
        client.close()
    head = answer.body.decode()
    assert head.startswith("POST /base/echo-head HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{scripted.rsplit(':', 1)[1]}\r\n" in head
    assert "\r\nAuthorization: Basic eDo=\r\nX-A: b\r\nContent-Length: 8" in head
    client = IngestClient(scripted)
    try:
        assert client.send(request("/rate-limited")).retry_after == 3.0
    finally:
        client.close()


def test_a_kept_alive_connection_the_server_dropped_is_reopened_once(scripted: str):
    client = IngestClient(scripted)
    try:
        answers = [client.send(request("/stale")) for _ in range(4)]
    finally:
        client.close()
    assert [a.status for a in answers] == [200, 200, 200, 200]


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/garbage", "ProtocolError: not an HTTP/1.x status line"),
        ("/extra-bytes", "ProtocolError: bytes after the response"),
        ("/early-hints", "ProtocolError: interim answer 103"),
    ],
)
def test_answers_that_cannot_be_framed_are_errors_not_crashes(scripted: str, path: str, error: str):
    client = IngestClient(scripted)
    try:
        answer = client.send(request(path))
        assert answer.status is None and answer.error.startswith(error), answer
        assert client.send(request("/plain")).status == 200  # a fresh connection after the bad one
    finally:
        client.close()


@pytest.mark.e2e
def test_no_answer_in_time_is_a_timeout_and_refused_is_an_error(scripted: str):
    client = IngestClient(scripted, network_timeout=0.3)
    try:
        answer = client.send(request("/slow"))
        assert answer.status is None and answer.error == "Timeout: no answer in time"
        assert client.send(request("/plain")).status == 200
    finally:
        client.close()
    refused = IngestClient(f"http://127.0.0.1:{free_port()}")
    answer = refused.send(request("/plain"))
    assert answer.status is None and "ConnectionRefusedError" in answer.error


def test_an_answer_whose_read_was_killed_is_finished_without_losing_bytes(scripted: str):
    """Locust kills stopping users asynchronously; the answer in flight must still be read whole."""
    import gevent

    client = IngestClient(scripted)
    try:
        sender = gevent.spawn(client.send, request("/split-slow"))
        gevent.sleep(0.25)  # the first half of the answer has arrived, the rest has not
        sender.kill()
        assert client.awaiting_answer
        answer = client.finish()
        assert (answer.status, answer.body) == (200, b'{"success": true}')
        assert not client.awaiting_answer
        assert client.send(request("/plain")).status == 200  # the connection is in step again
    finally:
        client.close()
    with pytest.raises(RuntimeError, match="no request is awaiting"):
        client.finish()


@pytest.mark.e2e
def test_ipv6_loopback_and_names_connect_too(tmp_path: Path):
    """An IPv6 literal and a host name take the other connect paths; both reach a real server."""
    import socket as stdlib_socket
    import threading

    for family, host in ((stdlib_socket.AF_INET6, "[::1]"), (stdlib_socket.AF_INET, "localhost")):
        try:
            listener = stdlib_socket.socket(family)
            listener.bind(("::1" if family == stdlib_socket.AF_INET6 else "127.0.0.1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer_once(listener=listener) -> None:
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                    data += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        server = threading.Thread(target=answer_once, daemon=True)
        server.start()
        client = IngestClient(f"http://{host}:{port}")
        try:
            assert client.send(request("/plain")).body == b"ok"
        finally:
            client.close()
            server.join(5)
            listener.close()


def test_bad_target_urls_are_refused_by_name():
    for url in ("ftp://127.0.0.1", "127.0.0.1:8088", "http://"):
        with pytest.raises(ValueError, match="target URL must be"):
            IngestClient(url)


@pytest.mark.e2e
def test_the_generators_requests_reach_the_sandbox_and_are_accepted(tmp_path: Path):
    """Every source's requests, as the traffic model builds them, through this client into the
    real sandbox from many connections at once, for longer than the network timeout: each gets
    the answer a correct API gives, and none times out (a gevent Timeout reused across exchanges
    kept its first expiry and fired on whatever request was in flight a timeout later)."""
    import gevent

    from harness.stack import SandboxStack
    from loadgen.profile import DEFAULT_PROFILE, load_profile
    from loadgen.traffic import TrafficGenerator

    profile = load_profile(DEFAULT_PROFILE)
    sources = list(profile.sources)
    stack = SandboxStack.start(tuple(sources), None, 30.0, 0.0)
    outcomes: list[tuple[str, str, int, int | None, str]] = []
    try:
        generator = TrafficGenerator(profile, seed=3, run=7, stream=0, write_keys=dict(stack.write_keys))

        def send_for(seconds: float, offset: int) -> None:
            client = IngestClient(stack.ingest_url, network_timeout=1.0)
            try:
                started, i = time.monotonic(), offset
                while time.monotonic() - started < seconds:
                    req = generator.next_request(sources[i % len(sources)])
                    answer = client.send(req)
                    outcomes.append((req.source, req.kind, req.expected_status, answer.status, answer.error))
                    generator.on_answer(req, answer.status, req.seqs if answer.status == 200 else [])
                    i += 1
                    gevent.sleep(0.01)
            finally:
                client.close()

        gevent.joinall([gevent.spawn(send_for, 3.0, k) for k in range(30)], raise_error=True)
    finally:
        stack.stop()
    assert {source for source, *_ in outcomes} == set(sources)
    wrong = [o for o in outcomes if o[3] != o[2]]
    assert len(outcomes) > 300 and not wrong, wrong[:5]
