"""The archive's delivery stream, run locally: what the emulator's Firehose lacks, around the same transform.

ministack's Firehose calls the transform one record at a time, without ``kinesisRecordMetadata``, and
writes one uncompressed object per record, synchronously inside every ``PutRecords`` (a 5-record call
took 1.2 s); so on the emulator the deployed delivery stream is deleted after deploy, like the
consumer's event source mapping. :class:`LocalFirehose` does what the delivery stream does in AWS:

1. it takes the stream's records (``put_records``) and, as Firehose does for a Kinesis source,
   de-aggregates KPL records into their user records (``subsequenceNumber`` set);
2. it invokes the transform with Firehose's Kinesis-source event shape (``sourceKinesisStreamArn``,
   ``kinesisRecordMetadata``), in batches of about ``transform_batch_bytes`` of record data;
3. it holds the transform to the contract (every ``recordId`` once, a known result, base64 data, the
   partition keys the prefix needs, a response under 6 MB) and raises
   :class:`~pipeline.archive.errors.TransformContractError` otherwise;
4. it buffers ``Ok`` data per evaluated prefix (:data:`~pipeline.archive.layout.FIREHOSE_PREFIX`), and
   ``ProcessingFailed`` records as Firehose's error documents per evaluated
   :data:`~pipeline.archive.layout.FIREHOSE_ERROR_PREFIX`;
5. it writes a buffer as one GZIP object once it holds ``buffer_size_bytes`` or its oldest data is
   ``buffer_interval_s`` old (checked on every call), and every buffer on :meth:`LocalFirehose.flush`.

If the transform raises :class:`~pipeline.exceptions.TransientError` the invocation is retried
``retries`` times, then its records go to the error prefix (``Lambda.FunctionError``), as in AWS.
``retry_delay(n)`` (an attribute; ``None``, the default, retries at once) is slept before the
``n``-th retry: AWS does not document how Firehose spaces them, and retries in quick succession turn
any outage of the transform's own writes into error documents.

Guarantees: object keys are deterministic (the uuid derives from the object's first record), so the
same input written again overwrites the same objects. Flushing twice writes once: a written buffer is
removed. A buffer whose write fails stays (there is no upstream checkpoint to re-deliver it), and
:class:`~pipeline.exceptions.TransientError` is raised; the next flush writes it under the same key.
Differences from AWS, on purpose: the timestamp in an error prefix is each record's arrival (AWS: the
oldest record of the object), and buffering is per evaluated prefix only. Not thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.archive.errors import TransformContractError
from pipeline.archive.layout import (
    FIREHOSE_ERROR_PREFIX,
    FIREHOSE_PREFIX,
    PROCESSING_FAILED,
    evaluate_prefix,
    firehose_object_name,
)
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.codecs.kpl import deaggregate, has_kpl_magic
from pipeline.exceptions import DecodeError, TransientError
from pipeline.stream import StreamRecord

__all__ = ["FirehoseSettings", "LocalFirehose", "LocalFirehoseStats"]

_MIB: Final = 1024 * 1024
LAMBDA_PAYLOAD_LIMIT: Final = 6 * _MIB
_RESULTS: Final = frozenset({"Ok", "Dropped", "ProcessingFailed"})

Transform = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class FirehoseSettings:
    """The delivery stream's hints; defaults are the template's parameter defaults (a test checks)."""

    buffer_size_bytes: int = 64 * _MIB
    buffer_interval_s: float = 300.0
    transform_batch_bytes: int = 1 * _MIB
    retries: int = 3

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> FirehoseSettings:
        """From the stack's effective parameters (``StackInfo.parameters``); absent ones keep the defaults."""
        default = cls()
        return cls(
            buffer_size_bytes=int(float(parameters.get("ArchiveBufferSizeMB", 64)) * _MIB),
            buffer_interval_s=float(parameters.get("ArchiveBufferIntervalSeconds", default.buffer_interval_s)),
            transform_batch_bytes=int(float(parameters.get("ArchiveTransformBufferSizeMB", 1)) * _MIB),
        )


@dataclass(slots=True)
class LocalFirehoseStats:
    records: int = 0
    invocations: int = 0
    retries: int = 0
    ok: int = 0
    dropped: int = 0
    failed: int = 0
    objects: int = 0
    bytes_written: int = 0


@dataclass(slots=True)
class _Buffer:
    first_id: str
    oldest_arrival: datetime
    opened: float
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


@dataclass(frozen=True, slots=True)
class _Pending:
    record_id: str
    record: StreamRecord
    data: bytes
    sub: int
    partition_key: str


