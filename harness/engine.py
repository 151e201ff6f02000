"""`SendingEngine`: one worker's sends, in one loop over many kept-alive connections.

Locust still decides who sends and when: each Locust user of a source attaches one connection to
that source's lane, and a `Feed` (the stream: pacing on the load shape, the traffic model's
requests, the accounting) says when each source's next slot is due and what it carries. The engine
does the per-request work that one greenlet, task and wait per request used to do: it writes the
pre-encoded request on an idle connection of the lane, reads the answers of every connection that
has one from one `epoll` (parked on gevent's hub only when nothing is ready, so Locust's own
greenlets keep running), applies the library's retry policy, and hands the answers to the feed in
batches. One request is in flight per connection, as the real libraries send them.

Plain `http://` targets only: a TLS target is driven by the users' own clients (`harness.users`).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import logging
import select
import socket
import time
from collections.abc import Mapping
from typing import NamedTuple, Protocol

import gevent
from gevent import get_hub, getcurrent
from gevent.monkey import get_original

from harness.ingest_client import NETWORK_TIMEOUT, ProtocolError, Target, _retry_after, frame_response
from loadgen.libraries import RetryPolicy
from loadgen.traffic import PreparedRequest

# Locust patches the standard library for gevent: the engine waits on its own epoll, with plain
# non-blocking sockets, and parks on gevent's hub only when nothing is ready.
_epoll = get_original("select", "epoll")
_socket = get_original("socket", "socket")
_RECV = 65536
log = logging.getLogger("harness")
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_ERR = select.EPOLLERR | select.EPOLLHUP
MAX_PARK = 0.05
"""Longest the loop sleeps: how often it checks answer deadlines and a stop request."""
MAX_BUSY = 0.002
"""Longest the loop runs without yielding to gevent's hub (Locust's heartbeats and statistics)."""


class Attempt(NamedTuple):
    """One attempt's answer: status None means no answer (timeout, refused, reset, unframable)."""

    request: PreparedRequest  # as sent on this attempt (retries carry the library's retry header)
    status: int | None
    error: str
    body_length: int
    measured: float  # seconds from this attempt's send to its answer
    corrected: float  # seconds from the intended send time to the answer (coordinated omission)
    attempt: int  # 0 for the first send
    retried: bool  # the library sends it again after this answer


class Outcome(NamedTuple):
    """A request's last answer, after every retry its library makes."""

    request: PreparedRequest
    status: int | None


class Feed(Protocol):
    """What the engine sends and where its answers go."""

    def next_due(self, source: str, now: float) -> float:
        """The monotonic time the source's next slot is due."""

    def take(self, source: str, now: float) -> tuple[float, PreparedRequest]:
        """The due slot's intended send time and its first request."""

    def follow_up(self, request: PreparedRequest) -> PreparedRequest | None:
        """A request to send in the same slot after `request`'s outcome (a re-send rides on top)."""

    def record(self, attempts: list[Attempt], outcomes: list[Outcome]) -> None:
        """A batch of answered attempts and finished requests, attempts first."""


# Connection states
_IDLE, _CONNECTING, _SENDING, _AWAITING, _BACKOFF = range(5)


class _Lane:
    """One source's connections: those without a request in flight wait in `idle`."""

    __slots__ = ("idle", "policy", "source", "surplus")

    def __init__(self, source: str, policy: RetryPolicy | None) -> None:
        self.source = source
        self.policy = policy
        self.idle: list[_Connection] = []
        self.surplus = 0  # connections to close as they come idle (their users stopped)


class _Connection:
    """One kept-alive connection and the request it is working on."""

    __slots__ = (
        "attempt", "deadline", "intended", "lane", "last_status", "out", "received", "request", "reused",
        "sock", "started", "state", "wire",
    )  # fmt: skip

    def __init__(self, lane: _Lane) -> None:
        self.lane = lane
        self.sock: _socket | None = None
        self.state = _IDLE
        self.request: PreparedRequest | None = None  # the slot's current request, as first built
        self.wire: PreparedRequest | None = None  # the attempt on the wire (a retry has its header)
        self.attempt = 0
        self.intended = 0.0
        self.started = 0.0
        self.deadline = 0.0
        self.out: memoryview | None = None  # bytes still to write
        self.received = b""
        self.reused = False
        self.last_status: int | None = None


