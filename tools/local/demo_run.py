"""One run of the whole pipeline on the embedded stack, with faults on demand and a verification.

Guarantees: the run deploys a fresh stack (its own stage name) into the emulator, so tables hold
only this run's data and the verification compares like with like; unless ``keep``, the stack is
deleted and an emulator this run started is stopped, whatever happens. The environment variables
set for the handler are restored afterwards.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from pipeline.archive.reader import list_objects, read_object
from pipeline.archive.transform import FirehoseTransform
from pipeline.codecs import RecordFormat
from pipeline.consumer.handler import consumer_from_env
from pipeline.events import Event
from pipeline.exceptions import DeliveryError
from pipeline.objectstore import S3ObjectWriter
from pipeline.settings import Settings, aws_client
from producers import Producer
from tools.faults import FaultInjector
from tools.local.demo_windows import WindowSummary, verify_windows
from tools.local.emulator import start_or_reuse
from tools.local.firehose import FirehoseSettings, LocalFirehose
from tools.local.runtime import LocalEventSource
from tools.local.stack import StackInfo, deploy, destroy
from tools.oracle import expected_messages, expected_tables
from tools.verify import Tables, bad_rows, differences, jsonable, numbers_as_decimal, scan_tables

__all__ = ["DemoRun", "DemoSummary"]


@dataclass
class DemoSummary:
    endpoint: str
    stack: str
    record_format: str
    fault_rate: float
    events_sent: int = 0
    malformed_sent: int = 0
    producer: dict[str, int] = field(default_factory=dict)
    records_consumed: int = 0
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    bisections: int = 0
    discarded_batches: int = 0
    dynamodb_requests: int = 0
    bad_row_reasons: list[str] = field(default_factory=list)
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    fulfilment_messages: int = 0
    archive_bucket: str = ""
    archive_objects: int = 0
    archive_events: int = 0
    archive_error_objects: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    verified: bool = False
    problems: list[str] = field(default_factory=list)
    tables: Tables = field(default_factory=dict)
    windows: WindowSummary | None = None
    """The windowed analytics over the archive (``None`` when the demo skipped them)."""

    @property
    def dynamodb_requests_per_event(self) -> float:
        return self.dynamodb_requests / max(self.events_sent, 1)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tables"] = jsonable(self.tables)
        out["dynamodb_requests_per_event"] = round(self.dynamodb_requests_per_event, 4)
        out["item_counts"] = {table: len(items) for table, items in self.tables.items()}
        return out


class _Crashes:
    """Handler crashes, each kind at ``rate / 3`` per invocation: before the handler runs, in the middle
    of its writes (after a random number of write calls), and after its writes, before it answers."""

    def __init__(self, rate: float, rng: random.Random) -> None:
        self.rate = rate
        self.rng = rng
        self.counts = {"crash_before": 0, "crash_mid_flush": 0, "crash_after": 0}
        self._calls_left: int | None = None

    def _roll(self) -> bool:
        return bool(self.rate) and self.rng.random() < self.rate / 3

    def wrap(self, handler: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], Any]:
        def crashing(event: dict[str, Any], context: Any) -> Any:
            if self._roll():
                self.counts["crash_before"] += 1
                raise RuntimeError("injected crash before the handler ran")
            self._calls_left = self.rng.randrange(4) if self._roll() else None
            try:
                response = handler(event, context)
            finally:
                self._calls_left = None
            if self._roll():
                self.counts["crash_after"] += 1
                raise RuntimeError("injected crash after the writes, before answering")
            return response

        return crashing

    def mid_flush(self, **_: Any) -> None:
        """A botocore ``before-call`` hook on the writes: raises once when this invocation's count runs out."""
        if self._calls_left is None:
            return
        if self._calls_left == 0:
            self._calls_left = None
            self.counts["crash_mid_flush"] += 1
            raise RuntimeError("injected crash in the middle of a flush")
        self._calls_left -= 1


