"""The flush engine both metric writers share: phases, bounded rounds, the per-container item cache.

A writer is this engine plus a :class:`StoreBackend` (DynamoDB + SQS in :mod:`pipeline.metrics.writer`, dicts
in :mod:`tools.memory`). The engine decides what to write from what it knows (:mod:`pipeline.metrics.plan`);
the backend only executes batches of reads, conditional writes and messages and reports each one's outcome.
The contract is documented on :mod:`pipeline.metrics.writer`.

Not thread-safe: one flush at a time per engine (a Lambda container runs one invocation at a time).
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import Final, Literal, Protocol

from pipeline.exceptions import TransientError
from pipeline.metrics.effects import Effect, ItemKey, Message
from pipeline.metrics.partials import partial_rekey
from pipeline.metrics.plan import (
    ItemPlan,
    ItemRef,
    ItemWrite,
    MessagePlan,
    Positioned,
    PutPlan,
    State,
    apply_write,
    coalesce,
    plan_write,
    unpersisted_from,
)
from pipeline.retry import NO_DEADLINE, Deadline, RetryPolicy

__all__ = [
    "EngineSink",
    "FlushEngine",
    "FlushResult",
    "Outcome",
    "StoreBackend",
    "Tally",
    "WriteResult",
    "WriterStats",
]


@dataclass
class WriterStats:
    """What one flush cost. ``item_writes`` counts statements sent, failed conditions included."""

    api_calls: int = 0
    item_writes: int = 0
    reads: int = 0
    """Item keys requested by reads (a key re-requested as unprocessed counts again)."""
    conflicts: int = 0
    """Writes refused because the writer's belief was stale (failed condition, duplicate insert)."""
    retries: int = 0
    """Keys, statements and messages that failed transiently (throttled, unprocessed, server error)."""
    messages: int = 0
    """Messages the queue accepted."""


@dataclass
class FlushResult:
    failed_from: str | None
    """The lowest position whose effect is not persisted; ``None``: every effect is persisted."""
    stats: WriterStats
    effects: int = 0
    """How many effects the flush was given (before coalescing)."""


class Tally:
    """Thread-safe counters behind :class:`WriterStats` (backends count from their worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = WriterStats()

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self._stats, name, getattr(self._stats, name) + count)

    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(**{f.name: getattr(self._stats, f.name) for f in fields(WriterStats)})


class Outcome(Enum):
    OK = "ok"
    CONFLICT = "ConditionalCheckFailed"
    DUPLICATE = "DuplicateItem"
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    item: State | None = None
    """With ``CONFLICT``: the stored item, when the store returned it (``ALL_OLD``)."""


OK: Final = WriteResult(Outcome.OK)
TRANSIENT: Final = WriteResult(Outcome.TRANSIENT)


class StoreBackend(Protocol):
    """Executes batches; raises only for errors retrying cannot fix (or a simulated crash).

    No call starts unless it can end by ``deadline`` (:meth:`~pipeline.retry.Deadline.allows` with the
    backend's longest call): a call not made leaves its writes transient, its keys unread, its
    messages unsent, exactly as a failed call would.
    """

    def read(self, refs: Sequence[ItemRef], tally: Tally, deadline: Deadline) -> dict[ItemRef, State | None]:
        """Consistent reads; ``None`` for a missing item. Refs left out were not read (count them retries)."""
        ...

    def write(self, writes: Sequence[ItemWrite], tally: Tally, deadline: Deadline) -> list[WriteResult]:
        """One result per write, in order."""
        ...

    def send(self, messages: Sequence[Message], tally: Tally, deadline: Deadline) -> list[bool]:
        """One flag per message, in order: ``True`` if the queue accepted it."""
        ...


class _Unknown(Enum):
    TOKEN = 0


UNKNOWN: Final = _Unknown.TOKEN
Known = State | None | Literal[_Unknown.TOKEN]


class ItemCache:
    """LRU of each item's last known state and of the messages already sent.

    Only confirmed facts go in (a read, a successful write, the item a failed condition returned).
    Stored watermarks and extremes only move forward, so a stale entry is behind the store, never
    ahead: it can make a write fail its condition, never skip a write that is needed.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, object] = OrderedDict()

    def state(self, ref: ItemRef) -> Known:
        entry = self._entries.get(("item", ref), UNKNOWN)
        if entry is not UNKNOWN:
            self._entries.move_to_end(("item", ref))
        return entry  # type: ignore[return-value]  # only put() writes item entries

    def put(self, ref: ItemRef, state: State | None) -> None:
        self._set(("item", ref), state)

    def forget(self, ref: ItemRef) -> None:
        self._entries.pop(("item", ref), None)

    def sent(self, dedup: tuple[str, str]) -> bool:
        return ("message", dedup) in self._entries

    def remember_sent(self, dedup: tuple[str, str]) -> None:
        self._set(("message", dedup), True)

    def __len__(self) -> int:
        return len(self._entries)

    def _set(self, key: Hashable, value: object) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class _Rounds:
    """The rounds of one phase: the first, then one per retry while the policy and the deadline allow.

    A round after a transient failure waits the policy's jittered delay; a round after a conflict only
    (a stale belief, re-read in between) goes at once. Either kind uses up one attempt.
    """

    def __init__(self, engine: FlushEngine, deadline: Deadline) -> None:
        self._engine = engine
        self._deadline = deadline
        self.retry = 0

    def another(self, *, transient: bool) -> bool:
        self.retry += 1
        engine = self._engine
        if not transient:
            return self.retry < engine.retry.attempts and self._deadline.remaining() > engine.call_seconds
        return engine.retry.wait(
            self.retry, deadline=self._deadline, call_seconds=engine.call_seconds, sleep=engine.sleep, rng=engine.rng
        )


