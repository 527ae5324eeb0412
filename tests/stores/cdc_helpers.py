"""Reading back what change data capture published, and counting it the way the consumer does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline.codecs import DecodedEvent, decode_record
from pipeline.events import Event
from pipeline.exceptions import DecodeError
from pipeline.stream import StreamRecord
from tests.consumer_harness import memory_consumer
from tools.local.streams import read_all


def stream_records(kinesis: Any, stream: str) -> list[StreamRecord]:
    return [
        StreamRecord(shard, record["SequenceNumber"], record["Data"], datetime.now(UTC))
        for shard, record in read_all(kinesis, stream)
    ]


def decoded(records: Iterable[StreamRecord]) -> list[Event]:
    """Every event of the records, in stream order per shard; a record that does not decode fails the test."""
    events = []
    for record in records:
        for result in decode_record(record.data, record.shard_id, record.sequence_number):
            assert not isinstance(result, DecodeError), result
            assert isinstance(result, DecodedEvent)
            events.append(result.event)
    return events


def consume(records: Sequence[StreamRecord], batch_size: int) -> dict[str, Any]:
    """The real consumer's processor on the records, ``batch_size`` records per batch and shard, writing
    to the in-memory tables (same flush engine as DynamoDB's); the tables it ends with."""
    consumer = memory_consumer()
    store, processor = consumer.store, consumer.processor
    by_shard: dict[str, list[StreamRecord]] = {}
    for record in records:
        by_shard.setdefault(record.shard_id, []).append(record)
    for shard_records in by_shard.values():
        for start in range(0, len(shard_records), batch_size):
            outcome = processor.process(shard_records[start : start + batch_size])
            assert outcome.failed_sequence_number is None
    return store.tables()
