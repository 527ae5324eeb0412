"""The producer's unit tests' harness (tests/unit/test_producer_*.py): an in-memory fake Kinesis and fast producers.

No network: :class:`FakeKinesis` records every ``PutRecords`` call and writes, shard by shard, exactly
the entries it reports written, so each test can read back what a consumer would see.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pipeline.codecs import DecodedEvent, decode_record
from pipeline.events import Event, UserActivityData, new_event
from pipeline.partitioning import HASH_KEY_SPACE, ShardMap, hash_key_for, partition_key_for
from pipeline.retry import RetryPolicy
from producers import Producer
from tools.generate import generate_events

__all__ = [
    "Entry",
    "FakeKinesis",
    "client_error",
    "fast_producer",
    "fast_retry",
    "ids_by_key",
    "ids_of",
    "random_failures",
    "reference_events",
    "sized_activity",
    "wait_until",
]


Entry = dict[str, Any]


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (fake)"}}, "PutRecords")


class FakeKinesis:
    """One stream of ``shards`` even shards, in memory. Thread-safe.

    ``fail_entry(entry)`` says whether an entry fails (``ErrorCode``, not written); ``before_write(n)``
    may return an exception to raise for call ``n`` (0-based) before anything is written, and
    ``after_write(n)`` one to raise after the call's entries were written (a response lost on the way).
    """

    def __init__(self, shards: int = 2) -> None:
        self.shard_map = ShardMap.uniform(shards)
        self.calls: list[list[Entry]] = []
        self.stream: dict[str, list[bytes]] = {shard: [] for shard in self.shard_map.shard_ids}
        self.fail_entry: Callable[[Entry], bool] = lambda entry: False
        self.before_write: Callable[[int], Exception | None] = lambda n: None
        self.after_write: Callable[[int], Exception | None] = lambda n: None
        self._lock = threading.Lock()

    def list_shards(self, **_: Any) -> dict[str, Any]:
        step = HASH_KEY_SPACE // len(self.shard_map)
        return {
            "Shards": [
                {
                    "ShardId": shard,
                    "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(start + step - 1)},
                    "SequenceNumberRange": {"StartingSequenceNumber": "0"},
                }
                for start, shard in zip(self.shard_map.starts, self.shard_map.shard_ids, strict=True)
            ]
        }

    def shard_of(self, entry: Entry) -> str:
        explicit = entry.get("ExplicitHashKey")
        return self.shard_map.shard_for(int(explicit) if explicit else hash_key_for(entry["PartitionKey"]))

    def put_records(self, *, StreamName: str, Records: list[Entry]) -> dict[str, Any]:  # noqa: N803 - boto3's names
        with self._lock:
            n = len(self.calls)
            self.calls.append(list(Records))
            error = self.before_write(n)
            if error is not None:
                raise error
            results: list[dict[str, Any]] = []
            for entry in Records:
                if self.fail_entry(entry):
                    results.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "fake"})
                    continue
                shard = self.shard_of(entry)
                self.stream[shard].append(entry["Data"])
                results.append({"ShardId": shard, "SequenceNumber": str(len(self.stream[shard]))})
            error = self.after_write(n)
            if error is not None:
                raise error
            return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}

    def read(self) -> list[Event]:
        """Every event written, shard by shard, in stream order."""
        with self._lock:
            out: list[Event] = []
            for shard, records in self.stream.items():
                for seq, data in enumerate(records, start=1):
                    for result in decode_record(data, shard, str(seq)):
                        assert isinstance(result, DecodedEvent), repr(result)
                        out.append(result.event)
            return out


def reference_events(n: int, seed: int = 1) -> list[Event]:
    return list(generate_events(n, seed))


def sized_activity(i: int, *, url_bytes: int = 20) -> Event:
    """An event of its own user (a distinct partition key), about ``url_bytes`` bigger than the minimum
    (the url in 4-byte characters: a valid url holds at most 8,192 characters, so 32 KiB)."""
    return new_event(
        event_id=str(uuid.UUID(int=i, version=4)),
        timestamp=datetime(2026, 11, 24, 6, 0, tzinfo=UTC),
        source="web",
        data=UserActivityData(
            activity_type="page_view",
            page_url="https://shop.example.com/" + "\U0001f6d2" * (url_bytes // 4) + "x" * (url_bytes % 4),
            session_id="s-1",
        ),
        user_id=f"u-{i:06d}",
    )


def ids_of(events: Iterable[Event]) -> Counter[str]:
    return Counter(event.event_id for event in events)


def ids_by_key(events: Iterable[Event]) -> dict[str, list[str]]:
    by_key: dict[str, list[str]] = defaultdict(list)
    for event in events:
        by_key[partition_key_for(event)].append(event.event_id)
    return dict(by_key)


def fast_retry(attempts: int) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=0.0001, max_delay=0.001)


def fast_producer(kinesis: FakeKinesis, **overrides: Any) -> Producer:
    """A fast producer: no linger thread, tiny backoff, seeded jitter; ``overrides`` win."""
    options: dict[str, Any] = {
        "linger_seconds": 0,
        "retry": RetryPolicy(attempts=10, base_delay=0.0001, max_delay=0.001),
        "rng": random.Random(0),
    } | overrides
    return Producer("stream", kinesis, **options)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def random_failures(rate: float, seed: int) -> Callable[[Entry], bool]:
    rng = random.Random(seed)  # the fake calls it under its lock
    return lambda entry: rng.random() < rate
