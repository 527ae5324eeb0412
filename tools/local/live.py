"""The live local runtime: what Lambda and Firehose do for a deployed stack, run until stopped.

``python -m tools.local.live --state-dir DIR --stage STAGE`` is what ``pipeline up`` starts in the
background (see :mod:`tools.local.live_process`). It reads the stack ``pipeline up`` deployed, builds
the consumer from the stack's environment (:func:`~pipeline.consumer.handler.consumer_from_env`, the
code Lambda runs) and the archive's transform, then polls every shard of the stream, continuously,
with the template's event-source settings (batch size, batching window, partial-batch retries,
bisect, record age, on-failure queue), and feeds the same records to the archive's delivery stream
(buffered by size and by time, written on its interval even when no record arrives).

Every second or so it rewrites ``runtime-<stage>.status.json`` atomically (per-shard lag, invocations,
errors, bad rows, archive lag); ``pipeline status`` reads it. SIGTERM or SIGINT stop it between two
rounds over the shards: no batch is cut in half, the archive's buffers are written, the status file
says ``stopped``, and the process exits 0. An AWS error while polling is logged and retried every
second; after 60 failures in a row (the emulator is gone) it stops with status ``failed``, exit 1.

Limits: checkpoints live in memory, as a fresh Lambda mapping's would not; a restarted runtime reads
every shard again from TRIM_HORIZON (the consumer's dedup window and idempotent writes keep the
tables right within the window). Not thread-safe; one process per stage.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, cast

import orjson
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.archive.transform import FirehoseTransform
from pipeline.consumer.handler import consumer_from_env
from pipeline.consumer.processor import BatchOutcome, BatchProcessor
from pipeline.exceptions import PipelineError, TransientError
from pipeline.objectstore import S3ObjectWriter
from pipeline.settings import Settings, aws_client
from pipeline.stream import StreamRecord
from tools.local.emf import EmfForwarder
from tools.local.firehose import FirehoseSettings, LocalFirehose
from tools.local.live_cdc import LiveCdc
from tools.local.live_timing import RuntimeTiming, TimedKinesis
from tools.local.runtime import LocalEventSource
from tools.local.stack import StackInfo, describe
from tools.local.state import stack_file

__all__ = ["LiveRuntime", "SignalStop", "main", "process_setup", "status_file"]

logger = logging.getLogger("tools.local.live")

_STATUS_EVERY_S = 1.0
_MAX_FAILURES = 60
# After a round with no records anywhere: each idle shard is polled twice a second (Lambda polls an idle
# shard about once a second; Kinesis allows 5 GetRecords a second per shard). It was 20 times a second,
# which kept the emulator busy at half a core while nothing happened.
_IDLE_WAIT_S = 0.5


def status_file(state_dir: Path, stage: str) -> Path:
    return state_dir / f"runtime-{stage}.status.json"


class _StopRequestedError(Exception):
    """Raised between two rounds over the shards once a stop was asked for."""


@dataclass(slots=True)
class _Tally:
    events: int = 0
    duplicates: int = 0
    resends: int = 0
    bad_rows: int = 0


class _TallyingProcessor:
    """The consumer's processor, counting what each batch did (the figures Lambda emits as EMF metrics)."""

    def __init__(self, inner: BatchProcessor, tally: _Tally) -> None:
        self._inner = inner
        self._tally = tally

    def process(self, records: Any, *args: Any, **kwargs: Any) -> BatchOutcome:
        outcome = self._inner.process(records, *args, **kwargs)
        self._tally.events += outcome.events
        self._tally.duplicates += outcome.duplicates
        self._tally.resends += outcome.resends
        self._tally.bad_rows += outcome.bad_rows
        return outcome


