"""Partition keys and the shard map: where each event lands in the stream.

Partition keys are stable business keys, so all events of one user (sessions), one order (its
lifecycle) or one metric series stay in order on one shard, while many keys spread load over all
shards. Kinesis maps a key to a shard by the MD5 of its UTF-8 bytes read as a 128-bit integer; the
same function here lets producers group records by shard before they send them.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.events import Event, EventType, OrderData, SystemMetricData

__all__ = ["HASH_KEY_SPACE", "ShardMap", "hash_key_for", "partition_key_for"]

HASH_KEY_SPACE = 2**128


def partition_key_for(event: Event) -> str:
    """The business key of an event: order id, metric series, user id, else the event id."""
    data = event.data
    if event.event_type is EventType.ORDER_EVENT and isinstance(data, OrderData):
        return f"order#{data.order_id}"
    if event.event_type is EventType.SYSTEM_METRIC and isinstance(data, SystemMetricData):
        dims = ",".join(f"{k}={v}" for k, v in sorted(data.dimensions.items()))
        return f"metric#{data.name}#{dims}"[:256]
    if event.user_id:
        return f"user#{event.user_id}"
    return f"event#{event.event_id}"


def hash_key_for(partition_key: str) -> int:
    """The 128-bit hash key Kinesis derives from a partition key (MD5, big-endian)."""
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")  # noqa: S324 - Kinesis' own mapping


@dataclass(frozen=True, slots=True)
class ShardMap:
    """Open shards by the start of their hash-key range. Immutable; refresh it after resharding."""

    starts: tuple[int, ...]
    shard_ids: tuple[str, ...]

    @classmethod
    def uniform(cls, shards: int) -> ShardMap:
        """The even split Kinesis makes when a stream is created with ``shards`` shards."""
        if shards < 1:
            raise ValueError("a stream has at least one shard")
        step = HASH_KEY_SPACE // shards
        return cls(tuple(i * step for i in range(shards)), tuple(f"shardId-{i:012d}" for i in range(shards)))

    @classmethod
    def from_shards(cls, shards: Iterable[Mapping[str, Any]]) -> ShardMap:
        """From ``ListShards`` output; closed shards (with an ending sequence number) are skipped."""
        open_shards = sorted(
            (int(s["HashKeyRange"]["StartingHashKey"]), str(s["ShardId"]))
            for s in shards
            if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})
        )
        if not open_shards:
            raise ValueError("the stream has no open shards")
        return cls(tuple(start for start, _ in open_shards), tuple(shard for _, shard in open_shards))

    def shard_for(self, hash_key: int) -> str:
        return self.shard_ids[bisect.bisect_right(self.starts, hash_key) - 1]

    def __len__(self) -> int:
        return len(self.shard_ids)
