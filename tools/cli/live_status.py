"""The live runtime's part of ``pipeline status``: its status file, read and shown.

The runtime (:mod:`tools.local.live`) rewrites ``runtime-<stage>.status.json`` every second or so;
a file older than :data:`_STALE_S` from a process that still runs means it is busy in a long batch or
stuck, and is shown as such.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import orjson

__all__ = ["runtime_lines", "runtime_status"]

_STALE_S: Final = 10.0


def runtime_status(state_dir: Path, stage: str) -> dict[str, Any]:
    """What the runtime of ``stage`` last reported, with ``state`` and ``status_age_s``; or ``not running``."""
    from tools.local.live import status_file
    from tools.local.live_process import find_runtime, runtime_log

    record = find_runtime(state_dir, stage)
    path = status_file(state_dir, stage)
    try:
        status: dict[str, Any] = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        status = {}
    if record is None:
        last = status.get("state", "never started")
        return {"state": "not running", "last_state": last, "log": str(runtime_log(state_dir, stage))}
    age = time.time() - float(status.get("updated_epoch", 0.0))
    status["status_age_s"] = round(age, 1)
    if age > _STALE_S:
        status["state"] = "running (status not updated: busy or stuck)"
    busy = status.get("in_invocation")
    if busy:
        busy["for_s"] = round(time.time() - float(busy["since_epoch"]), 1)
        status["state"] += f" (in an invocation on {busy['records']} records of {busy['shard']} for {busy['for_s']} s)"
    status.setdefault("logs", {"runtime": record.log})
    status["pid"] = record.pid
    return status


def runtime_lines(status: dict[str, Any]) -> list[str]:
    """``pipeline status`` lines for :func:`runtime_status`'s result."""
    if status["state"] == "not running":
        return [
            f"runtime   not running (last: {status['last_state']}); 'pipeline up' starts it",
            f"          log {status['log']}",
        ]
    archive = status.get("archive", {})
    lines = [
        f"runtime   {status['state']}  pid {status['pid']}  since {status.get('started_at', '?')}"
        f"  (status {status.get('status_age_s', '?')} s old)",
        f"          {status.get('records', 0)} records, {status.get('invocations', 0)} invocations, "
        f"{status.get('function_errors', 0)} errors, {status.get('partial_failures', 0)} partial failures, "
        f"{status.get('discarded_records', 0)} records discarded; {status.get('events', 0)} events counted, "
        f"{status.get('duplicates', 0)} duplicates dropped, {status.get('bad_rows', 0)} bad rows",
        f"          archive lag {archive.get('lag_s', 0)} s ({archive.get('buffered_bytes', 0):,} bytes buffered, "
        f"written every {archive.get('interval_s', '?')} s), {archive.get('objects', 0)} objects written",
    ]
    for shard, figures in status.get("shards", {}).items():
        behind = figures.get("millis_behind_latest")
        lag = "?" if behind is None else f"read {behind} ms behind latest"
        lines.append(
            f"  {shard}  {lag}, iterator age {figures.get('iterator_age_ms', 0)} ms, "
            f"{figures.get('invocations', 0)} invocations, {figures.get('function_errors', 0)} errors"
        )
    logs = status.get("logs", {})
    lines.append(f"          log {logs.get('runtime', '?')}; consumer log {logs.get('consumer', '?')}")
    return lines