class LiveRuntime:
    """The consumer's event source and the archive's delivery stream for one deployed stack."""

    def __init__(self, settings: Settings, info: StackInfo, state_dir: Path, archive_interval_s: float | None) -> None:
        self.state_dir = state_dir
        self.stage = info.stack_name.removeprefix("event-pipeline-")
        self.status_path = status_file(state_dir, self.stage)
        self.stream = info.outputs["StreamName"]
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._stop = threading.Event()
        self._last_status = 0.0
        self._failures = 0
        self._iterator_age_ms: dict[str, int] = {}
        self._busy: tuple[str, int, float] | None = None  # shard, records, since (epoch s)
        self.tally = _Tally()
        self.timing = RuntimeTiming(idle_wait_s=_IDLE_WAIT_S)
        env = {**info.consumer_environment(), "PIPELINE_ENDPOINT_URL": settings.endpoint_url or ""}
        env.update(POWERTOOLS_TRACE_DISABLED="true", AWS_REGION=settings.region)
        self._consumer_log = (state_dir / f"consumer-{self.stage}.log").open("a")  # the function's log group
        handler_logger = Logger(
            service=env.get("POWERTOOLS_SERVICE_NAME"),
            level=env.get("POWERTOOLS_LOG_LEVEL"),
            logger_handler=logging.StreamHandler(self._consumer_log),
        )
        consumer = consumer_from_env(env, logger=handler_logger)
        # The handler's stdout is its log; its EMF metric documents also reach the emulator's CloudWatch.
        self._emf = EmfForwarder(self._consumer_log, aws_client("cloudwatch", settings))
        # Counting only: the proxy forwards every call to the processor the handler built.
        consumer.processor = cast("BatchProcessor", _TallyingProcessor(consumer.processor, self.tally))
        hints = FirehoseSettings.from_parameters(info.parameters)
        if archive_interval_s is not None:  # a local shortcut: the template's minimum is 60 s
            hints = replace(hints, buffer_interval_s=archive_interval_s)
        self.archive_interval_s = hints.buffer_interval_s
        s3 = aws_client("s3", settings)
        bucket = info.outputs["ArchiveBucket"]
        self.firehose = LocalFirehose(
            s3,
            bucket,
            FirehoseTransform(S3ObjectWriter(s3, bucket)),  # the deployed transform's code
            settings=hints,
            stream_name=info.outputs.get("DeliveryStreamName", "archive"),
            region=settings.region,
        )
        self._handler = consumer.lambda_handler
        self.cdc = LiveCdc(settings, info, state_dir)  # the store table's bridge, the outbox relay
        self.source = LocalEventSource(
            TimedKinesis(aws_client("kinesis", settings), self.timing),
            self.stream,
            self._invoke,
            info.esm_settings(),
            sqs=aws_client("sqs", settings),
            on_failure_queue_url=info.outputs.get("ConsumerFailureQueueUrl"),
            log_path=state_dir / f"consumer-{self.stage}.log",
            region=settings.region,
            tap=self._archive,
        )

    def stop(self) -> None:
        """Ask the loop to stop after the current round (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Poll until :meth:`stop`; 0 when stopped, 1 after too many AWS failures in a row."""
        state = "stopped"
        try:
            while not self._stop.is_set():
                try:
                    self.source.drain(
                        timeout_s=float("inf"), keep_going=lambda: True, tick=self._tick, idle_wait_s=_IDLE_WAIT_S
                    )
                except _StopRequestedError:
                    break
                except (BotoCoreError, ClientError, TransientError) as exc:
                    self._failures += 1
                    logger.warning("polling failed (%d in a row): %s", self._failures, exc)
                    if self._failures >= _MAX_FAILURES:
                        state = "failed"
                        break
                    self._stop.wait(1.0)
            self._flush_archive()
            self._emf.send()  # the last invocations' metrics
        finally:
            self.write_status(state)
            self._consumer_log.close()
            self.cdc.close()
        return 0 if state == "stopped" else 1

    def _invoke(self, event: dict[str, Any], context: Any) -> Any:
        """The deployed handler, timed as Lambda's ``IteratorAge`` metric is: the age of the batch's newest
        record when the invocation starts. The status is rewritten around it (a batch may take seconds)."""
        records = event.get("Records") or [{}]
        last = records[-1]
        shard = str(last.get("eventID", "")).split(":", 1)[0]
        arrival = float(last.get("kinesis", {}).get("approximateArrivalTimestamp", time.time()))
        self._iterator_age_ms[shard] = round((time.time() - arrival) * 1000)
        self._busy = (shard, len(records), time.time())
        self.write_status("running")
        started = time.monotonic()
        try:
            with contextlib.redirect_stdout(self._emf):
                return self._handler(event, context)
        finally:
            self._busy = None
            self.timing.invocations += 1
            self.timing.invocation_s += time.monotonic() - started
            if time.monotonic() - self._last_status >= _STATUS_EVERY_S:
                self.write_status("running")

    def _archive(self, records: list[StreamRecord]) -> None:
        started = time.monotonic()
        try:
            self.firehose.put_records(records)
        except TransientError as exc:  # the records are buffered; the next flush writes them
            logger.warning("archive write failed, retried on the next flush: %s", exc)
        finally:
            self.timing.records_read += len(records)
            self.timing.read_since_round += len(records)
            self.timing.archive_s += time.monotonic() - started

    def _flush_archive(self) -> None:
        try:
            self.firehose.flush()
        except TransientError as exc:
            logger.warning("archive buffers not written at stop: %s", exc)

    def _tick(self) -> None:
        started = time.monotonic()
        try:
            self._round_end()
        finally:
            timing = self.timing
            timing.rounds += 1
            # A round that read nothing is followed by the idle wait (a short batch is held only while
            # its shard's polls bring records, so nothing is pending after such a round).
            timing.idle_rounds += timing.read_since_round == 0
            timing.read_since_round = 0
            spent = time.monotonic() - started
            timing.round_end_s += spent
            timing.round_end_ss += spent * spent

    def _round_end(self) -> None:
        self._failures = 0
        self.cdc.pump()
        self._emf.send()  # AWS errors keep the data for the next round
        try:
            self.firehose.flush(only_due=True)  # the buffer interval runs even when no record comes
        except TransientError as exc:
            logger.warning("archive write failed, retried on the next flush: %s", exc)
        if time.monotonic() - self._last_status >= _STATUS_EVERY_S:
            self.write_status("running")
        if self._stop.is_set():
            raise _StopRequestedError

    def write_status(self, state: str) -> None:
        """Rewrite the status file atomically (a reader sees the old one or the new one)."""
        self._last_status = time.monotonic()
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_path.with_name(f".{self.status_path.name}.tmp")
        tmp.write_bytes(orjson.dumps(self.status(state), option=orjson.OPT_INDENT_2) + b"\n")
        tmp.replace(self.status_path)

    def status(self, state: str) -> dict[str, Any]:
        now = time.time()
        shards: dict[str, Any] = {}
        totals = {"records": 0, "invocations": 0, "function_errors": 0, "partial_failures": 0, "discarded_records": 0}
        for shard, (position, stats) in self.source.shards().items():
            shards[shard] = {
                "millis_behind_latest": position.millis_behind_latest,
                "iterator_age_ms": self._iterator_age_ms.get(shard, 0),
                "records": position.records,
                "invocations": stats.invocations,
                "function_errors": stats.function_errors,
                "partial_failures": stats.partial_failures,
                "discarded_records": stats.discarded_records,
            }
            totals["records"] += position.records
            for name in ("invocations", "function_errors", "partial_failures", "discarded_records"):
                totals[name] += getattr(stats, name)
        oldest = self.firehose.oldest_buffered_arrival
        fh = self.firehose.stats
        return {
            "state": state,
            "pid": os.getpid(),
            "stage": self.stage,
            "stream": self.stream,
            "started_at": self.started_at,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "updated_epoch": round(now, 3),
            "shards": shards,
            **totals,
            "in_invocation": None
            if self._busy is None
            else {"shard": self._busy[0], "records": self._busy[1], "since_epoch": round(self._busy[2], 3)},
            "timing": self.timing.as_dict(),
            "events": self.tally.events,
            "duplicates": self.tally.duplicates + self.tally.resends,
            "bad_rows": self.tally.bad_rows,
            "archive": {
                "lag_s": round(now - oldest.timestamp(), 1) if oldest else 0.0,
                "buffered_bytes": self.firehose.buffered_bytes,
                "records": fh.records,
                "objects": fh.objects,
                "failed": fh.failed,
                "interval_s": self.archive_interval_s,
            },
            "logs": {"runtime": str(self.state_dir / f"runtime-{self.stage}.log"), "consumer": self._consumer_log.name},
        }


