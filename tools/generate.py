"""The reference workload: a deterministic, realistic stream of shop events for every benchmark and demo.

The model, in one paragraph: ``n`` event times are drawn as sorted uniform points over
``[spec.start, spec.start + spec.duration)`` (lazily, one at a time). Each time slot is a system
metric with probability ``system_metric_share``; otherwise it belongs to one of ``K`` concurrent user
sessions picked uniformly, so a session's events are about ``K`` slots apart. ``K`` is chosen so that
this gap averages ``mean_event_gap`` (seconds to minutes), hence many sessions interleave and more
events in the same span mean more concurrent users. A session has a geometric number of events
(mean ``mean_session_events``); when it ends a new session of a random user takes its place. Products
follow a Zipf law (``p-00001`` is the most popular); an order is created in a session and later, in
that session or in the same user's next session, completed or cancelled, or never resolved. What the
shop sells and how its visitors arrive (the weighted tables, the prices) is in :mod:`tools.shop`.

Guarantees:

- Deterministic: the same ``(n, seed, spec)`` yields the same events, hence the same wire bytes, in
  any process on any machine. Only ``random.Random(seed)`` (``random()`` and ``getrandbits()``) is
  used: no wall clock, no global random state, no salted ``hash()``.
- Exactly ``n`` events, timestamps non-decreasing, aware UTC, inside the spec's span.
- Every event round-trips: ``decode_event(encode_event(e)) == e``.
- Order events of one ``order_id`` carry the same items and total; ``order_completed`` and
  ``order_cancelled`` only follow that order's ``order_created``, at most one of them per order.
- Memory is O(concurrent sessions + users holding an unresolved order), never O(n): events are
  produced lazily. The generator is not thread-safe; use one per thread.
"""

from __future__ import annotations

import math
import uuid
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from random import Random
from typing import Any, BinaryIO, Final

from pipeline.events import (
    SCHEMA_VERSION,
    Event,
    OrderData,
    OrderEvent,
    OrderItem,
    ProductViewData,
    ProductViewEvent,
    SystemMetricData,
    SystemMetricEvent,
    UserActivityData,
    UserActivityEvent,
    encode_event,
)
from pipeline.exceptions import ConfigurationError
from tools.shop import (
    ACTIVITIES,
    CATEGORIES,
    DEVICES,
    ENTRY_REFERRERS,
    LATER_REFERRERS,
    METRICS,
    REGIONS,
    SEARCH_TERMS,
    SERVICES,
    SOURCES,
    STATIC_PATHS,
    Choice,
    price_cents,
)

