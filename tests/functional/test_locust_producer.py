"""The Locust user class (``load/locust_producer.py``) run headless, as the README says, against the
live local stack: every event its users report delivered is counted by the consumer.

When the run time is up Locust stops its users at once (headless ``quit`` kills their greenlets), so
each user's flush in flight then is delivered but never reported: the consumer may count up to
users x events-per-task events more than Locust reports, never fewer."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live_stack import ROOT, LiveStack, wait_for

pytestmark = pytest.mark.emulator


def test_locust_users_send_events_the_consumer_counts(live_stack: LiveStack, tmp_path: Path) -> None:
    # GIVEN a live stack whose runtime is idle (its count no longer moves)
    before = _settled(live_stack)
    # WHEN Locust runs 3 producer users headless for a short while
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "load" / "locust_producer.py"),
        "--headless",
        "-u",
        "3",
        "-r",
        "3",
        "-t",
        "15s",
        "--host",
        live_stack.endpoint_url,
        "--stream",
        live_stack.stream,
        "--events-per-task",
        "40",
        "--csv",
        str(tmp_path / "run"),
        "--only-summary",
    ]
    done = subprocess.run(command, env=live_stack.env(), cwd=tmp_path, capture_output=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    # THEN Locust reports flushes of 40 events each, none failed
    with (tmp_path / "run_stats.csv").open() as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    flushes, failures = int(rows["events"]["Request Count"]), int(rows["events"]["Failure Count"])
    assert flushes >= 3 and failures == 0
    assert float(rows["events"]["Average Content Size"]) == 40.0
    # AND the consumer counts every event reported, and at most one flush per user more (cut at the end)
    reported = flushes * 40
    wait_for("events counted", lambda: [] if live_stack.runtime_events() - before >= reported else ["not yet"], 60)
    counted = _settled(live_stack) - before
    assert reported <= counted <= reported + 3 * 40, (reported, counted)


def _settled(stack: LiveStack) -> int:
    """The runtime's event count once it has not moved for 3 s."""
    last, since = stack.runtime_events(), time.monotonic()
    while time.monotonic() - since < 3:
        time.sleep(0.5)
        now = stack.runtime_events()
        if now != last:
            last, since = now, time.monotonic()
    return last
