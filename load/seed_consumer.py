"""The source design's consumer, kept as a baseline for benchmarks: blocking calls per event.

It does what the seed document's Lambda did, with its bugs fixed only where they would crash
(floats for money): for every event, one or more blocking ``UpdateItem``/``PutItem``/``GetItem``
calls, no batching, no coalescing, no idempotency (a retried batch double-counts). Do not use it for
anything but measuring what the project's consumer saves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pipeline.events import Event, EventType, OrderData, ProductViewData, SystemMetricData, UserActivityData
from pipeline.metrics.tables import Resources

__all__ = ["SeedStyleConsumer"]


def _iso(event: Event) -> str:
    return event.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SeedStyleConsumer:
    """One blocking DynamoDB call (or several) per event, as in the source design."""

    def __init__(self, dynamodb: Any, resources: Resources) -> None:
        self._db = dynamodb
        self._r = resources

    def process(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.event_type is EventType.ORDER_EVENT and isinstance(event.data, OrderData):
                self._order(event, event.data)
            elif event.event_type is EventType.PRODUCT_VIEW and isinstance(event.data, ProductViewData):
                self._view(event, event.data)
            elif event.event_type is EventType.USER_ACTIVITY and isinstance(event.data, UserActivityData):
                self._activity(event, event.data)
            elif event.event_type is EventType.SYSTEM_METRIC and isinstance(event.data, SystemMetricData):
                self._metric(event, event.data)

    def _order(self, event: Event, data: OrderData) -> None:
        items = sum(i.quantity for i in data.items)
        for metric_type, bucket in (
            ("hourly_orders", event.timestamp.strftime("%Y-%m-%d#%H")),
            ("daily_orders", event.timestamp.strftime("%Y-%m-%d")),
        ):
            self._db.update_item(
                TableName=self._r.table("order_metrics"),
                Key={"metric_type": {"S": metric_type}, "time_bucket": {"S": bucket}},
                UpdateExpression="ADD order_count :one, total_revenue :rev, items_sold :items",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":rev": {"N": str(data.total_amount)},
                    ":items": {"N": str(items)},
                },
            )

    def _view(self, event: Event, data: ProductViewData) -> None:
        self._db.update_item(
            TableName=self._r.table("product_metrics"),
            Key={"product_id": {"S": data.product_id}, "metric_date": {"S": event.timestamp.strftime("%Y-%m-%d")}},
            UpdateExpression="ADD view_count :one, #h :one SET last_viewed = :t",
            ExpressionAttributeNames={"#h": f"hour_{event.timestamp:%H}"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":t": {"S": _iso(event)}},
        )

    def _activity(self, event: Event, data: UserActivityData) -> None:
        if not event.user_id:
            return
        user = self._db.get_item(
            TableName=self._r.table("store"),
            Key={"PK": {"S": f"USER#{event.user_id}"}, "SK": {"S": "#METADATA"}},
        )
        segment = user.get("Item", {}).get("user_segment", {}).get("S", "new")
        ttl = int((event.timestamp + timedelta(days=30)).timestamp())
        item: dict[str, Any] = {
            "user_id": {"S": event.user_id},
            "timestamp": {"S": f"{_iso(event)}#{event.event_id}"},
            "activity_type": {"S": data.activity_type},
            "user_segment": {"S": segment},
            "ttl": {"N": str(ttl)},
        }
        if data.page_url:
            item["page_url"] = {"S": data.page_url}
        self._db.put_item(TableName=self._r.table("user_activities"), Item=item)
        self._db.update_item(
            TableName=self._r.table("user_sessions"),
            Key={"user_id": {"S": event.user_id}},
            UpdateExpression="SET last_activity = :t",
            ExpressionAttributeValues={":t": {"S": _iso(event)}},
        )

    def _metric(self, event: Event, data: SystemMetricData) -> None:
        dims = ",".join(f"{k}={v}" for k, v in sorted(data.dimensions.items()))
        self._db.update_item(
            TableName=self._r.table("system_metrics"),
            Key={
                "metric_key": {"S": f"{data.name}|{dims}"},
                "minute": {"S": event.timestamp.strftime("%Y-%m-%dT%H:%M")},
            },
            UpdateExpression="ADD #c :one, #s :v",
            ExpressionAttributeNames={"#c": "count", "#s": "sum"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":v": {"N": str(data.value)}},
        )
