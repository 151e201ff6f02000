"""The users behind one source of one stream: ids, devices or browsers, traits, login state, activity.

Each stream (Locust worker) owns a disjoint population: userIds embed the seed and the stream
number, and anonymousIds come from a generator seeded by (seed, stream, source). Activity is Zipf
distributed, so a few users send much of the traffic. A user's per-message JSON ("who and where":
ids and the context the library fills in) is encoded once and kept until the user logs in.
"""

from __future__ import annotations

import uuid
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
        self.identified = (rng.random(count) < identified_at_start).tolist()
        self._anon_bytes = rng.bytes(16 * count)
        self._attrs = rng.integers(0, 1 << 30, size=(count, 8)).tolist()
        self.agent_index = [a[6] % len(BROWSER_AGENTS) for a in self._attrs]
        """Index into BROWSER_AGENTS of each user's browser (web sources)."""
        self._seed_part = seed % 1000
        self.tails: dict[int, bytes] = {}
        library_json = {"name": library.name, "version": library.version}
        self._library_json = library_json

    # ids ---------------------------------------------------------------------------------------

    def anonymous_id(self, user: int) -> str:
        raw = self._anon_bytes[16 * user : 16 * user + 16]
        return str(uuid.UUID(bytes=raw, version=4))

    def user_id(self, user: int) -> str:
        """A database-style id; unique per (seed, stream, user), so streams never share users."""
        return f"{self._seed_part:03d}{self.stream:04d}{user:07d}"

    def email(self, user: int) -> str:
        a = self._attrs[user]
        first, last = FIRST_NAMES[a[0] % len(FIRST_NAMES)], LAST_NAMES[a[1] % len(LAST_NAMES)]
        return f"{first}.{last}.{user}@example.com".lower()

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
            "createdAt": np.datetime_as_string(np.datetime64(created, "s")) + "Z",
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
        if self.library.name == "analytics-ios":
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
        apple = self.library.name == "analytics-ios" or (
            self.library.name == "Analytics.Xamarin" and a[1] % 3 == 0
        )
        tracking = a[3] % 100 < 40
        if apple:
            model, name, (height, width, density) = IOS_DEVICES[a[1] % len(IOS_DEVICES)]
            device = {"type": "ios", "id": str(uuid.UUID(int=a[4] << 98 | a[5] << 68 | user, version=4)).upper(),
                      "advertisingId": self.anonymous_id(user).upper() if tracking else NO_AD_ID,
                      "adTrackingEnabled": tracking, "manufacturer": "Apple", "model": model, "name": name}  # fmt: skip
            os = {"name": "iOS", "version": IOS_VERSIONS[a[2] % len(IOS_VERSIONS)]}
        else:
            maker, model, name, (height, width, density) = ANDROID_DEVICES[a[1] % len(ANDROID_DEVICES)]
            device = {"type": "android", "id": f"{(a[4] << 30 | a[5]):016x}",
                      "advertisingId": str(uuid.UUID(int=a[4] << 90 | a[6] << 60 | user, version=4)) if tracking else NO_AD_ID,
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

    def tail(self, user: int) -> bytes:
        """Encoded `,"anonymousId":..,"userId":..,"context":{..}` for this user now.

        For the browser the context is left open after `"page":` so the event's page can follow;
        everywhere else the bytes end after `"integrations":{}`.
        """
        cached = self.tails.get(user)
        if cached is not None:
            return cached
        ids: dict[str, Any] = {}
        server_side = self.kind in ("server", "http")
        if not (server_side and self.identified[user]):
            ids["anonymousId"] = self.anonymous_id(user)
        if self.identified[user]:
            ids["userId"] = self.user_id(user)
        encoded = orjson.dumps(ids)[1:-1]
        context = orjson.dumps(self.context(user))
        if self.kind == "web":
            out = b"," + encoded + b',"context":' + context[:-1] + b',"page":'
        else:
            out = b"," + encoded + b',"context":' + context + b',"integrations":{}'
        self.tails[user] = out
        return out
