"""Low-level access to one DynamoDB table for the repository: transactions with typed cancellation
reasons, consistent reads, queries with pages. Every ``ClientError`` is translated here.

Retries: botocore retries throttling and network errors with the same request body (so the same
``ClientRequestToken``: a resent ``TransactWriteItems`` that had succeeded succeeds again without
writing twice, for 10 minutes). A transaction cancelled only by ``TransactionConflict`` (a concurrent
transaction on one of its items) wrote nothing; it is run again here with a new token, a bounded
number of times, then :class:`StoreUnavailableError`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from botocore.exceptions import ClientError

from pipeline.stores.attributes import from_item, to_item
from pipeline.stores.errors import (
    InvalidEntityError,
    NotFoundError,
    OrderTooLargeError,
    StoreError,
    StoreUnavailableError,
)
from pipeline.stores.models import Page

__all__ = ["MAX_TRANSACTION_ITEMS", "Action", "OnFailure", "Table", "translate"]

MAX_TRANSACTION_ITEMS: Final = 100
"""DynamoDB's limit of actions in one ``TransactWriteItems``."""
_CONFLICT_RETRIES: Final = 5
_TRANSIENT: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)

OnFailure = Callable[[Mapping[str, Any] | None], StoreError]
"""What a ``ConditionalCheckFailed`` on one action means, given the item's old image (``None``: absent)."""
Action = tuple[dict[str, Any], OnFailure]


def translate(exc: ClientError) -> StoreError:
    """A DynamoDB error the caller cannot act on in detail, as a store error."""
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", str(exc))
    if code in _TRANSIENT:
        return StoreUnavailableError(f"DynamoDB {code} after retries: {message}")
    if code == "ResourceNotFoundException":
        return NotFoundError("table", message)
    return StoreError(f"DynamoDB refused the request ({code}): {message}")


class Table:
    """One table through a low-level DynamoDB client. Thread-safe (the client is)."""

    def __init__(self, client: Any, name: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.name = name
        self._sleep = sleep

    def put(self, item: Mapping[str, object]) -> dict[str, Any]:
        """A transaction ``Put`` action that inserts only if no item has this key."""
        return {
            "Put": {"TableName": self.name, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(PK)"}
        }

    def exists(self, key: Mapping[str, str]) -> dict[str, Any]:
        """A transaction ``ConditionCheck`` action: the item must exist."""
        return {
            "ConditionCheck": {
                "TableName": self.name,
                "Key": to_item(key),
                "ConditionExpression": "attribute_exists(PK)",
            }
        }

    def transact(self, actions: Sequence[Action]) -> None:
        """One ``TransactWriteItems``; a cancellation raises the error of the first failed condition."""
        if len(actions) > MAX_TRANSACTION_ITEMS:  # callers check their own limits first; this is the backstop
            raise OrderTooLargeError(len(actions), MAX_TRANSACTION_ITEMS)
        request = [action for action, _ in actions]
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self.client.transact_write_items(TransactItems=request, ClientRequestToken=str(uuid.uuid4()))
                return
            except ClientError as exc:
                error = exc.response.get("Error", {})
                if error.get("Code") != "TransactionCanceledException":
                    raise translate(exc) from exc
                reasons = exc.response.get("CancellationReasons") or []
                for (_, on_failure), reason in zip(actions, reasons, strict=False):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        old = reason.get("Item")
                        raise on_failure(from_item(old) if old else None) from exc
                codes = {reason.get("Code") for reason in reasons} - {"None", None}
                if codes == {"TransactionConflict"}:
                    self._sleep(0.02 * 2**attempt)  # nothing was written: safe to run again
                    continue
                raise StoreUnavailableError(f"transaction cancelled: {error.get('Message')}") from exc
        raise StoreUnavailableError(f"transaction conflicted {_CONFLICT_RETRIES} times with concurrent writes")

    def get(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        """One item, strongly consistent; ``None`` if absent."""
        try:
            response = self.client.get_item(TableName=self.name, Key=to_item(key), ConsistentRead=True)
        except ClientError as exc:
            raise translate(exc) from exc
        item = response.get("Item")
        return from_item(item) if item else None

    def query(self, **request: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = self.client.query(TableName=self.name, **request)
        except ClientError as exc:
            raise translate(exc) from exc
        return response

    def query_all(self, **request: Any) -> list[dict[str, Any]]:
        """Every item of a query, following ``LastEvaluatedKey`` (for bounded partitions: one order, one user)."""
        items: list[dict[str, Any]] = []
        while True:
            response = self.query(**request)
            items += [from_item(item) for item in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def page(
        self, convert: Callable[[dict[str, Any]], Any], limit: int, cursor: Mapping[str, Any] | None, **request: Any
    ) -> Page[Any]:
        """One page of at most ``limit`` items, converted; its cursor is ``LastEvaluatedKey``."""
        if not 1 <= limit <= 1000:
            raise InvalidEntityError(f"limit: from 1 to 1000, not {limit!r}")
        if cursor:
            request["ExclusiveStartKey"] = dict(cursor)
        response = self.query(Limit=limit, **request)
        return Page([convert(from_item(item)) for item in response.get("Items", [])], response.get("LastEvaluatedKey"))
