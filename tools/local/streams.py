"""Reading a whole Kinesis stream back, every shard from the start (tests and tools).

These run against the embedded emulator in demos and tests; against real AWS they work too but read
with ``GetRecords`` (no enhanced fan-out), so keep them out of production paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["read_all"]


def read_all(kinesis: Any, name: str, limit: int = 10_000) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every record now in the stream, shard by shard, in sequence order: ``(shard_id, record)``.

    Stops on each shard at the first empty page that is also caught up (``MillisBehindLatest == 0``).
    """
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    for shard in shards:
        shard_id = shard["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=limit)
            for record in page["Records"]:
                yield shard_id, record
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
