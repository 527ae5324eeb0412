"""Deduplication by event id across batches: a resent event counts once within a window.

A producer that lost its connection after Kinesis accepted a request resends the same event (same
``event_id``, same partition key, so the same shard) in a later record. Lambda's retries re-deliver
the *same* record; a resend is a *different* record. The writer's watermarks make re-deliveries
harmless; this module makes resends harmless.

**What is stored.** For every batch it processes, the consumer writes one item per shard and batch
(:class:`DedupStore`, table ``event_dedup``) holding a 16-byte entry per counted event: 12 bytes of
BLAKE2b of the event id, 4 bytes of CRC-32 of the event's stream position. The item's key is the
shard and the batch's first and last positions; it carries the latest arrival time of its records and
a TTL. At ~16 bytes per event this costs about 0.016 DynamoDB write units per event (one item per
batch, split in parts under DynamoDB's 400 KB item limit), and no call per event.

**How it is read.** Each container keeps an in-memory :class:`SeenIndex` per shard: the entries of
the window, in compact byte buckets (16 bytes per event, not a Python object per event). A new
container reads the shard's items of the window once (one paginated ``Query``, newest first); after
that, each batch asks only for items newer than the newest it has seen (one ``Query``, usually
empty), because another container may have processed the shard in between.

**The decision** for an event of this batch (already the first of its id in the batch):

- its id is not in the window: new, counted, and entered;
- its id is there *at the same position*: a re-delivery of the same record (a retry after a crash or
  a partial failure): counted again (the watermarks keep its effects exactly-once);
- its id is there at *another* position: a resend, a duplicate: not counted.

**Guarantees and limits.** A resent event counts once if it arrives within ``window`` of the
original's arrival (a template parameter, default 60 minutes), in any later batch, after container
restarts and crashes. Past the window it counts again. Scope: one shard (a resend carries the same
partition key, hence the same shard, unless the stream was resharded in between). False duplicates
need a 96-bit hash collision (about 10^-14 per window at 70 million events per shard); a resend
taken for a re-delivery needs a 32-bit position-hash collision (about 2 x 10^-10 per resend). Memory
per container and shard: 16 bytes per event of the window (1 hour at 1,000 events/s is 58 MB); a
:class:`SeenIndex` holding more than ``max_entries`` forgets its oldest slices early and reports the
window it really covers.

Not thread-safe: one index per shard, one batch at a time (Lambda runs one batch per shard at a time).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol

from pipeline.exceptions import TransientError
from pipeline.retry import NO_DEADLINE, Deadline

__all__ = [
    "ENTRY_BYTES",
    "DedupItem",
    "DedupStore",
    "EventDeduplicator",
    "SeenIndex",
    "entry_of",
]

ID_BYTES: Final = 12
POSITION_BYTES: Final = 4
ENTRY_BYTES: Final = ID_BYTES + POSITION_BYTES
MAX_ITEM_ENTRIES: Final = 20_000
"""Entries per stored item: 320 KB of entries, under DynamoDB's 400 KB item limit with room for the key."""


