"""The ``event_dedup`` table on the emulator: what the dedup window stores, reads back and refreshes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.consumer.dedup import MAX_ITEM_ENTRIES, EventDeduplicator
from pipeline.consumer.dedup_dynamodb import DynamoDedupStore
from pipeline.metrics.tables import Resources
from pipeline.settings import Settings, aws_client
from tools.local.provision import create_resources, delete_resources

pytestmark = pytest.mark.emulator

T0 = datetime(2026, 11, 24, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def store(emulator: Settings) -> Iterator[DynamoDedupStore]:
    resources: Resources = create_resources(emulator)
    try:
        yield DynamoDedupStore(aws_client("dynamodb", emulator), resources.table("event_dedup"))
    finally:
        delete_resources(emulator, resources)


def test_a_container_that_saw_nothing_still_refreshes(store: DynamoDedupStore) -> None:
    # GIVEN a container whose index for the shard is empty (its first batch counted nothing)
    dedup = EventDeduplicator(store, HOUR)
    assert dedup.duplicates("s", [], T0) == set()
    # WHEN another container counts an event and this one sees the shard again
    other = EventDeduplicator(store, HOUR)
    other.duplicates("s", [("e-1", "p1")], T0)
    other.commit("s", [("e-1", "p1")], T0)
    # THEN the refresh (no lower key yet: DynamoDB refuses an empty one) finds it
    assert dedup.duplicates("s", [("e-1", "p2")], T0 + timedelta(minutes=1)) == {0}


def test_a_big_batch_round_trips_in_parts(store: DynamoDedupStore) -> None:
    pairs = [(f"e-{i}", f"p{i:08d}") for i in range(MAX_ITEM_ENTRIES + 100)]
    EventDeduplicator(store, HOUR).commit("s", pairs, T0)
    fresh = EventDeduplicator(store, HOUR)
    assert fresh.duplicates("s", [("e-5", "x"), (f"e-{MAX_ITEM_ENTRIES + 50}", "y"), ("new", "z")], T0) == {0, 1}
    assert len(list(store.recent("s", 0.0))) == 2
