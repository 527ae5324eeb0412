"""The consumer reads user segments from the entity store's single table, written by the store itself."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pipeline.codecs import RecordFormat
from pipeline.consumer.handler import build_consumer
from pipeline.events import UserActivityData
from pipeline.settings import Settings, aws_client
from pipeline.stores.single_table import SingleTableRepository
from pipeline.stream import lambda_event
from tests.consumer_harness import build_shards, stream_arn
from tests.plugin_cases import T0, make_event
from tools.local.provision import create_resources, delete_resources

pytestmark = pytest.mark.emulator


def test_an_activity_row_carries_the_segment_the_store_gave_the_user(
    emulator: Settings, single_table: SingleTableRepository, store_table: str, dynamodb: Any
) -> None:
    # GIVEN a user created through the single-table store with segment "vip", and one without an item
    user = single_table.create_user("ada@example.com", "Ada", user_segment="vip")
    # AND the consumer Lambda runs, reading this store's table
    created = create_resources(emulator)
    resources = replace(created, tables={**created.tables, "store": store_table})
    aws_client("s3", emulator).create_bucket(Bucket=resources.bad_rows_bucket)
    try:
        consumer = build_consumer(emulator, resources, tracing=False)
        events = [
            make_event(UserActivityData("page_view", "/", "s-1"), T0, "e-1", user.user_id),
            make_event(UserActivityData("page_view", "/", "s-2"), T0, "e-2", "nobody"),
        ]
        (records,) = build_shards(events, RecordFormat.JSON, 1).values()
        # WHEN it handles their activities
        assert consumer.handle(lambda_event(records, stream_arn)) == {"batchItemFailures": []}
        # THEN the store's user gets its segment and the other the default one
        rows = dynamodb.scan(TableName=resources.table("user_activities"), ConsistentRead=True)["Items"]
        segments = {row["user_id"]["S"]: row["user_segment"]["S"] for row in rows}
        assert segments == {user.user_id: "vip", "nobody": "new"}
    finally:
        delete_resources(emulator, created)
