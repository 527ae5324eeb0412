"""Writing window items to DynamoDB: upserts by key, unprocessed items resent, refusals translated."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from analytics.metrics import Item
from analytics.store import read_items, write_items
from pipeline.exceptions import MetricWriteError, TransientError
from pipeline.settings import Settings, aws_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _items(n: int, revenue: str = "1.500000") -> list[Item]:
    return [{"pk": "orders_1h", "sk": f"h{i:03d}", "orders": i, "revenue": Decimal(revenue)} for i in range(n)]


class _Throttling:
    """A DynamoDB client that leaves the last item of each first call unprocessed, then accepts all."""

    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[int] = []
        self.refuse = refuse

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:  # noqa: N803
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "no"}}, "BatchWriteItem")
        (requests,) = RequestItems.values()
        self.calls.append(len(requests))
        if len(self.calls) % 2 == 1 and len(requests) > 1:
            return {"UnprocessedItems": {"t": requests[-1:]}}
        return {"UnprocessedItems": {}}


def test_unprocessed_items_are_resent_and_batches_hold_25() -> None:
    client = _Throttling()
    assert write_items(client, "t", _items(30), sleep=lambda s: None) == 30
    # 25, then its unprocessed item again; the last 5, then its unprocessed item again
    assert client.calls == [25, 1, 5, 1]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        pytest.param("ValidationException", MetricWriteError, id="refused"),
        pytest.param("ProvisionedThroughputExceededException", TransientError, id="throttled-to-the-end"),
    ],
)
def test_refusals_are_translated(code: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        write_items(_Throttling(refuse=code), "t", _items(3), max_rounds=2, sleep=lambda s: None)


@pytest.mark.emulator
def test_writing_the_same_windows_again_overwrites_them(emulator: Settings, window_metrics_table: str) -> None:
    dynamodb: DynamoDBClient = aws_client("dynamodb", emulator)
    # GIVEN 40 items written, then the same windows again with a new revenue
    write_items(dynamodb, window_metrics_table, _items(40))
    write_items(dynamodb, window_metrics_table, _items(40, revenue="2.250000"))
    # THEN the table holds 40 items, the last values, numbers exact
    stored = read_items(dynamodb, window_metrics_table)
    assert len(stored) == 40
    assert stored["orders_1h", "h007"] == {"pk": "orders_1h", "sk": "h007", "orders": 7, "revenue": Decimal("2.25")}