class FlushEngine:
    """Runs the three phases of a flush against a backend; see :mod:`pipeline.metrics.writer`.

    ``retry`` bounds each phase's rounds; ``call_seconds`` is the longest one backend call can take
    (the client's connect plus read timeout): no round starts unless it can end before the deadline.
    ``key_split``: the deployment's hot-key write sharding (:mod:`pipeline.metrics.partials`).
    """

    def __init__(
        self,
        backend: StoreBackend,
        *,
        retry: RetryPolicy | None = None,
        call_seconds: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        cache_size: int = 200_000,
        seed: int | None = None,
        key_split: int = 1,
    ) -> None:
        self.backend, self.key_split = backend, key_split
        self.cache = ItemCache(cache_size)
        self.retry = retry or RetryPolicy()
        self.call_seconds = call_seconds
        self.sleep = sleep
        self.rng = random.Random(seed)  # noqa: S311 - backoff jitter, not a secret

    def flush(self, shard_id: str, effects: Sequence[Positioned], deadline: Deadline = NO_DEADLINE) -> FlushResult:
        tally = Tally()
        rekey = partial_rekey(shard_id, self.key_split)  # partial tables' effects: this shard's own partials
        batch = coalesce(Positioned(p.position, rekey(p.effect)) for p in effects)
        failed: list[str | None] = []
        left_puts = self._put_once(batch.puts, tally, deadline)
        if left_puts:
            failed += [plan.position for plan in left_puts.values()]
            failed += [self._unpersisted(shard_id, plan) for plan in batch.items.values()]
            failed += self._unsent(batch.messages)
        else:
            left_items = self._update(shard_id, batch.items, tally, deadline)
            if left_items:
                failed += [self._unpersisted(shard_id, plan) for plan in left_items.values()]
                failed += self._unsent(batch.messages)
            else:
                failed += [plan.position for plan in self._send(batch.messages, tally, deadline).values()]
        return FlushResult(min((p for p in failed if p is not None), default=None), tally.stats(), len(effects))

    def read(self, table: str, keys: Sequence[ItemKey], deadline: Deadline = NO_DEADLINE) -> dict[ItemKey, State]:
        """Consistent reads of ``keys`` of logical ``table``; missing items are left out.

        What is read is also learnt by the cache (a later flush of those items needs no read). Raises
        :class:`~pipeline.exceptions.TransientError` if some keys are still unread after the rounds.
        """
        refs = list(dict.fromkeys((table, key) for key in keys))
        found: dict[ItemRef, State | None] = {}
        tally = Tally()
        rounds = _Rounds(self, deadline)
        while refs:
            for ref, state in self.backend.read([ref for ref in refs if ref not in found], tally, deadline).items():
                self.cache.put(ref, state)
                found[ref] = state
            if len(found) == len(refs) or not rounds.another(transient=True):
                break
        if len(found) < len(refs):
            raise TransientError(f"{len(refs) - len(found)} of {len(refs)} {table} items unread after retries")
        return {ref[1]: state for ref, state in found.items() if state is not None}

    # Phase 1: PutOnce. INSERT; DuplicateItem means an earlier write won, which is success.
    def _put_once(self, puts: dict[ItemRef, PutPlan], tally: Tally, deadline: Deadline) -> dict[ItemRef, PutPlan]:
        pending = {ref: plan for ref, plan in puts.items() if self.cache.state(ref) in (UNKNOWN, None)}
        rounds = _Rounds(self, deadline)
        while pending:
            writes = [ItemWrite(ref[0], ref[1], insert=True, sets=dict(plan.put.item)) for ref, plan in pending.items()]
            for write, result in zip(writes, self.backend.write(writes, tally, deadline), strict=True):
                if result.outcome is Outcome.OK:
                    self.cache.put(write.ref, dict(write.sets))
                elif result.outcome is Outcome.TRANSIENT:
                    tally.add(retries=1)
                    continue
                else:  # the item exists: the first put won
                    self.cache.forget(write.ref)
                del pending[write.ref]
            if pending and not rounds.another(transient=True):
                break
        return pending

    # Phase 2: Add and Extreme, one conditional write per item from its known state.
    def _update(
        self, shard_id: str, items: dict[ItemRef, ItemPlan], tally: Tally, deadline: Deadline
    ) -> dict[ItemRef, ItemPlan]:
        pending = dict(items)
        rounds = _Rounds(self, deadline)
        while pending:
            transient = not self._learn([ref for ref in pending if self.cache.state(ref) is UNKNOWN], tally, deadline)
            writes = self._plan_writes(shard_id, pending)
            results = self.backend.write([write for write, _ in writes], tally, deadline) if writes else []
            for (write, base), result in zip(writes, results, strict=True):
                if result.outcome is Outcome.OK:
                    self.cache.put(write.ref, apply_write(base, write))
                    del pending[write.ref]
                elif result.outcome is Outcome.TRANSIENT:
                    tally.add(retries=1)
                    transient = True
                else:  # stale belief: learn the item again, recompute next round
                    tally.add(conflicts=1)
                    if result.item is not None:
                        self.cache.put(write.ref, result.item)
                    else:
                        self.cache.forget(write.ref)
            if pending and not rounds.another(transient=transient):
                break
        return pending

    # Phase 3: messages, deduplicated by the queue (and by this cache within the container).
    def _send(
        self, messages: dict[tuple[str, str], MessagePlan], tally: Tally, deadline: Deadline
    ) -> dict[tuple[str, str], MessagePlan]:
        pending = {dedup: plan for dedup, plan in messages.items() if not self.cache.sent(dedup)}
        rounds = _Rounds(self, deadline)
        while pending:
            batch = list(pending.items())
            accepted = self.backend.send([plan.message for _, plan in batch], tally, deadline)
            for (dedup, _), ok in zip(batch, accepted, strict=True):
                if ok:
                    self.cache.remember_sent(dedup)
                    del pending[dedup]
                else:
                    tally.add(retries=1)
            if pending and not rounds.another(transient=True):
                break
        return pending

    def _plan_writes(self, shard_id: str, pending: dict[ItemRef, ItemPlan]) -> list[tuple[ItemWrite, State | None]]:
        """The write each known item needs, with the state it was computed from; drops finished items."""
        writes: list[tuple[ItemWrite, State | None]] = []
        for ref, plan in list(pending.items()):
            known = self.cache.state(ref)
            if known is UNKNOWN:
                continue
            write = plan_write(plan, shard_id, known, self.key_split)
            if write is None:
                del pending[ref]
            else:
                writes.append((write, known))
        return writes

    def _learn(self, refs: list[ItemRef], tally: Tally, deadline: Deadline) -> bool:
        """Read the items the cache does not know; ``False`` if some could not be read."""
        if not refs:
            return True
        found = self.backend.read(refs, tally, deadline)
        for ref, state in found.items():
            self.cache.put(ref, state)
        return len(found) == len(refs)

    def _unpersisted(self, shard_id: str, plan: ItemPlan) -> str | None:
        known = self.cache.state((plan.table, plan.key))
        if known is UNKNOWN:
            return unpersisted_from(plan, shard_id, None, known=False)
        return unpersisted_from(plan, shard_id, known, known=True)

    def _unsent(self, messages: dict[tuple[str, str], MessagePlan]) -> list[str | None]:
        return [plan.position for dedup, plan in messages.items() if not self.cache.sent(dedup)]


