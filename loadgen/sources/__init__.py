"""Traffic sources, one class per source kind (see loadgen.libraries' `source_kind`).

`make_source` builds the right one for a source name; the generator (loadgen.traffic) owns them.
"""

from __future__ import annotations

from collections.abc import Callable

from loadgen.dialects import library_for
from loadgen.encoding import StreamClock
from loadgen.event_pool import EventPool
from loadgen.profile import Profile
from loadgen.sources.base import Source
from loadgen.sources.browser import BrowserSource
from loadgen.sources.http_api import HttpSource
from loadgen.sources.mobile import MobileSource
from loadgen.sources.server import ServerSource

SOURCE_CLASSES: dict[str, type[Source]] = {
    "web": BrowserSource,
    "mobile": MobileSource,
    "server": ServerSource,
    "http": HttpSource,
}
"""Source kind -> the class that builds its requests."""

__all__ = ["SOURCE_CLASSES", "BrowserSource", "HttpSource", "MobileSource", "ServerSource", "Source",
           "make_source"]  # fmt: skip


def make_source(name: str, index: int, share: float, write_key: str, *, profile: Profile, seed: int,
                stream: int, event_pool: Callable[[str], EventPool], clock: StreamClock) -> Source:  # fmt: skip
    """Source `name` (the `index`th of the profile, `share` of its messages) of one stream.

    `event_pool(kind)` gives the events of a source kind, shared by the stream's sources of that kind.
    """
    library = library_for(profile.dialect, name)
    kind = library.source_kind
    return SOURCE_CLASSES[kind](library, name, index, share, write_key, profile=profile, seed=seed,
                                stream=stream, events=event_pool(kind), clock=clock)  # fmt: skip
