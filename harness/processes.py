"""Server processes known by their pid: started, awaited until healthy, stopped by pid.

Used for the bundled sandbox and monitor, and by the tests and benchmarks that run real servers
(harness parts, Prometheus); the benchmarks also read processes' CPU time here (Linux /proc). Imports no Locust, so any test can use it without gevent patching.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


_PR_SET_PDEATHSIG = 1
# Looked up now, in the parent: the child must not dlopen between fork and exec.
_prctl = ctypes.CDLL(None).prctl if sys.platform == "linux" else None


def _stop_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True)
class CommandResult:
    code: int
    out: str
    err: str


def run_command(
    argv: list[str], *, timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> CommandResult:
    """Run a command to its end in its own process group; on timeout stop the whole group by pid.

    The group matters for commands that start servers of their own (`locust -f scenarios` starts
    the sandbox and the monitor): a timeout must not leave them running.
    """
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
        output = (out + err).decode(errors="replace")[-4000:]
        raise TimeoutError(f"{argv[:4]} did not finish in {timeout}s; its output ends:\n{output}") from None
    return CommandResult(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), None once it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def children(pid: int) -> list[int]:
    out: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(c) for c in path.read_text().split()]
        except OSError:
            continue
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], children(pid)
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children(current)
    return found


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class ChildServer:
    """A server process on `HOST:port`, its output in `log_path`."""

    name: str
    port: int
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    health_path: str = "/healthz"
    cwd: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"the {self.name} is not running"
        return self.process.pid

    def start(self, *, wait: bool = True, timeout: float = START_TIMEOUT) -> ChildServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # A server must not outlive whoever started it, even one killed with no chance to stop it.
                preexec_fn=_stop_with_parent if _prctl is not None else None,
            )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll the health path until it answers 200; on failure stop it and raise with its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                if httpx.get(self.url + self.health_path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"the {self.name} did not start on port {self.port}; its log ends:\n{self.log_tail()}"
        )

    def log_tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Terminate by pid, kill if it does not stop in time; the exit code (None if never started)."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        return process.returncode

    def __enter__(self) -> ChildServer:
        return self if self.process is not None else self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
