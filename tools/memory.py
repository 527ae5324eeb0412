"""In-memory stand-ins for every sink and store, with the AWS ones' exact semantics (tests, models, demos).

- :class:`MemoryMetricWriter` (metric :class:`~pipeline.sinks.Sink`) on a :class:`MemoryStore`;
- :class:`MemoryBadRowSink` (bad-row sink), :class:`MemoryDedupStore` (the dedup window's table),
  :class:`MemoryObjectWriter` (the archive transform's object writer).

:class:`MemoryMetricWriter` is the same :class:`~pipeline.metrics.flush.FlushEngine` as
:class:`~pipeline.metrics.writer.DynamoMetricWriter` (coalescing, watermarks, phases, rounds, cache,
``failed_from``) on a :class:`MemoryStore` that decides each write the way DynamoDB decides a PartiQL
statement (:func:`~pipeline.metrics.plan.check_write`). It is the reference model for Lambda-semantics
tests and a fast stand-in for unit tests. Two hooks make failures on demand:

- ``crash_after_writes=n``: the first ``n`` item writes (statements) execute, then the next one raises
  :class:`SimulatedCrash` (the container died mid-flush); the hook then disarms itself.
- ``fails=predicate``: a write of an item for which ``predicate(ref)`` is true fails transiently
  (throttled), as does a message for which ``fails_message(message)`` is true.

:meth:`MemoryStore.tables` has the shape of :func:`tools.oracle.apply_effects` (the naive
fold: each effect once, in order), which a correct writer must reach whatever the crashes, retries
and re-deliveries.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from pipeline.consumer.badrows import BadRow, group_by_record
from pipeline.consumer.dedup import DedupItem
from pipeline.exceptions import TransientError
from pipeline.metrics.effects import ItemKey, Message
from pipeline.metrics.flush import (
    OK,
    TRANSIENT,
    EngineSink,
    FlushEngine,
    ItemCache,
    Outcome,
    Tally,
    WriteResult,
)
from pipeline.metrics.partials import merge_tables
from pipeline.metrics.plan import (
    WATERMARK_PREFIX,
    ItemRef,
    ItemWrite,
    State,
    apply_write,
    check_write,
)
from pipeline.retry import NO_DEADLINE, Deadline, RetryPolicy

__all__ = [
    "MemoryBadRowSink",
    "MemoryDedupStore",
    "MemoryMetricWriter",
    "MemoryObjectWriter",
    "MemoryStore",
    "SimulatedCrash",
]

_NO_WAIT_RETRY = RetryPolicy(attempts=6, base_delay=0.0, max_delay=0.0)


class SimulatedCrash(Exception):  # noqa: N818 - it is a simulated event, not an error of ours
    """Raised by the crash hook: the container died in the middle of a flush."""


class MemoryStore:
    """Items keyed by ``(logical table, key)`` and FIFO queues deduplicating by ``dedup_id`` forever.

    Thread-safe: one lock around each operation, so writers on several threads may share a store.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[ItemRef, dict[str, object]] = {}
        self._queues: dict[str, dict[str, Message]] = {}

    def item(self, table: str, key: ItemKey) -> dict[str, object] | None:
        with self._lock:
            found = self._items.get((table, key))
            return None if found is None else dict(found)

    def snapshot(self, *, watermarks: bool = False) -> dict[ItemRef, dict[str, object]]:
        """Every item; without the writers' ``_pos_*`` watermark attributes unless asked."""
        with self._lock:
            return {
                ref: {a: v for a, v in item.items() if watermarks or not a.startswith(WATERMARK_PREFIX)}
                for ref, item in self._items.items()
            }

    def tables(self, key_split: int = 1) -> dict[str, dict[ItemKey, dict[str, object]]]:
        """``{table: {key: item}}`` as :func:`tools.oracle.apply_effects`: logical items (per-shard
        partials merged by :func:`~pipeline.metrics.partials.merge_tables`, with the writers'
        ``key_split``), without watermarks."""
        tables: dict[str, dict[ItemKey, dict[str, object]]] = {}
        for (table, key), item in self.snapshot().items():
            tables.setdefault(table, {})[key] = item
        return merge_tables(tables, key_split)

    def messages(self, queue: str) -> list[Message]:
        """The messages ``queue`` holds, first-sent first (a duplicate ``dedup_id`` is dropped)."""
        with self._lock:
            return list(self._queues.get(queue, {}).values())

    def execute(self, write: ItemWrite) -> WriteResult:
        """Apply ``write`` if its condition holds, atomically, as DynamoDB runs one statement."""
        with self._lock:
            state = self._items.get(write.ref)
            code = check_write(state, write)
            if code is None:
                self._items[write.ref] = apply_write(state, write)
                return OK
            if code == Outcome.DUPLICATE.value:
                return WriteResult(Outcome.DUPLICATE)
            return WriteResult(Outcome.CONFLICT, None if state is None else dict(state))

    def enqueue(self, message: Message) -> None:
        with self._lock:
            self._queues.setdefault(message.queue, {}).setdefault(message.dedup_id, message)

    def put(self, table: str, key: ItemKey, item: dict[str, object]) -> None:
        """Store ``item`` as is (test setup)."""
        with self._lock:
            self._items[(table, key)] = dict(item)


