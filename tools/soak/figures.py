"""Figures a soak reports: lag percentiles and the peak memory of processes (Linux ``/proc``).

Peak memory is the kernel's high-water mark of resident memory (``VmHWM``), per process: a reading is
the peak so far, so the last reading before a process ends is its peak. A process group's peak is its
largest member's (the emulator is ``uv`` plus the ministack interpreter; the interpreter dominates).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["group_peak_mib", "peak_mib", "percentiles"]


def percentiles(values: Sequence[int]) -> dict[str, int]:
    """``count``, ``p50``, ``p99`` and ``max`` of ``values`` (nearest rank); zeros when empty."""
    if not values:
        return {"count": 0, "p50": 0, "p99": 0, "max": 0}
    ordered = sorted(values)

    def rank(p: float) -> int:
        return ordered[max(math.ceil(p * len(ordered)) - 1, 0)]

    return {"count": len(ordered), "p50": rank(0.50), "p99": rank(0.99), "max": ordered[-1]}


def peak_mib(pid: int) -> float | None:
    """The peak resident memory of ``pid`` so far, MiB; ``None`` if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def group_peak_mib(pgid: int) -> float | None:
    """The largest peak among the live processes of process group ``pgid``; ``None`` if none is left."""
    peaks = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
        except OSError:
            continue
        peak = peak_mib(int(entry.name))
        if peak is not None:
            peaks.append(peak)
    return max(peaks) if peaks else None
