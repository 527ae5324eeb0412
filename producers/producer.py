"""The producer services embed: buffer, encode, ``PutRecords`` within limits, resend only what failed.

Guarantees:

- **No duplicates from our own resends.** After a ``PutRecords`` response, only entries carrying an
  ``ErrorCode`` are sent again; an entry reported written is never resent. A whole call that failed
  with an error response (throttling, 5xx) wrote nothing and is resent whole. The one ambiguous case is
  a connection lost *after* the request was sent (read timeout): Kinesis may have written it, and the
  resend can duplicate. Consumers deduplicate by ``event_id`` for that reason.
- **Per-key order within a shard.** A call never carries two records with the same ordering key
  (partition key; for batched formats, the shard), and a record whose key waits behind an earlier
  pending one is held back, so a resend can never land after a later record of the same key.
- **Nothing readers would refuse is sent.** Each event is checked by the consumers' own decoder
  before it is sent (``validate=True``, the default; with ``False`` only its size is checked): an
  event that readers would turn into a bad row (invalid, or past the 1 MiB a reader accepts per
  event) is refused with its reason, and the rest of the flush is delivered.
- **Bounded retries.** Each record gets ``retry.attempts`` sends with the project's one
  :class:`~pipeline.retry.RetryPolicy` (exponential backoff, full jitter; 10 attempts by default).
  When a record runs out, it and every later record of its key are given up, the rest still go, and
  :class:`~pipeline.exceptions.DeliveryError` lists every event not delivered, with a reason each
  (``DeliveryError.reasons``). Errors that can never succeed (unknown stream, access denied) give
  up at once, and so does a flush that cannot route its events (``ListShards`` failing): every event
  of that flush is listed.
- Thread-safe: ``put`` from any thread; one flush runs at a time. A background thread flushes after
  ``linger_seconds``; if that flush fails, its error is raised by the next ``put``, ``flush`` or
  ``close`` (never swallowed), and until then the background thread flushes nothing more. ``close``
  does not wait out the linger, and still sends what is buffered before it raises.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from pipeline.codecs import (
    MAX_RECORDS_PER_PUT,
    MAX_REQUEST_BYTES,
    OutputRecord,
    RecordFormat,
    encode_records,
)
from pipeline.events import DEFAULT_POLICY, Event, decode_event, encode_event
from pipeline.events.limits import MAX_EVENT_BYTES
from pipeline.exceptions import DeliveryError, EventValidationError, RecordTooLargeError
from pipeline.partitioning import ShardMap
from pipeline.retry import RetryPolicy

__all__ = ["PRODUCER_RETRY", "Producer", "ProducerStats"]

PRODUCER_RETRY: Final = RetryPolicy(attempts=10, base_delay=0.05, max_delay=2.0)
"""Ten sends a record, 50 ms doubling to 2 s: rides out a throttled shard for about ten seconds."""

log = logging.getLogger(__name__)

RETRYABLE_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "LimitExceededException",
        "KMSThrottlingException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
    }
)
_NETWORK_ERRORS: Final = (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ReadTimeoutError)


@dataclass(slots=True)
class ProducerStats:
    """Counters since the producer was created. ``retries`` counts entries sent again."""

    events: int = 0
    records: int = 0
    bytes: int = 0
    put_calls: int = 0
    retries: int = 0
    throttled_calls: int = 0
    failed_entries: int = 0
    refused: int = 0
    """Events not sent because readers would refuse them (see ``DeliveryError.reasons``)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Pending:
    record: OutputRecord
    key: str
    attempts: int = 0


