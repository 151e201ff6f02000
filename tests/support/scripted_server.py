"""A raw HTTP/1.1 server answering with each framing and failure a real ingest API or proxy can
produce (by path), and the requests the client tests send it."""

from __future__ import annotations

from loadgen.traffic import PreparedRequest

# Written to a file and run as its own process with the port as its argument (a real socket server).
SCRIPTED_SERVER = r"""
import socket, sys, time
ANSWERS = {
    b"/healthz": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7;ext=1\r\n{\"succe\r\n"
                 b"A\r\nss\": true}\r\n0\r\nX-Trailer: 1\r\n\r\n",
    b"/close-delimited": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"success\": true}",
    b"/http10": b"HTTP/1.0 200 OK\r\nContent-Length: 17\r\n\r\n{\"success\": true}",
    b"/rate-limited": b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\nContent-Length: 0\r\n\r\n",
    b"/no-content": b"HTTP/1.1 204 No Content\r\n\r\n",
    b"/garbage": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    b"/extra-bytes": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
    b"/early-hints": b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
}
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(64)
import threading
def serve(conn):
    buffer = b""
    served = 0
    while True:
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                conn.close(); return
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(buffer) < length:
            buffer += conn.recv(65536)
        buffer = buffer[length:]
        path = b"/" + head.split(b" ")[1].rsplit(b"/", 1)[1]  # the last segment, after any base path
        served += 1
        if path == b"/slow":
            time.sleep(30); conn.close(); return
        if path == b"/stale" and served > 1:
            conn.close(); return  # an idle keep-alive connection the server dropped
        if path == b"/split-slow":  # half the answer now, the rest later
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
            time.sleep(0.5)
            conn.sendall(b"ngth: 17\r\n\r\n{\"success\": true}")
            continue
        if path == b"/echo-head":
            body = head
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            continue
        conn.sendall(ANSWERS.get(path, b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"success\": true}"))
        if path in (b"/close-delimited", b"/http10", b"/garbage", b"/extra-bytes"):
            conn.close(); return
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def request(path: str, body: bytes = b'{"a": 1}', headers: dict | None = None) -> PreparedRequest:
    return PreparedRequest(
        source="http",
        library="http",
        method="POST",
        path=path,
        headers=headers or {"Content-Type": "application/json"},
        body=body,
        seqs=range(0),
        message_count=0,
        sent_ms=0,
    )
