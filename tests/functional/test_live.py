"""The live local stack and load runs, as users run them: ``pipeline up``, then anything that writes to
the stream (``pipeline produce``, ``pipeline load``) shows in the tables and the archive with no other
command; ``pipeline down`` leaves no process behind.

Each test runs the real command line in subprocesses with its own state dir (``PIPELINE_STATE_DIR``),
so it never meets a developer's stack. The tables are checked against the oracle (``tools.oracle``)
computed from the events sent; the archive against their event ids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from load.synthetic import SyntheticLoad
from pipeline.archive.reader import read_events
from pipeline.events import Event, EventType
from pipeline.settings import Settings, aws_client
from tools.generate import WorkloadSpec, generate_events, write_ndjson
from tools.local.stack import describe
from tools.oracle import expected_tables
from tools.verify import differences, numbers_as_decimal, scan_tables

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.emulator


def _cli(state_dir: Path, *args: str, cwd: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIPELINE_STATE_DIR": str(state_dir)}
    env.pop("PIPELINE_ENDPOINT_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli.main", *args],
        check=False,
        env=env,
        cwd=cwd or ROOT,
        capture_output=True,
        timeout=600,
    )
    if ok:
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done


def _wait(what: str, check: Callable[[], list[str]], timeout: float = 120.0) -> float:
    """Seconds until ``check()`` returns no problem; fails with the last problems after ``timeout``."""
    started = time.monotonic()
    problems = check()
    while problems:
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} not reached in {timeout:g} s: {problems[:5]}")
        time.sleep(0.5)
        problems = check()
    return time.monotonic() - started


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class _Stack:
    """One deployed stage: checks of its tables and archive."""

    def __init__(self, state_dir: Path, stage: str, up: dict[str, Any]) -> None:
        self.state_dir, self.stage, self.up = state_dir, stage, up
        self.settings = Settings(endpoint_url=up["endpoint_url"])
        info = describe(self.settings, stage)
        assert info is not None
        self.resources = info.resources()
        self.stream = info.outputs["StreamName"]
        self.bucket = info.outputs["ArchiveBucket"]

    def table_problems(self, events: Iterable[Event]) -> Callable[[], list[str]]:
        expected = numbers_as_decimal(expected_tables(events))
        dynamodb = aws_client("dynamodb", self.settings)
        return lambda: differences(scan_tables(dynamodb, self.resources), expected, limit=5)

    def archived(self) -> Counter[str]:
        return Counter(e.event_id for e in read_events(aws_client("s3", self.settings), self.bucket))

    def archive_problems(self, ids: Counter[str]) -> Callable[[], list[str]]:
        def check() -> list[str]:
            found = self.archived()
            if found == ids:
                return []
            return [f"{sum((ids - found).values())} missing, {sum((found - ids).values())} unexpected"]

        return check


def _up(state_dir: Path, stage: str) -> _Stack:
    done = _cli(state_dir, "up", "--stage", stage, "--archive-interval", "1", "--json")
    return _Stack(state_dir, stage, orjson.loads(done.stdout))


def _events_file(path: Path, events: list[Event]) -> Path:
    with path.open("wb") as out:
        write_ndjson(events, out)
    return path


def test_up_consumes_and_archives_what_produce_sends_and_down_leaves_no_process(tmp_path: Path) -> None:
    # GIVEN a live stack (emulator, stack, runtime) and 5,000 events
    state_dir = tmp_path / "state"
    stack = _up(state_dir, "local")
    runtime_pid = stack.up["runtime"]["pid"]
    emulator_pid = orjson.loads((state_dir / "emulator.json").read_bytes())["pid"]
    assert _alive(runtime_pid) and _alive(emulator_pid)
    events = list(generate_events(5_000, 5))
    path = _events_file(tmp_path / "events.ndjson", events)
    # WHEN they are produced, and nothing else is run
    started = time.monotonic()
    _cli(state_dir, "produce", "--stream", stack.stream, "--endpoint-url", stack.up["endpoint_url"], str(path))
    # THEN the tables equal the oracle's and the archive holds every event, within seconds
    _wait("tables", stack.table_problems(events))
    _wait("archive", stack.archive_problems(Counter(e.event_id for e in events)))
    print(f"5,000 produced events in the tables and the archive after {time.monotonic() - started:.1f} s")  # noqa: T201
    status = orjson.loads(_cli(state_dir, "status", "--json").stdout)["runtime"]
    assert status["state"] == "running" and status["records"] == 5_000 and status["events"] == 5_000
    assert status["function_errors"] == 0 and status["bad_rows"] == 0
    assert set(status["shards"]) and all("millis_behind_latest" in s for s in status["shards"].values())
    # AND 'pipeline down' from another directory stops the runtime, then the stack, then the emulator
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    down = _cli(state_dir, "down", cwd=elsewhere)
    assert b"live runtime stopped" in down.stderr and b"emulator stopped" in down.stderr
    assert not _alive(runtime_pid) and not _alive(emulator_pid)
    assert orjson.loads((state_dir / "runtime-local.status.json").read_bytes())["state"] == "stopped"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state dir whose emulator the tests share (each deploys its own stage); all stopped at the end."""
    state_dir = tmp_path_factory.mktemp("live")
    yield state_dir
    _cli(state_dir, "down", "--stage", "gone", ok=False)
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_mentions(p, str(state_dir))]
    assert not left, f"processes left behind: {left}"


