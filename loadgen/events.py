"""Semantic event catalogs (Segment specs, names verbatim) as sessions: what one user does in a visit.

Each catalog makes whole sessions (an e-commerce funnel with drop-off at every step, a video watched
with pauses and ads, a chat conversation, an email's life, an app opened and backgrounded), so the
events of one user come in a believable order with consistent properties (order totals add up from
their products). The traffic model builds a pool of sessions at start-up and encodes each event
once; see `loadgen.encoding`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SITE = "https://www.example-shop.com"  # example.com-style names only: this traffic is synthetic

CURRENCIES = ("USD", "USD", "USD", "EUR", "EUR", "GBP", "CAD", "AUD", "JPY", "BRL")
BRANDS = (
    "Northwind",
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Soylent",
)
CATEGORIES = {
    "Apparel": ("T-Shirt", "Hoodie", "Jeans", "Jacket", "Sneakers", "Cap"),
    "Electronics": ("Headphones", "Charger", "Speaker", "Keyboard", "Webcam", "Smartwatch"),
    "Home": ("Mug", "Lamp", "Blanket", "Plant Pot", "Frying Pan", "Candle"),
    "Books": ("Cookbook", "Novel", "Travel Guide", "Notebook", "Comic", "Atlas"),
    "Sports": ("Yoga Mat", "Water Bottle", "Dumbbells", "Running Belt", "Tennis Balls", "Bike Light"),
}
VARIANTS = ("Black", "White", "Blue", "Red", "Green", "Small", "Medium", "Large")
SEARCH_TERMS = (
    "black hoodie",
    "usb c charger",
    "yoga mat",
    "gift ideas",
    "running shoes",
    "coffee mug",
    "sale",
)
VIDEO_TITLES = (
    "Launch Keynote",
    "Cooking Basics",
    "Trail Running 101",
    "Pottery at Home",
    "Season 2 Episode 4",
)
VIDEO_PLAYERS = ("youtube", "vimeo", "html5", "jwplayer", "brightcove")
GENRES = ("Documentary", "Comedy", "Drama", "Sports", "Education")
AGENTS = ("Ana", "Ben", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gus")
EMAIL_SUBJECTS = (
    "Your order has shipped",
    "20% off this weekend",
    "Welcome aboard",
    "We miss you",
    "Your receipt",
)
CAMPAIGNS = ("spring_sale", "welcome_series", "winback_q3", "newsletter_weekly", "abandoned_cart")


@dataclass(frozen=True, slots=True)
class Event:
    """One track event of a session; `page` is where it happened (browser) or None."""

    name: str
    properties: dict[str, Any]
    page: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    """A semantic catalog: the source kinds that send it, and how to make one session of it."""

    name: str
    kinds: frozenset[str]
    make_session: Callable[[random.Random, dict[str, float]], list[Event]]


def make_products(rng: random.Random, count: int = 400) -> list[dict[str, Any]]:
    """A shop's catalogue: product properties as the e-commerce v2 spec names them."""
    products = []
    for i in range(count):
        category = rng.choice(list(CATEGORIES))
        kind = rng.choice(CATEGORIES[category])
        brand = rng.choice(BRANDS)
        product_id = f"{5_000_000 + i * 7919 % 1_000_000}"
        slug = f"{brand}-{kind}".lower().replace(" ", "-")
        products.append(
            {
                "product_id": product_id,
                "sku": f"{category[:3].upper()}-{i:05d}",
                "category": category,
                "name": f"{brand} {kind}",
                "brand": brand,
                "variant": rng.choice(VARIANTS),
                "price": round(rng.lognormvariate(3.2, 0.8), 2),
                "url": f"{SITE}/products/{slug}-{product_id}",
                "image_url": f"{SITE}/img/{product_id}.jpg",
            }
        )
    return products


_PRODUCTS = make_products(random.Random(20160803))


