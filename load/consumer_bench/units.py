"""DynamoDB capacity units by the billing rules, and stores that meter them.

The rules (DynamoDB developer guide, "DynamoDB item sizes and formats" and "DynamoDB read and write
operations"; the worked examples are in ``tests/unit/test_capacity_units.py``):

- An item's size is the sum of its attribute names and values (:func:`item_bytes`): strings by their
  UTF-8 bytes, numbers about one byte per two significant digits plus one, binaries by their raw
  bytes, lists and maps 3 bytes plus one per element.
- A write (``PutItem``, ``UpdateItem``, ``DeleteItem``, a PartiQL ``INSERT``/``UPDATE``, each item of a
  ``BatchWriteItem``) costs ``ceil(size / 1 KB)`` write units, at least 1, of the **larger** of the item
  before and after it; a transactional write twice that. A conditional write whose condition fails
  still costs its units (of the item as it stands, at least 1).
- A global secondary index is written too, billed the same way on its own entry (the table's keys,
  the index's keys and the projected attributes): one write when an item enters the index or a
  projected attribute changes, a delete when it leaves, a delete and a put when an index key changes
  (:data:`INDEXES`, the template's, checked against ``template.yaml`` by the tests). Its units are
  counted under ``<table>/<index>``; they are write units, not item writes.
- A read costs ``ceil(size / 4 KB)`` units, at least 1 (a missing item too), for a strongly consistent
  read; half for an eventually consistent one; twice for a transactional one. ``BatchGetItem`` rounds
  each item; ``Query`` rounds the sum of the items a page returns.

:class:`MeteredStore` is the in-memory store (:class:`tools.memory.MemoryStore`) that the project's own
write engine drives (the same plans, conditions and watermarks as ``DynamoMetricWriter``, see
:mod:`pipeline.metrics.plan`), counting those units per table for every write and read it serves.
:class:`MeteredSeedClient` is the few DynamoDB calls the seed-style consumer makes, on items held in
memory, metered the same way. Both are thread-safe.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from load.consumer_bench.counting import item_bytes
from pipeline.consumer.dedup import DedupItem
from pipeline.metrics.effects import ItemKey
from pipeline.metrics.flush import Outcome, WriteResult
from pipeline.metrics.plan import ItemWrite
from pipeline.metrics.statements import to_attribute_value
from pipeline.metrics.tables import TABLES
from pipeline.retry import NO_DEADLINE, Deadline
from tools.memory import MemoryDedupStore, MemoryStore

__all__ = [
    "INDEXES",
    "READ_UNIT_BYTES",
    "WRITE_UNIT_BYTES",
    "IndexSpec",
    "MeteredDedupStore",
    "MeteredSeedClient",
    "MeteredStore",
    "UnitTally",
    "index_write_units",
    "python_item_bytes",
    "query_read_units",
    "read_units",
    "write_units",
]

WRITE_UNIT_BYTES: Final = 1024
READ_UNIT_BYTES: Final = 4096
_CONSISTENCY: Final = {"eventual": Decimal("0.5"), "strong": Decimal(1), "transactional": Decimal(2)}


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A global secondary index of a logical table: its keys and the attributes it projects."""

    table: str
    name: str
    keys: tuple[str, ...]
    projected: frozenset[str]

    def entry(self, item: Mapping[str, object] | None) -> dict[str, object] | None:
        """The index's entry for ``item``: ``None`` when the item lacks an index key (not in the index)."""
        if item is None or any(k not in item for k in self.keys):
            return None
        wanted = {*TABLES[self.table].keys, *self.keys, *self.projected}
        return {name: value for name, value in item.items() if name in wanted}


INDEXES: Final = (
    IndexSpec(
        "product_metrics",
        "by-view-day",
        ("view_day", "product_id"),
        frozenset({"view_count", "last_viewed", *(f"hour_{hour:02d}" for hour in range(24))}),
    ),
)
"""The template's global secondary indexes on tables the consumer writes."""


def write_units(before: int, after: int, *, transactional: bool = False) -> int:
    """Write units of one write that changes an item of ``before`` bytes into ``after`` bytes (0: absent)."""
    if before < 0 or after < 0:
        raise ValueError(f"item sizes are not negative: {before}, {after}")
    units = max(1, math.ceil(max(before, after) / WRITE_UNIT_BYTES))
    return 2 * units if transactional else units


def index_write_units(index: IndexSpec, before: Mapping[str, object] | None, after: Mapping[str, object] | None) -> int:
    """Write units ``index`` costs when an item changes from ``before`` to ``after`` (``None``: absent)."""
    old, new = index.entry(before), index.entry(after)
    if old == new:
        return 0
    if old is not None and new is not None and any(old[k] != new[k] for k in index.keys):
        return write_units(python_item_bytes(old), 0) + write_units(0, python_item_bytes(new))
    return write_units(
        0 if old is None else python_item_bytes(old),
        0 if new is None else python_item_bytes(new),
    )


