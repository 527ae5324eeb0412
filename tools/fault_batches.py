"""How each batch operation reports entries it did not do: the adapters behind
:meth:`tools.faults.FaultInjector.fail_batch_entries`.

A withheld entry is taken out of the request before it is serialised (so it is really not done) and
handed back in the response the way the service reports an entry it throttled:

- DynamoDB ``BatchExecuteStatement``: its ``Responses`` entry carries ``Error.Code = ThrottlingError``
  (the response list stays aligned with the statements, as DynamoDB's is);
- DynamoDB ``BatchWriteItem``: the request is returned in ``UnprocessedItems``;
- DynamoDB ``BatchGetItem``: the key is returned in ``UnprocessedKeys`` (with the table's projection);
- SQS ``SendMessageBatch``: a ``Failed`` entry with ``SenderFault: false`` and ``Code: RequestThrottled``.

Adapters never mutate the caller's parameters: they build new lists and dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BATCH_OPERATIONS", "BatchAdapter"]

_MESSAGE = "Rate exceeded (injected by tools.faults)"

Entries = list[Any]


@dataclass(frozen=True, slots=True)
class BatchAdapter:
    """One operation: its entries, the request without some, an empty answer, and the merged answer."""

    entries: Callable[[Mapping[str, Any]], Entries]
    keep: Callable[[dict[str, Any], Entries], None]  # rewrite params to hold only these entries
    empty: Callable[[], dict[str, Any]]  # the parsed answer when every entry was withheld
    report: Callable[[dict[str, Any], Entries, frozenset[int]], None]  # (parsed, all entries, withheld)


def _statements(params: Mapping[str, Any]) -> Entries:
    return list(params.get("Statements") or [])


def _keep_statements(params: dict[str, Any], kept: Entries) -> None:
    params["Statements"] = kept


def _report_statements(parsed: dict[str, Any], entries: Entries, failed: frozenset[int]) -> None:
    sent = iter(parsed.get("Responses", []))
    error = {"Code": "ThrottlingError", "Message": _MESSAGE}
    parsed["Responses"] = [{"Error": dict(error)} if i in failed else next(sent) for i in range(len(entries))]


def _writes(params: Mapping[str, Any]) -> Entries:
    return [(table, request) for table, requests in (params.get("RequestItems") or {}).items() for request in requests]


def _keep_writes(params: dict[str, Any], kept: Entries) -> None:
    items: dict[str, list[Any]] = {}
    for table, request in kept:
        items.setdefault(table, []).append(request)
    params["RequestItems"] = items


def _report_writes(parsed: dict[str, Any], entries: Entries, failed: frozenset[int]) -> None:
    unprocessed: dict[str, list[Any]] = {t: list(r) for t, r in (parsed.get("UnprocessedItems") or {}).items()}
    for i in sorted(failed):
        table, request = entries[i]
        unprocessed.setdefault(table, []).append(request)
    parsed["UnprocessedItems"] = unprocessed


def _reads(params: Mapping[str, Any]) -> Entries:
    return [
        (table, key, {k: v for k, v in spec.items() if k != "Keys"})
        for table, spec in (params.get("RequestItems") or {}).items()
        for key in spec.get("Keys", [])
    ]


def _keep_reads(params: dict[str, Any], kept: Entries) -> None:
    items: dict[str, dict[str, Any]] = {}
    for table, key, rest in kept:
        items.setdefault(table, {**rest, "Keys": []})["Keys"].append(key)
    params["RequestItems"] = items


def _report_reads(parsed: dict[str, Any], entries: Entries, failed: frozenset[int]) -> None:
    unprocessed: dict[str, dict[str, Any]] = {
        t: {**spec, "Keys": list(spec.get("Keys", []))} for t, spec in (parsed.get("UnprocessedKeys") or {}).items()
    }
    for i in sorted(failed):
        table, key, rest = entries[i]
        unprocessed.setdefault(table, {**rest, "Keys": []})["Keys"].append(key)
    parsed["UnprocessedKeys"] = unprocessed


def _messages(params: Mapping[str, Any]) -> Entries:
    return list(params.get("Entries") or [])


def _keep_messages(params: dict[str, Any], kept: Entries) -> None:
    params["Entries"] = kept


def _report_messages(parsed: dict[str, Any], entries: Entries, failed: frozenset[int]) -> None:
    failures = list(parsed.get("Failed") or [])
    failures += [
        {"Id": entries[i]["Id"], "SenderFault": False, "Code": "RequestThrottled", "Message": _MESSAGE}
        for i in sorted(failed)
    ]
    parsed["Failed"] = failures
    parsed.setdefault("Successful", [])


BATCH_OPERATIONS: Mapping[tuple[str, str], BatchAdapter] = {
    ("dynamodb", "BatchExecuteStatement"): BatchAdapter(
        _statements, _keep_statements, lambda: {"Responses": []}, _report_statements
    ),
    ("dynamodb", "BatchWriteItem"): BatchAdapter(
        _writes, _keep_writes, lambda: {"UnprocessedItems": {}}, _report_writes
    ),
    ("dynamodb", "BatchGetItem"): BatchAdapter(
        _reads, _keep_reads, lambda: {"Responses": {}, "UnprocessedKeys": {}}, _report_reads
    ),
    ("sqs", "SendMessageBatch"): BatchAdapter(
        _messages, _keep_messages, lambda: {"Successful": [], "Failed": []}, _report_messages
    ),
}
