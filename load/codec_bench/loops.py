"""The timed loops of the codec benchmark, the clock around them, and the round-trip check before them.

Each loop does one thing per item and nothing else, so loops compare like for like. :func:`seconds`
times one call with ``time.thread_time`` (the timing thread's CPU) and the cyclic GC off: it switches
the process-wide GC, so it is not thread-safe.
"""

from __future__ import annotations

import gc
import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from time import thread_time
from typing import Final, TypeVar

import orjson

from load.codec_bench.figures import BATCH_RECORDS
from pipeline.codecs import OutputRecord, RecordFormat, decode_record, decode_records, encode_records
from pipeline.codecs.kpl import aggregated_record_class, subrecord_payloads
from pipeline.events import Event, EventType
from pipeline.exceptions import DecodeError, PipelineError
from pipeline.partitioning import ShardMap
from pipeline.stream import StreamRecord

__all__ = [
    "BenchCheckError",
    "batches",
    "bench_records",
    "check_round_trip",
    "deaggregate_all",
    "decode_all",
    "encode_all",
    "loads_all",
    "loads_discard",
    "md5_all",
    "parse_all",
    "seconds",
    "type_of",
]

_T = TypeVar("_T")

_SHARD: Final = "shardId-000000000000"
_ARRIVAL: Final = datetime(2026, 11, 25, tzinfo=UTC)  # after every reference event: none is in the future


class BenchCheckError(PipelineError):
    """A format did not decode back to exactly its input events: the codec is wrong, the figures meaningless."""


def loads_all(batches: Sequence[Sequence[bytes]]) -> None:
    loads = orjson.loads
    for batch in batches:
        parsed = [loads(wire) for wire in batch]  # kept until the next batch, as the decoder's results are
    del parsed


def loads_discard(wires: Sequence[bytes]) -> None:
    loads = orjson.loads
    for wire in wires:
        loads(wire)


def decode_all(batches: Sequence[Sequence[StreamRecord]]) -> None:
    for batch in batches:
        decoded = decode_records(batch)  # what the consumer calls, once per batch
    del decoded


def batches(items: Sequence[_T]) -> list[Sequence[_T]]:
    """``items`` cut into batches of :data:`~load.codec_bench.figures.BATCH_RECORDS`."""
    return [items[i : i + BATCH_RECORDS] for i in range(0, len(items), BATCH_RECORDS)]


def md5_all(bodies: Sequence[bytes]) -> None:
    md5 = hashlib.md5
    for body in bodies:
        md5(body).digest()  # the KPL format's checksum, computed as the decoder does


def parse_all(bodies: Sequence[bytes]) -> None:
    message = aggregated_record_class()
    for body in bodies:
        message().ParseFromString(body)


def deaggregate_all(records: Sequence[bytes]) -> None:
    for data in records:
        subrecord_payloads(data)


def encode_all(events: Sequence[Event], record_format: RecordFormat, shard_map: ShardMap) -> None:
    encode_records(events, record_format, shard_map)


def seconds(loop: Callable[[], None]) -> float:
    """CPU time of this thread for one call of ``loop``, with the cyclic GC off (its pauses are noise here)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = thread_time()
        loop()
        return thread_time() - start
    finally:
        if enabled:
            gc.enable()


def bench_records(records: Sequence[OutputRecord]) -> list[StreamRecord]:
    """``records`` as one shard's stream records, as the consumer receives them."""
    return [StreamRecord(_SHARD, _sequence_number(i), r.data, _ARRIVAL) for i, r in enumerate(records)]


def type_of(record: StreamRecord) -> EventType:
    return EventType(orjson.loads(record.data)["event_type"])


def _sequence_number(index: int) -> str:
    return f"{49_000_000_000 + index:056d}"  # the width of a real Kinesis sequence number


def check_round_trip(record_format: RecordFormat, records: Sequence[OutputRecord], events: Sequence[Event]) -> None:
    """Raise :class:`BenchCheckError` unless ``records`` decode to exactly ``events``, without a DecodeError."""
    decoded: list[Event] = []
    for index, record in enumerate(records):
        for result in decode_record(record.data, _SHARD, _sequence_number(index)):
            if isinstance(result, DecodeError):
                raise BenchCheckError(f"{record_format}: record {index} does not decode: {result.reason}")
            decoded.append(result.event)
    if len(decoded) != len(events):
        raise BenchCheckError(f"{record_format}: {len(decoded)} events decoded from {len(events)} encoded")
    if Counter(e.event_id for e in decoded) != Counter(e.event_id for e in events):
        raise BenchCheckError(f"{record_format}: decoded event ids differ from the encoded ones")
    expected = {e.event_id: e for e in events}
    if any(e != expected[e.event_id] for e in decoded):
        raise BenchCheckError(f"{record_format}: a decoded event differs from the one encoded")
