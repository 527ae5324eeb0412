"""The Lambda-semantics property test again, on the embedded emulator: real DynamoDB, SQS and S3 calls.

The consumer Lambda runs (:func:`~pipeline.consumer.handler.consumer_from_env`, what
``consumers/kinesis_consumer.py`` calls at import) is built from the environment the template would
set for these tables and driven by the event source mapping model, under throttling injected through botocore
hooks, crashes in the middle of flushes, lost answers and duplicate deliveries.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codecs import RecordFormat
from pipeline.consumer.handler import consumer_from_env
from pipeline.metrics.tables import TABLES, Resources
from pipeline.settings import Settings, aws_client
from tests.consumer_harness import build_shards, stream_arn
from tests.tables import create_resources, delete_resources
from tools.faults import FaultInjector
from tools.generate import generate_events
from tools.local.esm import EsmSettings, ShardDriver
from tools.oracle import expected_messages, expected_tables
from tools.verify import bad_rows, differences, numbers_as_decimal, scan_tables

pytestmark = pytest.mark.emulator


def _environment(settings: Settings, resources: Resources) -> dict[str, str]:
    env = {spec.env: resources.table(name) for name, spec in TABLES.items()}
    env["FULFILMENT_QUEUE_URL"] = resources.queues["fulfilment"]
    env["BAD_ROWS_BUCKET"] = resources.bad_rows_bucket
    env["PIPELINE_ENDPOINT_URL"] = settings.endpoint_url or ""
    env["POWERTOOLS_METRICS_NAMESPACE"] = "Test"
    env["POWERTOOLS_TRACE_DISABLED"] = "true"
    env["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"
    env["AWS_REGION"] = settings.region
    return env


def _fulfilment_ids(settings: Settings, resources: Resources) -> list[str]:
    sqs = aws_client("sqs", settings)
    ids = []
    while got := sqs.receive_message(QueueUrl=resources.queues["fulfilment"], MaxNumberOfMessages=10).get("Messages"):
        for message in got:
            ids.append(str(orjson.loads(message["Body"])["event_id"]))
            sqs.delete_message(QueueUrl=resources.queues["fulfilment"], ReceiptHandle=message["ReceiptHandle"])
    return sorted(ids)


def _bad_rows(settings: Settings, resources: Resources) -> list[bytes]:
    rows = bad_rows(aws_client("s3", settings), resources.bad_rows_bucket, "")
    return sorted(base64.b64decode(row["raw_base64"]) for row in rows)


JUNK = [b"\xff\xfe not json", b'{"event_type": "refund", "schema_version": 1}', b""]


@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 10_000),
    fmt=st.sampled_from(list(RecordFormat)),
    shards=st.integers(1, 2),
    batch_size=st.integers(1, 30),
    junk=st.lists(st.tuples(st.integers(0, 100), st.sampled_from(JUNK)), max_size=2),
    throttle=st.sampled_from([0.0, 0.2]),
    crashes=st.lists(st.integers(1, 12), max_size=2),
    redeliver=st.lists(st.booleans(), max_size=6),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_deployed_handler_on_the_emulator_ends_exactly_right(
    emulator: Settings,
    n: int,
    seed: int,
    fmt: RecordFormat,
    shards: int,
    batch_size: int,
    junk: list[tuple[int, bytes]],
    throttle: float,
    crashes: list[int],
    redeliver: list[bool],
) -> None:
    # GIVEN fresh tables, queue and bucket on the emulator, and the consumer built against them
    resources = create_resources(emulator)
    aws_client("s3", emulator).create_bucket(Bucket=resources.bad_rows_bucket)
    events = list(generate_events(n, seed))
    try:
        consumer = consumer_from_env(_environment(emulator, resources))
        # ... whose DynamoDB client is throttled at random, and whose function dies at chosen invocations
        faults = FaultInjector(seed=seed)
        assert consumer.clients is not None
        if throttle:
            faults.throttle(consumer.clients.dynamodb, throttle, operations=["BatchExecuteStatement", "BatchGetItem"])
        calls = 0
        pending = list(redeliver)

        def handler(event: dict[str, Any], context: Any) -> Any:
            nonlocal calls
            calls += 1
            response = consumer.lambda_handler(event, context)
            if calls in crashes:
                raise RuntimeError("the function died before answering")
            return response

        esm = EsmSettings(batch_size=batch_size, bisect_on_error=True)
        for records in build_shards(events, fmt, shards, junk).values():
            ShardDriver(
                handler,
                esm,
                stream_arn=stream_arn,
                redeliver=lambda: bool(pending) and pending.pop(),
                max_invocations=2_000,  # a record failing forever fails the test instead of hanging it
            ).drain(records)
        faults.detach()
        # THEN the tables equal the oracle, fulfilment holds each completed order once, bad rows are whole
        actual = scan_tables(aws_client("dynamodb", emulator), resources)
        assert differences(actual, numbers_as_decimal(expected_tables(events))) == []
        assert _fulfilment_ids(emulator, resources) == sorted(str(m["event_id"]) for m in expected_messages(events))
        assert _bad_rows(emulator, resources) == sorted(data for _, data in junk)
    finally:
        delete_resources(emulator, resources)
