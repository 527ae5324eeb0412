"""The local runtime: Lambda's Kinesis event source mapping, run against the emulator's stream.

It polls every shard of a stream with ``GetRecords`` and hands the records to
:class:`~tools.local.esm.ShardDriver`, which invokes the deployed handler with real Lambda event
shapes and the template's event-source settings (batch size, batching window, partial-batch
checkpointing, bisect, retries, record age, on-failure destination). The emulator's own event source
mapping is removed at deploy time because it does not reproduce partial-batch semantics.

Like one Lambda container serving every shard in turn, it runs shards round-robin on one thread:
the handler module (and its processor) is a per-container singleton, never shared by two threads.
Handler output (Powertools' JSON logs and EMF metrics, which Lambda sends to CloudWatch) goes to a
log file instead of the terminal.

Not for production: a real deployment uses Lambda's own mapping.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from botocore.exceptions import ClientError

from pipeline.stream import StreamRecord, from_get_records
from tools.local.esm import EsmSettings, EsmStats, ShardDriver

__all__ = ["DrainResult", "LocalEventSource", "ShardPosition", "retry_backoff"]

Handler = Callable[[dict[str, Any], Any], Any]


def retry_backoff(retry: int) -> float:
    """Seconds before the ``retry``-th retry of a failed batch: 0.5 s doubling to 10 s, so the template's
    ten retries span about a minute and ride through a store (or emulator) outage shorter than that,
    instead of being spent in milliseconds against a store that refuses connections."""
    return float(min(0.5 * 2 ** (retry - 1), 10.0))


@dataclass(slots=True)
class DrainResult:
    records: int = 0
    polls: int = 0
    elapsed_s: float = 0.0
    stats: dict[str, EsmStats] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.stats.values())


@dataclass(slots=True)
class ShardPosition:
    """Where the poller is in one shard: what ``GetRecords`` last said, and the newest record read."""

    millis_behind_latest: int | None = None
    last_arrival: float | None = None  # epoch seconds of the newest record read
    records: int = 0
    last_sequence: str | None = None  # of the newest record read: where a fresh iterator starts after


class LocalEventSource:
    """Polls ``stream_name`` and drives ``handler`` per shard; see the module docstring.

    ``kinesis`` and ``sqs`` are clients on the emulator; ``on_failure_queue_url`` receives the
    metadata of discarded batches, as the template's ``DestinationConfig.OnFailure`` does. ``tap``
    sees every record polled, once, in shard order: another reader of the stream (the archive).
    ``redeliver`` (settable later, as the attribute of that name) is asked after each successful batch
    whether to deliver it once more, as Lambda may (at-least-once; see :class:`~tools.local.esm.ShardDriver`).
    ``retry_delay`` (also an attribute, read when a shard is first seen) spaces the retries of a failed
    batch, e.g. :func:`retry_backoff`; by default retries follow each other at once.
    """

    def __init__(
        self,
        kinesis: Any,
        stream_name: str,
        handler: Handler,
        settings: EsmSettings,
        *,
        sqs: Any = None,
        on_failure_queue_url: str | None = None,
        log_path: Path | None = None,
        region: str = "us-east-1",
        poll_limit: int = 10_000,
        tap: Callable[[list[StreamRecord]], None] | None = None,
        redeliver: Callable[[], bool] | None = None,
        retry_delay: Callable[[int], float] | None = None,
    ) -> None:
        self._kinesis = kinesis
        self._stream = stream_name
        self._handler = handler
        self._settings = settings
        self._sqs = sqs
        self._failure_queue = on_failure_queue_url
        self._log_path = log_path
        self._region = region
        self._limit = poll_limit
        self._tap = tap
        self.redeliver = redeliver
        self.retry_delay = retry_delay
        self._iterators: dict[str, str | None] = {}
        self._drivers: dict[str, ShardDriver] = {}
        self._positions: dict[str, ShardPosition] = {}
        # Records read but not yet checkpointed, per shard. Kept across drain() calls: the shard iterator
        # has moved past them, so a drain() cut short by an error must find them again on the next call.
        self._pending: dict[str, list[StreamRecord]] = {}
        self._arn = ""

    def shards(self) -> dict[str, tuple[ShardPosition, EsmStats]]:
        """Per shard, its position and its driver's counters, as they are now (read between polls)."""
        return {shard: (self._positions[shard], driver.stats) for shard, driver in self._drivers.items()}

    def _send_failure(self, message: dict[str, Any]) -> None:
        if self._sqs is not None and self._failure_queue:
            self._sqs.send_message(QueueUrl=self._failure_queue, MessageBody=orjson.dumps(message).decode())

    def _start(self) -> None:
        summary = self._kinesis.describe_stream_summary(StreamName=self._stream)["StreamDescriptionSummary"]
        self._arn = summary["StreamARN"]
        for shard in self._kinesis.list_shards(StreamName=self._stream)["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id in self._iterators:
                continue
            self._iterators[shard_id] = self._kinesis.get_shard_iterator(
                StreamName=self._stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            self._positions[shard_id] = ShardPosition()
            self._pending[shard_id] = []
            self._drivers[shard_id] = ShardDriver(
                self._invoke,
                self._settings,
                stream_arn=self._arn,
                on_failure=self._send_failure,
                region=self._region,
                redeliver=self._redeliver,
                retry_delay=self.retry_delay,
            )

    def _redeliver(self) -> bool:
        return self.redeliver is not None and self.redeliver()

    def _invoke(self, event: dict[str, Any], context: Any) -> Any:
        if self._log_path is None:
            return self._handler(event, context)
        with self._log_path.open("a") as log, contextlib.redirect_stdout(log):
            return self._handler(event, context)

    def _poll(self, shard_id: str) -> list[StreamRecord]:
        iterator = self._iterators.get(shard_id)
        if iterator is None:
            return []
        position = self._positions[shard_id]
        try:
            page = self._kinesis.get_records(ShardIterator=iterator, Limit=self._limit)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                raise
            # An iterator lives five minutes; a round over the shards can take longer when batches are slow.
            # Start again just after the newest record read (it is pending or processed), as Lambda does.
            self._iterators[shard_id] = self._fresh_iterator(shard_id, position.last_sequence)
            return []
        self._iterators[shard_id] = page.get("NextShardIterator")
        records = [from_get_records(shard_id, r) for r in page["Records"]]
        behind = page.get("MillisBehindLatest")
        position.millis_behind_latest = int(behind) if behind is not None else None
        if records:
            position.records += len(records)
            position.last_arrival = records[-1].arrival.timestamp()
            position.last_sequence = records[-1].sequence_number
        if records and self._tap is not None:
            self._tap(records)  # another reader of the same stream (the archive's delivery stream)
        return records

    def _fresh_iterator(self, shard_id: str, after: str | None) -> str:
        where: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
            if after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        answer = self._kinesis.get_shard_iterator(StreamName=self._stream, ShardId=shard_id, **where)
        return str(answer["ShardIterator"])

    def drain(
        self,
        *,
        idle_polls: int = 2,
        timeout_s: float = 600.0,
        keep_going: Callable[[], bool] = lambda: False,
        on_batch: Callable[[int], None] | None = None,
        tick: Callable[[], None] | None = None,
        idle_wait_s: float | None = None,
    ) -> DrainResult:
        """Process everything in the stream; return when every shard came back empty ``idle_polls``
        times in a row and ``keep_going()`` (e.g. "the producer is still sending") is false.

        After a round in which no shard had records it waits ``idle_wait_s`` (default 0.05 s while
        ``keep_going()``, else 0.01 s) before polling again: a long-running source passes a longer
        wait (Lambda polls an idle shard about once a second), so an idle stack costs the emulator next to nothing.

        Records a poll brings are delivered in batches of ``batch_size`` from the checkpoint; the
        batching window is honoured by polling again before a short batch when more may come.
        ``tick()`` runs after every round over the shards (a long-running source flushes and reports there).
        """
        self._start()
        result = DrainResult()
        started = time.monotonic()
        idle = 0
        pending = self._pending
        window = self._settings.maximum_batching_window_s
        while time.monotonic() - started < timeout_s:
            got = 0
            for shard_id, driver in self._drivers.items():
                records = self._poll(shard_id)
                result.polls += 1
                got += len(records)
                buffered = pending[shard_id] + records
                short = len(buffered) < self._settings.batch_size
                if buffered and short and records and window > 0 and keep_going():
                    pending[shard_id] = buffered  # gather more, as the batching window does
                    continue
                pending[shard_id] = buffered
                if buffered:
                    driver.drain(buffered)  # if it raises, the records stay pending and come again
                    pending[shard_id] = []
                    result.records += len(buffered)
                    if on_batch is not None:
                        on_batch(len(buffered))
            if tick is not None:
                tick()
            if got or any(pending.values()):
                idle = 0
                continue
            idle += 1
            if idle >= idle_polls and not keep_going():
                break
            time.sleep(idle_wait_s if idle_wait_s is not None else 0.05 if keep_going() else 0.01)
        result.elapsed_s = time.monotonic() - started
        result.stats = {shard: driver.stats for shard, driver in self._drivers.items()}
        return result
