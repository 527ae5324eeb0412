"""Hostile records through the consumer and the Firehose transform, with the process's peak memory.

Each record (a gzip bomb, KPL aggregates claiming absurd sizes or counts, a 1 MiB line of deeply nested
JSON, a 10 MiB record) goes in between two valid events, in a child process of its own
(:mod:`tests.hostile_inputs`), so the peak resident memory measured is that input's alone. Each must
end as exactly one bad row keeping its raw bytes and a reason, the valid events around it go on, and
the child's peak stays under 512 MiB (imports included). The figures are printed and recorded as test
properties (``--junitxml``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.hostile_inputs import CASES, TARGETS

ROOT = Path(__file__).resolve().parents[2]
_PEAK_BUDGET_MIB = 512


@pytest.mark.parametrize("target", [pytest.param(t, id=t) for t in TARGETS])
@pytest.mark.parametrize("case", [pytest.param(c, id=c) for c in CASES])
def test_hostile_record_is_one_bad_row_within_memory(
    case: str, target: str, record_property: Callable[[str, object], None]
) -> None:
    # GIVEN a hostile record between two valid events, WHEN a fresh process pushes them through target
    result = subprocess.run(
        [sys.executable, "-m", "tests.hostile_inputs", case, target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = orjson.loads(result.stdout.splitlines()[-1])
    record_property("peak_mib", report["peak_mib"])
    print(f"{case} via {target}: peak {report['peak_mib']} MiB, {report['seconds']} s, reason: {report['reason']}")  # noqa: T201 - the measured figure is the point
    # THEN exactly one bad row with its raw bytes and a reason, the batch goes on, the peak is bounded
    assert report["bad_rows"] == 1
    assert report["raw_kept"]
    assert report["reason"]
    assert report["batch_went_on"]
    assert report["peak_mib"] < _PEAK_BUDGET_MIB
