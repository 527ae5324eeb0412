"""What the archive tests (tests/functional/test_archive*.py) share: the day their events fall on, an event
of any type, and a fresh bucket."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from pipeline.events import (
    Event,
    EventData,
    EventType,
    OrderData,
    OrderItem,
    ProductViewData,
    SystemMetricData,
    UserActivityData,
    new_event,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["DAY", "archived_event", "new_bucket"]


DAY = datetime(2026, 11, 24, tzinfo=UTC)


def new_bucket(s3: S3Client) -> str:
    name = f"archive-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


def archived_event(i: int, when: datetime, kind: EventType = EventType.USER_ACTIVITY) -> Event:
    """An event of ``kind`` (with that type's payload) at ``when``."""
    payloads: dict[EventType, EventData] = {
        EventType.USER_ACTIVITY: UserActivityData("click", None, f"s-{i % 7}"),
        EventType.ORDER_EVENT: OrderData(
            f"o-{i}", Decimal("19.99"), (OrderItem("p-1", 1, Decimal("19.99")),), "created"
        ),
        EventType.PRODUCT_VIEW: ProductViewData(f"p-{i % 5}"),
        EventType.SYSTEM_METRIC: SystemMetricData("cpu", Decimal(i % 100), "Percent", {"host": "h-1"}),
    }
    return new_event(event_id=f"a-{i:05d}", timestamp=when, source="web", data=payloads[kind], user_id=f"u-{i % 13}")
