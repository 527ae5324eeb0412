"""Every format round-trips; writers respect Kinesis limits, shards and per-key order."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codecs import (
    DecodedEvent,
    RecordFormat,
    decode_events,
    decode_record,
    encode_event,
    encode_records,
)
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.events import Event, ProductViewData, new_event
from pipeline.exceptions import DecodeError, RecordTooLargeError
from pipeline.partitioning import ShardMap, hash_key_for, partition_key_for
from tests.strategies import events

pytestmark = pytest.mark.library  # the embeddable library: ./dev test also runs it on 3.11 and 3.13

FORMATS = [pytest.param(f, id=f.value) for f in RecordFormat]


def _view(i: int, user: str, referrer: str | None = None) -> Event:
    return new_event(
        event_id=f"e-{i}",
        timestamp=datetime(2026, 11, 24, tzinfo=UTC) + timedelta(seconds=i),
        source="web",
        data=ProductViewData("p-1", referrer),
        user_id=user,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@given(batch=st.lists(events(), min_size=1, max_size=30), shards=st.integers(1, 4))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_every_format_round_trips(fmt: RecordFormat, batch: list[Event], shards: int) -> None:
    # GIVEN any events WHEN encoded in a format THEN decoding every record gives each event back once
    records = encode_records(batch, fmt, ShardMap.uniform(shards))
    decoded = [e for r in records for e in decode_events(r.data)]
    assert sorted(decoded, key=repr) == sorted(batch, key=repr)
    assert sorted((e for r in records for e in r.events), key=repr) == sorted(batch, key=repr)


@pytest.mark.parametrize("fmt", FORMATS)
def test_per_key_order_and_shard_grouping(fmt: RecordFormat) -> None:
    # GIVEN interleaved events of many users over 4 shards
    shard_map = ShardMap.uniform(4)
    batch = [_view(i, f"u-{i % 37}") for i in range(2_000)]
    # WHEN encoded
    records = encode_records(batch, fmt, shard_map)
    # THEN each record only holds events of its own shard, and per user the order is the input order
    seen: dict[str, list[str]] = defaultdict(list)
    for record in records:
        for event in decode_events(record.data):
            assert shard_map.shard_for(hash_key_for(partition_key_for(event))) == record.shard_id
            seen[event.user_id or ""].append(event.event_id)
        if record.explicit_hash_key is not None:
            assert shard_map.shard_for(int(record.explicit_hash_key)) == record.shard_id
    for user, ids in seen.items():
        expected = [e.event_id for e in batch if e.user_id == user]
        assert ids == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_records_stay_within_the_one_mib_limit(fmt: RecordFormat) -> None:
    # GIVEN incompressible-ish big events totalling several MiB
    import random

    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    batch = [_view(i, f"u-{i % 5}", "".join(rng.choice(alphabet) for _ in range(200_000))) for i in range(40)]
    # WHEN encoded THEN every record fits Kinesis' limit and nothing is lost
    records = encode_records(batch, fmt, ShardMap.uniform(2))
    assert all(r.size <= 1024 * 1024 for r in records)
    assert sum(len(r.events) for r in records) == len(batch)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_event_too_big_for_any_record_is_refused(fmt: RecordFormat) -> None:
    # GIVEN one event whose random text stays over 1 MiB even gzipped WHEN encoded THEN RecordTooLargeError
    import base64
    import os

    event = _view(1, "u-1", base64.b64encode(os.urandom(1_100_000)).decode())
    with pytest.raises(RecordTooLargeError):
        encode_records([event], fmt)


def test_positions_carry_sequence_and_sub_sequence_numbers() -> None:
    # GIVEN a KPL aggregate of three events in one record
    batch = [_view(i, "u-1") for i in range(3)]
    (record,) = encode_records(batch, RecordFormat.KPL)
    # WHEN decoded with its Kinesis position
    results = decode_record(record.data, "shardId-000000000001", "4958")
    # THEN each event knows shard, parent sequence number and its own sub-sequence number, in order
    assert all(isinstance(r, DecodedEvent) for r in results)
    positions = [(r.shard_id, r.sequence_number, r.sub_sequence_number) for r in results if isinstance(r, DecodedEvent)]
    assert positions == [("shardId-000000000001", "4958", i) for i in range(3)]
    ordered = [r.position() for r in results if isinstance(r, DecodedEvent)]
    assert ordered == sorted(ordered)


def test_one_bad_line_in_a_gzip_batch_spoils_only_itself() -> None:
    # GIVEN a gzip NDJSON batch with a junk line between two events
    good = [encode_event(_view(i, "u-1")) for i in range(2)]
    record = gzip_bytes(good[0] + b"\n{not json\n" + good[1])
    # WHEN decoded THEN both events come out and the junk line is one error keeping its bytes
    results = decode_record(record, "s", "1")
    errors = [r for r in results if isinstance(r, DecodeError)]
    assert [r.event.event_id for r in results if isinstance(r, DecodedEvent)] == ["e-0", "e-1"]
    assert len(errors) == 1
    assert errors[0].raw == b"{not json"
    assert errors[0].line == 1


def test_a_bad_single_event_gzip_record_keeps_the_bytes_as_received() -> None:
    record = gzip_bytes(b'{"event_type": "refund"}')
    (error,) = decode_record(record)
    assert isinstance(error, DecodeError)
    assert error.raw == record
    assert "unknown event type" in error.reason