def read_units(size: int, consistency: str = "strong") -> Decimal:
    """Read units of reading one item of ``size`` bytes (0: a missing item, still billed one unit)."""
    if size < 0 or consistency not in _CONSISTENCY:
        raise ValueError(f"a size of at least 0 and one of {sorted(_CONSISTENCY)}; got {size}, {consistency!r}")
    return max(1, math.ceil(size / READ_UNIT_BYTES)) * _CONSISTENCY[consistency]


def query_read_units(sizes: Iterable[int], consistency: str = "strong") -> Decimal:
    """Read units of one ``Query`` page returning items of ``sizes``: the sum is rounded once."""
    return read_units(sum(sizes), consistency)


def python_item_bytes(item: Mapping[str, object]) -> int:
    """:func:`item_bytes` of an item held as Python values (``str``, ``int``, ``Decimal``, ``bytes``)."""
    return item_bytes({name: _attribute(value) for name, value in item.items()})


def _attribute(value: object) -> dict[str, Any]:
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, int | str | Decimal) and not isinstance(value, bool):
        return to_attribute_value(value)
    raise ValueError(f"no DynamoDB size rule for {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class UnitTally:
    """Units by logical table: ``writes`` (item writes), ``write_units``, ``read_units``, ``failed``
    (conditional writes that failed but were billed)."""

    writes: Mapping[str, int]
    write_units: Mapping[str, int]
    read_units: Mapping[str, Decimal]
    failed: Mapping[str, int]

    @property
    def total_write_units(self) -> int:
        return sum(self.write_units.values())

    @property
    def total_read_units(self) -> Decimal:
        return sum(self.read_units.values(), Decimal(0))

    def plus(self, other: UnitTally) -> UnitTally:
        return UnitTally(
            dict(Counter(self.writes) + Counter(other.writes)),
            dict(Counter(self.write_units) + Counter(other.write_units)),
            {
                t: self.read_units.get(t, Decimal(0)) + other.read_units.get(t, Decimal(0))
                for t in {*self.read_units, *other.read_units}
            },
            dict(Counter(self.failed) + Counter(other.failed)),
        )


class _Meter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writes: Counter[str] = Counter()
        self._wu: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._ru: dict[str, Decimal] = {}

    def write(self, table: str, before: int, after: int, *, failed: bool = False) -> None:
        with self._lock:
            self._writes[table] += 1
            self._wu[table] += write_units(before, after)
            self._failed[table] += failed

    def index_write(self, label: str, units: int) -> None:
        if units:
            with self._lock:
                self._wu[label] += units

    def read(self, table: str, units: Decimal) -> None:
        with self._lock:
            self._ru[table] = self._ru.get(table, Decimal(0)) + units

    def tally(self) -> UnitTally:
        with self._lock:
            failed = {t: n for t, n in self._failed.items() if n}
            return UnitTally(dict(self._writes), dict(self._wu), dict(self._ru), failed)


class MeteredStore(MemoryStore):
    """A :class:`MemoryStore` that counts write units of every write the engine executes (failed
    conditions included; the global secondary indexes' writes too, see :data:`INDEXES`) and strongly
    consistent read units of every item it reads (the DynamoDB writer's ``BatchGetItem`` reads are
    consistent)."""

    def __init__(self) -> None:
        super().__init__()
        self._meter = _Meter()

    def execute(self, write: ItemWrite) -> WriteResult:
        before_item = super().item(*write.ref)
        result = super().execute(write)
        after_item = super().item(*write.ref)
        before = 0 if before_item is None else python_item_bytes(before_item)
        after = 0 if after_item is None else python_item_bytes(after_item)
        self._meter.write(write.table, before, after, failed=result.outcome is not Outcome.OK)
        for index in INDEXES:
            if index.table == write.table:
                self._meter.index_write(
                    f"{index.table}/{index.name}", index_write_units(index, before_item, after_item)
                )
        return result

    def item(self, table: str, key: ItemKey) -> dict[str, object] | None:
        found = super().item(table, key)
        self._meter.read(table, read_units(0 if found is None else python_item_bytes(found)))
        return found

    def units(self) -> UnitTally:
        return self._meter.tally()


class MeteredDedupStore(MemoryDedupStore):
    """The dedup window's store in memory, metered as ``DynamoDedupStore`` bills: one ``BatchWriteItem``
    put per item (the item as that store writes it), one consistent ``Query`` page per read."""

    TABLE: Final = "event_dedup"

    def __init__(self) -> None:
        super().__init__()
        self._meter = _Meter()

    def put(self, items: Iterable[DedupItem], ttl: float, deadline: Deadline = NO_DEADLINE) -> None:
        items = list(items)
        for item in items:
            self._meter.write(self.TABLE, 0, self._size(item, ttl))
        super().put(items, ttl, deadline)

    def recent(self, shard_id: str, since: float, deadline: Deadline = NO_DEADLINE) -> Iterator[DedupItem]:
        found = list(super().recent(shard_id, since, deadline))
        self._meter.read(self.TABLE, query_read_units(self._size(i, 0) for i in found))
        return iter(found)

    def after(self, shard_id: str, key: str, deadline: Deadline = NO_DEADLINE) -> list[DedupItem]:
        found = super().after(shard_id, key, deadline)
        self._meter.read(self.TABLE, query_read_units(self._size(i, 0) for i in found))
        return found

    @staticmethod
    def _size(item: DedupItem, ttl: float) -> int:
        return python_item_bytes(
            {
                "shard": item.shard_id,
                "batch": item.key,
                "arrival": Decimal(repr(item.arrival)),
                "entries": item.entries,
                "ttl": int(ttl) or 1_800_000_000,  # a ten-digit epoch either way
            }
        )

    def units(self) -> UnitTally:
        return self._meter.tally()


class MeteredSeedClient:
    """The DynamoDB calls :class:`load.seed_consumer.SeedStyleConsumer` makes (``update_item`` with
    ``ADD``/``SET`` of plain names, ``put_item``, ``get_item``), on items held in memory as
    AttributeValues, metered by the billing rules. ``tables`` maps physical to logical names."""

    def __init__(self, tables: Mapping[str, str]) -> None:
        self._logical = dict(tables)
        self._items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._meter = _Meter()

    def units(self) -> UnitTally:
        return self._meter.tally()

    def get_item(self, *, TableName: str, Key: Mapping[str, Any], ConsistentRead: bool = False) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            found = self._items.get((TableName, _key_text(Key)))
        size = 0 if found is None else item_bytes(found)
        self._meter.read(
            self._logical.get(TableName, TableName), read_units(size, "strong" if ConsistentRead else "eventual")
        )
        return {} if found is None else {"Item": dict(found)}

    def put_item(self, *, TableName: str, Item: Mapping[str, Any]) -> dict[str, Any]:  # noqa: N803
        keys = TABLES[self._logical[TableName]].keys
        ref = (TableName, _key_text({k: Item[k] for k in keys}))
        with self._lock:
            before = self._items.get(ref)
            self._items[ref] = dict(Item)
        self._meter.write(
            self._logical.get(TableName, TableName), 0 if before is None else item_bytes(before), item_bytes(Item)
        )
        return {}

    def update_item(
        self,
        *,
        TableName: str,  # noqa: N803
        Key: Mapping[str, Any],  # noqa: N803
        UpdateExpression: str,  # noqa: N803
        ExpressionAttributeValues: Mapping[str, Any],  # noqa: N803
        ExpressionAttributeNames: Mapping[str, str] | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        names = ExpressionAttributeNames or {}
        ref = (TableName, _key_text(Key))
        with self._lock:
            before = self._items.get(ref)
            after = dict(Key) if before is None else dict(before)
            for action, name, value in _clauses(UpdateExpression):
                attribute, operand = names.get(name, name), ExpressionAttributeValues[value]
                if action == "ADD":
                    current = Decimal(after.get(attribute, {"N": "0"})["N"])
                    after[attribute] = {"N": str(current + Decimal(operand["N"]))}
                else:
                    after[attribute] = dict(operand)
            self._items[ref] = after
        self._meter.write(
            self._logical.get(TableName, TableName), 0 if before is None else item_bytes(before), item_bytes(after)
        )
        return {}


def _key_text(key: Mapping[str, Any]) -> str:
    return "\x00".join(f"{name}={next(iter(key[name].values()))}" for name in sorted(key))


def _clauses(expression: str) -> Iterator[tuple[str, str, str]]:
    """``("ADD"|"SET", name, :value)`` of an expression made of ``ADD a :v, b :w`` and ``SET c = :x``."""
    action, pending = "", []
    for token in expression.replace(",", " , ").split():
        if token in ("ADD", "SET"):
            action = token
            continue
        if token in (",", "="):
            continue
        pending.append(token)
        if len(pending) == 2:
            if not action:
                raise ValueError(f"unsupported update expression: {expression!r}")
            yield action, pending[0], pending[1]
            pending = []