__all__ = ["WorkloadSpec", "generate_events", "write_ndjson"]


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """The shape of a workload. The defaults are the reference workload every benchmark quotes.

    The four ``*_share`` fields are the event-type mix and must sum to 1. ``completion_rate`` is the
    fraction of resolved orders that complete (the rest are cancelled); ``carry_over_rate`` is the
    chance that an order still open when its session ends is resolved in the user's next session
    (otherwise it stays open for good). Invalid values raise
    :class:`~pipeline.exceptions.ConfigurationError` at construction.
    """

    num_products: int = 10_000
    zipf_s: float = 1.0
    num_users: int = 50_000
    mean_session_events: float = 8.0
    mean_event_gap: timedelta = timedelta(seconds=45)
    product_view_share: float = 0.55
    user_activity_share: float = 0.25
    order_event_share: float = 0.15
    system_metric_share: float = 0.05
    max_order_items: int = 5
    max_quantity: int = 3
    completion_rate: float = 0.8
    carry_over_rate: float = 0.6
    start: datetime = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    duration: timedelta = timedelta(hours=6)
    shop_domain: str = "shop.example.com"

    def __post_init__(self) -> None:
        def bad(name: str, reason: str) -> ConfigurationError:
            return ConfigurationError(f"WorkloadSpec.{name}: {reason}")

        for name in ("num_products", "num_users", "max_order_items", "max_quantity"):
            if getattr(self, name) < 1:
                raise bad(name, "must be at least 1")
        if not self.zipf_s >= 0:
            raise bad("zipf_s", "must be a non-negative exponent")
        if not self.mean_session_events >= 1:
            raise bad("mean_session_events", "must be at least 1")
        if self.mean_event_gap <= timedelta(0):
            raise bad("mean_event_gap", "must be positive")
        shares = (self.product_view_share, self.user_activity_share, self.order_event_share, self.system_metric_share)
        if not all(s >= 0 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-9):
            raise bad("*_share", f"the four event-type shares must be non-negative and sum to 1, got {shares}")
        for name in ("completion_rate", "carry_over_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "must be a probability in [0, 1]")
        if self.start.tzinfo is not UTC:
            raise bad("start", "must be an aware UTC datetime (tzinfo=datetime.UTC)")
        if self.duration < timedelta(microseconds=1):
            raise bad("duration", "must be positive")
        if not self.shop_domain:
            raise bad("shop_domain", "must be non-empty")


_REFERENCE: Final = WorkloadSpec()


def generate_events(n: int, seed: int, spec: WorkloadSpec = _REFERENCE) -> Iterator[Event]:
    """Lazily yield exactly ``n`` events of ``spec``'s workload, in non-decreasing timestamp order.

    Deterministic in ``(n, seed, spec)``; note that ``n`` shapes the whole stream (event times and the
    number of concurrent sessions), so the first 10 of 100 events are not the first 10 of 1,000.
    Raises :class:`ValueError` at once for a negative ``n``.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    return _Simulation(spec, Random(seed)).run(n)


def write_ndjson(events: Iterable[Event], out: BinaryIO) -> int:
    """Write each event's canonical wire bytes and a ``\\n``; return how many events were written.

    Streams: holds one event at a time. If ``out.write`` raises, the lines before it are written and
    the error propagates.
    """
    count = 0
    for event in events:
        out.write(encode_event(event) + b"\n")
        count += 1
    return count


# --------------------------------------------------------------------------- the simulation


class _Session:
    __slots__ = ("device", "emitted", "open_order", "referrer", "remaining", "session_id", "source", "start_us", "user")

    def __init__(self, user: int, session_id: str, source: str, device: str, referrer: str, length: int) -> None:
        self.user = user
        self.session_id = session_id
        self.source = source
        self.device = device
        self.referrer: str | None = referrer  # the entry referrer, used by the first product view
        self.remaining = length
        self.emitted = 0
        self.start_us = -1  # set by the first event
        self.open_order: OrderData | None = None


class _Simulation:
    """One run's state: the catalogue tables, the session pool and the users' unresolved orders."""

    def __init__(self, spec: WorkloadSpec, rng: Random) -> None:
        self.spec = spec
        self.rng = rng
        self.rnd = rng.random
        width = max(5, len(str(spec.num_products)))
        self.product_ids = [f"p-{k:0{width}d}" for k in range(1, spec.num_products + 1)]
        self.prices = [Decimal(price_cents(k)).scaleb(-2) for k in range(1, spec.num_products + 1)]
        self.product_cum = list(accumulate(k**-spec.zipf_s for k in range(1, spec.num_products + 1)))
        self.user_width = max(6, len(str(spec.num_users)))
        self.base_url = f"https://{spec.shop_domain}"
        self.item_counts = Choice([(k, 0.6 ** (k - 1)) for k in range(1, spec.max_order_items + 1)])
        self.quantities = Choice([(q, 0.3 ** (q - 1)) for q in range(1, spec.max_quantity + 1)])
        p_end = 1.0 / spec.mean_session_events
        self.log_continue = math.log1p(-p_end) if p_end < 1.0 else 0.0
        self.pending: dict[int, OrderData] = {}  # user -> an order left open by an earlier session

    # ---- helpers (each consumes a fixed, documented-by-code number of draws)

    def _event_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _product(self) -> int:
        cum = self.product_cum
        return min(bisect_right(cum, self.rnd() * cum[-1]), len(cum) - 1)

    def _new_session(self) -> _Session:
        rnd = self.rnd
        source = SOURCES.pick(rnd())
        length = 1 if self.log_continue == 0.0 else 1 + int(math.log(1.0 - rnd()) / self.log_continue)
        return _Session(
            int(rnd() * self.spec.num_users),
            f"s-{self.rng.getrandbits(64):016x}",
            source,
            DEVICES[source].pick(rnd()),
            ENTRY_REFERRERS.pick(rnd()),
            length,
        )

    def _end_session(self, s: _Session) -> None:
        if s.open_order is not None and self.rnd() < self.spec.carry_over_rate:
            self.pending[s.user] = s.open_order  # a newer open order replaces an older one: never resolved

    # ---- one event of each type

    def _product_view(self, s: _Session, ts: datetime, t_us: int) -> Event:
        if s.referrer is None:
            referrer = LATER_REFERRERS.pick(self.rnd())
        else:
            referrer, s.referrer = s.referrer, None
        data = ProductViewData(
            product_id=self.product_ids[self._product()],
            referrer=referrer,
            device_type=s.device,
            session_duration=(t_us - s.start_us) // 1_000_000,
        )
        return ProductViewEvent(**self._envelope(s, ts), data=data)

    def _user_activity(self, s: _Session, ts: datetime) -> Event:
        rnd = self.rnd
        if s.emitted == 1 and rnd() < 0.4:
            kind = "login"
        elif s.remaining == 0 and rnd() < 0.3:
            kind = "logout"
        else:
            kind = ACTIVITIES.pick(rnd())
        path = STATIC_PATHS.get(kind)
        if path is None:
            if kind == "search":
                path = f"/search?q={SEARCH_TERMS[int(rnd() * len(SEARCH_TERMS))]}"
            elif kind == "page_view" and (r := rnd()) < 0.6:
                path = "/" if r < 0.2 else f"/c/{CATEGORIES[int(rnd() * len(CATEGORIES))]}"
            else:  # product pages: page_view, add_to_cart, wishlist_add
                path = f"/p/{self.product_ids[self._product()]}"
        data = UserActivityData(activity_type=kind, page_url=self.base_url + path, session_id=s.session_id)
        return UserActivityEvent(**self._envelope(s, ts), data=data)

    def _order_event(self, s: _Session, ts: datetime) -> Event:
        order = s.open_order
        if order is None:
            order = self.pending.pop(s.user, None)
        if order is None:
            data = s.open_order = self._new_order()
        else:
            s.open_order = None
            status = "completed" if self.rnd() < self.spec.completion_rate else "cancelled"
            data = OrderData(order_id=order.order_id, total_amount=order.total_amount, items=order.items, status=status)
        return OrderEvent(
            **self._envelope(s, ts),
            data=data,
            event_subtype=f"order_{data.status}",
        )

    def _new_order(self) -> OrderData:
        count = min(self.item_counts.pick(self.rnd()), self.spec.num_products)
        chosen: list[int] = []
        while len(chosen) < count:  # distinct products; a repeat draw is rare and simply redrawn
            if (k := self._product()) not in chosen:
                chosen.append(k)
        items = tuple(
            OrderItem(product_id=self.product_ids[k], quantity=self.quantities.pick(self.rnd()), price=self.prices[k])
            for k in chosen
        )
        total = sum((item.price * item.quantity for item in items), Decimal(0))
        return OrderData(
            order_id=f"o-{self.rng.getrandbits(64):016x}", total_amount=total, items=items, status="created"
        )

    def _system_metric(self, ts: datetime) -> Event:
        rnd = self.rnd
        service, latency = SERVICES[int(rnd() * len(SERVICES))]
        region = REGIONS[int(rnd() * len(REGIONS))]
        which = int(rnd() * len(METRICS))
        name, unit = METRICS[which]
        if which == 0:  # log-normal latency around the service's typical value, 0.1 ms resolution
            normal = math.sqrt(-2.0 * math.log(1.0 - rnd())) * math.cos(2.0 * math.pi * rnd())
            value = Decimal(round(latency * math.exp(0.5 * normal) * 10)).scaleb(-1)
        elif which == 1:  # error rate: exponential, mean 0.5 %, 0.01 resolution
            value = Decimal(min(10_000, round(-math.log(1.0 - rnd()) * 50))).scaleb(-2)
        elif which == 4:  # queue depth: exponential, mean 40 messages
            value = Decimal(int(-math.log(1.0 - rnd()) * 40))
        else:  # utilisation: triangular, cpu mode 40 %, memory mode 60 %
            low, mode, high = (5.0, 40.0, 98.0) if which == 2 else (20.0, 60.0, 95.0)
            u, c = rnd(), (mode - low) / (high - low)
            frac = math.sqrt(u * c) if u < c else 1.0 - math.sqrt((1.0 - u) * (1.0 - c))
            value = Decimal(round((low + frac * (high - low)) * 10)).scaleb(-1)
        data = SystemMetricData(name=name, value=value, unit=unit, dimensions={"service": service, "region": region})
        return SystemMetricEvent(
            event_id=self._event_id(), schema_version=SCHEMA_VERSION, timestamp=ts, source=service, data=data
        )

    def _envelope(self, s: _Session, ts: datetime) -> dict[str, Any]:
        """The fields a session's event shares: a new id (drawn first, as always), the time, the session's
        source and user."""
        return {
            "event_id": self._event_id(),
            "schema_version": SCHEMA_VERSION,
            "timestamp": ts,
            "source": s.source,
            "user_id": self._user_id(s),
        }

    def _user_id(self, s: _Session) -> str:
        return f"u-{s.user:0{self.user_width}d}"

    # ---- the main loop

    def run(self, n: int) -> Iterator[Event]:
        spec = self.spec
        rnd = self.rnd
        start = spec.start
        span_us = spec.duration // timedelta(microseconds=1)
        gap_us = spec.mean_event_gap // timedelta(microseconds=1)
        # K sessions picked uniformly per user slot are each about K user slots apart.
        k = max(1, round(gap_us * n * (1.0 - spec.system_metric_share) / span_us))
        t_metric = spec.system_metric_share
        t_view = t_metric + spec.product_view_share
        t_activity = t_view + spec.user_activity_share
        pool = [self._new_session() for _ in range(min(k, n))]
        k = len(pool)
        x = 0.0
        for left in range(n, 0, -1):
            # The next of `left` sorted uniform points in [0, 1): sequential order statistics.
            x = 1.0 - (1.0 - x) * rnd() ** (1.0 / left)
            t_us = min(int(x * span_us), span_us - 1)
            ts = start + timedelta(microseconds=t_us)
            r = rnd()
            if r < t_metric:
                yield self._system_metric(ts)
                continue
            j = int(rnd() * k)
            s = pool[j]
            if s.emitted == 0:
                s.start_us = t_us
            s.emitted += 1
            s.remaining -= 1
            if r < t_view:
                event = self._product_view(s, ts, t_us)
            elif r < t_activity:
                event = self._user_activity(s, ts)
            else:
                event = self._order_event(s, ts)
            if s.remaining <= 0:
                self._end_session(s)
                pool[j] = self._new_session()
            yield event
