"""A short soak, as users run it: ``pipeline soak`` on 2,000 events at fault rate 0.05, the emulator restarted
half-way. It fails on any loss, double count or mismatch against the oracle (the accounting's own tests,
in ``tests/unit/test_soak_accounting.py``, show that it does fail when dedup is broken or a batch is lost).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.emulator


def _soak_processes(state_dir: Path) -> list[str]:
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(state_dir).encode() in (proc / "cmdline").read_bytes():
                left.append(proc.name)
        except OSError:
            continue
    return left


def test_a_short_soak_under_faults_and_a_restart_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    # GIVEN 2,000 events, fault rate 0.05 on every call, crashes, redeliveries, resends, late events
    state_dir = tmp_path / "soak"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PIPELINE_ENDPOINT_URL", None)
    command = [sys.executable, "-m", "tools.cli.main", "soak", "--events", "2000", "--fault-rate", "0.05"]
    command += ["--seed", "7", "--state-dir", str(state_dir), "--json"]
    # WHEN the soak runs, restarting the emulator half-way
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=900, check=False)
    # THEN it exits 0 and its report says: nothing lost, nothing double counted, the archive complete
    assert done.returncode == 0, done.stderr.decode()[-3000:] + done.stdout.decode()[-3000:]
    report = orjson.loads(done.stdout)
    verdict = report["verdict"]
    assert (verdict["lost"], verdict["double_counted"], verdict["mismatched_items"]) == (0, 0, 0)
    assert verdict["archive_completeness"] == 1.0 and verdict["expected_events"] == 2_000
    # AND the faults really happened: the restart, throttles and partial failures on both sides, resends
    assert report["emulator_restart"]["outage_s"] > 0
    assert report["sent"]["resent"] == 100 and report["sent"]["late"] == 100
    assert report["faults"]["producer"]["failed_entries"] > 0
    runtime = report["faults"]["runtime"]
    assert runtime["throttled_requests"] > 0 and runtime["failed_batch_entries"] > 0
    assert verdict["archive_duplicates"] >= 100  # the resends, archived as Firehose would (at least once)
    assert report["bad_rows"] == 0 and report["lag_ms"]["count"] >= 2_000
    assert all(report["memory_peak_mib"][p] > 0 for p in ("producer", "runtime", "emulator"))
    # AND progress went to stderr, and nothing of the soak's stack is left running
    assert b"soak: stack up" in done.stderr and b"verifying" in done.stderr
    assert not _soak_processes(state_dir)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--fault-rate", "2"), b"must be between 0 and 1", id="rate"),
        pytest.param(("--events", "0"), b"must be at least 1", id="events"),
        pytest.param(("--format", "xml"), b"invalid choice", id="format"),
    ],
)
def test_soak_usage_errors_are_one_line(args: tuple[str, ...], message: bytes) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli.main", "soak", *args], env=env, cwd=ROOT, capture_output=True, check=False
    )
    assert done.returncode == 2 and message in done.stderr
    assert done.stderr.count(b"\n") == 1 and b"Traceback" not in done.stderr
