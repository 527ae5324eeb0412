"""One live local stack (``pipeline up``: emulator, deployed template, live runtime) shared by the
functional tests of its readers (the read API, ``pipeline metrics``, the dashboard, the Locust user).

It runs the real command line in subprocesses with its own state dir (``PIPELINE_STATE_DIR``), so it
never meets a developer's stack, and ``pipeline down`` stops all of it at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from pipeline.events import Event
from pipeline.readapi.tables import ReadTables
from pipeline.settings import Settings
from tools.generate import write_ndjson

__all__ = ["ROOT", "LiveStack", "wait_for"]

ROOT = Path(__file__).resolve().parents[1]


def wait_for(what: str, check: Callable[[], list[str]], timeout: float = 120.0) -> float:
    """Seconds until ``check()`` returns no problem; raises AssertionError with the last problems after ``timeout``."""
    started = time.monotonic()
    problems = check()
    while problems:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not reached in {timeout:g} s: {problems[:5]}")
        time.sleep(0.5)
        problems = check()
    return time.monotonic() - started


class LiveStack:
    """A stage deployed by ``pipeline up`` into ``state_dir``; :meth:`down` stops everything it started."""

    def __init__(self, state_dir: Path, stage: str) -> None:
        self.state_dir, self.stage = state_dir, stage
        started = self.cli("up", "--archive-interval", "1", "--json", ok=False)
        if started.returncode != 0:  # 'up' keeps what it started (for a retry): stop it, then fail
            self.down()
            raise AssertionError(started.stderr.decode()[-2000:])
        self.up: dict[str, Any] = orjson.loads(started.stdout)
        self.outputs: dict[str, str] = self.up["outputs"]
        self.endpoint_url: str = self.up["endpoint_url"]
        self.settings = Settings(endpoint_url=self.endpoint_url)
        self.stream = self.outputs["StreamName"]
        self.tables = ReadTables.from_outputs(self.outputs)

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PIPELINE_STATE_DIR": str(self.state_dir)}
        env.pop("PIPELINE_ENDPOINT_URL", None)
        return env

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
        """``pipeline ARGS --stage STAGE`` (for the commands that take it), checked to exit 0 unless ``ok`` is false."""
        stage = ("--stage", self.stage) if args[0] in {"up", "down", "status", "metrics", "dashboard"} else ()
        done = subprocess.run(
            [sys.executable, "-m", "tools.cli.main", *args, *stage],
            check=False,
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            timeout=600,
        )
        if ok:
            assert done.returncode == 0, done.stderr.decode()[-2000:]
        return done

    def produce(self, events: list[Event], path: Path) -> None:
        with path.open("wb") as out:
            write_ndjson(events, out)
        self.cli("produce", "--stream", self.stream, "--endpoint-url", self.endpoint_url, str(path))

    def runtime_events(self) -> int:
        """Events the live runtime has counted so far (its status file)."""
        status = orjson.loads((self.state_dir / f"runtime-{self.stage}.status.json").read_bytes())
        return int(status["events"])

    def down(self) -> None:
        self.cli("down", ok=False)
