"""Sessions of events per source kind, each event encoded once, and fast categorical draws."""

from __future__ import annotations

import random
from collections.abc import Mapping

import numpy as np
import orjson

from loadgen.events import PAGES, SCREENS
from loadgen.profile import Profile

SESSIONS_PER_CATALOG = 256


class EventPool:
    """Sessions of one source kind, each event encoded once: head bytes and (browser) page bytes.

    A browser event's tail is its page, closing the context, then integrations; the builder adds the
    message's closing brace, or in a request body sentAt and writeKey before it. Other kinds' user
    tails close the message themselves (see Population.tail).
    """

    def __init__(self, kind: str, profile: Profile, seed: int, end: bytes = b',"integrations":{}') -> None:
        """`end`: what closes a browser message after its context (its library's integrations, fields)."""
        rng = random.Random(f"{seed}:{kind}:events")
        self.heads: list[bytes] = []
        self.tails: list[bytes] = []
        self.sessions: dict[str, list[list[int]]] = {}
        self.events: dict[str, list[tuple[tuple[bytes, bytes], ...]]] = {}
        """Per catalog, each session's events as (head, tail) pairs: what a session cursor walks."""
        web = kind == "web"
        for catalog_name, share in profile.events.get(kind, {}).items():
            if not share:
                continue
            scripts = []
            for _ in range(SESSIONS_PER_CATALOG):
                script = []
                for event in profile.catalogs[catalog_name].make_session(rng, profile.funnel):
                    script.append(len(self.heads))
                    head = orjson.dumps(
                        {"type": "track", "event": event.name, "properties": event.properties}
                    )
                    self.heads.append(head[:-1])
                    self.tails.append(page_tail(event.page or PAGES[0], end) if web else b"")
                scripts.append(script)
            self.sessions[catalog_name] = scripts
            self.events[catalog_name] = [
                tuple((self.heads[i], self.tails[i]) for i in script) for script in scripts
            ]
        self.catalogs = [c for c, s in profile.events.get(kind, {}).items() if s]
        weights = np.array([profile.events[kind][c] for c in self.catalogs]) if self.catalogs else np.ones(1)
        mean_len = (
            np.array([np.mean([len(s) for s in self.sessions[c]]) for c in self.catalogs])
            if self.catalogs
            else 1
        )
        # a catalog's share is of events: pick sessions in proportion to share / session length
        session_weights = weights / mean_len
        self.catalog_p = session_weights / session_weights.sum()
        self.catalog_cdf = categorical_cdf(self.catalog_p)
        self.page_heads = [
            orjson.dumps({"type": "page", "name": p["title"], "properties": p})[:-1] for p in PAGES
        ]
        self.page_tails = [
            page_tail(p, end) if web else b"" for p in PAGES
        ]  # a server's page call: no context.page
        self.account_tail = page_tail(ACCOUNT_PAGE, end)  # a browser's identify, group and alias
        self.screen_heads = [
            orjson.dumps({"type": "screen", "name": s, "properties": {}})[:-1] for s in SCREENS
        ]


def categorical_cdf(p: np.ndarray) -> np.ndarray:
    """The cumulative distribution `Generator.choice(len(p), p=p)` draws from."""
    cdf = np.asarray(p, dtype=np.float64).cumsum()
    cdf /= cdf[-1]
    return cdf


def categorical(rng: np.random.Generator, cdf: np.ndarray, size: int) -> np.ndarray:
    """`rng.choice(len(cdf), size, p=p)` for a few categories: the same uniform draws and the same
    answers (searchsorted, side right, counts the edges at or below each draw), a few times faster
    because it compares against each edge instead of searching per draw."""
    uniform = rng.random(size)
    out = np.zeros(size, dtype=np.int64)
    for edge in cdf[:-1].tolist():
        out += uniform >= edge
    return out


ACCOUNT_PAGE = {"path": "/account", "referrer": "", "search": "", "title": "Your account",
                "url": "https://www.example-shop.com/account"}  # fmt: skip
"""The page a browser's identify, group or alias call is made on."""


def page_tail(page: Mapping[str, str], end: bytes = b',"integrations":{}') -> bytes:
    """The browser message's end: the page object closing its context, then integrations (`end`)."""
    return orjson.dumps(page) + b"}" + end
