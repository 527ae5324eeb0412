"""One soak: N events through the whole local pipeline under faults, then the stores checked against the oracle.

:func:`run_soak` starts its own stack (:class:`~tools.soak.stack.SoakStack`), sends the plan's events
(:mod:`tools.soak.plan`) through the project's :class:`~producers.Producer` at a steady rate, with
throttles and partial failures on its PutRecords (:class:`~tools.faults.FaultInjector`), restarts the
emulator once when half the sends are done (the producer rides through on its retries; what it gives up
is sent again, as a service would, and counted), waits until the runtime has consumed and archived
everything, and compares the tables with :func:`tools.oracle.expected_tables` of the events sent and
the archive with their ids (:func:`tools.soak.accounting.account`). It never trusts the pipeline's own
counters for the verdict: those are reported beside it.

Timing: ``throughput`` is the unique events over the seconds from the first send to the moment the
stores matched the oracle. Memory: peak resident memory of the producer (this process, which also
reads the stores back), the runtime process and the emulator (its largest process; the larger of its two
lives). Everything is stopped at the end, on error and on Ctrl-C too.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.archive.reader import read_events
from pipeline.codecs import RecordFormat
from pipeline.events import Event
from pipeline.exceptions import DeliveryError
from pipeline.settings import aws_client
from producers import Producer
from tools.faults import FaultInjector
from tools.local.stack import StackInfo
from tools.oracle import Tables, expected_tables
from tools.soak.accounting import Verdict, account
from tools.soak.figures import peak_mib
from tools.soak.plan import RESEND_DISTANCE, make_plan
from tools.soak.stack import SoakStack
from tools.verify import bad_rows, scan_tables

__all__ = ["SoakOptions", "run_soak"]

Report = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SoakOptions:
    events: int
    fault_rate: float
    record_format: RecordFormat = RecordFormat.JSON
    rate: float = 400.0  # events sent per second
    seed: int = 0
    restart: bool = True
    settle_timeout_s: float = 900.0
    state_dir: Path | None = None


class _Sender:
    """The producer side: sends chunks at the target rate, resends what the producer gave up."""

    def __init__(self, producer: Producer, rate: float) -> None:
        self.producer = producer
        self.rate = rate
        self.order: list[Event] = []  # events in the order they were delivered (first copies matter)
        self.sent = 0
        self.given_up_and_resent = 0

    def send(self, chunk: list[Event], started: float) -> None:
        pending = chunk
        while pending:
            try:
                self.producer.put_many(pending)
                self.producer.flush()
                failed: set[str] = set()
            except DeliveryError as exc:  # out of retries (the emulator was away): send those again
                failed = {e.event_id for e in exc.undelivered}
                self.given_up_and_resent += len(exc.undelivered)
            self.order += [e for e in pending if e.event_id not in failed]
            pending = [e for e in pending if e.event_id in failed]
            if pending:
                time.sleep(1.0)
        self.sent += len(chunk)
        ahead = self.sent / self.rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


def run_soak(options: SoakOptions, report: Report) -> dict[str, Any]:
    """Run one soak; the report as a dict (``verdict.ok`` says whether nothing was lost or double counted)."""
    plan = make_plan(options.events, options.fault_rate, options.seed)
    scratch = None if options.state_dir else tempfile.TemporaryDirectory(prefix="pipeline-soak-")
    state_dir = options.state_dir or Path(scratch.name)  # type: ignore[union-attr]
    stack = SoakStack(state_dir)
    try:
        return _run(options, plan.sends, plan.late, plan.resent, stack, report)
    finally:
        stack.close()
        if scratch is not None:
            scratch.cleanup()


def _run(
    options: SoakOptions, sends: list[Event], late: int, resent: int, stack: SoakStack, report: Report
) -> dict[str, Any]:
    began = time.monotonic()
    info = stack.start(fault_rate=options.fault_rate, seed=options.seed)
    pid = stack.runtime.pid if stack.runtime else "?"
    report(f"stack up in {time.monotonic() - began:.1f} s: {stack.settings.endpoint_url}, runtime pid {pid}")
    injector = FaultInjector(seed=options.seed + 2)
    kinesis = aws_client("kinesis", stack.settings.with_(max_attempts=1))  # the producer owns retries
    injector.fail_put_records(kinesis, options.fault_rate)
    injector.throttle(kinesis, options.fault_rate, operations=("PutRecords", "ListShards"))
    producer = Producer(info.outputs["StreamName"], kinesis, record_format=options.record_format)
    sender = _Sender(producer, options.rate)
    started = time.monotonic()
    restart = _send_all(options, sends, sender, stack, report, started)
    send_s = time.monotonic() - started
    ids = [e.event_id for e in sends]
    verdict = _settle(
        stack, info, expected_tables(sender.order), ids, report, started, send_s + options.settle_timeout_s
    )
    settled_s = time.monotonic() - started
    status = stack.status()
    results = stack.stop_runtime()
    resources = info.resources()
    s3 = aws_client("s3", stack.settings)
    bad = bad_rows(s3, resources.bad_rows_bucket, resources.bad_rows_prefix) if resources.bad_rows_bucket else []
    unique = len(set(ids))
    return {
        "events": unique,
        "format": options.record_format.value,
        "fault_rate": options.fault_rate,
        "seed": options.seed,
        "sent": {"sends": len(sends), "late": late, "resent": resent, **producer.stats.as_dict()},
        "producer_gave_up_and_resent": sender.given_up_and_resent,
        "consumed": status.get("events", 0),
        "duplicates_skipped": status.get("duplicates", 0),
        "bad_rows": len(bad),
        "verdict": verdict.as_dict(),
        "lag_ms": results.get("lag_ms", {}),
        "seconds": {"send": round(send_s, 1), "until_verified": round(settled_s, 1)},
        "throughput_events_per_s": round(unique / settled_s, 1) if verdict.ok and settled_s else None,
        "emulator_restart": {k: v for k, v in restart.items() if k != "done"} if restart["done"] else None,
        "faults": {
            "producer": injector.counts.as_dict(),
            "runtime": results.get("faults", {}),
            "crashes": results.get("crashes", {}),
            "redeliveries": results.get("redeliveries", 0),
            "function_errors": status.get("function_errors", 0),
            "partial_failures": status.get("partial_failures", 0),
            "discarded_records": status.get("discarded_records", 0),
        },
        "memory_peak_mib": {"producer": peak_mib(os.getpid()), **stack.peaks},
    }


def _send_all(
    options: SoakOptions, sends: list[Event], sender: _Sender, stack: SoakStack, report: Report, started: float
) -> dict[str, Any]:
    """Send every chunk, restarting the emulator (in a thread) once half the sends are done."""
    restart: dict[str, Any] = {"done": False}
    restarter: threading.Thread | None = None

    def restart_emulator() -> None:
        restart["at_sent"] = sender.sent
        restart["outage_s"] = round(stack.restart_emulator(), 1)
        restart["done"] = True

    last_line = 0.0
    for i in range(0, len(sends), RESEND_DISTANCE):
        if options.restart and restarter is None and i >= len(sends) // 2:
            restarter = threading.Thread(target=restart_emulator, name="soak-restart", daemon=True)
            restarter.start()
        sender.send(sends[i : i + RESEND_DISTANCE], started)
        if time.monotonic() - last_line >= 1.0:
            last_line = time.monotonic()
            stack.sample_memory()
            report(_progress(sender.sent, len(sends), stack.status(), restart, started))
    sender.producer.close()
    if restarter is not None:
        restarter.join()
    return restart


def _settle(
    stack: SoakStack,
    info: StackInfo,
    expected: Tables,
    ids: list[str],
    report: Report,
    started: float,
    deadline_s: float,
) -> Verdict:
    """Wait until the runtime is idle and the stores match the oracle (or the deadline); the last verdict."""
    dynamodb, s3 = aws_client("dynamodb", stack.settings), aws_client("s3", stack.settings)
    bucket = info.outputs["ArchiveBucket"]

    def verdict_now() -> Verdict:
        archived = Counter(e.event_id for e in read_events(s3, bucket))
        return account(scan_tables(dynamodb, info.resources()), expected, ids, archived)

    while time.monotonic() - started < deadline_s:
        status = stack.status()
        stack.sample_memory()
        report(_progress(len(ids), len(ids), status, {"done": True}, started, checking=True))
        if _idle(status):
            verdict = verdict_now()
            if verdict.ok:
                return verdict
        if stack.runtime is not None and stack.runtime.poll() is not None:
            report(f"the runtime exited ({status.get('state', '?')}): see its log")
            break
        time.sleep(3.0)
    return verdict_now()  # the last word, whatever the runtime says


def _idle(status: dict[str, Any]) -> bool:
    """The runtime has read everything, is not in an invocation and has no archive buffered."""
    shards = status.get("shards") or {}
    return (
        bool(shards)
        and all(s.get("millis_behind_latest") == 0 for s in shards.values())
        and not status.get("in_invocation")
        and not (status.get("archive") or {}).get("buffered_bytes")
    )


def _progress(
    sent: int, total: int, status: dict[str, Any], restart: dict[str, Any], started: float, *, checking: bool = False
) -> str:
    behind = max((s.get("millis_behind_latest") or 0 for s in (status.get("shards") or {}).values()), default=0)
    phase = "verifying" if checking else "sending"
    if "at_sent" in restart and not restart["done"]:
        phase += ", emulator restarting"
    return (
        f"{phase}: sent {sent}/{total}, consumed {status.get('events', 0)}, "
        f"function errors {status.get('function_errors', 0)}, behind {behind / 1000:.1f} s, "
        f"{time.monotonic() - started:.0f} s"
    )
