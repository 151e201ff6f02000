"""The monitor's own HTTP/1.1 server over raw loopback sockets: pipelining, chunked bodies,
100-continue, oversized and unparseable requests."""

from __future__ import annotations

import socket

import orjson
import pytest

from loadgen import ids

pytestmark = pytest.mark.e2e


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _read_responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """`count` responses (status, body) read off the socket, in order."""
    data, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(v) for k, _, v in (h.partition(b":") for h in lines[1:]) if k.lower() == b"content-length"
        )
        while len(data) < length:
            data += sock.recv(65536)
        out.append((status, data[:length]))
        data = data[length:]
        if status == 100:
            count += 1
    return out


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_pipelined_chunked_continue_and_bad_requests(start_monitor, events):
    mon = start_monitor({"destinations": {"hook": {}}, "max_body_bytes": 4096})
    run = ids.run_id_from_name("http-server")
    bodies = [orjson.dumps(events(run, 1, [seq])) for seq in range(3)]

    with _connect(mon.url) as sock:  # three requests in one write: three answers, in order
        sock.sendall(
            b"".join(_post("/webhook/hook", body) for body in bodies[:2])
            + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        answers = _read_responses(sock, 3)
        assert [status for status, _ in answers] == [200, 200, 200]
        assert answers[0][1] == b'{"success":true}' and orjson.loads(answers[2][1]) == {"ok": True}

        chunked = bodies[2]
        half = len(chunked) // 2
        sock.sendall(
            b"POST /webhook/hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
            % (half, chunked[:half], len(chunked) - half, chunked[half:])
        )
        assert _read_responses(sock, 1) == [(200, b'{"success":true}')]

    with _connect(mon.url) as sock:  # Expect: 100-continue gets its interim answer first
        body = orjson.dumps(events(run, 1, [3]))
        sock.sendall(
            _post("/webhook/hook", b"", "Expect: 100-continue\r\n").replace(
                b"Content-Length: 0", b"Content-Length: %d" % len(body)
            )
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        assert _read_responses(sock, 1) == [(200, b'{"success":true}')]

    with _connect(mon.url) as sock:  # over the limit: 413 at once, the body never sent, then closed
        sock.sendall(b"POST /webhook/hook HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        status, answer = _read_responses(sock, 1)[0]
        assert status == 413 and orjson.loads(answer)["code"] == "too_large"
        assert sock.recv(10) == b""

    with _connect(mon.url) as sock:  # not HTTP: 400 and closed
        sock.sendall(b"\x00\x01garbage\r\n\r\n")
        status, answer = _read_responses(sock, 1)[0]
        assert status == 400 and orjson.loads(answer)["code"] == "bad_request"
        assert sock.recv(10) == b""

    hook = mon.summary(run)["destinations"]["hook"]
    assert hook["delivered"] == 4 and hook["duplicates"] == 0
    assert mon.summary()["receiver"]["malformed_bodies"] == 1  # the oversized one