def _cmdline_mentions(proc: Path, text: str) -> bool:
    try:
        return text.encode() in (proc / "cmdline").read_bytes() and _alive(int(proc.name))
    except OSError:
        return False


def test_synthetic_load_reports_rate_and_lag_and_the_tables_match_what_it_sent(live: Path) -> None:
    # GIVEN a live stack
    stack = _up(live, "synthetic")
    # WHEN the reference workload is sent at 400 events/s for 5 s
    done = _cli(live, "load", "synthetic", "--rate", "400", "--seconds", "5", "--stage", "synthetic", "--json")
    report = orjson.loads(done.stdout)
    # THEN the rate is reached or the report says what limited it, with lag percentiles from seen samples
    assert report["events"] == 2_000 and report["undelivered"] == 0
    assert report["reached_target"] or report["limited_by"]
    lag = report["lag"]
    assert lag["seen"] > 0 and lag["missed"] == 0
    assert 0 < lag["p50_ms"] <= lag["p95_ms"] <= lag["p99_ms"] <= lag["max_ms"]
    assert report["producer"]["put_calls"] > 0 and "throttled_calls" in report["producer"]
    # AND the tables equal the oracle's for the very events sent
    about = report["synthetic"]
    load = SyntheticLoad(about["rate"], about["seconds"], about["seed"], datetime.fromisoformat(about["start"]))
    _wait("tables", stack.table_problems(list(load.generate())))
    # AND SIGINT stops the runtime as SIGTERM does: cleanly, its status saying so
    runtime_pid = stack.up["runtime"]["pid"]
    os.kill(runtime_pid, signal.SIGINT)
    _wait("runtime stopped", lambda: ["alive"] if _alive(runtime_pid) else [], timeout=30)
    assert orjson.loads((live / "runtime-synthetic.status.json").read_bytes())["state"] == "stopped"
    _cli(live, "down", "--stage", "synthetic", "--keep-emulator")


