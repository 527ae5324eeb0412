"""The simulated shop the reference workload draws from: traffic sources, devices, referrers, user
activities, categories, search terms, services and their metrics, and every product's price.

Each weighted table is a :class:`Choice` that takes one ``random()`` draw per pick, so the generator's
draw sequence, hence its events, is the same on every Python version. Prices are a fixed function of
the product index alone (no random state). Everything here is immutable and thread-safe.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Final, Generic, TypeVar

__all__ = [
    "ACTIVITIES",
    "CATEGORIES",
    "DEVICES",
    "ENTRY_REFERRERS",
    "LATER_REFERRERS",
    "METRICS",
    "REGIONS",
    "SEARCH_TERMS",
    "SERVICES",
    "SOURCES",
    "STATIC_PATHS",
    "Choice",
    "price_cents",
]

_T = TypeVar("_T")


class Choice(Generic[_T]):
    """A weighted choice driven by one ``random()`` draw (stable across Python versions)."""

    __slots__ = ("_cum", "_values")

    def __init__(self, weighted: Sequence[tuple[_T, float]]) -> None:
        total = sum(w for _, w in weighted)
        self._values = tuple(v for v, _ in weighted)
        cum = [c / total for c in accumulate(w for _, w in weighted)]
        cum[-1] = 1.0  # random() < 1.0, so bisect never runs off the end
        self._cum = tuple(cum)

    def pick(self, r: float) -> _T:
        return self._values[bisect_right(self._cum, r)]


SOURCES: Final = Choice([("web", 0.5), ("ios", 0.3), ("android", 0.2)])
DEVICES: Final = {
    "web": Choice([("desktop", 0.6), ("mobile", 0.3), ("tablet", 0.1)]),
    "ios": Choice([("mobile", 0.8), ("tablet", 0.2)]),
    "android": Choice([("mobile", 0.9), ("tablet", 0.1)]),
}
ENTRY_REFERRERS: Final = Choice(
    [("search", 0.35), ("direct", 0.12), ("home", 0.18), ("ad", 0.15), ("email", 0.1), ("social", 0.1)]
)
LATER_REFERRERS: Final = Choice(
    [("recommendation", 0.35), ("search", 0.3), ("category", 0.2), ("home", 0.1), ("cart", 0.05)]
)
ACTIVITIES: Final = Choice(
    [
        ("page_view", 0.38),
        ("search", 0.22),
        ("add_to_cart", 0.15),
        ("checkout_start", 0.08),
        ("wishlist_add", 0.06),
        ("remove_from_cart", 0.05),
        ("login", 0.03),
        ("logout", 0.03),
    ]
)
STATIC_PATHS: Final = {
    "login": "/account/login",
    "logout": "/account/logout",
    "remove_from_cart": "/cart",
    "checkout_start": "/checkout",
}
CATEGORIES: Final = (
    "electronics",
    "home-kitchen",
    "books",
    "fashion",
    "toys",
    "sports-outdoors",
    "beauty",
    "garden",
    "grocery",
    "automotive",
)
SEARCH_TERMS: Final = (  # already URL-encoded
    "running+shoes",
    "usb-c+cable",
    "coffee+grinder",
    "yoga+mat",
    "wireless+earbuds",
    "kids+books",
    "winter+jacket",
    "led+desk+lamp",
    "water+bottle",
    "phone+case",
    "board+games",
    "chef+knife",
)
# (service, typical latency in ms); the service is both the metric's ``source`` and a dimension.
SERVICES: Final = (
    ("catalog-api", 40.0),
    ("search-api", 90.0),
    ("cart-api", 35.0),
    ("checkout-api", 120.0),
    ("payments-worker", 250.0),
)
REGIONS: Final = ("us-east-1", "eu-west-1", "ap-southeast-2")
METRICS: Final = (
    ("api.latency_ms", "ms"),
    ("api.error_rate", "percent"),
    ("cpu.utilization", "percent"),
    ("memory.utilization", "percent"),
    ("queue.depth", "count"),
)
_MIX64: Final = 0xFFFFFFFFFFFFFFFF


def price_cents(index: int) -> int:
    """A stable per-product price in cents from the product index alone: log-uniform $1.49-$499.99."""
    h = (index * 0x9E3779B97F4A7C15) & _MIX64  # splitmix64 finaliser: a fixed, unsalted mix
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MIX64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MIX64
    h ^= h >> 31
    dollars = min(499, int(math.exp((h >> 11) / 2.0**53 * math.log(500))))
    cents = (99, 99, 49, 95)[h & 3]
    return dollars * 100 + cents