class MemoryMetricWriter(EngineSink):
    """A metric :class:`~pipeline.sinks.Sink` on a :class:`MemoryStore`; same interface and semantics as
    :class:`~pipeline.metrics.writer.DynamoMetricWriter`.

    ``stats`` count calls as the DynamoDB writer would make them (25 statements, 100 keys or 10
    messages a call). ``retry`` bounds each phase's rounds (no waits by default); ``key_split`` is
    the hot-key write sharding (read the store back with ``store.tables(key_split)``). Sequential and
    deterministic; not thread-safe (one flush at a time).
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        retry: RetryPolicy = _NO_WAIT_RETRY,
        cache_size: int = 200_000,
        crash_after_writes: int | None = None,
        fails: Callable[[ItemRef], bool] | None = None,
        fails_message: Callable[[Message], bool] | None = None,
        key_split: int = 1,
    ) -> None:
        self.store = store
        self._backend = _MemoryBackend(store, crash_after_writes, fails, fails_message)
        engine = FlushEngine(
            self._backend, retry=retry, sleep=_no_sleep, cache_size=cache_size, seed=0, key_split=key_split
        )
        super().__init__(engine)

    @property
    def crash_after_writes(self) -> int | None:
        return self._backend.crash_after_writes

    @crash_after_writes.setter
    def crash_after_writes(self, writes: int | None) -> None:
        self._backend.crash_after_writes = writes

    def forget(self) -> None:
        """Drop the cache, as a new container would start."""
        self._engine.cache = ItemCache(self._engine.cache.size)


class MemoryBadRowSink:
    """Bad rows in a dict of objects keyed like the S3 ones (a :class:`~pipeline.sinks.Sink`).

    ``fail_next = n`` makes the next ``n`` flushes write nothing and report their first position.
    """

    def __init__(self, prefix: str = "bad-rows/") -> None:
        self.prefix = prefix
        self.objects: dict[str, list[BadRow]] = {}
        self.puts = 0
        self.fail_next = 0
        self._rows: list[BadRow] = []

    @property
    def rows(self) -> list[BadRow]:
        """Every stored row, record by record."""
        return [row for key in sorted(self.objects) for row in self.objects[key]]

    def add(self, position: str, item: BadRow) -> None:
        self._rows.append(item)

    def discard(self) -> str | None:
        rows, self._rows = self._rows, []
        return min((row.position for row in rows), default=None)

    def flush(self, shard_id: str, deadline: Deadline = NO_DEADLINE) -> str | None:
        if self.fail_next > 0:
            self.fail_next -= 1
            return self.discard()
        rows, self._rows = self._rows, []
        for key, mine in group_by_record(rows, self.prefix).items():
            self.puts += 1
            self.objects[key] = mine
        return None


class MemoryDedupStore:
    """The dedup window's items in a dict. ``fail_next = n`` makes the next ``n`` calls fail transiently."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], DedupItem] = {}
        self.fail_next = 0
        self.puts = 0

    def _maybe_fail(self) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise TransientError("injected dedup store failure")

    def recent(self, shard_id: str, since: float, deadline: Deadline = NO_DEADLINE) -> Iterator[DedupItem]:
        self._maybe_fail()
        mine = sorted((item for (shard, _), item in self.items.items() if shard == shard_id), key=lambda i: i.key)
        for item in reversed(mine):
            yield item
            if item.arrival < since:
                return

    def after(self, shard_id: str, key: str, deadline: Deadline = NO_DEADLINE) -> list[DedupItem]:
        self._maybe_fail()
        return sorted(
            (item for (shard, k), item in self.items.items() if shard == shard_id and k > key), key=lambda i: i.key
        )

    def put(self, items: Iterable[DedupItem], ttl: float, deadline: Deadline = NO_DEADLINE) -> None:
        self._maybe_fail()
        for item in items:
            self.puts += 1
            self.items[(item.shard_id, item.key)] = item


