"""The local run: the S3 archive (or a copy) -> the Flink job on a local mini-cluster -> items.

Steps, each timed:

1. **replay** (:func:`replay_events`): the archive's events in event-time order across all objects (the
   reader yields each object in event-time order; objects are merged, ties in listing order). A replay
   of a closed archive has no arrival order to honour, so it is the order a perfectly ordered stream
   would have: nothing is late unless the allowed lateness is 0 and times tie.
2. **stage** (:func:`stage`): each event as one JSON line of :data:`analytics.rows.EVENT_COLUMNS`;
   events the SQL types cannot carry exactly are rejected (returned, never silently dropped).
3. **job** (:func:`run_job`): :func:`analytics.job.build` with the archive binding and file sinks, on
   a deterministic environment (parallelism 1, a watermark after every event): the same input gives
   the same items. Flink's start-up (the JVM gateway and table environment) is timed apart.
4. **fold**: each metric's changelog to its final items (:mod:`analytics.changelog`).

Writing the items to DynamoDB is the caller's step (:func:`analytics.store.write_items`): the DynamoDB
connector jar, which writes them in AWS, cannot be fetched here.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson

from analytics.changelog import read_items
from analytics.flink import run, table_environment
from analytics.job import ArchiveSource, FileSinks, build
from analytics.metrics import Item, ItemKey
from analytics.rows import EVENT_COLUMNS, RowRejection, event_row
from pipeline.archive.reader import list_objects, read_object
from pipeline.events import Event

__all__ = ["Analysis", "JobRun", "Staged", "analyse_archive", "replay_events", "run_job", "stage"]

_RUN_EVENTS: Final = 20_000
"""Events of one object held in memory while merging; the reader spills the rest to temporary files."""
_NAMES: Final = tuple(name for name, _ in EVENT_COLUMNS)


def replay_events(
    s3: Any,
    bucket: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[Event]:
    """The archived events with ``since <= time < until`` in event-time order (see the module docstring).

    Memory: about ``20,000`` events per object at once (the rest of an object waits in temporary files).
    """
    objects = list_objects(s3, bucket, since=since, until=until)
    streams = [read_object(s3, bucket, o.key, since=since, until=until, run_events=_RUN_EVENTS) for o in objects]
    return heapq.merge(*streams, key=lambda event: event.timestamp)


@dataclass(slots=True)
class Staged:
    """What :func:`stage` wrote: events read, rows staged, events rejected (with reasons)."""

    path: Path
    events: int = 0
    rows: int = 0
    rejected: list[RowRejection] = field(default_factory=list)


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # exact: Flink's JSON format reads DECIMAL from a string
    raise TypeError(f"cannot stage {type(value).__name__}")


def stage(events: Iterable[Event], path: Path, *, progress: Callable[[int], None] | None = None) -> Staged:
    """Write each event as a JSON line of :data:`~analytics.rows.EVENT_COLUMNS` to ``path``, in order."""
    staged = Staged(path)
    dumps = orjson.dumps
    with path.open("wb") as out:
        for event in events:
            staged.events += 1
            row = event_row(event)
            if isinstance(row, RowRejection):
                staged.rejected.append(row)
                continue
            out.write(dumps(dict(zip(_NAMES, row, strict=True)), default=_json_default) + b"\n")
            staged.rows += 1
            if progress is not None and staged.events % 50_000 == 0:
                progress(staged.events)
    return staged


@dataclass(frozen=True, slots=True)
class JobRun:
    """The job's items by metric, and how long Flink took: start-up (JVM, environment) and the job itself."""

    items: dict[str, dict[ItemKey, Item]]
    startup_s: float
    job_s: float

    @property
    def late_events(self) -> int:
        return sum(int(item["late_events"]) for item in self.items.get("late_events_1h", {}).values())

    def all_items(self) -> dict[ItemKey, Item]:
        return {key: item for items in self.items.values() for key, item in items.items()}


def run_job(
    staged: Path, workdir: Path, allowed_lateness: timedelta, *, cluster: Mapping[str, str] | None = None
) -> JobRun:
    """Run the job over a staged file, sinks under ``workdir/out``; its items (see the module docstring).

    ``cluster``: the :attr:`~analytics.flink.LocalCluster.options` of a running mini-cluster to submit
    to; by default the job starts a mini-cluster of its own.
    """
    started = time.perf_counter()
    t_env = table_environment(deterministic=True, config=cluster)
    ready = time.perf_counter()
    out = workdir / "out"
    run(build(t_env, ArchiveSource(staged), FileSinks(out), allowed_lateness))
    done = time.perf_counter()
    return JobRun(read_items(out), startup_s=ready - started, job_s=done - ready)


@dataclass(frozen=True, slots=True)
class Analysis:
    """One local run end to end: what was staged, what the job produced, what was written, and timings."""

    staged: Staged
    job: JobRun
    written: int | None
    """Items written to the table; ``None`` when no table was given."""
    timings: dict[str, float]
    """Seconds: ``replay_and_stage``, ``flink_startup``, ``flink_job``, ``write``."""


def analyse_archive(
    events: Iterable[Event],
    workdir: Path,
    *,
    allowed_lateness: timedelta,
    store: Callable[[Iterable[Item]], int] | None = None,
    cluster: Mapping[str, str] | None = None,
    note: Callable[[str], None] = lambda message: None,
) -> Analysis:
    """Stage ``events`` (already in replay order), run the job, and give its items to ``store``.

    ``store`` writes items and returns how many (:func:`analytics.store.write_items` bound to a table);
    ``note`` receives one-line progress messages.
    """
    started = time.perf_counter()
    note("reading the archive and staging its events")
    staged = stage(events, workdir / "events.ndjson", progress=lambda n: note(f"staged {n:,} events"))
    note(f"staged {staged.rows:,} of {staged.events:,} events ({len(staged.rejected)} rejected); starting Flink")
    replayed = time.perf_counter()
    job = run_job(staged.path, workdir, allowed_lateness, cluster=cluster)
    note(f"the job finished: {sum(len(v) for v in job.items.values()):,} items, {job.late_events:,} late events")
    written = None
    wrote = time.perf_counter()
    if store is not None:
        written = store(item for items in job.items.values() for item in items.values())
        note(f"wrote {written:,} items")
    done = time.perf_counter()
    timings = {
        "replay_and_stage": replayed - started,
        "flink_startup": job.startup_s,
        "flink_job": job.job_s,
        "write": done - wrote,
    }
    return Analysis(staged, job, written, timings)
