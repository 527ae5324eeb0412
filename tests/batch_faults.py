"""Failing some members of DynamoDB and SQS batch calls, as the services report throttled members.

For writer tests: botocore hooks on real clients take the chosen members out of the request (so they
are really not executed) and put them back into the response as failures. Seeded and thread-safe.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["PartialBatchFailures"]


class PartialBatchFailures:
    """Fails members of batch calls the way DynamoDB and SQS report a throttled member.

    A chosen statement, key or message is really not sent (taken out of the request), then reported:
    a statement with a per-statement ``ProvisionedThroughputExceeded``, a key in ``UnprocessedKeys``,
    a message in ``Failed`` (not the sender's fault). A call always keeps at least one member.
    """

    def __init__(self, dynamodb: DynamoDBClient, sqs: SQSClient, rate: float, seed: int = 3) -> None:
        self._random = random.Random(seed)
        self._rate = rate
        self._lock = threading.Lock()
        self.withheld = 0
        self._hooks: list[tuple[Any, str, Callable[..., None]]] = [
            (dynamodb, "before-parameter-build.dynamodb.BatchExecuteStatement", self._hold_statements),
            (dynamodb, "after-call.dynamodb.BatchExecuteStatement", self._report_statements),
            (dynamodb, "before-parameter-build.dynamodb.BatchGetItem", self._hold_keys),
            (dynamodb, "after-call.dynamodb.BatchGetItem", self._report_keys),
            (sqs, "before-parameter-build.sqs.SendMessageBatch", self._hold_messages),
            (sqs, "after-call.sqs.SendMessageBatch", self._report_messages),
        ]
        for client, event, handler in self._hooks:
            client.meta.events.register(event, handler, unique_id=f"partial.{event}")

    def detach(self) -> None:
        for client, event, _ in self._hooks:
            client.meta.events.unregister(event, unique_id=f"partial.{event}")

    def _pick(self, members: int) -> set[int]:
        with self._lock:
            chosen = {i for i in range(members) if self._random.random() < self._rate}
            if len(chosen) == members:
                chosen.discard(0)
            self.withheld += len(chosen)
            return chosen

    def _hold_statements(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        statements = params["Statements"]
        chosen = self._pick(len(statements))
        context["held"] = (len(statements), chosen)
        params["Statements"] = [s for i, s in enumerate(statements) if i not in chosen]

    def _report_statements(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        total, chosen = context.pop("held", (0, set()))
        if "Responses" in parsed:
            sent = iter(parsed["Responses"])
            throttled = {"Error": {"Code": "ProvisionedThroughputExceeded", "Message": "injected"}}
            parsed["Responses"] = [dict(throttled) if i in chosen else next(sent) for i in range(total)]

    def _hold_keys(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        members = [(table, key) for table, request in params["RequestItems"].items() for key in request["Keys"]]
        chosen = self._pick(len(members))
        held: dict[str, Any] = {}
        kept: dict[str, Any] = {}
        for i, (table, key) in enumerate(members):
            target = held if i in chosen else kept
            target.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
        context["held"] = held
        params["RequestItems"] = kept

    def _report_keys(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        held = context.pop("held", {})
        if "Responses" in parsed and held:
            parsed["UnprocessedKeys"] = {**parsed.get("UnprocessedKeys", {}), **held}

    def _hold_messages(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        chosen = self._pick(len(params["Entries"]))
        context["held"] = [e["Id"] for i, e in enumerate(params["Entries"]) if i in chosen]
        params["Entries"] = [e for i, e in enumerate(params["Entries"]) if i not in chosen]

    def _report_messages(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        held = context.pop("held", [])
        if "Successful" in parsed:
            failed = [{"Id": i, "SenderFault": False, "Code": "InternalError", "Message": "injected"} for i in held]
            parsed["Failed"] = [*parsed.get("Failed", []), *failed]