class SignalStop:
    """SIGTERM and SIGINT, once installed: the runtime (when set) stops after its round; before it is
    set, the process exits 0 at once."""

    def __init__(self) -> None:
        self.runtime: LiveRuntime | None = None
        signal.signal(signal.SIGTERM, self)
        signal.signal(signal.SIGINT, self)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping after this round", signum)
        if self.runtime is None:
            raise SystemExit(0)
        self.runtime.stop()


def process_setup(state_dir: Path, stage: str) -> tuple[Settings, SignalStop]:
    """What a runtime process does first: log to stderr, read the stack file ``pipeline up`` wrote for
    the endpoint and region, and install the stop signals."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    document = orjson.loads(stack_file(state_dir, stage).read_bytes())
    settings = Settings.from_env().with_(endpoint_url=document["endpoint_url"], region=document["region"])
    return settings, SignalStop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local.live", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--archive-interval", type=float, help="the archive's buffer interval, seconds")
    args = parser.parse_args(argv)
    settings, signals = process_setup(args.state_dir, args.stage)
    try:
        info = describe(settings, args.stage)
        if info is None:
            logger.error("stack of stage %s does not exist: run 'pipeline up'", args.stage)
            return 1
        runtime = signals.runtime = LiveRuntime(settings, info, args.state_dir.absolute(), args.archive_interval)
        runtime.write_status("running")
        logger.info("polling %s with %s", runtime.stream, info.esm_settings())
        return runtime.run()
    except (PipelineError, BotoCoreError, ClientError) as exc:
        logger.error("cannot run the live runtime: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