class EngineSink:
    """The metric :class:`~pipeline.sinks.Sink` over a :class:`FlushEngine`, whatever its backend.

    :meth:`add` buffers positioned effects; :meth:`flush` runs the engine's three phases over them and
    keeps its result in :attr:`last`; :meth:`discard` drops them; :meth:`read` serves the batch
    context (what it reads also warms the engine's cache). One batch at a time: not thread-safe.
    """

    def __init__(self, engine: FlushEngine) -> None:
        self._engine = engine
        self._pending: list[Positioned] = []
        self.last: FlushResult | None = None
        """The last flush's result (its stats feed the handler's metrics); ``None`` after a discard."""

    def add(self, position: str, item: Effect) -> None:
        self._pending.append(Positioned(position, item))

    def flush(self, shard_id: str, deadline: Deadline = NO_DEADLINE) -> str | None:
        """Persist what was added (from shard ``shard_id``); the first position not persisted, if any."""
        effects, self._pending = self._pending, []
        self.last = self._engine.flush(shard_id, effects, deadline)
        return self.last.failed_from

    def discard(self) -> str | None:
        effects, self._pending = self._pending, []
        self.last = None
        return min((p.position for p in effects), default=None)

    def read(self, table: str, keys: Sequence[ItemKey], deadline: Deadline = NO_DEADLINE) -> dict[ItemKey, State]:
        """The stored items of ``keys`` of logical ``table``, for the batch context; missing ones left out.

        Consistent reads; raises :class:`~pipeline.exceptions.TransientError` when keys are still
        unread after the retries.
        """
        return self._engine.read(table, keys, deadline)