def _page(path: str, title: str, referrer: str = "", search: str = "") -> dict[str, str]:
    return {
        "path": path,
        "referrer": referrer,
        "search": search,
        "title": title,
        "url": f"{SITE}{path}{search}",
    }


def _product(p: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out = dict(p)
    out.update(extra)
    return out


def ecommerce_session(rng: random.Random, funnel: dict[str, float]) -> list[Event]:
    """Search → list → product views → cart → checkout → order, dropping off at each step."""
    currency = rng.choice(CURRENCIES)
    events: list[Event] = []
    if rng.random() < 0.2:
        promo = {
            "promotion_id": f"promo_{rng.randint(1, 40)}",
            "creative": "hero_banner",
            "name": "Weekend Sale",
            "position": "home_top",
        }
        home = _page("/", "Example Shop")
        events.append(Event("Promotion Viewed", promo, home))
        if rng.random() < 0.3:
            events.append(Event("Promotion Clicked", promo, home))
    query = rng.choice(SEARCH_TERMS)
    search_page = _page("/search", "Search results", f"{SITE}/", f"?q={query.replace(' ', '+')}")
    events.append(Event("Products Searched", {"query": query}, search_page))
    category = rng.choice(list(CATEGORIES))
    listed = rng.sample(_PRODUCTS, 4)
    list_props = {
        "list_id": f"search_{category.lower()}",
        "category": category,
        "products": [
            {
                "product_id": p["product_id"],
                "sku": p["sku"],
                "name": p["name"],
                "price": p["price"],
                "position": n + 1,
            }
            for n, p in enumerate(listed)
        ],
    }
    events.append(Event("Product List Viewed", list_props, search_page))
    if rng.random() < 0.25:
        filtered = dict(
            list_props,
            filters=[{"type": "price", "value": "under-50"}],
            sorts=[{"type": "price", "value": "asc"}],
        )
        events.append(Event("Product List Filtered", filtered, search_page))
    if rng.random() >= funnel["view_after_search"]:
        return events
    cart: list[dict[str, Any]] = []
    cart_id = f"cart_{rng.getrandbits(40):010x}"
    viewed = listed[: rng.randint(1, 3)]
    for position, p in enumerate(viewed, start=1):
        product_page = _page(p["url"].removeprefix(SITE), p["name"], search_page["url"])
        events.append(Event("Product Clicked", _product(p, position=position), search_page))
        events.append(
            Event("Product Viewed", _product(p, currency=currency, position=position), product_page)
        )
        roll = rng.random()
        if roll < 0.03:
            events.append(
                Event(
                    "Product Reviewed",
                    {
                        "product_id": p["product_id"],
                        "review_id": f"rv_{rng.getrandbits(24):06x}",
                        "rating": rng.randint(1, 5),
                        "review_body": "Does the job.",
                    },
                    product_page,
                )
            )
        elif roll < 0.07:
            events.append(
                Event(
                    "Product Added to Wishlist",
                    _product(p, wishlist_id="wl_default", wishlist_name="Favourites"),
                    product_page,
                )
            )
        elif roll < 0.09:
            events.append(Event("Product Shared", _product(p, share_via="email"), product_page))
        if rng.random() < funnel["add_after_view"]:
            item = _product(p, quantity=rng.choice((1, 1, 1, 2, 3)), cart_id=cart_id, currency=currency)
            cart.append(item)
            events.append(Event("Product Added", item, product_page))
    if not cart:
        return events
    cart_page = _page("/cart", "Your cart", f"{SITE}/products")
    events.append(Event("Cart Viewed", {"cart_id": cart_id, "products": cart}, cart_page))
    if len(cart) > 1 and rng.random() < 0.15:
        removed = cart.pop()
        events.append(Event("Product Removed", removed, cart_page))
    if rng.random() >= funnel["checkout_after_add"]:
        return events
    order_id = f"{rng.randint(10**8, 10**9 - 1)}"
    subtotal = round(sum(p["price"] * p["quantity"] for p in cart), 2)
    discount, coupon = 0.0, None
    checkout_page = _page("/checkout", "Checkout", cart_page["url"])
    order_base = {"order_id": order_id, "currency": currency, "products": cart}
    events.append(
        Event("Checkout Started", dict(order_base, value=subtotal, revenue=subtotal), checkout_page)
    )
    if rng.random() < 0.15:
        coupon = rng.choice(("WELCOME10", "SPRING20", "FREESHIP"))
        events.append(
            Event(
                "Coupon Entered",
                {"order_id": order_id, "cart_id": cart_id, "coupon_id": coupon},
                checkout_page,
            )
        )
        if rng.random() < 0.7:
            discount = round(subtotal * 0.1, 2)
            events.append(
                Event(
                    "Coupon Applied",
                    {
                        "order_id": order_id,
                        "cart_id": cart_id,
                        "coupon_id": coupon,
                        "coupon_name": coupon.title(),
                        "discount": discount,
                    },
                    checkout_page,
                )
            )
        else:
            events.append(
                Event(
                    "Coupon Denied",
                    {
                        "order_id": order_id,
                        "cart_id": cart_id,
                        "coupon_id": coupon,
                        "reason": "Coupon expired",
                    },
                    checkout_page,
                )
            )
            coupon = None
    shipping_method = rng.choice(("standard", "express"))
    for step in (1, 2):
        events.append(Event("Checkout Step Viewed", {"checkout_id": order_id, "step": step}, checkout_page))
        events.append(
            Event(
                "Checkout Step Completed",
                {"checkout_id": order_id, "step": step, "shipping_method": shipping_method},
                checkout_page,
            )
        )
    events.append(
        Event(
            "Payment Info Entered",
            {
                "checkout_id": order_id,
                "order_id": order_id,
                "payment_method": rng.choice(("card", "paypal", "apple_pay")),
            },
            checkout_page,
        )
    )
    if rng.random() >= funnel["order_after_checkout"]:
        return events
    revenue = round(subtotal - discount, 2)
    shipping = (
        0.0 if coupon == "FREESHIP" or revenue > 75 else (4.99 if shipping_method == "standard" else 12.99)
    )
    tax = round(revenue * 0.08, 2)
    order = dict(
        order_base,
        total=round(revenue + shipping + tax, 2),
        revenue=revenue,
        shipping=shipping,
        tax=tax,
        discount=discount,
        affiliation="Example Shop",
    )
    if coupon:
        order["coupon"] = coupon
    events.append(
        Event("Order Completed", order, _page("/checkout/complete", "Thank you", checkout_page["url"]))
    )
    after = rng.random()
    account = _page("/account/orders", "Your orders")
    if after < 0.02:
        events.append(
            Event(
                "Order Refunded",
                {"order_id": order_id, "total": order["total"], "currency": currency},
                account,
            )
        )
    elif after < 0.04:
        events.append(Event("Order Cancelled", dict(order), account))
    elif after < 0.06:
        events.append(Event("Order Updated", dict(order, shipping_method="express"), account))
    return events


def video_session(rng: random.Random, funnel: dict[str, float]) -> list[Event]:
    """A video watched: playback, content segments, an ad sometimes, pauses, buffering, the end."""
    session_id = f"vs_{rng.getrandbits(48):012x}"
    length = rng.choice((95, 310, 620, 1380, 2700))
    title = rng.choice(VIDEO_TITLES)
    page = _page(f"/watch/{title.lower().replace(' ', '-')}", title)
    base = {
        "session_id": session_id,
        "total_length": length,
        "bitrate": rng.choice((800, 1500, 3000, 6000)),
        "video_player": rng.choice(VIDEO_PLAYERS),
        "sound": rng.randint(20, 100),
        "full_screen": rng.random() < 0.4,
        "livestream": rng.random() < 0.05,
    }
    content = {
        "asset_id": f"a{rng.getrandbits(32):08x}",
        "title": title,
        "genre": rng.choice(GENRES),
        "total_length": length,
        "session_id": session_id,
    }
    events = [Event("Video Playback Started", dict(base, position=0), page)]
    if rng.random() < 0.3:
        ad = {
            "session_id": session_id,
            "asset_id": f"ad{rng.getrandbits(24):06x}",
            "type": "pre-roll",
            "total_length": 15,
        }
        events += [
            Event("Video Ad Started", dict(ad, position=0), page),
            Event("Video Ad Playing", dict(ad, position=10), page),
            Event("Video Ad Completed", dict(ad, position=15), page),
        ]
    events.append(Event("Video Content Started", dict(content, position=0), page))
    position = 0
    watched = length if rng.random() < 0.45 else rng.randint(5, length)
    while position + 60 < watched:
        position += rng.randint(30, 120)
        events.append(Event("Video Content Playing", dict(content, position=min(position, watched)), page))
        roll = rng.random()
        if roll < 0.1:
            events += [
                Event("Video Playback Paused", dict(base, position=position), page),
                Event("Video Playback Resumed", dict(base, position=position), page),
            ]
        elif roll < 0.15:
            events += [
                Event("Video Playback Buffer Started", dict(base, position=position), page),
                Event("Video Playback Buffer Completed", dict(base, position=position), page),
            ]
        elif roll < 0.18:
            target = min(length, position + rng.randint(10, 200))
            events += [
                Event(
                    "Video Playback Seek Started", dict(base, position=position, seek_position=target), page
                ),
                Event("Video Playback Seek Completed", dict(base, position=target), page),
            ]
            position = target
    if watched >= length:
        events += [
            Event("Video Content Completed", dict(content, position=length), page),
            Event("Video Playback Completed", dict(base, position=length), page),
        ]
    elif rng.random() < 0.15:
        events.append(
            Event("Video Playback Interrupted", dict(base, position=watched, method="network"), page)
        )
    else:
        events.append(Event("Video Playback Exited", dict(base, position=watched), page))
    return events


def live_chat_session(rng: random.Random, funnel: dict[str, float]) -> list[Event]:
    """One support conversation: started, messages both ways, ended."""
    conversation_id = f"conv_{rng.getrandbits(40):010x}"
    agent = rng.choice(AGENTS)
    base = {
        "agent_id": f"agent_{AGENTS.index(agent) + 100}",
        "agent_name": agent,
        "agent_username": agent.lower(),
        "conversation_id": conversation_id,
    }
    page = _page("/help", "Help centre")
    events = [Event("Live Chat Conversation Started", dict(base), page)]
    for n in range(rng.randint(1, 6)):
        name = "Live Chat Message Sent" if n % 2 == 0 else "Live Chat Message Received"
        events.append(
            Event(name, dict(base, message_id=f"msg_{rng.getrandbits(40):010x}", message_body="…"), page)
        )
    events.append(
        Event("Live Chat Conversation Ended", dict(base, conversation_duration=rng.randint(30, 1800)), page)
    )
    return events


def email_session(rng: random.Random, funnel: dict[str, float]) -> list[Event]:
    """One email's life: delivered, often opened, sometimes clicked; rarely bounced, spam, unsubscribe."""
    campaign = rng.choice(CAMPAIGNS)
    base = {
        "email_id": f"em_{rng.getrandbits(48):012x}",
        "email_subject": rng.choice(EMAIL_SUBJECTS),
        "campaign_id": f"cmp_{CAMPAIGNS.index(campaign) + 7000}",
        "campaign_name": campaign,
        "list_id": "list_all_customers",
    }
    page = _page("/", "Example Shop", "", f"?utm_source=email&utm_campaign={campaign}")
    if rng.random() < 0.02:
        return [Event("Email Bounced", base, page)]
    events = [Event("Email Delivered", base, page)]
    if rng.random() < 0.35:
        events.append(Event("Email Opened", base, page))
        if rng.random() < 0.25:
            events.append(
                Event("Email Link Clicked", dict(base, link_url=f"{SITE}/sale?utm_campaign={campaign}"), page)
            )
        roll = rng.random()
        if roll < 0.01:
            events.append(Event("Email Marked as Spam", base, page))
        elif roll < 0.03:
            events.append(Event("Unsubscribed", base, page))
    return events


def lifecycle_session(rng: random.Random, funnel: dict[str, float]) -> list[Event]:
    """An app session's lifecycle: installed or updated sometimes, opened, a push or deep link, backgrounded."""
    version, build = rng.choice((("5.12.0", "5120"), ("5.11.2", "5112"), ("5.10.0", "5100")))
    events = []
    roll = rng.random()
    if roll < 0.03:
        events.append(Event("Application Installed", {"version": version, "build": build}))
    elif roll < 0.08:
        events.append(
            Event(
                "Application Updated",
                {"previous_version": "5.9.1", "previous_build": "5091", "version": version, "build": build},
            )
        )
    opened = {"from_background": rng.random() < 0.6, "version": version, "build": build}
    if rng.random() < 0.1:
        url = f"exampleshop://products/{rng.choice(_PRODUCTS)['product_id']}"
        opened["url"] = url
        events.append(Event("Deep Link Opened", {"url": url}))
    if rng.random() < 0.1:
        campaign = {"name": rng.choice(CAMPAIGNS), "source": "push", "medium": "push"}
        events.append(Event("Push Notification Received", {"campaign": campaign}))
        events.append(Event("Push Notification Tapped", {"campaign": campaign, "action_identifier": "open"}))
    events.append(Event("Application Opened", opened))
    events.append(Event("Application Backgrounded", {}))
    return events


CATALOGS: dict[str, Catalog] = {
    "ecommerce": Catalog("ecommerce", frozenset({"web", "mobile", "server", "http"}), ecommerce_session),
    "video": Catalog("video", frozenset({"web", "mobile", "server", "http"}), video_session),
    "live_chat": Catalog("live_chat", frozenset({"web", "mobile", "server", "http"}), live_chat_session),
    # email events come from email tools through server sources, not from browsers or apps
    "email": Catalog("email", frozenset({"server", "http"}), email_session),
    "lifecycle": Catalog("lifecycle", frozenset({"mobile"}), lifecycle_session),
}

ECOMMERCE_EVENTS = (
    "Products Searched", "Product List Viewed", "Product List Filtered", "Promotion Viewed", "Promotion Clicked",
    "Product Clicked", "Product Viewed", "Product Added", "Product Removed", "Cart Viewed", "Checkout Started",
    "Checkout Step Viewed", "Checkout Step Completed", "Payment Info Entered", "Order Updated", "Order Completed",
    "Order Refunded", "Order Cancelled", "Coupon Entered", "Coupon Applied", "Coupon Denied", "Coupon Removed",
    "Product Added to Wishlist", "Product Shared", "Product Reviewed",
)  # fmt: skip
"""The e-commerce v2 spec's event names, for tests that check the catalogs use only spec names."""

PAGES = (
    _page("/", "Example Shop"),
    _page("/sale", "Sale", "https://www.google.com/"),
    _page("/category/apparel", "Apparel"),
    _page("/category/electronics", "Electronics"),
    _page("/blog/summer-lookbook", "Summer lookbook", "https://t.co/"),
    _page("/account", "Your account"),
    _page("/help", "Help centre"),
    *(_page(p["url"].removeprefix(SITE), p["name"], f"{SITE}/search") for p in _PRODUCTS[:40]),
)
SCREENS = (
    "Home",
    "Search",
    "Product Detail",
    "Cart",
    "Checkout",
    "Order Confirmation",
    "Account",
    "Settings",
    "Video Player",
)