class LocalFirehose:
    """``put_records`` then ``flush``; see the module docstring. ``transform`` is called with a Firehose
    event and returns the response (a :class:`~pipeline.archive.transform.FirehoseTransform`, or the
    Lambda handler wrapped as ``lambda event: handler(event, context)``)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        transform: Transform,
        *,
        settings: FirehoseSettings | None = None,
        stream_name: str = "local-archive",
        source_stream_arn: str = "",
        region: str = "us-east-1",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._transform = transform
        self._settings = settings or FirehoseSettings()
        self._stream_name = stream_name
        self._source_arn = source_stream_arn
        self._arn = f"arn:aws:firehose:{region}:000000000000:deliverystream/{stream_name}"
        self._region = region
        self._clock = clock
        self._buffers: dict[str, _Buffer] = {}
        self.stats = LocalFirehoseStats()
        self.retry_delay: Callable[[int], float] | None = None
        self.sleep: Callable[[float], None] = time.sleep

    # -- in ------------------------------------------------------------------------------------------

    def put_records(self, records: Iterable[StreamRecord]) -> None:
        """Transform ``records`` and buffer the results; write the buffers that are due."""
        batch: list[_Pending] = []
        size = 0
        for record in records:
            self.stats.records += 1
            for pending in _firehose_records(record):
                if batch and size + len(pending.data) > self._settings.transform_batch_bytes:
                    self._invoke(batch)
                    batch, size = [], 0
                batch.append(pending)
                size += len(pending.data)
        if batch:
            self._invoke(batch)
        self.flush(only_due=True)

    def _event(self, batch: list[_Pending]) -> dict[str, Any]:
        records = []
        for pending in batch:
            arrival_ms = int(pending.record.arrival.timestamp() * 1000)
            records.append(
                {
                    "recordId": pending.record_id,
                    "approximateArrivalTimestamp": arrival_ms,
                    "data": base64.b64encode(pending.data).decode(),
                    "kinesisRecordMetadata": {
                        "shardId": pending.record.shard_id,
                        "partitionKey": pending.partition_key,
                        "approximateArrivalTimestamp": arrival_ms,
                        "sequenceNumber": pending.record.sequence_number,
                        "subsequenceNumber": pending.sub,
                    },
                }
            )
        return {
            "invocationId": str(uuid.uuid4()),
            "sourceKinesisStreamArn": self._source_arn,
            "deliveryStreamArn": self._arn,
            "region": self._region,
            "records": records,
        }

    def _invoke(self, batch: list[_Pending]) -> None:
        event = self._event(batch)
        for attempt in range(self._settings.retries + 1):
            self.stats.invocations += 1
            try:
                response = self._transform(event)
            except TransientError as exc:
                if attempt < self._settings.retries:
                    self.stats.retries += 1
                    if self.retry_delay is not None:
                        self.sleep(self.retry_delay(attempt + 1))
                    continue
                for pending in batch:
                    self._fail(pending, "Lambda.FunctionError", str(exc))
                return
            self._accept(batch, response)
            return

    def _accept(self, batch: list[_Pending], response: Any) -> None:
        by_id = _check_response(batch, response)
        for pending in batch:
            entry = by_id[pending.record_id]
            result = entry["result"]
            if result == "Dropped":
                self.stats.dropped += 1
                continue
            if result == "ProcessingFailed":
                self._fail(pending, "Lambda.ProcessingFailedStatus", "ProcessingFailed status returned from Lambda")
                continue
            keys = (entry.get("metadata") or {}).get("partitionKeys") or {}
            try:
                prefix = evaluate_prefix(FIREHOSE_PREFIX, _arrival(pending), keys)
            except ValueError as exc:
                raise TransformContractError(
                    f"record {pending.record_id}: Ok without the partition keys: {exc}"
                ) from exc
            self.stats.ok += 1
            self._add(prefix, pending, base64.b64decode(entry["data"]))

    def _fail(self, pending: _Pending, code: str, message: str) -> None:
        """Firehose's ``processing-failed`` document for one record, buffered under the error prefix."""
        self.stats.failed += 1
        arrival_ms = int(pending.record.arrival.timestamp() * 1000)
        document = {
            "attemptsMade": 1,
            "arrivalTimestamp": arrival_ms,
            "errorCode": code,
            "errorMessage": message,
            "attemptEndingTimestamp": arrival_ms,
            "rawData": base64.b64encode(pending.data).decode(),
            "lambdaArn": "",
            "shardId": pending.record.shard_id,
            "sequenceNumber": pending.record.sequence_number,
            "subSequenceNumber": pending.sub,
        }
        prefix = evaluate_prefix(FIREHOSE_ERROR_PREFIX, _arrival(pending), error_output_type=PROCESSING_FAILED)
        self._add(prefix, pending, orjson.dumps(document) + b"\n")

    def _add(self, prefix: str, pending: _Pending, data: bytes) -> None:
        buffer = self._buffers.get(prefix)
        if buffer is None:
            buffer = self._buffers[prefix] = _Buffer(pending.record_id, _arrival(pending), self._clock())
        buffer.chunks.append(data)
        buffer.size += len(data)
        buffer.oldest_arrival = min(buffer.oldest_arrival, _arrival(pending))
        if buffer.size >= self._settings.buffer_size_bytes:
            self._write(prefix)

    # -- out -----------------------------------------------------------------------------------------

    def flush(self, *, only_due: bool = False) -> int:
        """Write every buffer (``only_due``: those past the buffer interval); the number of objects written.

        Raises :class:`TransientError` if a write fails; the buffers not written stay for the next flush.
        """
        now = self._clock()
        written = 0
        for prefix in sorted(self._buffers):
            if only_due and now - self._buffers[prefix].opened < self._settings.buffer_interval_s:
                continue
            self._write(prefix)
            written += 1
        return written

    def _write(self, prefix: str) -> None:
        buffer = self._buffers[prefix]
        key = prefix + firehose_object_name(self._stream_name, buffer.oldest_arrival, prefix + buffer.first_id)
        body = gzip_bytes(b"".join(buffer.chunks))
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"archive object s3://{self._bucket}/{key} not written: {exc}") from exc
        del self._buffers[prefix]  # only once written: a failed write is retried by the next flush
        self.stats.objects += 1
        self.stats.bytes_written += len(body)

    @property
    def buffered_bytes(self) -> int:
        return sum(b.size for b in self._buffers.values())

    @property
    def oldest_buffered_arrival(self) -> datetime | None:
        """The stream arrival time of the oldest record held in a buffer (not yet in S3); ``None`` if empty."""
        return min((b.oldest_arrival for b in self._buffers.values()), default=None)


