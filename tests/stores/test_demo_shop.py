"""The demo's shop on the emulator and a real PostgreSQL: it commits what the stores accept, change data
capture publishes exactly the committed changes, and the oracle read back from the stores agrees."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from pipeline.events import Event, EventType, OrderData
from pipeline.settings import Settings, aws_client
from pipeline.stores.keys import user_segment_key
from pipeline.stores.sql.postgres import PostgresBackend
from pipeline.stores.sql.repository import EVENT_SOURCE
from tests.stores.cdc_helpers import decoded, stream_records
from tools.committed import committed_events, order_totals, single_table_orders, sql_order_changes
from tools.generate import generate_events
from tools.local.demo_shop import SINGLE_TABLE, SQL, DemoShop, segment_of, store_of
from tools.oracle import expected_tables

pytestmark = pytest.mark.emulator


def test_the_shop_commits_what_the_stores_accept_and_cdc_publishes_exactly_the_committed_changes(
    emulator: Settings, dynamodb: Any, store_table: str, kinesis_stream: str, migrated_database: str
) -> None:
    # GIVEN generated events, and a shop on a fresh single table and SQL database with 2 units per product
    events = list(generate_events(800, 3))
    orders_in = [e for e in events if isinstance(e.data, OrderData)]
    backend = PostgresBackend(migrated_database)
    kinesis = aws_client("kinesis", emulator.with_(max_attempts=1))
    shop = DemoShop(
        dynamodb, store_table, aws_client("dynamodbstreams", emulator), kinesis, kinesis_stream, backend,
        stock=2, sql_note="test",
    )  # fmt: skip
    try:
        # WHEN it seeds the users, then places the orders and drains both CDC paths
        segments = shop.seed(events)
        shop.place(events)
    finally:
        shop.close()
    summary = shop.summary
    # THEN every user of an activity or an order exists with the segment the oracle will assume, readable
    # where the consumer reads it
    read = {EventType.USER_ACTIVITY, EventType.ORDER_EVENT}
    users = {e.user_id for e in events if e.user_id and e.event_type in read}
    assert set(segments) == users and summary.users == len(users)
    some_user = sorted(users)[0]
    item = dynamodb.get_item(TableName=store_table, Key={k: {"S": v} for k, v in user_segment_key(some_user).items()})
    assert item["Item"]["user_segment"]["S"] == segment_of(some_user)
    # AND orders went to both stores by their id, some were refused for stock, the rest committed
    placed = sum(summary.placed.values())
    assert set(summary.placed) == {SINGLE_TABLE, SQL}
    assert summary.rejected["stock"] > 0
    assert placed == sum(summary.committed.values()) + sum(summary.rejected.values())
    # AND the stream holds exactly one event per committed change, as the stores hold it
    published = decoded(stream_records(kinesis, kinesis_stream))
    committed = committed_events(single_table_orders(dynamodb, store_table), sql_order_changes(backend, EVENT_SOURCE))
    assert Counter(e.event_id for e in published) == Counter(e.event_id for e in committed)
    by_id = {e.event_id: e for e in published}
    for event in committed:
        twin = by_id[event.event_id]
        assert (twin.timestamp, twin.user_id, twin.source, twin.data) == (
            event.timestamp,
            event.user_id,
            event.source,
            event.data,
        )
    assert summary.bridged + summary.relayed == len(committed)
    # AND each committed order kept its input's order id, store, items and event time
    created = {_order(e).order_id: e for e in committed if _order(e).status == "created"}
    first_in: dict[str, Event] = {}
    for event in orders_in:
        first_in.setdefault(_order(event).order_id, event)
    for order_id, event in created.items():
        source = first_in[order_id]
        assert event.timestamp == source.timestamp
        assert _order(event).items == _order(source).items
        assert event.source.endswith("aurora") == (store_of(order_id, sql=True) == SQL)
    # AND the oracle of the committed events counts each committed order once
    totals = order_totals(expected_tables(committed)["order_metrics"])
    assert totals.daily_orders == totals.hourly_orders == len(created) == sum(summary.committed.values())
    # AND no stock went below zero in either store
    assert backend.execute_statement("SELECT count(*) AS n FROM products WHERE stock < 0").one() == {"n": 0}
    backend.close()


def _order(event: Event) -> OrderData:
    assert isinstance(event.data, OrderData)
    return event.data
