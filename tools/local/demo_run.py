"""One run of the whole pipeline on the embedded stack, with faults on demand and a verification.

What goes where: every event but the orders is published by the producer, as a service would; the
orders are placed through the entity stores (:mod:`tools.local.demo_shop`: the single table, and the
SQL store on a throwaway PostgreSQL), and their events reach the stream only by change data capture
(table stream -> bridge, outbox -> relay). The oracle for orders is what the stores committed, read
back after the run (:mod:`tools.committed`), not the input.

Guarantees: the run deploys a fresh stack (its own stage name) into the emulator, so tables hold
only this run's data and the verification compares like with like; unless ``keep``, the stack is
deleted, the PostgreSQL server stopped and an emulator this run started stopped, whatever happens.
The environment variables set for the handler are restored afterwards.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

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
from tools.local.demo_crashes import HandlerCrashes
from tools.local.demo_shop import DemoShop
from tools.local.demo_stores import DemoSqlStore, check_orders, order_events_of
from tools.local.demo_summary import DemoSummary
from tools.local.demo_windows import verify_windows
from tools.local.emulator import start_or_reuse
from tools.local.firehose import FirehoseSettings, LocalFirehose
from tools.local.runtime import LocalEventSource
from tools.local.stack import StackInfo, deploy, destroy
from tools.oracle import expected_messages, expected_tables
from tools.verify import bad_rows, differences, numbers_as_decimal, scan_tables

__all__ = ["DemoRun"]


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
        stores: bool = False,
        stock: int = 40,
        sql: bool = True,
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
        self.stores = stores
        """Orders through the entity stores and CDC (``pipeline demo``); ``False``: every event through the
        producer, no stores (the end-to-end benchmark's comparison with the seed style)."""
        self.stock = stock
        """Units of each ordered product in each store at the start: fewer make more orders fail for stock."""
        self.sql = sql

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
        sql_store: DemoSqlStore | None = None
        try:
            info = deploy(settings, stage=stage)
            summary = DemoSummary(endpoint, info.stack_name, self.record_format.value, self.fault_rate)
            sql_store = DemoSqlStore(enabled=self.sql and self.stores)
            if sql_store.backend is None and self.sql and self.stores:
                self.note(f"the SQL store is {sql_store.note}; orders go to the single table alone")
            self._run(settings, info, events, malformed, summary, on_records, sql_store)
        finally:
            if sql_store is not None:
                sql_store.close()
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
        sql_store: DemoSqlStore,
    ) -> None:
        stream = info.outputs["StreamName"]
        others, orders = order_events_of(events) if self.stores else (list(events), [])
        shop = self._shop(settings, info, sql_store) if self.stores else None
        # Before anything is consumed: the consumer caches the segments it reads.
        segments = self._seed(shop, events, len(orders)) if shop is not None else {}
        producer_kinesis = aws_client("kinesis", settings.with_(max_attempts=1))  # the producer owns retries
        faults = FaultInjector(seed=self.rng.randrange(2**32))
        crashes = HandlerCrashes(self.fault_rate, self.rng)
        if self.fault_rate:
            faults.fail_put_records(producer_kinesis, self.fault_rate)
            faults.throttle(producer_kinesis, self.fault_rate / 2)
        log_path = self.state_dir / f"consumer-{info.stack_name}.log"
        log_file = log_path.open("a")  # Lambda's CloudWatch log group, locally
        consumer = _consumer(settings, info, log_file)
        if consumer.clients is None:  # pragma: no cover - consumer_from_env always builds AWS clients
            raise RuntimeError("the consumer was built without AWS clients")
        dynamodb = consumer.clients.dynamodb
        requests = _count_requests(dynamodb)
        if self.fault_rate:
            faults.throttle(dynamodb, self.fault_rate, operations=["BatchExecuteStatement", "BatchGetItem"])
            dynamodb.meta.events.register("before-call.dynamodb.BatchExecuteStatement", crashes.mid_flush)

        produced: dict[str, Any] = {}
        raw_kinesis = aws_client("kinesis", settings)
        sender = threading.Thread(
            target=self._produce, args=(producer_kinesis, raw_kinesis, stream, others, malformed, produced)
        )
        placed: dict[str, Exception] = {}
        placer = threading.Thread(target=_place, args=(shop, orders, placed), name="shop")
        sender.start()
        if shop is not None:
            placer.start()
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
            drained = source.drain(keep_going=lambda: sender.is_alive() or placer.is_alive(), on_batch=on_records)
            firehose.flush()  # the delivery stream's buffers, at the end of the run
        finally:
            sender.join()
            if shop is not None:
                shop.cancel()  # a no-op after a complete run; after an interruption, the placer stops now
                placer.join()
                shop.close()
            log_file.close()
        faults.detach()
        for failure in (produced.get("error"), placed.get("error")):
            if failure is not None:
                raise failure
        summary.producer = produced["stats"]
        summary.events_sent, summary.malformed_sent = len(others), len(malformed)
        summary.order_events_in, summary.shop = len(orders), shop.summary if shop else None
        summary.record_drain(drained, requests[0], {**asdict(faults.counts), **crashes.counts})
        self._verify(settings, info, others, malformed, summary, segments, sql_store)

    def _seed(self, shop: DemoShop, events: Sequence[Event], orders: int) -> dict[str, str]:
        self.note(f"seeding the stores for {orders:,} order events (SQL store: {shop.summary.sql})")
        segments = shop.seed(events)
        self.note(f"seeded {shop.summary.users:,} users and {shop.summary.products:,} products")
        return segments

    def _shop(self, settings: Settings, info: StackInfo, sql_store: DemoSqlStore) -> DemoShop:
        return DemoShop(
            aws_client("dynamodb", settings),
            info.outputs["StoreTable"],
            aws_client("dynamodbstreams", settings),
            aws_client("kinesis", settings.with_(max_attempts=1)),  # the CDC producers own retries
            info.outputs["StreamName"],
            sql_store.backend,
            stock=self.stock,
            sql_note=sql_store.note,
        )

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
        self,
        settings: Settings,
        info: StackInfo,
        others: Sequence[Event],
        malformed: Sequence[bytes],
        s: DemoSummary,
        segments: dict[str, str],
        sql_store: DemoSqlStore,
    ) -> None:
        """Everything against the oracle of ``others`` (the events published) and of the order changes
        the stores committed (read back now)."""
        resources = info.resources()
        dynamodb = aws_client("dynamodb", settings)
        s.tables = scan_tables(dynamodb, resources)
        events = list(others)
        if s.shop is not None:
            published = s.shop.bridged + s.shop.relayed
            s.orders = check_orders(dynamodb, info.outputs["StoreTable"], sql_store.backend, s.tables, published)
            events += s.orders.events
        s.problems = differences(s.tables, numbers_as_decimal(expected_tables(events, user_segments=segments)))
        s.problems += s.orders.problems if s.orders else []
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


