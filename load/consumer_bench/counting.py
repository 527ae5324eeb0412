"""Counting on the wire: botocore hooks on the consumer's own clients, and CPU of a process group.

What is counted is what was sent, not what the writer says it did: operations
(``before-parameter-build``, once per call), HTTP attempts (``before-send``, botocore's retries
included), item writes and reads per request, per-statement errors in ``BatchExecuteStatement``
answers, and the items written to one watched table (the dedup window's) with their size and write
units by DynamoDB's billing rules.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from botocore.client import BaseClient
from botocore.model import OperationModel

__all__ = [
    "CallCounter",
    "CallCounts",
    "Stopwatch",
    "TableWrites",
    "attribute_bytes",
    "group_cpu_seconds",
    "item_bytes",
]


@dataclass(frozen=True, slots=True)
class TableWrites:
    """Items put into the watched table: how many, their size and their write units."""

    items: int = 0
    bytes: int = 0
    write_units: int = 0
    """Sum over items of ``ceil(item size / 1 KB)``: DynamoDB's billing of a put."""
    queries: int = 0


@dataclass(frozen=True, slots=True)
class CallCounts:
    """What a :class:`CallCounter` saw. ``calls``: ``"service.Operation"`` -> calls (a retried call once)."""

    calls: Mapping[str, int]
    attempts: int
    """HTTP requests sent, botocore's retries included."""
    item_writes: int
    item_reads: int
    """Keys asked for by ``BatchGetItem``/``GetItem`` (a key asked again counts again)."""
    statement_errors: int
    """Per-statement errors in ``BatchExecuteStatement`` answers (failed conditions, duplicate inserts)."""
    watched: TableWrites
    """The writes to the watched table (all zero when none is watched)."""

    @property
    def api_calls(self) -> int:
        return sum(self.calls.values())


def attribute_bytes(value: Mapping[str, Any]) -> int:
    """The size of one DynamoDB attribute value by the documented rules: strings and binaries by their
    length, numbers about one byte per two significant digits plus one, containers 3 bytes plus content."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "B":
        return len(inner)
    if kind == "N":
        digits = Decimal(inner).normalize().as_tuple().digits
        return (len(digits) + 1) // 2 + 1
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_bytes(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + attribute_bytes(v) for k, v in inner.items())
    if kind in {"SS", "NS", "BS"}:
        return sum(attribute_bytes({kind[0]: v}) for v in inner)
    raise ValueError(f"unknown attribute value type {kind!r}")


def item_bytes(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size: attribute names plus values (:func:`attribute_bytes`)."""
    return sum(len(name.encode()) + attribute_bytes(value) for name, value in item.items())


class CallCounter:
    """Counts operations, attempts, item writes and reads on the clients it is attached to, and the
    items put into ``watch`` (a physical table name). Thread-safe."""

    def __init__(self, watch: str | None = None) -> None:
        self._watch = watch
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._attempts = self._writes = self._reads = self._errors = 0
        self._watched = Counter[str]()

    def attach(self, client: BaseClient) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-parameter-build.{service}", self._on_call)
        client.meta.events.register(f"before-send.{service}", self._on_send)
        client.meta.events.register(f"after-call.{service}", self._on_answer)

    def counts(self) -> CallCounts:
        with self._lock:
            w = self._watched
            watched = TableWrites(w["items"], w["bytes"], w["write_units"], w["queries"])
            return CallCounts(dict(self._calls), self._attempts, self._writes, self._reads, self._errors, watched)

    def _on_call(self, params: Mapping[str, Any], model: OperationModel, **_: Any) -> None:
        writes, reads = _items_of(model.name, params)
        watched = self._watched_items(model.name, params)
        with self._lock:
            self._calls[f"{model.service_model.service_name}.{model.name}"] += 1
            self._writes += writes
            self._reads += reads
            if model.name == "Query" and params.get("TableName") == self._watch:
                self._watched["queries"] += 1
            for item in watched:
                size = item_bytes(item)
                self._watched.update(items=1, bytes=size, write_units=math.ceil(size / 1024))

    def _watched_items(self, operation: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        if self._watch is None:
            return []
        if operation == "BatchWriteItem":
            requests = params.get("RequestItems", {}).get(self._watch, [])
            return [r["PutRequest"]["Item"] for r in requests if "PutRequest" in r]
        if operation == "PutItem" and params.get("TableName") == self._watch:
            return [params["Item"]]
        return []

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self._attempts += 1

    def _on_answer(self, parsed: Mapping[str, Any], model: OperationModel, **_: Any) -> None:
        if model.name == "BatchExecuteStatement":
            errors = sum(1 for answer in parsed.get("Responses", []) if answer.get("Error"))
            with self._lock:
                self._errors += errors


def _items_of(operation: str, params: Mapping[str, Any]) -> tuple[int, int]:
    """``(item writes, item reads)`` a DynamoDB request asks for; ``(0, 0)`` for anything else."""
    if operation == "BatchExecuteStatement":
        statements = params.get("Statements", [])
        reads = sum(1 for s in statements if s["Statement"].lstrip().upper().startswith("SELECT"))
        return len(statements) - reads, reads
    if operation == "BatchWriteItem":
        return sum(len(requests) for requests in params.get("RequestItems", {}).values()), 0
    if operation in {"PutItem", "UpdateItem", "DeleteItem"}:
        return 1, 0
    if operation == "BatchGetItem":
        return 0, sum(len(table.get("Keys", [])) for table in params.get("RequestItems", {}).values())
    return (0, 1) if operation == "GetItem" else (0, 0)


def group_cpu_seconds(pgid: int | None) -> float | None:
    """CPU seconds used so far by every process of group ``pgid`` (Linux ``/proc``); ``None`` if unknown."""
    if pgid is None or not Path("/proc").is_dir():
        return None
    total, found = 0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # the process ended meanwhile
        rest = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
        if int(rest[2]) == pgid:  # pgrp; utime, stime, cutime and cstime are fields 14 to 17
            total += sum(int(value) for value in rest[11:15])
            found = True
    return total / os.sysconf("SC_CLK_TCK") if found else None


class Stopwatch:
    """Wall, this process's CPU and the emulator's CPU, from creation to :meth:`stop`.

    ``/proc`` is read outside the timed window on both ends, so its cost is not in this process's CPU.
    """

    def __init__(self, pgid: int | None) -> None:
        self._pgid = pgid
        self._emulator = group_cpu_seconds(pgid)
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float, float | None]:
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        now = group_cpu_seconds(self._pgid)
        return wall, cpu, None if now is None or self._emulator is None else now - self._emulator