class DemoRun:
    """Deploy, produce, consume, verify; see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        *,
        record_format: RecordFormat = RecordFormat.JSON,
        fault_rate: float = 0.0,
        rng: random.Random | None = None,
        keep: bool = False,
        endpoint_url: str | None = None,
        windows: str = "flink",
        note: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.state_dir = state_dir
        self.endpoint_url = endpoint_url
        self.record_format = record_format
        self.fault_rate = fault_rate
        self.rng = rng or random.Random(1)  # noqa: S311 - fault injection, not security
        self.keep = keep
        self.windows = windows
        """``"flink"`` (the job, verified against the reference, when Flink can run here),
        ``"reference"`` (the reference alone) or ``"off"``."""
        self.note = note

    def run(
        self,
        events: Sequence[Event],
        malformed: Sequence[bytes],
        on_records: Callable[[int], None] = lambda n: None,
        on_produce_start: Callable[[], None] = lambda: None,
    ) -> DemoSummary:
        """Deploy, produce and consume, verify, clean up. ``on_records(n)`` runs after each drained poll
        (the handler's writes for those records are done); ``on_produce_start()`` as the producer starts."""
        self._on_produce_start = on_produce_start
        started = time.monotonic()
        emulator = None if self.endpoint_url else start_or_reuse(self.state_dir)
        endpoint = self.endpoint_url or (emulator.endpoint_url if emulator else "")
        settings = Settings(endpoint_url=endpoint)
        stage = f"demo{int(time.time() * 1000) % 10**10}"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            info = deploy(settings, stage=stage)
            summary = DemoSummary(endpoint, info.stack_name, self.record_format.value, self.fault_rate)
            self._run(settings, info, events, malformed, summary, on_records)
        finally:
            if not self.keep:
                destroy(settings, stage, empty_buckets=True)
                if emulator is not None and not emulator.reused:
                    emulator.stop()
        summary.elapsed_s = time.monotonic() - started
        return summary

    def _run(
        self,
        settings: Settings,
        info: StackInfo,
        events: Sequence[Event],
        malformed: Sequence[bytes],
        summary: DemoSummary,
        on_records: Callable[[int], None],
    ) -> None:
        stream = info.outputs["StreamName"]
        producer_kinesis = aws_client("kinesis", settings.with_(max_attempts=1))  # the producer owns retries
        faults = FaultInjector(seed=self.rng.randrange(2**32))
        crashes = _Crashes(self.fault_rate, self.rng)
        if self.fault_rate:
            faults.fail_put_records(producer_kinesis, self.fault_rate)
            faults.throttle(producer_kinesis, self.fault_rate / 2)
        env = {**info.consumer_environment(), "PIPELINE_ENDPOINT_URL": settings.endpoint_url or ""}
        env.update(POWERTOOLS_TRACE_DISABLED="true", AWS_REGION=settings.region)
        log_path = self.state_dir / f"consumer-{info.stack_name}.log"
        log_file = log_path.open("a")  # Lambda's CloudWatch log group, locally
        logger = Logger(
            service=env.get("POWERTOOLS_SERVICE_NAME"),
            level=env.get("POWERTOOLS_LOG_LEVEL"),
            logger_handler=logging.StreamHandler(log_file),
        )
        consumer = consumer_from_env(env, logger=logger)  # the code Lambda runs, built from the stack's environment
        if consumer.clients is None:  # pragma: no cover - consumer_from_env always builds AWS clients
            raise RuntimeError("the consumer was built without AWS clients")
        dynamodb = consumer.clients.dynamodb
        requests = [0]

        def count(**_: Any) -> None:
            requests[0] += 1

        dynamodb.meta.events.register("before-send.dynamodb", count)
        if self.fault_rate:
            faults.throttle(dynamodb, self.fault_rate, operations=["BatchExecuteStatement", "BatchGetItem"])
            dynamodb.meta.events.register("before-call.dynamodb.BatchExecuteStatement", crashes.mid_flush)

        produced: dict[str, Any] = {}
        raw_kinesis = aws_client("kinesis", settings)
        sender = threading.Thread(
            target=self._produce, args=(producer_kinesis, raw_kinesis, stream, events, malformed, produced)
        )
        sender.start()
        firehose = _local_firehose(settings, info)
        source = LocalEventSource(
            raw_kinesis,
            stream,
            crashes.wrap(consumer.lambda_handler),
            info.esm_settings(),
            sqs=aws_client("sqs", settings),
            on_failure_queue_url=info.outputs.get("ConsumerFailureQueueUrl"),
            log_path=log_path,
            region=settings.region,
            tap=firehose.put_records,  # the archive's delivery stream reads the same stream
        )
        try:
            drained = source.drain(keep_going=sender.is_alive, on_batch=on_records)
            firehose.flush()  # the delivery stream's buffers, at the end of the run
        finally:
            sender.join()
            log_file.close()
        faults.detach()
        if "error" in produced:
            raise produced["error"]
        summary.producer = produced["stats"]
        summary.events_sent, summary.malformed_sent = len(events), len(malformed)
        summary.records_consumed = drained.records
        summary.invocations = drained.total("invocations")
        summary.function_errors = drained.total("function_errors")
        summary.partial_failures = drained.total("partial_failures")
        summary.bisections = drained.total("bisections")
        summary.dynamodb_requests = requests[0]
        summary.faults = {**asdict(faults.counts), **crashes.counts}
        self._verify(settings, info, events, malformed, summary)

    def _produce(
        self,
        kinesis: Any,
        raw: Any,
        stream: str,
        events: Sequence[Event],
        malformed: Sequence[bytes],
        out: dict[str, Any],
    ) -> None:
        """Valid events through the producer; malformed lines as raw records (they cannot be encoded)."""
        self._on_produce_start()
        try:
            with Producer(stream, kinesis, record_format=self.record_format) as producer:
                producer.put_many(events)
            out["stats"] = producer.stats.as_dict()
            for i in range(0, len(malformed), 500):
                chunk = malformed[i : i + 500]
                entries = [{"Data": data, "PartitionKey": f"malformed#{i + j}"} for j, data in enumerate(chunk)]
                _put_all(raw, stream, entries)
        except (DeliveryError, RuntimeError) as exc:
            out["error"] = exc

    def _verify(
        self, settings: Settings, info: StackInfo, events: Sequence[Event], malformed: Sequence[bytes], s: DemoSummary
    ) -> None:
        resources = info.resources()
        s.tables = scan_tables(aws_client("dynamodb", settings), resources)
        s.problems = differences(s.tables, numbers_as_decimal(expected_tables(events)))
        s.bad_rows = bad_rows(aws_client("s3", settings), resources.bad_rows_bucket, resources.bad_rows_prefix)
        s.bad_row_reasons = [str(r["reason"]) for r in s.bad_rows]
        if len(s.bad_rows) != len(malformed):
            s.problems.append(f"bad rows: {len(s.bad_rows)} in the sink, {len(malformed)} malformed lines sent")
        sqs = aws_client("sqs", settings)
        s.fulfilment_messages = _depth(sqs, resources.queues["fulfilment"])
        expected = len(expected_messages(events))
        if s.fulfilment_messages != expected:
            s.problems.append(f"fulfilment: {s.fulfilment_messages} messages queued, {expected} expected")
        self._verify_archive(settings, info, events, malformed, s)
        if self.windows != "off":
            s.windows = verify_windows(settings, info, flink=self.windows == "flink", note=self.note)
            s.problems += s.windows.problems
        failures_url = info.outputs.get("ConsumerFailureQueueUrl")
        s.discarded_batches = _depth(sqs, failures_url) if failures_url else 0
        if s.discarded_batches:
            s.problems.append(f"{s.discarded_batches} batches were discarded to the on-failure queue")
        s.verified = not s.problems

    @staticmethod
    def _verify_archive(
        settings: Settings, info: StackInfo, events: Sequence[Event], malformed: Sequence[bytes], s: DemoSummary
    ) -> None:
        """The archive holds exactly the valid events sent, each under its own type and date; the
        malformed records sit under the error prefix."""
        s3 = aws_client("s3", settings)
        bucket = info.outputs["ArchiveBucket"]
        s.archive_bucket = bucket
        objects = list_objects(s3, bucket)
        s.archive_objects = len(objects)
        archived: Counter[str] = Counter()
        for obj in objects:
            for event in read_object(s3, bucket, obj.key):
                archived[event.event_id] += 1
                if event.event_type is not obj.event_type or event.timestamp.date() != obj.dt:
                    s.problems.append(f"archive: {event.event_id} ({event.event_type}) is under {obj.key}")
        s.archive_events = sum(archived.values())
        sent = Counter(e.event_id for e in events)
        if archived != sent:
            missing, extra = sum((sent - archived).values()), sum((archived - sent).values())
            s.problems.append(f"archive: {missing} events missing, {extra} unexpected or duplicated")
        errors = s3.list_objects_v2(Bucket=bucket, Prefix="errors/").get("KeyCount", 0)
        s.archive_error_objects = int(errors)
        if malformed and not errors:
            s.problems.append("archive: malformed records were sent but nothing is under errors/")


def _local_firehose(settings: Settings, info: StackInfo) -> LocalFirehose:
    """The archive's delivery stream as the template declares it, with the deployed transform's code."""
    s3 = aws_client("s3", settings)
    bucket = info.outputs["ArchiveBucket"]
    return LocalFirehose(
        s3,
        bucket,
        FirehoseTransform(S3ObjectWriter(s3, bucket)),
        settings=FirehoseSettings.from_parameters(info.parameters),
        stream_name=info.outputs.get("DeliveryStreamName", "archive"),
        region=settings.region,
    )


def _depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))


def _put_all(kinesis: Any, stream: str, entries: list[dict[str, Any]]) -> None:
    """Raw records as they are (the malformed lines), resending only failed entries."""
    for _ in range(20):
        response = kinesis.put_records(StreamName=stream, Records=entries)
        entries = [e for e, r in zip(entries, response["Records"], strict=True) if r.get("ErrorCode")]
        if not entries:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{len(entries)} malformed lines could not be sent")
