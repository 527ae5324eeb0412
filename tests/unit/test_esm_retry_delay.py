"""The local runtime under an outage: retries spaced out (event source mapping, archive transform), expired
shard iterators replaced."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pipeline.exceptions import TransientError
from pipeline.stream import StreamRecord
from tools.local.esm import EsmSettings, ShardDriver
from tools.local.firehose import LocalFirehose
from tools.local.runtime import LocalEventSource, retry_backoff


def _records(n: int) -> list[StreamRecord]:
    arrival = datetime.now(UTC)
    return [StreamRecord("shardId-0", f"{i:030d}", b"{}", arrival, "pk") for i in range(n)]


def test_failed_batches_wait_the_retry_delay_and_a_success_waits_nothing() -> None:
    # GIVEN a handler that fails three times, then succeeds, and a driver spacing retries by n seconds
    outcomes = [RuntimeError("down"), RuntimeError("down"), RuntimeError("down"), None]
    slept: list[float] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    settings = EsmSettings(batch_size=10, maximum_retry_attempts=10)
    driver = ShardDriver(handler, settings, stream_arn="arn", retry_delay=float, sleep=slept.append)
    # WHEN it drains a batch
    driver.drain(_records(3))
    # THEN it waited before each retry, longer each time, and the batch was processed, not discarded
    assert slept == [1.0, 2.0, 3.0]
    assert driver.stats.function_errors == 3 and driver.stats.discarded_records == 0


def test_the_runtime_backoff_spans_about_a_minute_over_the_templates_ten_retries() -> None:
    delays = [retry_backoff(n) for n in range(1, 11)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0] and max(delays) == 10.0
    assert 60 <= sum(delays) <= 70


class _ExpiringKinesis:
    """A one-shard stream of 6 records whose first iterator after the first page has expired."""

    def __init__(self) -> None:
        self.records = [{"SequenceNumber": f"{i:030d}", "Data": b"{}", "PartitionKey": "pk"} for i in range(6)]
        self.asked: list[dict[str, str]] = []
        self.expired = False

    def describe_stream_summary(self, **_: Any) -> dict[str, Any]:
        return {"StreamDescriptionSummary": {"StreamARN": "arn:aws:kinesis:us-east-1:0:stream/s"}}

    def list_shards(self, **_: Any) -> dict[str, Any]:
        return {"Shards": [{"ShardId": "shardId-0"}]}

    def get_shard_iterator(self, **kwargs: str) -> dict[str, str]:
        self.asked.append({k: v for k, v in kwargs.items() if k != "StreamName"})
        after = kwargs.get("StartingSequenceNumber")
        return {"ShardIterator": str(0 if after is None else int(after) + 1)}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803 - boto3's names
        start = int(ShardIterator)
        if start == 3 and not self.expired:
            self.expired = True
            raise ClientError({"Error": {"Code": "ExpiredIteratorException", "Message": "expired"}}, "GetRecords")
        page = self.records[start : start + 3]
        arrival = datetime.now(UTC)
        return {
            "Records": [{**r, "ApproximateArrivalTimestamp": arrival} for r in page],
            "NextShardIterator": str(start + len(page)),
            "MillisBehindLatest": 0,
        }


def test_an_expired_iterator_is_replaced_just_after_the_newest_record_read() -> None:
    # GIVEN a stream whose iterator expires after the first page of three records
    kinesis = _ExpiringKinesis()
    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        seen.extend(r["kinesis"]["sequenceNumber"] for r in event["Records"])

    source = LocalEventSource(kinesis, "s", handler, EsmSettings(batch_size=10))
    # WHEN it drains the stream
    source.drain(idle_polls=2, timeout_s=5)
    # THEN every record was handled once, in order, and the new iterator started after the third record
    assert seen == [r["SequenceNumber"] for r in kinesis.records]
    assert kinesis.asked[-1] == {
        "ShardId": "shardId-0",
        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
        "StartingSequenceNumber": f"{2:030d}",
    }


def test_the_local_firehose_waits_its_retry_delay_before_each_transform_retry() -> None:
    # GIVEN a transform that fails twice (its own writes could not be done), then drops every record
    outcomes: list[Exception | None] = [TransientError("s3 away"), TransientError("s3 away"), None]
    slept: list[float] = []

    def transform(event: dict[str, Any]) -> dict[str, Any]:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return {"records": [{"recordId": r["recordId"], "result": "Dropped", "data": ""} for r in event["records"]]}

    firehose = LocalFirehose(object(), "bucket", transform)  # nothing is written: no S3 call
    firehose.retry_delay, firehose.sleep = float, slept.append
    # WHEN it takes three records
    firehose.put_records(_records(3))
    # THEN it waited 1 s, then 2 s, and no record went to the error prefix
    assert slept == [1.0, 2.0]
    assert firehose.stats.failed == 0 and firehose.stats.dropped == 3
