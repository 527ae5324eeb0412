"""The consumer under Lambda's semantics: whatever the retries, crashes, re-deliveries and producer
resends, exact tables.

A reference model of the Kinesis event source mapping (``tools.local.esm``) drives the real
handler code (``handle_kinesis_event`` -> ``BatchProcessor`` -> dedup -> plugins -> the writer engine)
on in-memory stores, which decide each write the way DynamoDB decides a PartiQL statement. The oracle
(``tools.oracle``) computes the tables straight from the unique events; it shares no code
with the plugins.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codecs import DecodedEvent, RecordFormat, decode_record
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.events import DEFAULT_POLICY
from pipeline.plugins.user_activity import user_key
from pipeline.stream import StreamRecord, lambda_event
from tests.consumer_harness import FaultPlan, build_shards, memory_consumer, stream_arn
from tests.unit.test_decode_fuzz import hostile_records
from tools.generate import generate_events
from tools.local.esm import EsmSettings, ShardDriver
from tools.memory import MemoryBadRowSink, MemoryStore
from tools.oracle import expected_messages, expected_tables

JUNK = [
    b"\xff\xfe not json",
    b'{"event_type": "refund", "schema_version": 1}',
    b"\xf3\x89\x9a\xc2" + b"\x00" * 30,
    gzip_bytes(b'{"event_id": "x"}')[:-3],
    b"",
]


def _run(
    events: list[Any],
    fmt: RecordFormat,
    shards: int,
    batch_size: int,
    junk: list[tuple[int, bytes]],
    plan: FaultPlan,
    segments: dict[str, str],
    resends: list[tuple[int, int]] = [],  # noqa: B006 - never mutated
) -> tuple[MemoryStore, MemoryBadRowSink]:
    store = MemoryStore()
    for user, segment in segments.items():
        store.put("store", user_key(user), {"PK": f"USER#{user}", "SK": "#METADATA", "user_segment": segment})
    consumer = memory_consumer(store, fails=plan.transient, attempts=3)
    inner = consumer.handler
    invocations = 0

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal invocations
        invocations += 1
        if invocations in plan.new_container:
            consumer.new_container()
        if invocations in plan.crashes:
            consumer.writer.crash_after_writes = plan.crashes[invocations]
        if invocations in plan.dedup_failures:
            consumer.dedup_store.fail_next = 1
        response = inner(event, context)
        consumer.writer.crash_after_writes = None
        consumer.dedup_store.fail_next = 0
        if invocations in plan.crash_after_return:
            raise RuntimeError("the container died after its writes, before answering")
        return response

    esm = EsmSettings(batch_size=batch_size, bisect_on_error=True, maximum_retry_attempts=-1)
    for records in build_shards(events, fmt, shards, junk, resends).values():
        driver = ShardDriver(handler, esm, stream_arn=stream_arn, redeliver=plan.next_redelivery, max_invocations=5_000)
        driver.drain(records)
    return store, consumer.sink


@st.composite
def fault_plans(draw: st.DrawFn) -> FaultPlan:
    invocations = st.integers(1, 40)
    return FaultPlan(
        crashes=draw(st.dictionaries(invocations, st.integers(0, 30), max_size=4)),
        crash_after_return=frozenset(draw(st.lists(invocations, max_size=2))),
        redeliver=draw(st.lists(st.booleans(), max_size=12)),
        transient_rate=draw(st.sampled_from([0.0, 0.1, 0.3])),
        transient_budget=draw(st.integers(0, 25)),
        new_container=frozenset(draw(st.lists(invocations, max_size=3))),
        dedup_failures=frozenset(draw(st.lists(invocations, max_size=2))),
        seed=draw(st.integers(0, 2**16)),
    )


@given(
    n=st.integers(1, 90),
    seed=st.integers(0, 10_000),
    fmt=st.sampled_from(list(RecordFormat)),
    shards=st.integers(1, 3),
    batch_size=st.integers(1, 40),
    junk=st.lists(st.tuples(st.integers(0, 200), st.sampled_from(JUNK)), max_size=3),
    resends=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 60)), max_size=4),
    plan=fault_plans(),
    segmented=st.booleans(),
)
@settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_tables_equal_the_oracle_whatever_lambda_does(
    n: int,
    seed: int,
    fmt: RecordFormat,
    shards: int,
    batch_size: int,
    junk: list[tuple[int, bytes]],
    resends: list[tuple[int, int]],
    plan: FaultPlan,
    segmented: bool,
) -> None:
    # GIVEN a random event mix, format, batching and fault plan (throttles on any write, crashes before,
    # between or after writes, lost answers, duplicate deliveries, new containers, dedup store
    # failures), with producer resends of earlier records later in their shard
    events = list(generate_events(n, seed))
    segments = {e.user_id: "vip" for e in events[::3] if e.user_id} if segmented else {}
    # WHEN Lambda's event source mapping drives the consumer to the end of every shard
    store, sink = _run(events, fmt, shards, batch_size, junk, plan, segments, resends)
    # THEN every table equals the oracle computed from the unique events, each fulfilment message is
    # there once, and every bad record is in the sink with its raw bytes
    tables = store.tables()
    tables.pop("store", None)  # the entity table the test seeded, read by the consumer, never written
    assert tables == expected_tables(events, user_segments=segments)
    sent = sorted(m.dedup_id for m in store.messages("fulfilment"))
    assert sent == sorted(str(m["event_id"]) for m in expected_messages(events))
    assert len(sink.rows) == len(junk)
    assert sorted(r.raw for r in sink.rows) == sorted(data for _, data in junk)


def test_duplicate_event_ids_in_one_batch_count_once() -> None:
    # GIVEN a gzip batch record holding some events twice (views and activities have no other dedup)
    events = list(generate_events(12, 3))
    doubled = [e for event in events for e in (event, event)]
    store, _ = _run(doubled, RecordFormat.GZIP_BATCH, 1, 10, [], FaultPlan(), {})
    # THEN the tables are those of the unique events
    assert store.tables() == expected_tables(events)


def test_a_batch_of_only_bad_records_succeeds_and_keeps_every_byte() -> None:
    consumer = memory_consumer()
    sink = consumer.sink
    junk = [(i, data) for i, data in enumerate(JUNK)]
    records = build_shards([], RecordFormat.JSON, 1, junk)["shardId-000000000000"]
    driver = ShardDriver(consumer.handler, EsmSettings(batch_size=100), stream_arn=stream_arn)
    driver.drain(records)
    assert driver.stats.invocations == 1
    assert driver.stats.function_errors == driver.stats.partial_failures == 0
    assert sorted(r.raw for r in sink.rows) == sorted(JUNK)
    assert all(r.reason for r in sink.rows)


def test_a_transient_failure_reports_exactly_one_sequence_number() -> None:
    # GIVEN every write throttled, so the flush cannot persist anything
    consumer = memory_consumer(fails=lambda _ref: True, attempts=2)
    store = consumer.store
    records = build_shards(list(generate_events(30, 1)), RecordFormat.JSON, 1)["shardId-000000000000"]
    # WHEN one batch is handled
    response = consumer.handler(lambda_event(records, stream_arn), None)
    # THEN the response names one record, the first with an effect, the way Lambda expects
    failures = response["batchItemFailures"]
    assert len(failures) == 1
    assert failures[0]["itemIdentifier"] == records[0].sequence_number
    assert store.tables() == {}


@pytest.mark.parametrize("fmt", [pytest.param(f, id=f.value) for f in RecordFormat])
def test_one_million_bytes_of_junk_goes_to_the_sink_whole(fmt: RecordFormat) -> None:
    import os

    junk = [(0, os.urandom(1024 * 1024 - 64))]
    events = list(generate_events(20, 2))
    store, sink = _run(events, fmt, 1, 5, junk, FaultPlan(), {})
    assert store.tables() == expected_tables(events)
    (row,) = sink.rows
    assert row.raw == junk[0][1]


@given(corpus=st.lists(hostile_records(), min_size=1, max_size=8))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_the_fuzz_corpus_ends_in_the_sink_and_never_fails_a_batch(corpus: list[bytes]) -> None:
    # GIVEN a batch of random and mutated records (truncated, bit-flipped, wrong MD5, non-UTF-8, spliced)
    records = [
        StreamRecord("shardId-000000000000", f"{i + 1:030d}", data, datetime.fromtimestamp(1_795_500_000, UTC), "k")
        for i, data in enumerate(corpus)
    ]
    consumer = memory_consumer()
    store, sink = consumer.store, consumer.sink
    # WHEN the handler takes the batch
    response = consumer.handler(lambda_event(records, stream_arn), None)
    # THEN the batch succeeds, every undecodable unit is a bad row with its exact bytes, and the
    # valid events among the junk were counted
    assert response == {"batchItemFailures": []}
    not_after = DEFAULT_POLICY.not_after(datetime.fromtimestamp(1_795_500_000.0, UTC))
    decoded = [r for rec in records for r in decode_record(rec.data, rec.shard_id, rec.sequence_number, not_after)]
    expected_bad = sorted(r.raw for r in decoded if not isinstance(r, DecodedEvent))
    assert sorted(row.raw for row in sink.rows) == expected_bad
    valid = [r.event for r in decoded if isinstance(r, DecodedEvent)]
    tables = store.tables()
    assert tables == expected_tables(valid)