def _consumer(settings: Settings, info: StackInfo, log_file: TextIO) -> Any:
    """The code Lambda runs, built from the stack's environment, logging to ``log_file``."""
    env = {**info.consumer_environment(), "PIPELINE_ENDPOINT_URL": settings.endpoint_url or ""}
    env.update(POWERTOOLS_TRACE_DISABLED="true", AWS_REGION=settings.region)
    logger = Logger(
        service=env.get("POWERTOOLS_SERVICE_NAME"),
        level=env.get("POWERTOOLS_LOG_LEVEL"),
        logger_handler=logging.StreamHandler(log_file),
    )
    return consumer_from_env(env, logger=logger)


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


def _count_requests(client: Any) -> list[int]:
    """A one-element list counting the HTTP requests ``client`` sends from now on."""
    requests = [0]

    def count(**_: Any) -> None:
        requests[0] += 1

    client.meta.events.register(f"before-send.{client.meta.service_model.service_name}", count)
    return requests


def _place(shop: DemoShop | None, orders: Sequence[Event], out: dict[str, Exception]) -> None:
    """The shop thread: place the orders, pump and drain both CDC paths; an error is kept for the caller."""
    if shop is None:
        return
    try:
        shop.place(orders)
    except Exception as exc:  # noqa: BLE001 - handed to the main thread, which raises it
        out["error"] = exc
