"""The demo's windowed analytics: the archive it just wrote, through the Flink job and the reference.

:func:`verify_windows` reads the archive back in event-time order (``analytics.local.replay_events``),
computes the windows with the pure-Python reference (``analytics.reference.expected_windows``) and,
when Flink can run here (PyFlink installed, Java 17) and was not switched off, runs the real job on a
local mini-cluster, writes its items to the stack's ``window_metrics`` table, reads the table back and
compares it with the reference item by item. Without Flink the summary says why, and the reference's
windows are reported alone (not verified against anything).

Guarantees: never raises for a Flink failure (it becomes a problem in the result); the table holds
only this run's items (the demo deploys a fresh stack).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from analytics.local import replay_events
from analytics.metrics import Item, ItemKey
from analytics.reference import expected_windows
from pipeline.events import Event
from pipeline.settings import Settings, aws_client
from tools.local.stack import StackInfo

__all__ = ["DEFAULT_LATENESS", "WindowSummary", "verify_windows"]

DEFAULT_LATENESS = timedelta(seconds=30)
"""The allowed lateness the demo uses (``pipeline analytics run``'s default)."""


@dataclass
class WindowSummary:
    """What the window step did. ``engine`` is ``"flink"`` or ``"reference"`` (Flink did not run)."""

    engine: str = "reference"
    why_not_flink: str | None = None
    events: int = 0
    late_events: int = 0
    items: dict[str, int] = field(default_factory=dict)
    """Items per metric, as the reference computes them."""
    written: int | None = None
    """Items the Flink job wrote to ``window_metrics`` (``None`` without Flink)."""
    seconds: dict[str, float] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    """Every reference item, JSON-friendly (``--json`` carries them)."""
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool | None:
        """True when Flink's table equals the reference; ``None`` when Flink did not run."""
        return None if self.engine != "flink" else not self.problems


def verify_windows(
    settings: Settings,
    info: StackInfo,
    *,
    flink: bool = True,
    lateness: timedelta = DEFAULT_LATENESS,
    note: Callable[[str], None] = lambda message: None,
) -> WindowSummary:
    """The windows of the stack's archive; see the module docstring."""
    s3 = aws_client("s3", settings)
    bucket = info.outputs["ArchiveBucket"]
    summary = WindowSummary()
    started = time.perf_counter()
    events = list(replay_events(s3, bucket))
    reference = expected_windows(events, lateness)
    summary.events, summary.late_events = len(events), len(reference.late)
    summary.items = dict(Counter(str(item["metric"]) for item in reference.items.values()))
    summary.rows = [{k: _jsonable(v) for k, v in item.items()} for item in reference.items.values()]
    summary.seconds["reference"] = round(time.perf_counter() - started, 3)
    reason = "switched off (--no-flink)" if not flink else _flink_unavailable()
    if reason is not None:
        summary.why_not_flink = reason
        return summary
    summary.engine = "flink"
    try:
        _run_flink(settings, info, events, reference.items, lateness, summary, note)
    except Exception as exc:  # noqa: BLE001 - a failed job is a failed verification, never a crash of the demo
        summary.problems.append(f"windows: the Flink job failed: {type(exc).__name__}: {exc}")
    return summary


def _flink_unavailable() -> str | None:
    try:
        from analytics.flink import unavailable_reason
    except ImportError as exc:  # pragma: no cover - analytics/ is part of the repository
        return str(exc)
    return unavailable_reason()


def _run_flink(
    settings: Settings,
    info: StackInfo,
    events: list[Event],
    expected: dict[ItemKey, Item],
    lateness: timedelta,
    summary: WindowSummary,
    note: Callable[[str], None],
) -> None:
    from analytics.flink import shared_cluster
    from analytics.local import analyse_archive
    from analytics.store import read_items, write_items

    dynamodb = aws_client("dynamodb", settings)
    table = info.outputs["WindowMetricsTable"]
    note("starting a local Flink cluster for the windows")
    started = time.perf_counter()
    cluster = shared_cluster()
    summary.seconds["flink_cluster"] = round(time.perf_counter() - started, 3)
    with tempfile.TemporaryDirectory(prefix="pipeline-demo-windows-") as workdir:
        analysis = analyse_archive(
            events,
            Path(workdir),
            allowed_lateness=lateness,
            store=lambda items: write_items(dynamodb, table, items),
            cluster=cluster.options,
            note=note,
        )
    summary.written = analysis.written
    summary.seconds.update({name: round(seconds, 3) for name, seconds in analysis.timings.items()})
    if analysis.job.late_events != summary.late_events:
        summary.problems.append(
            f"windows: Flink counted {analysis.job.late_events} late events, the reference {summary.late_events}"
        )
    stored = read_items(dynamodb, table)
    missing = [key for key in expected if key not in stored]
    extra = [key for key in stored if key not in expected]
    different = [key for key in expected if key in stored and stored[key] != expected[key]]
    if missing or extra or different:
        summary.problems.append(
            f"windows: {len(missing)} missing, {len(extra)} unexpected, {len(different)} different items in {table}"
        )
        for key in different[:5]:
            summary.problems.append(f"  {key}: Flink {stored[key]}, reference {expected[key]}")


def _jsonable(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value