class SendingEngine:
    """Sends every lane's due slots over its attached connections until `stop()`."""

    def __init__(
        self,
        target: Target,
        feed: Feed,
        policies: Mapping[str, RetryPolicy | None],
        *,
        network_timeout: float = NETWORK_TIMEOUT,
    ) -> None:
        if target.tls:
            raise ValueError("the sending engine speaks plain HTTP; https targets use the users' clients")
        self.target = target
        self.feed = feed
        self.network_timeout = network_timeout
        self.lanes = {source: _Lane(source, policy) for source, policy in policies.items()}
        self._lane_list = list(self.lanes.values())
        self._epoll = _epoll()
        self._by_fd: dict[int, _Connection] = {}
        self._busy: set[_Connection] = set()  # connecting, writing or awaiting an answer
        self._backoff: list[tuple[float, int, _Connection]] = []  # (retry time, tie-break, connection)
        self._backoff_count = 0
        self._attempts: list[Attempt] = []
        self._outcomes: list[Outcome] = []
        self._address: tuple[int, tuple] | None = None
        self._stopping = False
        self._greenlet: gevent.Greenlet | None = None
        hub = get_hub()
        self._hub = hub
        self._ready_watcher = hub.loop.io(self._epoll.fileno(), 1)

    # Locust's side ------------------------------------------------------------------------------

    def attach(self, source: str) -> None:
        """One more connection for `source` (a Locust user started)."""
        lane = self.lanes[source]
        if lane.surplus:
            lane.surplus -= 1
        else:
            lane.idle.append(_Connection(lane))

    def detach(self, source: str) -> None:
        """One connection fewer for `source` (a Locust user stopped), once its request is answered."""
        lane = self.lanes[source]
        if lane.idle:
            self._close(lane.idle.pop())
        else:
            lane.surplus += 1

    def start(self) -> None:
        if self._greenlet is None:
            self._address = self._resolve()
            self._greenlet = gevent.spawn(self._run)
            self._greenlet.link_exception(lambda g: log.error("the sending engine stopped: %r", g.exception))

    def stop(self) -> None:
        """Send nothing new, wait for the answers in flight (within their deadline), record them all."""
        self._stopping = True
        if self._greenlet is not None:
            self._greenlet.join(self.network_timeout + 5)
            self._greenlet.kill()
            self._greenlet = None
        self._flush()
        for connection in list(self._by_fd.values()):
            self._close(connection)
        self._ready_watcher.close()
        self._epoll.close()

    @property
    def in_flight(self) -> int:
        return len(self._busy)

    # The loop -------------------------------------------------------------------------------------

    def _run(self) -> None:
        poll = self._epoll.poll
        by_fd = self._by_fd
        clock = time.monotonic
        yielded = next_deadline_check = clock()
        while True:
            now = clock()
            if self._stopping:
                self._give_up_backoffs()
                if not self._busy:
                    self._flush()
                    return
            else:
                if self._backoff and self._backoff[0][0] <= now:
                    self._resend_due(now)
                self._fill(now)
            if self._attempts or self._outcomes:
                self._flush()
            events = poll(0)
            if not events or now - yielded > MAX_BUSY:
                if self._park(0.0 if events else self._wake_in(now)) or events:
                    events = poll(0)
                yielded = clock()
            now = clock()
            for fd, mask in events:
                connection = by_fd.get(fd)
                if connection is not None:
                    self._on_event(connection, mask, now)
            if now >= next_deadline_check:
                self._expire(now)
                next_deadline_check = now + MAX_PARK

    def _fill(self, now: float) -> None:
        """Start every due slot on an idle connection of its lane."""
        feed = self.feed
        for lane in self._lane_list:
            idle = lane.idle
            while idle and feed.next_due(lane.source, now) <= now:
                intended, request = feed.take(lane.source, now)
                connection = idle.pop()
                connection.request = request
                connection.attempt = 0
                connection.intended = intended
                self._send(connection, request, now)

    def _wake_in(self, now: float) -> float:
        """Seconds until the next slot of a lane with an idle connection, or the next retry, is due."""
        wake = now + MAX_PARK
        for lane in self._lane_list:
            if lane.idle:
                wake = min(wake, self.feed.next_due(lane.source, now))
        if self._backoff:
            wake = min(wake, self._backoff[0][0])
        return max(0.0, wake - now)

    def _park(self, seconds: float) -> bool:
        """Let gevent's hub run until a connection is ready (True) or `seconds` pass (False)."""
        switch = getcurrent().switch
        timer = self._hub.loop.timer(seconds)
        self._ready_watcher.start(switch, True)
        timer.start(switch, False)
        try:
            return self._hub.switch()
        finally:
            self._ready_watcher.stop()
            timer.close()

    def _flush(self) -> None:
        attempts, outcomes = self._attempts, self._outcomes
        if attempts or outcomes:
            self._attempts, self._outcomes = [], []
            self.feed.record(attempts, outcomes)

    # One exchange ----------------------------------------------------------------------------------

    def _send(self, connection: _Connection, wire: PreparedRequest, now: float) -> None:
        connection.wire = wire
        connection.started = now
        connection.deadline = now + self.network_timeout
        connection.received = b""
        self._busy.add(connection)
        data = self.target.encode(wire)
        if connection.sock is None:
            connection.reused = False
            self._connect(connection, data)
        else:
            connection.reused = True
            self._write(connection, memoryview(data), now)

    def _connect(self, connection: _Connection, data: bytes) -> None:
        family, address = self._address
        sock = _socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sock = sock
        connection.out = memoryview(data)
        connection.state = _CONNECTING
        self._by_fd[sock.fileno()] = connection
        self._epoll.register(sock.fileno(), _IN | _OUT)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            self._fail(
                connection, OSError(code, f"connect: {errno.errorcode.get(code, code)}"), time.monotonic()
            )

    def _write(self, connection: _Connection, data: memoryview, now: float) -> None:
        try:
            sent = connection.sock.send(data)
        except BlockingIOError:
            sent = 0
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._stale_or_fail(connection, exc, now)
            return
        except OSError as exc:
            self._fail(connection, exc, now)
            return
        if sent == len(data):
            if connection.state != _AWAITING:
                if connection.state != _IDLE:  # was writing or connecting: stop watching writability
                    self._epoll.modify(connection.sock.fileno(), _IN)
                connection.state = _AWAITING
            connection.out = None
        else:
            connection.out = data[sent:]
            if connection.state != _SENDING:
                self._epoll.modify(connection.sock.fileno(), _IN | _OUT)
                connection.state = _SENDING

    def _on_event(self, connection: _Connection, mask: int, now: float) -> None:
        state = connection.state
        if state == _AWAITING or (state == _SENDING and mask & (_IN | _ERR)):
            self._read(connection, now)
        elif state == _SENDING:
            self._write(connection, connection.out, now)
        elif state == _CONNECTING:
            code = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._fail(connection, OSError(code, f"connect: {errno.errorcode.get(code, code)}"), now)
            else:
                connection.state = _SENDING
                self._write(connection, connection.out, now)
        else:
            # Idle, or waiting to retry: the server closed the kept-alive connection (or sent bytes
            # nobody asked for). Open a new one for the next request, as every client library does.
            self._close_socket(connection)

    def _read(self, connection: _Connection, now: float) -> None:
        closed = False
        try:
            chunk = connection.sock.recv(_RECV)
        except BlockingIOError:
            return
        except ConnectionResetError as exc:
            if not connection.received:
                self._stale_or_fail(connection, exc, now)
                return
            chunk = b""
        except OSError as exc:
            self._fail(connection, exc, now)
            return
        if chunk:
            received = connection.received = connection.received + chunk
        else:
            closed, received = True, connection.received
            if not received:
                self._stale_or_fail(connection, ConnectionError("connection closed before the answer"), now)
                return
        try:
            frame = frame_response(received, closed)
        except ProtocolError as exc:
            self._fail(connection, exc, now)
            return
        if frame is None:
            if closed:
                self._fail(
                    connection, ConnectionError("connection closed before the answer was complete"), now
                )
            return
        status, head, body, keep_alive = frame
        self._busy.discard(connection)
        if not keep_alive or connection.out is not None:  # answered before the whole request was read
            self._close_socket(connection)
        self._answered(connection, status, "", len(body), _retry_after(head), now)

    def _stale_or_fail(self, connection: _Connection, exc: Exception, now: float) -> None:
        """A kept-alive connection the server closed while idle: send once more on a new one, as
        browsers and urllib3 do (so does `IngestClient`); on a new connection, the failure stands."""
        if not connection.reused:
            self._fail(connection, exc, now)
            return
        self._close_socket(connection)
        connection.reused = False
        self._connect(connection, self.target.encode(connection.wire))

    def _fail(self, connection: _Connection, exc: Exception, now: float) -> None:
        self._busy.discard(connection)
        self._close_socket(connection)
        text = str(exc)
        self._answered(
            connection, None, f"{type(exc).__name__}: {text}" if text else type(exc).__name__, 0, None, now
        )

    def _expire(self, now: float) -> None:
        for connection in [c for c in self._busy if c.deadline <= now]:
            self._fail(connection, TimeoutError("no answer in time"), now)

    # After an answer -------------------------------------------------------------------------------

    def _answered(
        self, connection: _Connection, status: int | None, error: str, body_length: int,
        retry_after: float | None, now: float,
    ) -> None:  # fmt: skip
        policy = connection.lane.policy
        attempt = connection.attempt
        retried = (
            policy is not None
            and not self._stopping
            and attempt + 1 < policy.max_attempts
            and policy.should_retry(status)
            # A bad-input request answered 5xx is a target error, not overload: never retried.
            and connection.request is not None
            and connection.request.kind != "bad"
        )
        measured, corrected = now - connection.started, now - connection.intended
        self._attempts.append(
            Attempt(connection.wire, status, error, body_length, measured, corrected, attempt, retried)
        )
        if retried:
            connection.attempt = attempt + 1
            connection.last_status = status
            connection.state = _BACKOFF
            self._backoff_count += 1
            due = now + policy.delay(attempt + 1, retry_after)
            heapq.heappush(self._backoff, (due, self._backoff_count, connection))
        else:
            self._finished(connection, status, now)

    def _finished(self, connection: _Connection, status: int | None, now: float) -> None:
        request = connection.request
        self._outcomes.append(Outcome(request, status))
        if request.kind == "duplicate" and not self._stopping:
            self._flush()  # the duplicate's outcome is known to the traffic model before it builds more
            follow_up = self.feed.follow_up(request)
            if follow_up is not None:
                connection.request = follow_up
                connection.attempt = 0
                self._send(connection, follow_up, now)
                return
        self._release(connection)

    def _resend_due(self, now: float) -> None:
        backoff = self._backoff
        while backoff and backoff[0][0] <= now:
            connection = heapq.heappop(backoff)[2]
            connection.intended = now  # a retry's latency counts from its own send, as the user loop did
            self._send(connection, connection.request.for_retry(connection.attempt), now)

    def _give_up_backoffs(self) -> None:
        """Stopping: requests waiting to be retried end with their last answer, as a stopped SDK's do."""
        while self._backoff:
            connection = heapq.heappop(self._backoff)[2]
            self._outcomes.append(Outcome(connection.request, connection.last_status))
            self._release(connection)

    def _release(self, connection: _Connection) -> None:
        lane = connection.lane
        connection.request = connection.wire = None
        if lane.surplus:
            lane.surplus -= 1
            self._close(connection)
        else:
            connection.state = _IDLE
            lane.idle.append(connection)

    # Sockets -----------------------------------------------------------------------------------------

    def _close_socket(self, connection: _Connection) -> None:
        sock, connection.sock = connection.sock, None
        if sock is not None:
            fd = sock.fileno()
            self._by_fd.pop(fd, None)
            with contextlib.suppress(OSError, ValueError):  # already closed at stop
                self._epoll.unregister(fd)
            sock.close()

    def _close(self, connection: _Connection) -> None:
        self._busy.discard(connection)
        self._close_socket(connection)

    def _resolve(self) -> tuple[int, tuple]:
        """(family, address) to connect to; a name is resolved once, to its first reachable address."""
        target = self.target
        if target.family is not None:
            return target.family, (target.host, target.port)
        infos = gevent.socket.getaddrinfo(target.host, target.port, 0, socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"{target.host} does not resolve")
        for family, _type, _proto, _name, address in infos:
            try:
                with gevent.socket.create_connection(address[:2], timeout=2.0):
                    return family, address
            except OSError:
                continue
        return infos[0][0], infos[0][4]