def _arrival(pending: _Pending) -> datetime:
    return pending.record.arrival


def _firehose_records(record: StreamRecord) -> list[_Pending]:
    """The Firehose records of one stream record: its KPL user records, or itself (also when the
    aggregate is corrupt: the transform then reports it and its bytes reach the error prefix)."""
    base = f"{record.shard_id}:{record.sequence_number}"
    if has_kpl_magic(record.data):
        try:
            users = deaggregate(record.data)
        except DecodeError:
            users = []
        if users:
            return [_Pending(f"{base}:{sub}", record, u.data, sub, u.partition_key) for sub, u in enumerate(users)]
    return [_Pending(f"{base}:0", record, record.data, 0, record.partition_key)]


def _check_response(batch: list[_Pending], response: Any) -> dict[str, dict[str, Any]]:
    """The response's records by id, or :class:`TransformContractError` naming the first breach."""
    if not isinstance(response, dict) or not isinstance(response.get("records"), list):
        raise TransformContractError("the transform's response has no 'records' list")
    size = len(orjson.dumps(response))
    if size > LAMBDA_PAYLOAD_LIMIT:
        raise TransformContractError(f"the transform's response is {size} bytes; Lambda allows {LAMBDA_PAYLOAD_LIMIT}")
    by_id: dict[str, dict[str, Any]] = {}
    for entry in response["records"]:
        record_id = entry.get("recordId") if isinstance(entry, dict) else None
        if not isinstance(record_id, str) or record_id in by_id:
            raise TransformContractError(f"response record without a recordId, or twice: {str(entry)[:200]}")
        if entry.get("result") not in _RESULTS:
            raise TransformContractError(f"record {record_id}: result {entry.get('result')!r} is not one of {_RESULTS}")
        try:
            base64.b64decode(entry.get("data", ""), validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise TransformContractError(f"record {record_id}: data is not base64") from exc
        by_id[record_id] = entry
    expected = {p.record_id for p in batch}
    if set(by_id) != expected:
        missing, unknown = sorted(expected - set(by_id)), sorted(set(by_id) - expected)
        raise TransformContractError(
            f"response ids differ from the event's: missing {missing[:5]}, unknown {unknown[:5]}"
        )
    return by_id
