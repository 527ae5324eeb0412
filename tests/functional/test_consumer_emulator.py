"""The Lambda-semantics property test again, on the embedded emulator: real DynamoDB, SQS and S3 calls.

The deployed handler module itself (``consumers.kinesis_consumer``) is imported with the emulator's
settings and driven by the event source mapping model, under throttling injected through botocore
hooks, crashes in the middle of flushes, lost answers and duplicate deliveries.
"""

from __future__ import annotations

import base64
import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import orjson
import pytest
from boto3.dynamodb.types import TypeDeserializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codecs import RecordFormat
from pipeline.faults import FaultInjector
from pipeline.generate import generate_events
from pipeline.local.esm import EsmSettings, ShardDriver
from pipeline.metrics.oracle import expected_messages, expected_tables
from pipeline.metrics.tables import TABLES, Resources
from pipeline.settings import Settings, aws_client
from tests.consumer_harness import build_shards, stream_arn
from tests.tables import create_resources, delete_resources

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


@contextmanager
def _deployed_handler(settings: Settings, resources: Resources) -> Iterator[Any]:
    """``consumers.kinesis_consumer`` imported as Lambda would, with the stack's names in its environment."""
    saved = dict(os.environ)
    os.environ.update(_environment(settings, resources))
    try:
        import consumers.kinesis_consumer as module

        yield importlib.reload(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _numbers_as_decimal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _numbers_as_decimal(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def _scan(settings: Settings, resources: Resources) -> dict[str, dict[Any, Any]]:
    """Every table the consumer writes, keyed like the oracle, watermarks left out, numbers as Decimal."""
    db = aws_client("dynamodb", settings)
    deserializer = TypeDeserializer()
    out: dict[str, dict[Any, Any]] = {}
    for name, spec in TABLES.items():
        if not spec.written_by_plugins:
            continue
        items = {}
        for page in db.get_paginator("scan").paginate(TableName=resources.table(name), ConsistentRead=True):
            for raw in page["Items"]:
                item = {k: deserializer.deserialize(v) for k, v in raw.items() if not k.startswith("_pos_")}
                items[tuple((key, item[key]) for key in spec.keys)] = item
        if items:
            out[name] = items
    return out


def _fulfilment_ids(settings: Settings, resources: Resources) -> list[str]:
    sqs = aws_client("sqs", settings)
    ids = []
    while got := sqs.receive_message(QueueUrl=resources.queues["fulfilment"], MaxNumberOfMessages=10).get("Messages"):
        for message in got:
            ids.append(str(orjson.loads(message["Body"])["event_id"]))
            sqs.delete_message(QueueUrl=resources.queues["fulfilment"], ReceiptHandle=message["ReceiptHandle"])
    return sorted(ids)


def _bad_rows(settings: Settings, resources: Resources) -> list[bytes]:
    s3 = aws_client("s3", settings)
    raws = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=resources.bad_rows_bucket):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=resources.bad_rows_bucket, Key=obj["Key"])["Body"].read()
            raws += [base64.b64decode(orjson.loads(line)["raw_base64"]) for line in body.splitlines()]
    return sorted(raws)


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
    # GIVEN fresh tables, queue and bucket on the emulator, and the handler module loaded against them
    resources = create_resources(emulator)
    aws_client("s3", emulator).create_bucket(Bucket=resources.bad_rows_bucket)
    events = list(generate_events(n, seed))
    try:
        with _deployed_handler(emulator, resources) as module:
            # ... whose DynamoDB client is throttled at random, and whose function dies at chosen invocations
            faults = FaultInjector(seed=seed)
            dynamodb = module.clients.dynamodb  # the container's one DynamoDB client
            if throttle:
                faults.throttle(dynamodb, throttle, operations=["BatchExecuteStatement", "BatchGetItem"])
            calls = 0
            pending = list(redeliver)

            def handler(event: dict[str, Any], context: Any) -> Any:
                nonlocal calls
                calls += 1
                response = module.handler(event, context)
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
        assert _scan(emulator, resources) == _numbers_as_decimal(expected_tables(events))
        assert _fulfilment_ids(emulator, resources) == sorted(str(m["event_id"]) for m in expected_messages(events))
        assert _bad_rows(emulator, resources) == sorted(data for _, data in junk)
    finally:
        delete_resources(emulator, resources)
