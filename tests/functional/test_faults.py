"""Fault injection on real boto3 clients against the emulator: what is reported failed is really not written."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from pipeline.exceptions import ConfigurationError
from pipeline.settings import Settings, aws_client
from tools.faults import THROUGHPUT_EXCEEDED, FaultInjector

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import PutRecordsRequestEntryTypeDef


def _entries(count: int, tag: str = "event") -> list[PutRecordsRequestEntryTypeDef]:
    return [{"Data": f"{tag}-{i}".encode(), "PartitionKey": f"key-{i}"} for i in range(count)]


def _read_stream(kinesis: KinesisClient, stream: str) -> list[tuple[str, bytes]]:
    """Every record of every shard as (sequence number, data), from TRIM_HORIZON.

    An empty page ends a shard here: the emulator returns all it has at once (real Kinesis may not).
    """
    found: list[tuple[str, bytes]] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            found.extend((record["SequenceNumber"], record["Data"]) for record in page["Records"])
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
    return found


@pytest.mark.emulator
@pytest.mark.parametrize(
    ("rate", "min_failed", "max_failed"),
    [
        pytest.param(0.5, 1, 39, id="some-fail"),
        pytest.param(1.0, 40, 40, id="all-fail-nothing-sent"),
        pytest.param(0.0, 0, 0, id="none-fail"),
    ],
)
def test_partial_failure_entries_are_really_not_written(
    emulator: Settings, kinesis_stream: str, rate: float, min_failed: int, max_failed: int
) -> None:
    # GIVEN a kinesis client on which PutRecords entries fail at `rate`
    kinesis: KinesisClient = aws_client("kinesis", emulator)
    injector = FaultInjector(seed=42)
    injector.fail_put_records(kinesis, rate)
    entries = _entries(40)
    as_given = copy.deepcopy(entries)

    # WHEN one PutRecords call is made
    response = kinesis.put_records(StreamName=kinesis_stream, Records=entries)

    # THEN there is one result per entry, in order, and the failures are counted as Kinesis counts them
    results = response["Records"]
    assert len(results) == len(entries)
    failed = {i for i, result in enumerate(results) if "ErrorCode" in result}
    assert min_failed <= len(failed) <= max_failed
    assert response["FailedRecordCount"] == len(failed) == injector.counts.failed_entries
    assert {results[i]["ErrorCode"] for i in failed} <= {THROUGHPUT_EXCEEDED}
    assert all(results[i]["ErrorMessage"] for i in failed)

    # AND the caller's entries are untouched
    assert entries == as_given

    # AND exactly the successful entries are in the stream, under the sequence numbers reported for them
    written = {results[i]["SequenceNumber"]: entries[i]["Data"] for i in range(len(entries)) if i not in failed}
    assert sorted(_read_stream(kinesis, kinesis_stream)) == sorted(written.items())


@pytest.mark.emulator
def test_resending_only_failed_entries_after_detach_writes_each_once(emulator: Settings, kinesis_stream: str) -> None:
    # GIVEN a PutRecords call in which some entries failed
    kinesis: KinesisClient = aws_client("kinesis", emulator)
    entries = _entries(30)
    with FaultInjector(seed=3) as injector:
        injector.fail_put_records(kinesis, 0.4)
        first = kinesis.put_records(StreamName=kinesis_stream, Records=entries)
    retry = [entry for entry, result in zip(entries, first["Records"], strict=True) if "ErrorCode" in result]
    assert retry

    # WHEN the injector is detached (leaving the with block) and only the failed entries are resent
    second = kinesis.put_records(StreamName=kinesis_stream, Records=retry)

    # THEN the resend succeeds in full and every entry is in the stream exactly once
    assert second["FailedRecordCount"] == 0
    data = [record_data for _, record_data in _read_stream(kinesis, kinesis_stream)]
    assert sorted(data) == sorted(f"event-{i}".encode() for i in range(30))


@pytest.mark.emulator
def test_failure_counts_are_exact_under_concurrent_callers(emulator: Settings, kinesis_stream: str) -> None:
    # GIVEN one injector on a client shared by four threads
    kinesis: KinesisClient = aws_client("kinesis", emulator)
    injector = FaultInjector(seed=11)
    injector.fail_put_records(kinesis, 0.3)

    def put(batch: int) -> int:
        response = kinesis.put_records(StreamName=kinesis_stream, Records=_entries(25, tag=f"batch{batch}"))
        assert len(response["Records"]) == 25
        return response["FailedRecordCount"]

    # WHEN they make PutRecords calls at the same time
    with ThreadPoolExecutor(max_workers=4) as pool:
        reported = sum(pool.map(put, range(16)))

    # THEN the failures the callers saw are those the injector counted, and the rest were written
    assert reported == injector.counts.failed_entries
    assert len(_read_stream(kinesis, kinesis_stream)) == 16 * 25 - reported


@pytest.mark.emulator
def test_throttled_put_records_raises_the_modeled_exception_after_retries(
    emulator: Settings, kinesis_stream: str
) -> None:
    # GIVEN a kinesis client (two attempts: one retry) on which every PutRecords attempt is throttled
    kinesis: KinesisClient = aws_client("kinesis", emulator.with_(max_attempts=2))
    injector = FaultInjector()
    injector.throttle(kinesis, 1.0)

    # WHEN PutRecords is called
    with pytest.raises(kinesis.exceptions.ProvisionedThroughputExceededException) as raised:
        kinesis.put_records(StreamName=kinesis_stream, Records=_entries(3))

    # THEN botocore retried before giving up, every attempt was throttled, and nothing was written
    retries = raised.value.response["ResponseMetadata"]["RetryAttempts"]
    assert retries >= 1
    assert injector.counts.throttled_requests == retries + 1
    assert _read_stream(kinesis, kinesis_stream) == []


@pytest.mark.emulator
@pytest.mark.parametrize(
    "error_code",
    [
        pytest.param(THROUGHPUT_EXCEEDED, id="provisioned-throughput-exceeded"),
        pytest.param("ThrottlingException", id="throttling"),
    ],
)
def test_throttle_works_for_dynamodb_operations(emulator: Settings, error_code: str) -> None:
    # GIVEN a DynamoDB client on which every PutItem attempt is throttled with `error_code`
    dynamodb: DynamoDBClient = aws_client("dynamodb", emulator.with_(max_attempts=2))
    injector = FaultInjector()
    injector.throttle(dynamodb, 1.0, operations=["PutItem", "UpdateItem"], error_code=error_code)

    # WHEN PutItem is called (the table need not exist: no attempt reaches the emulator)
    with pytest.raises(ClientError) as raised:
        dynamodb.put_item(TableName="never-created", Item={"pk": {"S": "a"}})

    # THEN the caller sees the throttling error, after botocore's retries
    assert raised.value.response["Error"]["Code"] == error_code
    assert injector.counts.throttled_requests == raised.value.response["ResponseMetadata"]["RetryAttempts"] + 1 >= 2


@pytest.mark.emulator
def test_detach_restores_normal_behaviour(emulator: Settings, kinesis_stream: str) -> None:
    # GIVEN a client on which every entry fails and every attempt is throttled
    kinesis: KinesisClient = aws_client("kinesis", emulator)
    injector = FaultInjector()
    injector.fail_put_records(kinesis, 1.0)
    injector.throttle(kinesis, 1.0)

    # WHEN the injector is detached and PutRecords is called
    injector.detach()
    response = kinesis.put_records(StreamName=kinesis_stream, Records=_entries(5))

    # THEN everything is written and nothing was injected
    assert response["FailedRecordCount"] == 0
    assert len(_read_stream(kinesis, kinesis_stream)) == 5
    assert injector.counts.failed_entries == injector.counts.throttled_requests == 0
    injector.detach()  # idempotent


@pytest.mark.parametrize("rate", [pytest.param(-0.1, id="negative"), pytest.param(1.5, id="above-one")])
def test_a_rate_outside_zero_to_one_is_refused(rate: float) -> None:
    # GIVEN a client (building it needs no emulator)
    kinesis: KinesisClient = aws_client("kinesis", Settings(endpoint_url="http://127.0.0.1:9"))
    injector = FaultInjector()

    # WHEN a fault is attached at an impossible rate
    # THEN it is refused
    with pytest.raises(ConfigurationError, match="between 0 and 1"):
        injector.fail_put_records(kinesis, rate)
    with pytest.raises(ConfigurationError, match="between 0 and 1"):
        injector.throttle(kinesis, rate)


def test_faults_for_the_wrong_client_or_operation_are_refused() -> None:
    # GIVEN a kinesis and a DynamoDB client
    settings = Settings(endpoint_url="http://127.0.0.1:9")
    kinesis: KinesisClient = aws_client("kinesis", settings)
    dynamodb: DynamoDBClient = aws_client("dynamodb", settings)
    injector = FaultInjector()

    # WHEN PutRecords failures go to DynamoDB, or throttling to an operation the service lacks
    # THEN both are refused
    with pytest.raises(ConfigurationError, match="kinesis client"):
        injector.fail_put_records(dynamodb, 0.5)
    with pytest.raises(ConfigurationError, match="PutItem"):
        injector.throttle(kinesis, 0.5, operations=["PutItem"])