def test_replay_republishes_exactly_the_archived_events(live: Path, tmp_path: Path) -> None:
    # GIVEN a live stack whose archive holds 1,000 events spread over 20 s of event time
    stack = _up(live, "replay")
    spec = WorkloadSpec(duration=timedelta(seconds=20))
    events = list(generate_events(1_000, 9, spec))
    path = _events_file(tmp_path / "events.ndjson", events)
    _cli(live, "produce", "--stream", stack.stream, "--endpoint-url", stack.up["endpoint_url"], str(path))
    original = Counter(e.event_id for e in events)
    _wait("archive", stack.archive_problems(original))
    _wait("tables", stack.table_problems(events))
    # WHEN the archive is replayed at 10x, ids kept
    kept = orjson.loads(_cli(live, "load", "replay", "--speed", "10", "--stage", "replay", "--json").stdout)
    # THEN exactly its events were sent again (same multiset of ids), in about 2 s, and no table moved
    assert kept["events"] == 1_000 and kept["replay"]["span_s"] == pytest.approx(2.0, abs=0.1)
    assert kept["lag"] == {} and "keep ids" in kept["lag_measured"]
    _wait("archive", stack.archive_problems(original + original))
    _wait("tables", stack.table_problems(events))
    # WHEN it is replayed again with new ids (the archive now holds every event twice)
    fresh = orjson.loads(
        _cli(live, "load", "replay", "--speed", "10", "--new-ids", "--stage", "replay", "--json").stdout
    )
    # THEN the archive gains two copies of each event under a new id, and the tables count them once more
    namespace = uuid.UUID(fresh["replay"]["run_id"])
    renamed = [msgspec.structs.replace(e, event_id=str(uuid.uuid5(namespace, e.event_id))) for e in events]
    renamed_ids = Counter(e.event_id for e in renamed)
    assert fresh["events"] == 2_000 and not set(renamed_ids) & set(original)
    assert fresh["lag"]["seen"] > 0
    _wait("archive", stack.archive_problems(original + original + renamed_ids + renamed_ids))
    _wait("tables", stack.table_problems(events + renamed))
    views = sum(1 for e in events if e.event_type is EventType.PRODUCT_VIEW)
    assert _total_views(stack) == 2 * views
    _cli(live, "down", "--stage", "replay", "--keep-emulator")


def _total_views(stack: _Stack) -> int:
    dynamodb = aws_client("dynamodb", stack.settings)
    tables = scan_tables(dynamodb, stack.resources)
    return sum(int(item.get("view_count", 0)) for item in tables.get("product_metrics", {}).values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("load", "synthetic", "--rate", "1", "--seconds", "1"), b"run 'pipeline up'", id="no-stack"),
        pytest.param(("load", "replay"), b"one of the arguments --speed --rate is required", id="no-pace"),
        pytest.param(("load", "replay", "--speed", "1", "--since", "2026-01-01"), b"has no offset", id="naive"),
        pytest.param(("load", "synthetic", "--rate", "0", "--seconds", "1"), b"must be more than 0", id="rate"),
    ],
)
def test_load_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], message: bytes) -> None:
    done = _cli(tmp_path, *args, ok=False)
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count(b"\n") == 1 and b"Traceback" not in done.stderr


def test_up_help_says_what_it_starts(tmp_path: Path) -> None:
    text = _cli(tmp_path, "up", "--help").stdout
    assert b"live runtime" in text and b"pipeline down" in text and b"--archive-interval" in text


def test_sigterm_to_a_command_stops_the_emulator_it_started(tmp_path: Path) -> None:
    # GIVEN 'pipeline demo' running on an emulator it started
    state_dir = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIPELINE_STATE_DIR": str(state_dir)}
    command = [sys.executable, "-m", "tools.cli.main", "demo", "--events", "50000"]
    demo = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    record = state_dir / "emulator.json"
    _wait("emulator", lambda: [] if record.exists() else ["no record"], timeout=120)
    pid = orjson.loads(record.read_bytes())["pid"]
    time.sleep(3)
    # WHEN it gets SIGTERM
    demo.send_signal(signal.SIGTERM)
    _, stderr = demo.communicate(timeout=120)
    # THEN it exits as on Ctrl-C, and no process of the emulator's group is left
    assert demo.returncode == 130, stderr.decode()[-500:]
    assert not _group_alive(pid)


def _group_alive(pgid: int) -> bool:
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False
