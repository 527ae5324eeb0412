"""The ``window_metrics`` table: writing the job's items from a local run, reading them back.

In AWS the Flink DynamoDB connector writes the table; locally its jar is not available (Maven is not
reachable), so :func:`write_items` writes what the local job produced with ``BatchWriteItem``.

Guarantees of :func:`write_items`:

- Idempotent, by key: every write is a ``PutRequest`` of a whole item keyed ``(pk, sk)``, so writing
  the same items again, or a window's newer result, overwrites instead of adding. ``BatchWriteItem``
  is not a transaction: a failure part-way leaves some items written; writing again completes them.
- Items the table reports unprocessed are resent (exponential backoff with jitter) until
  ``max_rounds`` rounds; then :class:`~pipeline.exceptions.TransientError` is raised naming how many
  remain. A refused request (``ClientError``) is translated to :class:`~pipeline.exceptions.TransientError`
  when a retry may fix it, else to :class:`~pipeline.exceptions.MetricWriteError`.
- Values are written as ``S`` (str) or ``N`` (int, exact ``Decimal`` text); never float.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from analytics.metrics import Item, ItemKey, item_key
from pipeline.exceptions import MetricWriteError, TransientError

__all__ = ["read_items", "write_items"]

_BATCH: Final = 25
_RETRYABLE: Final = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "InternalServerError"}
)


def _attribute(value: str | int | Decimal) -> dict[str, str]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):  # bool is an int: refuse it rather than store 1
        raise MetricWriteError(f"not a number: {value!r}")
    return {"N": str(value)}


def _value(attribute: Mapping[str, str]) -> str | int | Decimal:
    if "S" in attribute:
        return attribute["S"]
    text = attribute["N"]
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() and "." not in text and "E" not in text else number


def write_items(
    dynamodb: Any,
    table: str,
    items: Iterable[Item],
    *,
    max_rounds: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Put every item into ``table`` (see the module docstring); the number of items written."""
    rng = random.Random()  # noqa: S311 - backoff jitter, not a secret
    batch: list[dict[str, Any]] = []
    written = 0

    def flush() -> None:
        pending: dict[str, list[dict[str, Any]]] = {table: batch}
        for round_ in range(max_rounds):
            try:
                response = dynamodb.batch_write_item(RequestItems=pending)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in _RETRYABLE:
                    raise MetricWriteError(f"{table}: BatchWriteItem refused: {exc}") from exc
                response = {"UnprocessedItems": pending}
            except BotoCoreError as exc:
                raise TransientError(f"{table}: BatchWriteItem failed: {exc}") from exc
            unprocessed = response.get("UnprocessedItems") or {}
            if not unprocessed.get(table):
                return
            pending = {table: unprocessed[table]}
            sleep(rng.uniform(0, 0.05 * 2**round_))
        raise TransientError(f"{table}: {len(pending[table])} items unwritten after {max_rounds} rounds")

    for item in items:
        batch.append({"PutRequest": {"Item": {name: _attribute(value) for name, value in item.items()}}})
        if len(batch) == _BATCH:
            flush()
            written += len(batch)
            batch = []
    if batch:
        flush()
        written += len(batch)
    return written


def read_items(dynamodb: Any, table: str) -> dict[ItemKey, Item]:
    """Every item of ``table`` (a paginated ``Scan``), numbers as ``int`` or ``Decimal``."""
    items: dict[ItemKey, Item] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for raw in page.get("Items", []):
            item: Item = {name: _value(attribute) for name, attribute in raw.items()}
            items[item_key(item)] = item
    return items