def entry_of(event_id: str, position: str) -> bytes:
    """The 16-byte entry of an event: BLAKE2b-96 of its id, then CRC-32 of its encoded position."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=ID_BYTES).digest()
    return digest + zlib.crc32(position.encode()).to_bytes(POSITION_BYTES, "big")


@dataclass(frozen=True, slots=True)
class DedupItem:
    """One stored item: a batch's entries (or a part of them) for one shard.

    ``key`` sorts in stream order within the shard (first position, last position, part); ``arrival``
    is the latest arrival of the batch's records (seconds since the epoch).
    """

    shard_id: str
    key: str
    arrival: float
    entries: bytes

    def __post_init__(self) -> None:
        if len(self.entries) % ENTRY_BYTES:
            raise ValueError(f"dedup entries are {ENTRY_BYTES} bytes each, got {len(self.entries)} bytes")


class DedupStore(Protocol):
    """Where the items live (``event_dedup`` in DynamoDB; a dict in tests)."""

    def recent(self, shard_id: str, since: float, deadline: Deadline = NO_DEADLINE) -> Iterator[DedupItem]:
        """The shard's items, newest first, at least until one arrived before ``since`` (epoch seconds).

        Raises :class:`~pipeline.exceptions.TransientError` when the store cannot answer now.
        """
        ...

    def after(self, shard_id: str, key: str, deadline: Deadline = NO_DEADLINE) -> list[DedupItem]:
        """The shard's items whose key sorts after ``key`` (all when ``key`` is empty), in key order.
        Raises TransientError."""
        ...

    def put(self, items: Sequence[DedupItem], ttl: float, deadline: Deadline = NO_DEADLINE) -> None:
        """Store every item (overwriting one with the same key), expiring at ``ttl`` (epoch seconds).
        Raises :class:`~pipeline.exceptions.TransientError` if that cannot be done now."""
        ...


@dataclass(slots=True)
class _Slice:
    """The entries of items that arrived in one span of time, in buckets by the first id byte pair."""

    newest: float
    buckets: dict[int, bytearray] = field(default_factory=dict)
    entries: int = 0

    def add(self, entries: bytes, arrival: float) -> None:
        self.newest = max(self.newest, arrival)
        for offset in range(0, len(entries), ENTRY_BYTES):
            entry = entries[offset : offset + ENTRY_BYTES]
            bucket = self.buckets.get(entry[0] << 8 | entry[1])
            if bucket is None:
                self.buckets[entry[0] << 8 | entry[1]] = bytearray(entry)
            else:
                bucket += entry
        self.entries += len(entries) // ENTRY_BYTES

    def positions(self, digest: bytes) -> Iterator[bytes]:
        bucket = self.buckets.get(digest[0] << 8 | digest[1])
        if bucket is None:
            return
        start = bucket.find(digest)
        while start != -1:
            if start % ENTRY_BYTES == 0:
                yield bytes(bucket[start + ID_BYTES : start + ENTRY_BYTES])
            start = bucket.find(digest, start + 1)


class SeenIndex:
    """The entries of one shard within the window, in time slices that expire whole.

    ``window`` is the guaranteed span; slices are a quarter of it, so an entry is forgotten between
    ``window`` and ``1.25 * window`` after its arrival (or earlier past ``max_entries``).
    """

    def __init__(self, window: timedelta, *, max_entries: int = 4_000_000) -> None:
        if window <= timedelta(0):
            raise ValueError("the dedup window must be positive")
        self.window = window.total_seconds()
        self._span = self.window / 4
        self._max_entries = max_entries
        self._slices: dict[int, _Slice] = {}
        self.newest_key = ""
        """The largest item key entered: the next refresh asks only for items after it."""
        self.forgot_early_until = 0.0
        """Arrival before which entries were dropped early for memory (0: none)."""

    def __len__(self) -> int:
        return sum(s.entries for s in self._slices.values())

    def add(self, item: DedupItem) -> None:
        slot = int(item.arrival // self._span)
        target = self._slices.get(slot)
        if target is None:
            target = self._slices[slot] = _Slice(item.arrival)
        target.add(item.entries, item.arrival)
        self.newest_key = max(self.newest_key, item.key)

    def expire(self, now: float) -> None:
        """Forget slices that ended before ``now - window``, then the oldest beyond ``max_entries``."""
        cutoff = now - self.window
        for slot in [slot for slot in self._slices if (slot + 1) * self._span < cutoff]:
            del self._slices[slot]
        while len(self) > self._max_entries and len(self._slices) > 1:
            oldest = min(self._slices)
            self.forgot_early_until = max(self.forgot_early_until, (oldest + 1) * self._span)
            del self._slices[oldest]

    def positions(self, digest: bytes) -> list[bytes]:
        """Every position digest stored for an id digest (normally none or one)."""
        return [p for s in self._slices.values() for p in s.positions(digest)]


class EventDeduplicator:
    """Per-container deduplication over a :class:`DedupStore`: one :class:`SeenIndex` per shard.

    Per batch: :meth:`duplicates` (reads the store once per batch, and the window once per new
    container), then, as a :class:`~pipeline.sinks.Sink`, :meth:`add` each counted event and
    :meth:`flush` before the batch's effects are flushed. Not thread-safe.
    """

    def __init__(self, store: DedupStore, window: timedelta, *, max_entries: int = 4_000_000) -> None:
        self._store = store
        self._window = window
        self._max_entries = max_entries
        self._indexes: dict[str, SeenIndex] = {}
        self._pending: list[tuple[str, str]] = []
        self._arrival = 0.0

    @property
    def window(self) -> timedelta:
        return self._window

    def index(self, shard_id: str) -> SeenIndex | None:
        return self._indexes.get(shard_id)

    def forget(self) -> None:
        """Drop every in-memory index (a new container, for tests)."""
        self._indexes.clear()

    def duplicates(
        self, shard_id: str, events: Sequence[tuple[str, str]], arrival: datetime, deadline: Deadline = NO_DEADLINE
    ) -> set[int]:
        """Indexes of ``events`` that resend an event counted earlier (see the module docstring).

        ``events`` are ``(event_id, encoded position)`` of the batch's first occurrences, in stream
        order; ``arrival`` is the latest arrival of the batch's records (it dates the batch's item).
        Raises TransientError when the store cannot be read.
        """
        self._arrival = arrival.timestamp()
        index = self._refresh(shard_id, self._arrival, deadline)
        out: set[int] = set()
        for number, (event_id, position) in enumerate(events):
            entry = entry_of(event_id, position)
            stored = index.positions(entry[:ID_BYTES])
            if stored and entry[ID_BYTES:] not in stored:
                out.add(number)
        return out

    def add(self, position: str, item: str) -> None:
        """A counted event of the batch: ``item`` is its event id."""
        self._pending.append((item, position))

    def discard(self) -> str | None:
        pending, self._pending = self._pending, []
        return min((position for _, position in pending), default=None)

    def flush(self, shard_id: str, deadline: Deadline = NO_DEADLINE) -> str | None:
        """Store the entries of the counted events, then enter them in the index; the first position
        not persisted (all of the batch's) when the store cannot take them."""
        events, self._pending = self._pending, []
        if not events:
            return None
        items = _items(shard_id, events, b"".join(entry_of(e, p) for e, p in events), self._arrival)
        try:
            self._store.put(items, self._arrival + 2 * self._window.total_seconds() + 86_400, deadline)
        except TransientError:
            return min(position for _, position in events)
        index = self._indexes.get(shard_id)
        if index is not None:
            for item in items:
                index.add(item)
        return None

    def commit(self, shard_id: str, events: Sequence[tuple[str, str]], arrival: datetime) -> None:
        """:meth:`add` every ``(event_id, position)`` and :meth:`flush` (tools and tests); raises
        TransientError if the store cannot take them."""
        self._arrival = arrival.timestamp()
        for event_id, position in events:
            self.add(position, event_id)
        if self.flush(shard_id) is not None:
            raise TransientError("dedup entries not written")

    def _refresh(self, shard_id: str, now: float, deadline: Deadline) -> SeenIndex:
        index = self._indexes.get(shard_id)
        if index is None:
            index = SeenIndex(self._window, max_entries=self._max_entries)
            slack = 300.0  # arrival times are approximate: read a little past the window's edge
            for item in self._store.recent(shard_id, now - index.window - slack, deadline):
                index.add(item)
            self._indexes[shard_id] = index
        else:
            for item in self._store.after(shard_id, index.newest_key, deadline):
                index.add(item)
        index.expire(now)
        return index


def _items(shard_id: str, events: Sequence[tuple[str, str]], entries: bytes, arrival: float) -> tuple[DedupItem, ...]:
    if not entries:
        return ()
    first, last = events[0][1], events[-1][1]
    chunk = MAX_ITEM_ENTRIES * ENTRY_BYTES
    return tuple(
        DedupItem(shard_id, f"{first}#{last}#{part:04d}", arrival, entries[offset : offset + chunk])
        for part, offset in enumerate(range(0, len(entries), chunk))
    )
