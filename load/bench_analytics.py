"""``pipeline bench analytics``: events/s of the Flink job over an archive, next to the Python reference.

One run, one workload (``generate_events(events, seed)``, 200,000 by default), written as a local copy
of the archive (gzip NDJSON objects in the archive's layout). Then, in this order:

1. **replay**: the archive read back with :mod:`pipeline.archive.reader` and merged in event-time order
   (what ``pipeline analytics run`` feeds the job). Timed, and shared by both sides below.
2. **reference**: :func:`analytics.reference.expected_windows` over those events, in this process.
3. **Flink**: the job (:func:`analytics.local.run_job`) on a local mini-cluster, parallelism 1, the
   archive binding, file sinks. Start-up is measured apart from processing:

   - ``cluster_start_s``: PyFlink's JVM gateway and the mini-cluster;
   - ``cold_empty_job_s`` / ``empty_job_s``: the same job over zero events, first in a fresh JVM, then
     again: the per-job cost (planning, code generation, submission, deployment, teardown) with
     nothing to process;
   - ``job_s``: the job over the events; ``processing_s = job_s - empty_job_s``, and events/s is
     ``events / processing_s``. Staging the rows (``stage_s``) is reported apart too.

Correctness is checked after the timing: the job's items must equal the reference's, else
:class:`BenchCheckError` (exit 1). Figures depend on the machine (two cores shared with other work
here); the target prints PASS/FAIL and never changes the exit status. Needs PyFlink and Java 17:
without them the benchmark says why and exits 2.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import orjson

from load.common import Target, add_output_options, noter, positive_int
from pipeline.exceptions import PipelineError
from tools.generate import generate_events

__all__ = ["AnalyticsBenchResult", "BenchCheckError", "cli", "configure", "render_table", "run"]

THROUGHPUT_TARGET: Final = 1.0
"""Flink's processing events/s over the Python reference's, at least (parallelism 1, same events)."""


class BenchCheckError(PipelineError):
    """The job's items differ from the reference's: the figures would be about a wrong result."""


@dataclass(frozen=True, slots=True)
class AnalyticsBenchResult:
    """Everything one run measured (seconds unless named otherwise)."""

    events: int
    seed: int
    allowed_lateness_s: float
    archive_objects: int
    replay_s: float
    reference_s: float
    cluster_start_s: float
    stage_s: float
    cold_empty_job_s: float
    empty_job_s: float
    job_s: float
    items: dict[str, int]
    late_events: int

    @property
    def processing_s(self) -> float:
        return max(self.job_s - self.empty_job_s, 1e-9)

    @property
    def flink_events_per_s(self) -> float:
        return self.events / self.processing_s

    @property
    def reference_events_per_s(self) -> float:
        return self.events / max(self.reference_s, 1e-9)

    @property
    def targets(self) -> dict[str, Target]:
        ratio = self.flink_events_per_s / self.reference_events_per_s
        label = f"Flink processing events/s >= {THROUGHPUT_TARGET}x the Python reference"
        return {"flink_vs_reference": Target(label, ratio, THROUGHPUT_TARGET, at_most=False)}

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "seed": self.seed,
            "allowed_lateness_s": self.allowed_lateness_s,
            "archive_objects": self.archive_objects,
            "replay_s": self.replay_s,
            "reference": {"seconds": self.reference_s, "events_per_s": self.reference_events_per_s},
            "flink": {
                "cluster_start_s": self.cluster_start_s,
                "stage_s": self.stage_s,
                "cold_empty_job_s": self.cold_empty_job_s,
                "empty_job_s": self.empty_job_s,
                "job_s": self.job_s,
                "processing_s": self.processing_s,
                "events_per_s": self.flink_events_per_s,
            },
            "items": self.items,
            "late_events": self.late_events,
            "verified": True,
            "versions": _versions(),
            "targets": {
                name: {"label": t.label, "measured": t.measured, "limit": t.limit, "passed": t.passed}
                for name, t in self.targets.items()
            },
        }


def _versions() -> dict[str, str | None]:
    from analytics.flink import java_version

    return {
        "python": platform.python_version(),
        "apache_flink": metadata.version("apache-flink"),
        "java": java_version(),
    }


def run(
    events: int, seed: int, allowed_lateness: timedelta, *, note: Any = lambda message: None
) -> AnalyticsBenchResult:
    """Measure (see the module docstring); raises :class:`BenchCheckError` if Flink and the reference differ."""
    from analytics.archive_copy import LocalArchive, write_archive
    from analytics.flink import shared_cluster
    from analytics.local import replay_events, run_job, stage
    from analytics.reference import expected_windows

    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as scratch:
        root = Path(scratch)
        note(f"writing an archive of {events:,} reference events (seed {seed})")
        objects = write_archive(generate_events(events, seed), root / "archive")
        note("replaying the archive in event-time order")
        started = time.perf_counter()
        replayed = list(replay_events(LocalArchive(root / "archive"), "local"))
        replay_s = time.perf_counter() - started
        note("running the Python reference")
        started = time.perf_counter()
        expected = expected_windows(replayed, allowed_lateness)
        reference_s = time.perf_counter() - started
        note("starting PyFlink's JVM and a local Flink cluster")
        started = time.perf_counter()
        cluster = shared_cluster()
        cluster_start_s = time.perf_counter() - started  # ~0 when the process already runs one (tests)
        empty = stage([], root / "empty.ndjson")
        note("the job over zero events, twice (a cold JVM, then warm): the per-job start-up")
        cold = run_job(empty.path, root / "cold", allowed_lateness, cluster=cluster.options)
        warm = run_job(empty.path, root / "warm", allowed_lateness, cluster=cluster.options)
        note(f"staging {len(replayed):,} events")
        started = time.perf_counter()
        staged = stage(replayed, root / "events.ndjson")
        stage_s = time.perf_counter() - started
        note(f"the job over {staged.rows:,} events")
        full = run_job(staged.path, root / "full", allowed_lateness, cluster=cluster.options)
        if full.all_items() != expected.items or full.late_events != len(expected.late):
            raise BenchCheckError("the Flink job's items differ from the reference's")
        return AnalyticsBenchResult(
            events=events,
            seed=seed,
            allowed_lateness_s=allowed_lateness.total_seconds(),
            archive_objects=objects,
            replay_s=replay_s,
            reference_s=reference_s,
            cluster_start_s=cluster_start_s,
            stage_s=stage_s,
            cold_empty_job_s=cold.startup_s + cold.job_s,
            empty_job_s=warm.startup_s + warm.job_s,
            job_s=full.startup_s + full.job_s,
            items={metric: len(items) for metric, items in full.items.items()},
            late_events=full.late_events,
        )


def render_table(result: AnalyticsBenchResult) -> str:
    """The human report: both sides' events/s, Flink's start-up apart, and the target."""
    versions = _versions()
    lines = [
        f"analytics benchmark: {result.events:,} reference events (seed {result.seed}), {result.archive_objects} "
        f"archive objects, allowed lateness {result.allowed_lateness_s:g} s",
        f"Python {versions['python']}, apache-flink {versions['apache_flink']}, Java {versions['java']}, parallelism 1",
        "",
        f"{'':<34} {'seconds':>9} {'events/s':>11}",
        f"{'replay the archive (shared)':<34} {result.replay_s:>9.2f}",
        f"{'Python reference':<34} {result.reference_s:>9.2f} {result.reference_events_per_s:>11,.0f}",
        f"{'Flink: JVM + mini-cluster start':<34} {result.cluster_start_s:>9.2f}",
        f"{'Flink: job over 0 events, cold JVM':<34} {result.cold_empty_job_s:>9.2f}",
        f"{'Flink: job over 0 events (start-up)':<34} {result.empty_job_s:>9.2f}",
        f"{'Flink: stage rows':<34} {result.stage_s:>9.2f}",
        f"{'Flink: job over the events':<34} {result.job_s:>9.2f}",
        f"{'Flink: processing (job - start-up)':<34} {result.processing_s:>9.2f} {result.flink_events_per_s:>11,.0f}",
        "",
        f"items: {', '.join(f'{m} {n:,}' for m, n in result.items.items())}; late events {result.late_events:,}; "
        "verified: the job's items equal the reference's",
        "",
        "targets:",
    ]
    for target in result.targets.values():
        lines.append(f"  {'PASS' if target.passed else 'FAIL'}  {target.label:<62} measured {target.measured:.2f}x")
    return "\n".join(lines)


_HELP: Final = """\
figures (one run; one workload written as a local archive copy; seconds are wall clock):
  replay            read the archive back and merge it in event-time order (both sides use the result)
  Python reference  analytics.reference.expected_windows over the replayed events
  JVM + cluster     PyFlink's JVM gateway and one local mini-cluster
  job over 0 events the whole job with nothing to process, first in a cold JVM, then warm: the
                    per-job start-up (planning, code generation, submission, deployment, teardown)
  stage rows        the events as JSON lines for the job's filesystem source
  processing        job over the events minus the warm start-up; events/s = events / processing
targets (PASS/FAIL; never the exit status): Flink processing events/s >= the Python reference's.
correctness: the job's items must equal the reference's, else exit 1. Exit 2: usage, or no PyFlink/Java."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=positive_int, default=200_000, help="events to measure (default 200000)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument(
        "--allowed-lateness", type=float, default=30.0, help="the job's allowed lateness in seconds (default 30)"
    )
    add_output_options(parser, _HELP)


_note = noter("analytics")


def cli(args: argparse.Namespace) -> int:
    """Run with the parsed options and print; 1 if Flink's items differ from the reference's, 2 without Flink."""
    from analytics.flink import unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        print(f"pipeline bench analytics: {reason}", file=sys.stderr)
        return 2
    try:
        result = run(args.events, args.seed, timedelta(seconds=args.allowed_lateness), note=_note)
    except PipelineError as exc:
        print(f"pipeline bench analytics: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
    else:
        print(render_table(result))
    return 0
