"""The ``event_dedup`` table: :class:`~pipeline.consumer.dedup.DedupStore` on DynamoDB.

Key ``(shard, batch)``; attributes ``arrival`` (N, epoch seconds), ``entries`` (B) and ``ttl`` (N,
DynamoDB TTL). Reads are consistent ``Query`` calls on one shard's partition; writes are
``BatchWriteItem`` puts (25 items a call), resending only ``UnprocessedItems``. A put overwrites an
item with the same key, which holds the same entries: writing it twice writes it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.consumer.dedup import DedupItem
from pipeline.exceptions import ConfigurationError, MetricWriteError, TransientError
from pipeline.retry import NO_DEADLINE, Deadline, RetryPolicy

__all__ = ["DynamoDedupStore"]

_ITEMS_PER_CALL: Final = 25
_TRANSIENT: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


class DynamoDedupStore:
    """See the module docstring. ``dynamodb`` is a botocore client; thread-safe as the client is."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        retry: RetryPolicy | None = None,
        call_seconds: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._retry = retry or RetryPolicy()
        self._call_seconds = call_seconds
        self._sleep = sleep

    def recent(self, shard_id: str, since: float, deadline: Deadline = NO_DEADLINE) -> Iterator[DedupItem]:
        for item in self._query(shard_id, None, deadline, forward=False):
            yield item
            if item.arrival < since:
                return

    def after(self, shard_id: str, key: str, deadline: Deadline = NO_DEADLINE) -> list[DedupItem]:
        return list(self._query(shard_id, key, deadline, forward=True))

    def put(self, items: Sequence[DedupItem], ttl: float, deadline: Deadline = NO_DEADLINE) -> None:
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "shard": {"S": item.shard_id},
                        "batch": {"S": item.key},
                        "arrival": {"N": str(Decimal(repr(item.arrival)))},
                        "entries": {"B": item.entries},
                        "ttl": {"N": str(int(ttl))},
                    }
                }
            }
            for item in items
        ]
        for start in range(0, len(requests), _ITEMS_PER_CALL):
            self._write(requests[start : start + _ITEMS_PER_CALL], deadline)

    def _may_call(self, attempt: int, deadline: Deadline) -> bool:
        """Before attempt ``attempt`` (0 first): wait the backoff of a retry; False when the policy or the
        deadline leaves no room for one more call."""
        if attempt == 0:
            return deadline.allows(self._call_seconds)
        return self._retry.wait(attempt, deadline=deadline, call_seconds=self._call_seconds, sleep=self._sleep)

    def _write(self, requests: list[dict[str, Any]], deadline: Deadline) -> None:
        pending = requests
        for attempt in range(self._retry.attempts):
            if not self._may_call(attempt, deadline):
                break
            try:
                response = self._dynamodb.batch_write_item(RequestItems={self._table: pending})
            except ClientError as exc:
                self._raise_unless_transient(exc)
                continue
            except BotoCoreError:
                continue
            pending = response.get("UnprocessedItems", {}).get(self._table, [])
            if not pending:
                return
        raise TransientError(f"{len(pending)} dedup items not written to {self._table} after retries")

    def _query(self, shard_id: str, after: str | None, deadline: Deadline, *, forward: bool) -> Iterator[DedupItem]:
        condition = "#s = :s"
        values: dict[str, Any] = {":s": {"S": shard_id}}
        names = {"#s": "shard"}
        if after:  # DynamoDB refuses an empty string in a key condition: no lower bound then
            condition += " AND #b > :b"
            values[":b"] = {"S": after}
            names["#b"] = "batch"
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
            "ConsistentRead": True,
        }
        while True:
            page = self._call_query(request, deadline)
            for raw in page.get("Items", []):
                yield DedupItem(raw["shard"]["S"], raw["batch"]["S"], float(raw["arrival"]["N"]), raw["entries"]["B"])
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request = {**request, "ExclusiveStartKey": last}

    def _call_query(self, request: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        for attempt in range(self._retry.attempts):
            if not self._may_call(attempt, deadline):
                break
            try:
                page: dict[str, Any] = self._dynamodb.query(**request)
            except ClientError as exc:
                self._raise_unless_transient(exc)
                continue
            except BotoCoreError:
                continue
            return page
        raise TransientError(f"dedup items of {self._table} unread after retries")

    def _raise_unless_transient(self, exc: ClientError) -> None:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _TRANSIENT:
            return
        if code == "ResourceNotFoundException":
            raise ConfigurationError(f"dedup table {self._table} not found: {exc}") from exc
        raise MetricWriteError(f"dedup table {self._table}: {exc}") from exc