class MemoryObjectWriter:
    """Objects in a dict: the archive transform's writer in tests, and the local Firehose's reference.
    ``fail_next = n`` makes the next ``n`` calls raise :class:`TransientError`."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0
        self.fail_next = 0

    def put_many(self, objects: Sequence[tuple[str, bytes]], deadline: Deadline = NO_DEADLINE) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise TransientError("injected object write failure")
        for key, body in objects:
            self.puts += 1
            self.objects[key] = body


class _MemoryBackend:
    def __init__(
        self,
        store: MemoryStore,
        crash_after_writes: int | None,
        fails: Callable[[ItemRef], bool] | None,
        fails_message: Callable[[Message], bool] | None,
    ) -> None:
        self.store = store
        self.crash_after_writes = crash_after_writes
        self._fails = fails
        self._fails_message = fails_message

    def read(self, refs: Sequence[ItemRef], tally: Tally, deadline: Deadline) -> dict[ItemRef, State | None]:
        if not deadline.allows(0.0):
            return {}
        tally.add(api_calls=math.ceil(len(refs) / 100), reads=len(refs))
        return {ref: self.store.item(*ref) for ref in refs}

    def write(self, writes: Sequence[ItemWrite], tally: Tally, deadline: Deadline) -> list[WriteResult]:
        if not deadline.allows(0.0):
            return [TRANSIENT] * len(writes)
        tally.add(api_calls=math.ceil(len(writes) / 25))
        results: list[WriteResult] = []
        for write in writes:
            if self.crash_after_writes is not None:
                if self.crash_after_writes <= 0:
                    self.crash_after_writes = None
                    raise SimulatedCrash(f"crashed before writing {write.ref}")
                self.crash_after_writes -= 1
            tally.add(item_writes=1)
            if self._fails is not None and self._fails(write.ref):
                results.append(TRANSIENT)
            else:
                results.append(self.store.execute(write))
        return results

    def send(self, messages: Sequence[Message], tally: Tally, deadline: Deadline) -> list[bool]:
        if not deadline.allows(0.0):
            return [False] * len(messages)
        tally.add(api_calls=math.ceil(len(messages) / 10))
        accepted: list[bool] = []
        for message in messages:
            ok = self._fails_message is None or not self._fails_message(message)
            if ok:
                self.store.enqueue(message)
                tally.add(messages=1)
            accepted.append(ok)
        return accepted


def _no_sleep(_: float) -> None:
    return None
