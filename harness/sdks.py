"""Real client libraries (the Python SDKs of Segment and RudderStack) sending with harness messageIds.

`sdk_client("segment-analytics-python", write_key=..., host=..., ids=HarnessIds(...))` returns the
library's own `Client`, with its own queue, batching, retries and gzip. Give every call a
`message_id=ids.new_id()`; each batch's outcome lands in `ids` from the SDK's own code paths:
accepted when the consumer's upload request returns (the SDK has no success callback; `request`
returns only on a 2xx, after its own retries), rejected (a 4xx other than 408/429) or abandoned
(retries exhausted, or dropped by the SDK) from its `on_error(exception, batch)` callback.
The libraries are optional extras: `pip install 'cdp-harness[sdk]'`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

from loadgen.external import HarnessIds

SDK_CLIENTS = {
    "segment-analytics-python": "segment.analytics.client",
    "rudder-sdk-python": "rudderstack.analytics.client",
}
"""Library (its PyPI name) → the module holding its `Client`."""


class SdkUnavailable(RuntimeError):
    """The library is not installed (it is an optional extra) or not one this module knows."""


def _ids_of(batch: list[Any]) -> list[str]:
    return [m["messageId"] for m in batch if isinstance(m, dict) and isinstance(m.get("messageId"), str)]


def _on_error(ids: HarnessIds, also: Callable[[Exception, list], None] | None) -> Callable[[Exception, list], None]:
    def on_error(error: Exception, batch: list) -> None:
        status = getattr(error, "status", None)
        sent = _ids_of(batch)
        if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
            ids.rejected(sent)
        else:
            ids.abandoned(sent)
        if also is not None:
            also(error, batch)

    return on_error


UploadHook = Callable[[int, float, BaseException | None], None]
"""Called after each upload request with (messages, seconds it took, the error or None)."""


def _count_success(consumer: Any, ids: HarnessIds, source: str | None, on_upload: UploadHook | None) -> None:
    """Record a batch as accepted when the consumer's own upload request returns (a 2xx)."""
    request = consumer.request

    def counted_request(batch: list) -> Any:
        started = time.monotonic()
        try:
            answer = request(batch)
        except BaseException as exc:
            if on_upload is not None:
                on_upload(len(batch), time.monotonic() - started, exc)
            raise
        ids.accepted(_ids_of(batch), source)
        if on_upload is not None:
            on_upload(len(batch), time.monotonic() - started, None)
        return answer

    consumer.request = counted_request


def sdk_module(library: str) -> Any:
    """The module holding `library`'s Client; SdkUnavailable names the extra to install."""
    module_name = SDK_CLIENTS.get(library)
    if module_name is None:
        raise SdkUnavailable(f"unknown SDK {library!r}; known: {', '.join(SDK_CLIENTS)}")
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise SdkUnavailable(
            f"{library} is not installed ({exc}); install the extra: pip install 'cdp-harness[sdk]'"
        ) from None


def sdk_client(
    library: str,
    *,
    write_key: str,
    host: str,
    ids: HarnessIds,
    source: str | None = None,
    on_error: Callable[[Exception, list], None] | None = None,
    on_upload: UploadHook | None = None,
    **options: Any,
) -> Any:
    """The library's `Client` (its options as keyword arguments), its sends recorded in `ids`.

    `on_upload` sees every upload request the SDK makes (for request statistics).
    """
    module = sdk_module(library)
    if options.get("sync_mode"):
        raise ValueError("sync_mode sends outside the SDK's consumer, so its outcomes could not be counted")
    client = module.Client(write_key=write_key, host=host, on_error=_on_error(ids, on_error), **options)
    for consumer in client.consumers or ():
        _count_success(consumer, ids, source, on_upload)
    return client
