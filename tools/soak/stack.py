"""The soak's own local stack: an emulator with persistence on, the template deployed, the faulty runtime.

Guarantees:

- Everything lives in one state directory the soak owns (never a developer's ``pipeline up`` stack):
  the emulator's record, log and snapshot, the stack file, the runtime's log, status and results.
- The emulator (ministack) runs with ``PERSIST_STATE=1`` and ``S3_PERSIST=1``: ministack keeps its
  state in memory and writes a snapshot (streams with their records and shard iterators, tables,
  queues, buckets' objects) **only on a clean SIGTERM**, and loads it at start. So
  :meth:`SoakStack.restart_emulator` is a SIGTERM (the snapshot is written; up to ``stop_grace`` seconds
  are allowed for it, then SIGKILL, which would lose the state) and a start on the same port with the
  same state directory. A SIGKILL'd emulator forgets everything: that outage no client can ride
  through, and the soak does not pretend to.
- :meth:`SoakStack.close` stops the runtime (SIGTERM: its archive buffers are written and its results
  file too), then the emulator; it is idempotent and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from pipeline.exceptions import EmulatorError
from pipeline.settings import Settings
from tools.local.emulator import EmbeddedEmulator
from tools.local.live import status_file
from tools.local.stack import StackInfo, deploy
from tools.local.state import stack_file
from tools.soak.figures import group_peak_mib, peak_mib

__all__ = ["SoakStack"]

_ROOT = Path(__file__).resolve().parents[2]


class SoakStack:
    """One soak's emulator, stack and runtime process. Not thread-safe, except :meth:`restart_emulator`
    running in one thread while the producer sends from another (it touches only the emulator)."""

    def __init__(self, state_dir: Path, *, stage: str = "soak", stop_grace: float = 120.0) -> None:
        self.state_dir = state_dir.absolute()
        self.stage = stage
        self.results_path = self.state_dir / f"soak-runtime-{stage}.json"
        self._stop_grace = stop_grace
        self._env = {
            "PERSIST_STATE": "1",
            "STATE_DIR": str(self.state_dir / "emulator-state"),
            "S3_PERSIST": "1",
            "S3_DATA_DIR": str(self.state_dir / "emulator-s3"),
        }
        self.emulator: EmbeddedEmulator | None = None
        self.runtime: subprocess.Popen[bytes] | None = None
        self.info: StackInfo | None = None
        self.peaks: dict[str, float] = {}

    @property
    def settings(self) -> Settings:
        if self.emulator is None:
            raise EmulatorError("the soak's emulator is not started")
        return Settings.from_env().with_(endpoint_url=self.emulator.endpoint_url)

    def start(self, *, fault_rate: float, seed: int, archive_interval_s: float = 1.0) -> StackInfo:
        """Start the emulator, deploy the template, start the runtime; return the stack."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.emulator = EmbeddedEmulator(state_dir=self.state_dir, extra_env=self._env, stop_grace=self._stop_grace)
        self.emulator.start()
        settings = self.settings
        self.info = deploy(settings, stage=self.stage)
        document = {"endpoint_url": settings.endpoint_url, "region": settings.region, **self.info.as_dict()}
        stack_file(self.state_dir, self.stage).write_bytes(orjson.dumps(document) + b"\n")
        status = status_file(self.state_dir, self.stage)
        status.unlink(missing_ok=True)
        command = [sys.executable, "-m", "tools.soak.runtime", "--state-dir", str(self.state_dir)]
        command += ["--stage", self.stage, "--fault-rate", str(fault_rate), "--seed", str(seed)]
        command += ["--archive-interval", str(archive_interval_s), "--results", str(self.results_path)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        env.pop("PIPELINE_ENDPOINT_URL", None)
        with (self.state_dir / f"runtime-{self.stage}.log").open("ab") as log:
            self.runtime = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while not status.exists():
            if self.runtime.poll() is not None or time.monotonic() > deadline:
                raise EmulatorError(f"the soak runtime did not start; see {log.name}")
            time.sleep(0.1)
        return self.info

    def status(self) -> dict[str, Any]:
        """The runtime's last status (``{}`` before the first)."""
        try:
            status: dict[str, Any] = orjson.loads(status_file(self.state_dir, self.stage).read_bytes())
        except (OSError, ValueError):
            return {}
        return status

    def sample_memory(self) -> None:
        """Read the runtime's and the emulator's peak resident memory so far (call it now and then)."""
        readings = {
            "runtime": peak_mib(self.runtime.pid) if self.runtime else None,
            "emulator": group_peak_mib(self.emulator.pid) if self.emulator and self.emulator.is_running() else None,
        }
        for name, value in readings.items():
            if value is not None:
                self.peaks[name] = max(self.peaks.get(name, 0.0), value)

    def restart_emulator(self) -> float:
        """SIGTERM the emulator (it writes its snapshot), start it again on the same port with the same
        state; the seconds it was not answering."""
        if self.emulator is None:
            raise EmulatorError("the soak's emulator is not started")
        self.sample_memory()
        port = self.emulator.port
        started = time.monotonic()
        self.emulator.stop()
        emulator = EmbeddedEmulator(
            state_dir=self.state_dir, extra_env=self._env, port=port, stop_grace=self._stop_grace
        )
        emulator.start()
        self.emulator = emulator
        return time.monotonic() - started

    def stop_runtime(self, timeout: float = 120.0) -> dict[str, Any]:
        """SIGTERM the runtime, wait for it, and return its results (``{}`` if it wrote none)."""
        if self.runtime is not None and self.runtime.poll() is None:
            self.sample_memory()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.runtime.pid, signal.SIGTERM)
            try:
                self.runtime.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.runtime.pid, signal.SIGKILL)
                self.runtime.wait()
        try:
            results: dict[str, Any] = orjson.loads(self.results_path.read_bytes())
        except (OSError, ValueError):
            return {}
        return results

    def close(self) -> None:
        """Stop the runtime, then the emulator. Idempotent."""
        self.stop_runtime()
        if self.emulator is not None:
            self.sample_memory()
            self.emulator.stop()
