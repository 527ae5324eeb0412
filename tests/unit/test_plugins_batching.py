"""The property that cutting a stream into batches never changes what the stores end up holding: any
batching of colliding streams, and the reference workload in random batches, give the oracle's tables."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.consumer.context import ContextLoaderFromStore
from pipeline.events import Event, OrderData, OrderItem, ProductViewData, SystemMetricData, UserActivityData, new_event
from pipeline.metrics.effects import Effect, ItemKey, Scalar
from pipeline.plugins import REGISTRY, BatchContext
from pipeline.plugins.user_activity import user_key
from pipeline.retry import NO_DEADLINE, Deadline
from tests.plugin_cases import T0, first_occurrences
from tests.strategies import money, shifted
from tools.generate import generate_events
from tools.oracle import Tables, apply_effects, expected_messages, expected_tables, messages_of


def _run_batch(batch: Sequence[Event], context: BatchContext) -> list[Effect]:
    """What the processor does: each plugin gets the batch's events of its types, in stream order."""
    out: list[Effect] = []
    for plugin in REGISTRY:
        mine = [e for e in batch if e.event_type in plugin.event_types]
        if mine:
            for effects in plugin.effects(mine, context):
                out.extend(effects)
    return out


class _TablesReader:
    """The stores the previous batches wrote, read the way the context loader reads DynamoDB."""

    def __init__(self, tables: Tables, segments: dict[str, str]) -> None:
        self.tables = tables
        self.users: dict[ItemKey, dict[str, Scalar]] = {
            user_key(u): {"PK": f"USER#{u}", "SK": "#METADATA", "user_segment": s} for u, s in segments.items()
        }

    def read(
        self, table: str, keys: Sequence[ItemKey], deadline: Deadline = NO_DEADLINE
    ) -> dict[ItemKey, dict[str, object]]:
        stored = self.users if table == "store" else self.tables.get(table, {})
        return {key: dict(stored[key]) for key in keys if key in stored}


def _in_batches(raw: Sequence[Event], cuts: Sequence[int], segments: dict[str, str]) -> tuple[Tables, list[Effect]]:
    """Run the stream batch by batch, reading context from the store the previous batches wrote."""
    unique = first_occurrences(raw)
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(unique)), len(unique)]
    tables: Tables = {}
    everything: list[Effect] = []
    loader = ContextLoaderFromStore(_TablesReader(tables, segments), REGISTRY)
    for lo, hi in itertools.pairwise(bounds):
        batch = unique[lo:hi]
        effects = _run_batch(batch, loader.load(batch))
        apply_effects(effects, tables)
        everything.extend(effects)
    return tables, everything


_USERS = ("u-1", "u-2", "u-3")
_ORDERS = ("o-1", "o-2")
_STATUSES = ("created", "CREATED", "completed", "Cancelled", "pending", "Fulfilled", "shipped", "canceled")
_SUBTYPES = (None, "order_created", "order_completed")
_PRODUCTS = ("p-1", "p-2")


_ITEMS = st.lists(st.builds(OrderItem, st.sampled_from(_PRODUCTS), st.integers(1, 3), money), min_size=1, max_size=2)
_ORDER_DATA = st.builds(OrderData, st.sampled_from(_ORDERS), money, _ITEMS.map(tuple), st.sampled_from(_STATUSES))
_ACTIVITY_DATA = st.builds(
    UserActivityData, st.sampled_from(("login", "search")), st.sampled_from((None, "/")), st.sampled_from((None, "s-1"))
)
_DATA = st.one_of(
    _ORDER_DATA,
    _ORDER_DATA,
    _ACTIVITY_DATA,
    _ACTIVITY_DATA,
    st.builds(ProductViewData, st.sampled_from(_PRODUCTS)),
    st.builds(
        SystemMetricData,
        st.just("cpu"),
        st.decimals(-100, 100, places=1),
        st.just("percent"),
        st.sampled_from(({}, {"s": "a"}, {"s": "a", "r": "b"})),
    ),
)


@st.composite
def _colliding_streams(draw: st.DrawFn) -> list[Event]:
    """Streams squeezed onto few users, orders, products and series, over three hours on a 5-minute
    grid (so gaps of exactly the timeout happen), written in random UTC offsets, with some event ids
    repeated: sessions continue, expire and see late events; orders collide on (order_id, status).

    Built from small strategies rather than ``tests.strategies.events`` (five times slower): hostile
    text is covered by ``test_plugins_on_any_events``; this property is about collisions and order.
    """
    stream: list[Event] = []
    for i in range(draw(st.integers(12, 40))):
        data = draw(_DATA)
        at = T0 + timedelta(
            minutes=5 * draw(st.integers(0, 36)), microseconds=draw(st.sampled_from((0, 0, 1, 999_999)))
        )
        event_id = f"e-{i}" if not stream or draw(st.integers(0, 9)) else stream[-1].event_id
        user = draw(st.sampled_from(_USERS if isinstance(data, UserActivityData) else (None, *_USERS)))
        stream.append(
            new_event(
                event_id=event_id,
                timestamp=shifted(at, draw(st.integers(-600, 600))),
                source="web",
                data=data,
                user_id=user,
                event_subtype=draw(st.sampled_from(_SUBTYPES)),
            )
        )
    return stream


@given(
    _colliding_streams(),
    st.lists(st.integers(1, 30), max_size=10),
    st.dictionaries(st.sampled_from(_USERS), st.sampled_from(("vip", "returning"))),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_batching_gives_the_oracle_tables(stream: list[Event], cuts: list[int], segments: dict[str, str]) -> None:
    # GIVEN a stream with colliding users and orders, and repeated event ids
    # WHEN it is cut into batches at random points and each batch reads its context from the store
    tables, effects = _in_batches(stream, cuts, segments)
    # THEN the store holds exactly what the oracle computes for the whole stream, and the same messages
    assert tables == expected_tables(stream, user_segments=segments)
    assert messages_of(effects) == expected_messages(stream)


@pytest.mark.parametrize("seed", [pytest.param(1, id="seed-1"), pytest.param(2, id="seed-2")])
def test_reference_workload_in_random_batches_gives_the_oracle_tables(seed: int) -> None:
    # GIVEN the reference workload (realistic sessions and order life cycles)
    stream = list(generate_events(3_000, seed))
    rng = random.Random(seed)
    cuts = rng.sample(range(1, len(stream)), 40)
    # WHEN cut into 41 batches of random sizes
    tables, effects = _in_batches(stream, cuts, {"u-000001": "vip"})
    # THEN the oracle's tables and messages
    assert tables == expected_tables(stream, user_segments={"u-000001": "vip"})
    assert messages_of(effects) == expected_messages(stream)
    assert len(tables) == 6
