"""One load run on the live local stack, with what the simulation of the local runtime needs from it.

:meth:`LiveRun.run` sends ``pipeline load synthetic``'s workload (the same schedule, producer and lag
probe: :mod:`load.synthetic`, :mod:`load.drive`, :mod:`load.lag`) and returns a JSON-ready dict: the
load's report, the time of the first ``put()``, the producer's time in ``PutRecords``, the runtime's
``timing`` before and after (its status file), its invocations during the run (the consumer log's EMF
documents: end time, records, events, ``BatchLatency``) and the end of the last one, the stream's
shards and event-source settings, and the machine's load average. :func:`tools.plan.live_fit.fit_run` reads that dict.

It needs the stage's live runtime (``pipeline up``) of a version that reports ``timing``, and raises
:class:`~tools.plan.live_fit.FitError` otherwise, or when the runtime does not count the events within
the settle timeout. Not thread-safe.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from tools.plan.live_fit import FitError

__all__ = ["LiveRun", "read_invocations"]

_POLL_S = 0.5


class _TimedPuts:
    """The producer's Kinesis client, its ``PutRecords`` calls timed; everything else forwarded."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls = 0
        self.seconds = 0.0

    def put_records(self, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return self._inner.put_records(**kwargs)
        finally:
            self.calls += 1
            self.seconds += time.monotonic() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def read_invocations(log: Path, offset: int, since_epoch: float, until_epoch: float = math.inf) -> dict[str, Any]:
    """The invocations in the consumer log from byte ``offset`` that ended in ``[since_epoch, until_epoch)``.

    ``rows``: ``[end_epoch_s, records, events, batch_latency_ms]`` from the handler's EMF documents;
    ``last_end_epoch``: the end of the last invocation, from its log lines (Powertools' logger flushes each
    line, while the EMF document printed after it reaches the file only with the next invocation's line,
    so the last invocation of a run has a log line but no EMF document yet)."""
    rows: list[list[float]] = []
    last_end = -math.inf
    with log.open("rb") as file:
        file.seek(offset)
        for line in file:
            if not line.startswith(b"{"):
                continue
            doc = orjson.loads(line)
            if "BatchLatency" in doc:
                end = doc["_aws"]["Timestamp"] / 1000
                if since_epoch <= end < until_epoch:
                    rows.append([end, doc["Records"][0], doc["Events"][0], doc["BatchLatency"][0]])
                    last_end = max(last_end, end)
            elif "function_request_id" in doc and "timestamp" in doc:
                end = datetime.strptime(doc["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()
                if since_epoch <= end < until_epoch:
                    last_end = max(last_end, end)
    return {"rows": rows, "last_end_epoch": last_end}


class LiveRun:
    """Load runs against the stage ``stage`` of the stack in ``state_dir``; see the module docstring."""

    def __init__(self, state_dir: Path, stage: str, *, record_format: str = "json") -> None:
        from load.target import resolve_target
        from pipeline.codecs import RecordFormat
        from tools.local.state import stack_file

        self.state_dir, self.stage = state_dir, stage
        self.record_format = RecordFormat(record_format)
        try:
            stack = orjson.loads(stack_file(state_dir, stage).read_bytes())
        except OSError:
            raise FitError(f"no live stack of stage {stage} in {state_dir}: run 'pipeline up'") from None
        source = stack.get("event_source") or {}
        self.batch_size = int(source.get("batch_size", 100))
        self.batching_window_s = float(source.get("maximum_batching_window_s", 0.0))
        self.target = resolve_target(state_dir, stage)
        if self.target.activities_table is None:
            raise FitError("the stack file names no user_activities table: the lag cannot be measured")
        self.consumer_log = state_dir / f"consumer-{stage}.log"

    def status(self) -> dict[str, Any]:
        """The runtime's status, which must be running and report ``timing``."""
        from tools.cli.live_status import runtime_status

        status = runtime_status(self.state_dir, self.stage)
        if status["state"] == "not running":
            raise FitError(f"the live runtime of stage {self.stage} is not running: run 'pipeline up'")
        if "timing" not in status:
            raise FitError(
                "the live runtime reports no 'timing' (an older version): restart it ('pipeline down', 'pipeline up')"
            )
        return status

    def run(
        self,
        rate: float,
        seconds: float,
        *,
        seed: int,
        settle_timeout_s: float,
        progress: Callable[[str], None] = lambda line: None,
    ) -> dict[str, Any]:
        """Send the load, wait for the runtime to count it, and return the run's figures; ``progress``
        gets a line at each step (the load itself draws its progress on a terminal's stderr)."""
        from load.drive import drive
        from load.lag import LagProbe
        from load.synthetic import SyntheticLoad
        from pipeline.settings import aws_client
        from producers import Producer

        settings = self.target.settings
        kinesis = _TimedPuts(aws_client("kinesis", settings.with_(max_attempts=1)))  # the producer owns retries
        before = self.status()
        offset = self.consumer_log.stat().st_size if self.consumer_log.exists() else 0
        load_before = os.getloadavg()
        load = SyntheticLoad.starting_now(rate, seconds, seed)
        probe = LagProbe(aws_client("dynamodb", settings), self.target.activities_table or "", per_second=20)
        producer = Producer(self.target.stream, kinesis, record_format=self.record_format)
        started_epoch = time.time()
        report = drive(load.schedule(), producer, probe, target_rate=rate, label="compare_live")
        progress(f"sent {report.events:,} events in {report.elapsed_s:.1f} s; waiting for the runtime to count them")
        after = self._settle(before, report.events, settle_timeout_s)
        invocations = read_invocations(self.consumer_log, offset, started_epoch)
        if invocations["last_end_epoch"] == -math.inf:
            raise FitError(f"no invocation of the run in {self.consumer_log}")
        return {
            "rate": rate,
            "seconds": seconds,
            "seed": seed,
            "format": self.record_format.value,
            "started_epoch": started_epoch,
            "load": report.as_dict(),
            "put_records": {"calls": kinesis.calls, "seconds": round(kinesis.seconds, 4)},
            "shards": len(after.get("shards", {})),
            "batch_size": self.batch_size,
            "batching_window_s": self.batching_window_s,
            "events_counted": int(after["events"]) - int(before["events"]),
            "timing_before": before["timing"],
            "timing_after": after["timing"],
            "invocations": invocations["rows"],
            "last_end_epoch": invocations["last_end_epoch"],
            "loadavg": {"before": load_before, "after": os.getloadavg()},
        }

    def _settle(self, before: dict[str, Any], events: int, timeout_s: float) -> dict[str, Any]:
        """Wait until the runtime has counted ``events`` more than in ``before`` and then had an idle round."""
        deadline = time.monotonic() + timeout_s
        counted_idle: int | None = None
        while time.monotonic() < deadline:
            status = self.status()
            timing = status["timing"]
            if counted_idle is None and int(status["events"]) - int(before["events"]) >= events:
                counted_idle = int(timing["idle_rounds"])
            elif counted_idle is not None and int(timing["idle_rounds"]) > counted_idle:
                return status
            time.sleep(_POLL_S)
        raise FitError(f"the runtime did not count the {events} events within {timeout_s:g} s")
