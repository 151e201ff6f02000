"""The users behind one source of one stream: ids, devices or browsers, traits, login state, activity.

Each stream (Locust worker) owns a disjoint population: userIds embed the seed and the stream
number, and anonymousIds come from a generator seeded by (seed, stream, source). Activity is Zipf
distributed, so a few users send much of the traffic. A user's per-message JSON ("who and where":
ids and the context the library fills in) is encoded once and kept until the user logs in.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson

from loadgen.libraries import LibraryModel

FIRST_NAMES = ("Ada", "Bao", "Carmen", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jon", "Kavya", "Luca", "Mei",
               "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoe")  # fmt: skip
LAST_NAMES = ("Okafor", "Nguyen", "García", "Patel", "Yılmaz", "Adeyemi", "Kim", "Tanaka", "Silva", "Berg", "Rao",
              "Rossi", "Chen", "Smith", "Ivanova", "Shah", "Murphy", "López", "Haddad", "Khan")  # fmt: skip
PLANS = ("free", "free", "free", "starter", "pro", "enterprise")
LOCALES = (("en-US", "America/New_York"), ("en-US", "America/Los_Angeles"), ("en-US", "America/Chicago"),
           ("en-GB", "Europe/London"), ("de-DE", "Europe/Berlin"), ("fr-FR", "Europe/Paris"), ("es-ES", "Europe/Madrid"),
           ("pt-BR", "America/Sao_Paulo"), ("ja-JP", "Asia/Tokyo"), ("en-IN", "Asia/Kolkata"))  # fmt: skip
BROWSER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
)  # fmt: skip
CAMPAIGNS = (
    {"name": "spring_sale", "source": "google", "medium": "cpc", "term": "running shoes"},
    {"name": "newsletter_weekly", "source": "newsletter", "medium": "email"},
    {"name": "influencer_q4", "source": "instagram", "medium": "social", "content": "story"},
)
IOS_DEVICES = (("iPhone16,1", "iPhone 15 Pro", (2556, 1179, 3.0)), ("iPhone14,5", "iPhone 13", (2532, 1170, 3.0)),
               ("iPhone15,4", "iPhone 15", (2556, 1179, 3.0)), ("iPad13,18", "iPad (10th generation)", (2360, 1640, 2.0)))  # fmt: skip
IOS_VERSIONS = ("18.1", "17.6.1", "17.5.1", "16.7.10")
ANDROID_DEVICES = (("samsung", "SM-S918B", "dm3q", (2316, 1080, 2.625)), ("Google", "Pixel 8", "shiba", (2400, 1080, 2.625)),
                   ("Xiaomi", "2201117TG", "spes", (2400, 1080, 2.75)), ("OnePlus", "CPH2449", "OP594DL1", (3216, 1440, 3.5)),
                   ("samsung", "SM-A546B", "a54x", (2340, 1080, 2.625)))  # fmt: skip
ANDROID_VERSIONS = ("14", "13", "12", "15")
CARRIERS = ("T-Mobile", "Verizon", "AT&T", "Vodafone", "Orange", "")
APP = {"name": "Example Shop", "version": "5.12.0", "build": "5120"}
COMPANIES = (
    "Northwind Traders",
    "Globex",
    "Initech",
    "Hooli",
    "Vandelay Industries",
    "Soylent",
    "Umbrella",
    "Wonka",
)
INDUSTRIES = ("Retail", "Technology", "Finance", "Healthcare", "Media")
NO_AD_ID = "00000000-0000-0000-0000-000000000000"
_GUIDE_SIZE = 1 << 16


def zipf_cdf(count: int, exponent: float) -> np.ndarray:
    """Cumulative activity of users ranked 1..count under Zipf's law (rank r has weight r**-exponent)."""
    weights = np.arange(1, count + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


class Population:
    """The users of one source in one stream."""

    def __init__(
        self,
        library: LibraryModel,
        *,
        count: int,
        zipf_exponent: float,
        identified_at_start: float,
        seed: int,
        stream: int,
        source_index: int,
    ) -> None:
        self.library = library
        self.kind = library.source_kind
        self.count = count
        self.seed = seed
        self.stream = stream
        rng = np.random.default_rng([seed, stream, source_index, 0x9E37])
        self.cdf = zipf_cdf(count, zipf_exponent)
        self._guide = np.searchsorted(self.cdf, np.arange(_GUIDE_SIZE) / _GUIDE_SIZE).astype(np.int32)
        self.identified = (rng.random(count) < identified_at_start).tolist()
        self._anon_bytes = rng.bytes(16 * count)
        self._anon_ids = uuid4_texts(self._anon_bytes)
        self._attrs = rng.integers(0, 1 << 30, size=(count, 8)).tolist()
        self.agent_index = [a[6] % len(BROWSER_AGENTS) for a in self._attrs]
        """Index into BROWSER_AGENTS of each user's browser (web sources)."""
        self._seed_part = seed % 1000
        self._user_id_prefix = f"{self._seed_part:03d}{stream:04d}"
        self.tails: dict[int, bytes] = {}
        self._contexts: dict[int, bytes] = {}
        self._server_side = self.kind in ("server", "http")
        library_json = {"name": library.name, "version": library.version}
        self._library_json = library_json

    # ids ---------------------------------------------------------------------------------------

    def anonymous_id(self, user: int) -> str:
        """`str(uuid.UUID(bytes=<the user's 16 random bytes>, version=4))`, made in bulk at start."""
        return self._anon_ids[user]

    def user_id(self, user: int) -> str:
        """A database-style id; unique per (seed, stream, user), so streams never share users."""
        return f"{self._user_id_prefix}{user:07d}"

    def email(self, user: int) -> str:
        a = self._attrs[user]
        first, last = FIRST_NAMES[a[0] % len(FIRST_NAMES)], LAST_NAMES[a[1] % len(LAST_NAMES)]
        return f"{first}.{last}.{user}@example.com".lower()

    def users_at(self, u: np.ndarray) -> np.ndarray:
        """The users at uniform draws `u` in [0, 1): exactly `np.searchsorted(self.cdf, u)`, faster.

        A guide table gives the first user of each of `_GUIDE_SIZE` equal slices of [0, 1); the few
        steps from there are taken for all draws at once (the binary search was the largest cost of
        drawing the random choices in bulk).
        """
        cdf = self.cdf
        users = self._guide[(u * _GUIDE_SIZE).astype(np.int64)].astype(np.int64)
        behind = cdf[users] < u
        while behind.any():
            users += behind
            behind = cdf[users] < u
        return users

    # login state -------------------------------------------------------------------------------

    def log_in(self, user: int) -> bool:
        """Mark the user identified; True when that changed anything."""
        if self.identified[user]:
            return False
        self.identified[user] = True
        self.tails.pop(user, None)
        return True

    # payload parts -----------------------------------------------------------------------------

    def traits(self, user: int) -> dict[str, Any]:
        a = self._attrs[user]
        first, last = FIRST_NAMES[a[0] % len(FIRST_NAMES)], LAST_NAMES[a[1] % len(LAST_NAMES)]
        created = 1_600_000_000 + a[2] % 150_000_000
        return {
            "email": self.email(user),
            "firstName": first,
            "lastName": last,
            "name": f"{first} {last}",
            "plan": PLANS[a[3] % len(PLANS)],
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
            "logins": 1 + a[4] % 300,
        }

    def group(self, user: int) -> tuple[str, dict[str, Any]]:
        """The user's company: groupId and group traits."""
        company = self._attrs[user][5] % 200
        name = f"{COMPANIES[company % len(COMPANIES)]} {company // len(COMPANIES) + 1}"
        return f"grp_{self.stream:03x}{company:04d}", {
            "name": name,
            "industry": INDUSTRIES[company % len(INDUSTRIES)],
            "employees": 10 * (1 + company % 97),
            "plan": PLANS[company % len(PLANS)],
        }

    def user_agent(self, user: int) -> str:
        """The User-Agent header the user's browser or device sends."""
        a = self._attrs[user]
        if self.kind == "web":
            return BROWSER_AGENTS[self.agent_index[user]]
        if self.library.apple:
            darwin = {"18": "24.1.0", "17": "23.6.0", "16": "22.6.0"}[
                IOS_VERSIONS[a[2] % len(IOS_VERSIONS)][:2]
            ]
            return f"ExampleShop/{APP['build']} CFNetwork/1568.200.51 Darwin/{darwin}"
        return self.library.user_agent

    def context(self, user: int) -> dict[str, Any]:
        """The context the library fills in automatically (browser: without `page`, which varies)."""
        a = self._attrs[user]
        library = self._library_json
        if self.kind == "server":
            return {"library": library}
        if self.kind == "http":
            return {}
        locale, timezone = LOCALES[a[0] % len(LOCALES)]
        if self.kind == "web":
            ctx: dict[str, Any] = {"library": library, "locale": locale, "timezone": timezone,
                                   "userAgent": self.user_agent(user)}  # fmt: skip
            if a[7] % 100 < 15:
                ctx["campaign"] = CAMPAIGNS[a[7] % len(CAMPAIGNS)]
            return ctx
        apple = self.library.apple or (self.library.name == "Analytics.Xamarin" and a[1] % 3 == 0)
        tracking = a[3] % 100 < 40
        if apple:
            model, name, (height, width, density) = IOS_DEVICES[a[1] % len(IOS_DEVICES)]
            device = {"type": "ios", "id": uuid4_text(a[4] << 98 | a[5] << 68 | user).upper(),
                      "advertisingId": self.anonymous_id(user).upper() if tracking else NO_AD_ID,
                      "adTrackingEnabled": tracking, "manufacturer": "Apple", "model": model, "name": name}  # fmt: skip
            os = {"name": "iOS", "version": IOS_VERSIONS[a[2] % len(IOS_VERSIONS)]}
        else:
            maker, model, name, (height, width, density) = ANDROID_DEVICES[a[1] % len(ANDROID_DEVICES)]
            device = {"type": "android", "id": f"{(a[4] << 30 | a[5]):016x}",
                      "advertisingId": uuid4_text(a[4] << 90 | a[6] << 60 | user) if tracking else NO_AD_ID,
                      "adTrackingEnabled": tracking, "manufacturer": maker, "model": model, "name": name}  # fmt: skip
            os = {"name": "Android", "version": ANDROID_VERSIONS[a[2] % len(ANDROID_VERSIONS)]}
        wifi = a[6] % 100 < 60
        return {
            "app": dict(APP, namespace="com.example.shop"),
            "device": device,
            "library": library,
            "locale": locale,
            "network": {"carrier": CARRIERS[a[7] % len(CARRIERS)], "cellular": not wifi, "wifi": wifi},
            "os": os,
            "screen": {"height": height, "width": width, "density": density},
            "timezone": timezone,
        }

    def warm(self, limit: int) -> None:
        """Encode the tails of the `limit` most active users now, at start-up, not on their first message.

        Users are numbered by activity rank (user 0 is the most active), so a few thousand cover most
        messages; the rest are encoded when first seen, which keeps start-up short for big populations.
        """
        for user in range(min(limit, self.count)):
            self.tail(user)

    def _context_key(self, user: int) -> int:
        """Users with equal keys have equal contexts: browsers share theirs, devices have their own."""
        if self.kind == "mobile":
            return user
        if self.kind == "web":
            a = self._attrs[user]  # the locale, the browser and the campaign (or none) make the context
            campaign = a[7] % len(CAMPAIGNS) if a[7] % 100 < 15 else len(CAMPAIGNS)
            return (a[0] % len(LOCALES) * len(BROWSER_AGENTS) + self.agent_index[user]) * (
                len(CAMPAIGNS) + 1
            ) + campaign
        return 0  # server libraries: the library only; direct HTTP callers: none

    def tail(self, user: int) -> bytes:
        """Encoded `,"anonymousId":..,"userId":..,"context":{..}` for this user now.

        For the browser the context is left open after `"page":` so the event's page can follow;
        everywhere else the bytes end after the library's `"integrations"` (and any fields it adds),
        closing the message. The ids part
        changes when the user logs in; the context part is encoded once per user.
        """
        cached = self.tails.get(user)
        if cached is not None:
            return cached
        context = self._contexts.get(self._context_key(user))
        if context is None:
            encoded = orjson.dumps(self.context(user))
            if self.kind == "web":
                context = b',"context":' + encoded[:-1] + b',"page":'
            else:
                context = b',"context":' + encoded + self.library.message_end + b"}"
            self._contexts[self._context_key(user)] = context
        # both ids are ASCII letters, digits and dashes: written as orjson would, without the dict
        if not self.identified[user]:
            ids = b',"anonymousId":"%s"' % self._anon_ids[user].encode()
        elif self._server_side:
            ids = b',"userId":"%s"' % self.user_id(user).encode()
        else:
            ids = b',"anonymousId":"%s","userId":"%s"' % (
                self._anon_ids[user].encode(),
                self.user_id(user).encode(),
            )
        out = ids + context
        self.tails[user] = out
        return out


def uuid4_text(value: int) -> str:
    """`str(uuid.UUID(int=value, version=4))` without the UUID object (a device's id, once per user)."""
    if not 0 <= value < 1 << 128:
        raise ValueError(f"UUID int {value} is outside 0..2**128-1")
    value = (value & ~(0xC000 << 48) | 0x8000 << 48) & ~(0xF000 << 64) | 4 << 76
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid4_texts(raw: bytes) -> list[str]:
    """Version-4 UUID texts of consecutive 16-byte slices of `raw`, as `uuid.UUID(bytes=.., version=4)`.

    Made in one numpy pass because a population needs one per user and `uuid.UUID` costs a
    Python object per id.
    """
    octets = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16).copy()
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40  # version 4
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = np.empty((len(octets), 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX[octets >> 4]
    hexed[:, 1::2] = _HEX[octets & 0x0F]
    text = np.full((len(octets), 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_COLUMNS] = hexed
    return np.frombuffer(text.tobytes(), dtype="S36").astype("U36").tolist()


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_COLUMNS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
