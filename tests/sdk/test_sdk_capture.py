"""The real client libraries against a capture server, compared with `harness traffic --dialect ...`.

Each test runs one real SDK (PyPI, npm, or the browser SDK in headless Chromium), records what it
sends, then asks the harness for the same source's requests in the matching dialect and checks that
they agree on path, method, auth scheme, content type and encoding, body structure, the message
fields, `context.library` and the messageId format. What the harness knowingly does not model is
listed per library in NOT_MODELLED, so a new difference fails the test.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadgen.ids import decode_message_id

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
WRITE_KEY = "wk-capture"
AT = 1_795_000_000.0
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CALL_FIELDS = {"userId", "anonymousId", "properties", "traits", "event", "name", "category", "previousId",
               "groupId"}  # fmt: skip  # what the caller passes, not the library's structure
NOT_MODELLED = {
    # rudder-sdk-node repeats the request's sentAt in every message
    "rudder-node": {"sentAt"},
    # @segment/analytics-node adds _metadata {nodeVersion, jsRuntime}: today's traffic does not (kept as is)
    "segment-node": {"_metadata"},
}


# -- running the real SDKs ------------------------------------------------------------------------------


def _python_calls(client: Any) -> None:
    client.track(user_id="u1", event="Order Completed", properties={"order_id": 1})
    client.identify(anonymous_id="anon-1", traits={"plan": "pro"})
    client.page(user_id="u1", name="Home", properties={"path": "/"})
    client.group(user_id="u1", group_id="g1", traits={"name": "Acme"})
    client.alias(user_id="u1", previous_id="anon-1")
    client.flush()
    client.join()


def run_rudder_python(capture, **_: Any) -> None:
    from rudderstack.analytics.client import Client

    logging.getLogger("rudderstack").setLevel(logging.CRITICAL)
    _python_calls(Client(WRITE_KEY, host=capture.url))


def run_segment_python(capture, **_: Any) -> None:
    from segment.analytics.client import Client

    logging.getLogger("segment").setLevel(logging.CRITICAL)
    _python_calls(Client(WRITE_KEY, host=capture.url))


def _run_node(kind: str, capture, node_modules: Path) -> None:
    env = dict(os.environ, NODE_PATH=str(node_modules))
    done = subprocess.run(["node", str(HERE / "drive_node.js"), kind, capture.url, WRITE_KEY], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def run_rudder_node(capture, node_modules: Path, **_: Any) -> None:
    _run_node("rudder", capture, node_modules)


def run_segment_node(capture, node_modules: Path, **_: Any) -> None:
    _run_node("segment", capture, node_modules)


def run_rudder_browser(capture, node_modules: Path, chromium: str, tmp_path: Path) -> None:
    bundle = node_modules / "@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js"
    page = (HERE / "browser.html").read_bytes().replace(b"wk-test", WRITE_KEY.encode())
    capture.pages.update({"/": ("text/html", page), "/rsa.js": ("application/javascript", bundle.read_bytes())})
    browser = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                f"--user-data-dir={tmp_path / 'profile'}", capture.url + "/"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        capture.wait_for(5, timeout=60)
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait(10)


# -- the harness's side ----------------------------------------------------------------------------------


def harness_traffic(dialect: str, source: str, count: int = 40) -> list[dict[str, Any]]:
    """`harness traffic --dialect D --source S` as parsed JSON lines (live events only)."""
    done = subprocess.run([sys.executable, "-m", "harness", "traffic", "--dialect", dialect, "--source", source,
                           "--count", str(count), "--at", str(AT), "--seed", "3"],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return [line for line in lines if line["kind"] == "event"]


# -- comparing -------------------------------------------------------------------------------------------


def auth_of(headers: dict[str, str], body: Any) -> tuple[str, bool]:
    """(Authorization scheme, whether a writeKey rides in the body); Basic must be `<key>:`."""
    value = headers.get("authorization", "")
    scheme, _, cred = value.partition(" ")
    if scheme == "Basic":
        user, _, password = base64.b64decode(cred).decode().partition(":")
        assert user and password == "", f"Basic auth must be '<writeKey>:', got {user!r}:{password!r}"
    return scheme, isinstance(body, dict) and "writeKey" in body


def messages_of(body: Any) -> list[dict[str, Any]]:
    return body.get("batch", [body])


def shape(method: str, path: str, headers: dict[str, str], body: Any) -> dict[str, Any]:
    """What must agree between the real SDK's request and the harness's."""
    headers = {k.lower(): v for k, v in headers.items()}
    scheme, key_in_body = auth_of(headers, body)
    return {
        "method": method,
        "auth": scheme,
        "writeKey in body": key_in_body,
        "content-type": headers.get("content-type"),
        "content-encoding": headers.get("content-encoding"),
        "body keys": sorted(k for k in body if k not in ("writeKey",) and k not in CALL_FIELDS | {"type"})
        if "batch" in body
        else "single message",
        "AnonymousId header": "anonymousid" in headers,
        "SentAt header": "sentat" in headers,
    }


def message_shape(message: dict[str, Any], ignore: set[str]) -> dict[str, Any]:
    context = message.get("context", {})
    return {
        "keys": sorted(set(message) - CALL_FIELDS - ignore),
        "library": {k: context.get("library", {}).get(k) for k in ("name", "version")},
        "integrations": message.get("integrations", "(none)"),
        "channel": message.get("channel", "(none)"),
    }


def compare(real: list[Any], ours: list[dict[str, Any]], library: str, id_format: str,
            version_checked: bool = True) -> None:  # fmt: skip
    """Every harness request has the shape of some real request; the messages agree call type by call type."""
    posts = [r for r in real if r.method == "POST"]
    assert posts, "the SDK sent nothing"
    real_shapes = [shape(r.method, r.path, r.headers, r.body) for r in posts]
    real_paths = {r.path for r in posts}
    ignore = NOT_MODELLED.get(library, set())
    real_messages = {m["type"]: message_shape(m, ignore) for r in posts for m in r.messages}
    for m in (m for r in posts for m in r.messages):
        assert re.fullmatch(id_format, m["messageId"]), f"the real SDK's messageId {m['messageId']} left the format"
    assert ours, "the harness made no requests for this source"
    seen_types = set()
    for request in ours:
        body = request["body"]
        ours_shape = shape(request["method"], request["path"], request["headers"], body)
        assert ours_shape in real_shapes, f"{request['path']}: {ours_shape}\nreal: {real_shapes}"
        assert request["path"] in real_paths, f"harness path {request['path']}; the SDK used {real_paths}"
        for message in messages_of(body):
            assert re.fullmatch(id_format, message["messageId"]), message["messageId"]
            assert decode_message_id(message["messageId"]) is not None, "the harness id scheme must survive"
            expected = real_messages.get(message["type"])
            if expected is None:
                continue  # a call type the driver did not make (screen, on a web source)
            seen_types.add(message["type"])
            got = message_shape(message, set())
            if not version_checked:
                got["library"]["version"] = expected["library"]["version"]
            assert got == expected, f"{message['type']}: harness {got}\nreal SDK {expected}"
    assert {"track", "identify"} <= seen_types, f"too few call types compared: {seen_types}"


# -- one test per SDK ------------------------------------------------------------------------------------

NODE_ID = f"node-next-[0-9]{{13}}-{UUID}"


@pytest.mark.parametrize(
    ("library", "runner", "dialect", "source", "id_format", "needs"),
    [
        ("rudder-python", run_rudder_python, "rudderstack", "python", UUID, ()),
        ("rudder-node", run_rudder_node, "rudderstack", "node", UUID, ("node_modules",)),
        ("rudder-js", run_rudder_browser, "rudderstack", "web", UUID, ("node_modules", "chromium")),
        ("segment-python", run_segment_python, "segment", "python", UUID, ()),
        ("segment-node", run_segment_node, "segment", "node", NODE_ID, ("node_modules",)),
    ],
)
def test_harness_sends_what_the_real_sdk_sends(library: str, runner: Callable[..., None], dialect: str,
                                               source: str, id_format: str, needs: tuple[str, ...],
                                               capture, request, tmp_path) -> None:  # fmt: skip
    extra = {name: request.getfixturevalue(name) for name in needs}
    runner(capture, tmp_path=tmp_path, **extra)
    # Segment's models predate the installed releases (2.4.0, 3.1.0); their version is not compared so
    # the segment dialect's traffic stays byte for byte what it was
    compare(capture.requests, harness_traffic(dialect, source), library, id_format,
            version_checked=dialect == "rudderstack")  # fmt: skip


def test_capture_decodes_gzip_and_reports_arrivals(capture) -> None:
    """The capture server itself: a gzipped batch comes back decoded, with its headers."""
    import urllib.request

    body = gzip.compress(b'{"batch":[{"type":"track","messageId":"m1"}]}')
    req = urllib.request.Request(capture.url + "/v1/batch", data=body, method="POST",
                                 headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=5) as answer:
        assert answer.status == 200 and answer.read() == b"OK"
    (got,) = capture.wait_for(1)
    assert got.path == "/v1/batch" and got.messages == [{"type": "track", "messageId": "m1"}]