class Producer:
    """Publishes events to one Kinesis stream. Use as a context manager, or call :meth:`close`.

    ``kinesis`` is a boto3 Kinesis client built once by the caller, best with botocore's own retries
    off (``aws_client("kinesis", settings.with_(max_attempts=1))``): the producer owns the backoff, and
    botocore's standard mode sleeps up to seconds per throttled attempt before the producer sees it.
    ``sleep`` and ``rng`` are injectable for tests.
    """

    def __init__(
        self,
        stream_name: str,
        kinesis: Any,
        *,
        record_format: RecordFormat = RecordFormat.JSON,
        linger_seconds: float = 0.2,
        max_buffered_events: int = 5_000,
        retry: RetryPolicy = PRODUCER_RETRY,
        shard_map: ShardMap | None = None,
        validate: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.stream_name = stream_name
        self.record_format = RecordFormat(record_format)
        self.stats = ProducerStats()
        self._kinesis = kinesis
        self._linger = linger_seconds
        self._max_buffered = max_buffered_events
        self._retry = retry
        self._shard_map = shard_map
        self._validate = validate
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._buffer: list[Event] = []
        self._buffer_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._background_error: Exception | None = None  # guarded by _buffer_lock
        self._closed = False
        self._wake = threading.Event()
        self._stopping = threading.Event()  # cuts the linger short: close() never waits it out
        self._flusher: threading.Thread | None = None
        if linger_seconds > 0:
            self._flusher = threading.Thread(target=self._linger_loop, name="producer-linger", daemon=True)
            self._flusher.start()

    # ------------------------------------------------------------------ public surface

    def put(self, event: Event) -> None:
        """Buffer one event; flushes synchronously when the buffer is full (back-pressure)."""
        self.put_many((event,))

    def put_many(self, events: Iterable[Event]) -> None:
        """Buffer events in order; flushes synchronously each time the buffer fills."""
        self._raise_background_error()
        if self._closed:
            raise RuntimeError("producer is closed")
        for event in events:
            with self._buffer_lock:
                if self._closed:  # checked under the lock: close() must not miss an event appended late
                    raise RuntimeError("producer is closed")
                self._buffer.append(event)
                full = len(self._buffer) >= self._max_buffered
            if full:
                self.flush()
            else:
                self._wake.set()

    def flush(self) -> None:
        """Send everything buffered now. Raises :class:`DeliveryError` listing events not delivered."""
        self._raise_background_error()
        self._flush()

    def close(self) -> None:
        """Flush, stop the linger thread. Raises :class:`DeliveryError` if anything was not delivered."""
        with self._buffer_lock:
            if self._closed:
                return
            self._closed = True
        self._stopping.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        try:
            self._flush()  # even after a background failure: the records of other keys still go
        except DeliveryError as exc:
            earlier = self._take_background_error()
            if isinstance(earlier, DeliveryError):
                undelivered = [*earlier.undelivered, *exc.undelivered]
                raise DeliveryError(f"background and final flush to {self.stream_name} failed", undelivered) from exc
            if earlier is not None:
                raise earlier from exc
            raise
        self._raise_background_error()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _take_background_error(self) -> Exception | None:
        with self._buffer_lock:
            error, self._background_error = self._background_error, None
        return error

    def _raise_background_error(self) -> None:
        error = self._take_background_error()
        if error is not None:
            raise error

    def _linger_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()  # before the linger, so that a put from here on wakes the next round
            if self._stopping.wait(self._linger):  # let a batch gather; close() cuts it short
                return  # close() flushes what is buffered
            if self._background_error is not None:
                continue  # the caller has not seen the last failure yet; its next put/flush/close will
            try:
                self._flush()
            except Exception as exc:  # noqa: BLE001 - not swallowed: handed to the caller's next call
                log.warning("background flush failed: %s", exc)
                with self._buffer_lock:
                    self._background_error = exc

    def _flush(self) -> None:
        with self._send_lock:
            with self._buffer_lock:
                events, self._buffer = self._buffer, []
            if not events:
                return
            events, refused = self._screen(events)
            rejected = [event for event, _ in refused]
            reasons = {event.event_id: reason for event, reason in refused}
            try:
                records = encode_records(events, self.record_format, self._shards()) if events else []
            except (ClientError, *_NETWORK_ERRORS, RecordTooLargeError) as exc:
                message = f"cannot encode or route events for {self.stream_name}: {exc}"
                raise DeliveryError(message, [*events, *rejected], reasons) from exc
            self.stats.events += len(events)
            try:
                self._send(records)
            except DeliveryError as exc:
                if not rejected:
                    raise
                raise DeliveryError(str(exc), [*exc.undelivered, *rejected], {**exc.reasons, **reasons}) from exc
            if rejected:
                raise DeliveryError(f"events refused before sending to {self.stream_name}", rejected, reasons)

    def _screen(self, events: list[Event]) -> tuple[list[Event], list[tuple[Event, str]]]:
        """The events to send, and those readers would refuse, with why (they are never sent)."""
        ok: list[Event] = []
        refused: list[tuple[Event, str]] = []
        not_after = DEFAULT_POLICY.not_after(None) if self._validate else None
        for event in events:
            wire = encode_event(event)
            if len(wire) > MAX_EVENT_BYTES:
                reason = f"the event is {len(wire):,} bytes of JSON; readers accept at most {MAX_EVENT_BYTES:,}"
                refused.append((event, reason))
                continue
            if not_after is not None:
                try:
                    decode_event(wire, not_after)
                except EventValidationError as exc:
                    refused.append((event, f"invalid event: {exc}"))
                    continue
            ok.append(event)
        self.stats.refused += len(refused)
        return ok, refused

    def _shards(self) -> ShardMap | None:
        if self.record_format in (RecordFormat.JSON, RecordFormat.GZIP):
            return None  # one event per record: Kinesis hashes the partition key itself
        if self._shard_map is None:
            shards: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"StreamName": self.stream_name}
            while True:
                page = self._kinesis.list_shards(**kwargs)
                shards += page["Shards"]
                if not page.get("NextToken"):
                    break
                kwargs = {"NextToken": page["NextToken"]}
            self._shard_map = ShardMap.from_shards(shards)
        return self._shard_map

    def _ordering_key(self, record: OutputRecord) -> str:
        if self.record_format in (RecordFormat.JSON, RecordFormat.GZIP):
            return record.partition_key
        return record.shard_id

    def _next_call(self, pending: list[_Pending]) -> list[_Pending]:
        """The records for one call: in order, within limits, one per ordering key, none overtaking."""
        call: list[_Pending] = []
        in_call: set[str] = set()
        held: set[str] = set()
        size = 0
        for item in pending:
            if item.key in held:
                continue
            if item.key in in_call:
                held.add(item.key)
                continue
            if len(call) == MAX_RECORDS_PER_PUT or size + item.record.size > MAX_REQUEST_BYTES:
                break
            call.append(item)
            in_call.add(item.key)
            size += item.record.size
        return call

    def _send(self, records: list[OutputRecord]) -> None:
        pending = [_Pending(r, self._ordering_key(r)) for r in records]
        undelivered: list[Event] = []
        while pending:
            call = self._next_call(pending)
            try:
                response = self._kinesis.put_records(
                    StreamName=self.stream_name, Records=[p.record.to_entry() for p in call]
                )
                results = response["Records"]
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in RETRYABLE_CODES:
                    lost = undelivered + [e for p in pending for e in p.record.events]
                    raise DeliveryError(f"PutRecords to {self.stream_name} failed with {code}: {exc}", lost) from exc
                self.stats.throttled_calls += 1
                results = [{"ErrorCode": code}] * len(call)
            except _NETWORK_ERRORS as exc:
                log.info("PutRecords network error, will resend: %s", exc)
                results = [{"ErrorCode": type(exc).__name__}] * len(call)
            self.stats.put_calls += 1
            done = set()
            retry_attempt = 0  # the lowest attempt count among the entries that just failed
            for item, result in zip(call, results, strict=True):
                item.attempts += 1
                if "ErrorCode" not in result or not result["ErrorCode"]:
                    done.add(id(item))
                    self.stats.records += 1
                    self.stats.bytes += item.record.size
                    continue
                retry_attempt = min(retry_attempt or item.attempts, item.attempts)
                self.stats.failed_entries += 1
                if item.attempts < self._retry.attempts:
                    self.stats.retries += 1
            pending, lost = self._split_exhausted([p for p in pending if id(p) not in done])
            undelivered += lost
            if retry_attempt and pending:
                # Backoff grows with the retried entries' own attempts, not with the flush's age: a steady
                # 30% partial-failure rate must not push every later call towards the longest delay.
                self._sleep(self._rng.uniform(0, self._retry.cap(retry_attempt)))
        if undelivered:
            raise DeliveryError(f"PutRecords to {self.stream_name} ran out of retries", undelivered)

    def _split_exhausted(self, pending: list[_Pending]) -> tuple[list[_Pending], list[Event]]:
        """Keep what may still be sent; give up records out of attempts and every later one of their key."""
        abandoned: set[str] = set()
        kept: list[_Pending] = []
        lost: list[Event] = []
        for item in pending:
            if item.attempts >= self._retry.attempts or item.key in abandoned:
                abandoned.add(item.key)
                lost += item.record.events
            else:
                kept.append(item)
        return kept, lost
