"""Starting, finding and stopping the live runtime (:mod:`tools.local.live`) as a background process.

Guarantees:

- :func:`start_runtime` runs ``python -m tools.local.live`` in a session of its own (it outlives
  ``pipeline up``, and a Ctrl-C in the terminal does not reach it), with this checkout first on
  ``PYTHONPATH``, stdout and stderr to ``runtime-<stage>.log``; it returns once the runtime has written
  its first status, and otherwise stops it and raises :class:`EmulatorError` quoting the log.
- A record ``runtime-<stage>.json`` names the pid. A record whose process is gone, is a zombie, or is
  not a ``tools.local.live`` process (a reused pid) counts as absent and is removed: nothing is signalled.
- :func:`stop_runtime` sends SIGTERM to the runtime's process group, waits for it to stop cleanly
  (its archive buffers written), then SIGKILL after ``grace`` seconds; it returns once no process of
  the group is left. Linux only (``/proc``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from pipeline.exceptions import EmulatorError
from tools.local.live import status_file

__all__ = ["RuntimeRecord", "find_runtime", "runtime_log", "start_runtime", "stop_all_runtimes", "stop_runtime"]

_ROOT = Path(__file__).resolve().parents[2]
_MODULE = "tools.local.live"


@dataclass(frozen=True, slots=True)
class RuntimeRecord:
    pid: int
    stage: str
    log: str
    status: str
    started_at: str

    def alive(self) -> bool:
        return _is_runtime(self.pid)


def _record_file(state_dir: Path, stage: str) -> Path:
    return state_dir / f"runtime-{stage}.json"


def runtime_log(state_dir: Path, stage: str) -> Path:
    return state_dir / f"runtime-{stage}.log"


def find_runtime(state_dir: Path, stage: str) -> RuntimeRecord | None:
    """The running runtime of ``stage``, or ``None`` (a stale record is removed)."""
    path = _record_file(state_dir, stage)
    try:
        record = RuntimeRecord(**orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        path.unlink(missing_ok=True)
        return None
    if record.alive():
        return record
    path.unlink(missing_ok=True)
    return None


def start_runtime(
    state_dir: Path, stage: str, *, archive_interval_s: float | None = None, timeout: float = 60.0
) -> RuntimeRecord:
    """Start the runtime of ``stage`` (the stack file must be written) and wait for its first status."""
    log = runtime_log(state_dir, stage)
    status = status_file(state_dir, stage)
    status.unlink(missing_ok=True)
    command = [sys.executable, "-m", _MODULE, "--state-dir", str(state_dir), "--stage", stage]
    if archive_interval_s is not None:
        command += ["--archive-interval", str(archive_interval_s)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    record = RuntimeRecord(process.pid, stage, str(log), str(status), datetime.now(UTC).isoformat(timespec="seconds"))
    _record_file(state_dir, stage).write_bytes(orjson.dumps(asdict(record), option=orjson.OPT_INDENT_2) + b"\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if status.exists():
            return record
        time.sleep(0.1)
    stop_runtime(state_dir, stage)
    process.poll()
    tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
    quoted = "".join(f"\n  | {line}" for line in tail)
    raise EmulatorError(f"the live runtime did not start (log {log}){quoted}")


def stop_runtime(state_dir: Path, stage: str, *, grace: float = 30.0) -> RuntimeRecord | None:
    """Stop the runtime of ``stage`` if it runs; the record of what was stopped, else ``None``."""
    record = find_runtime(state_dir, stage)
    if record is None:
        return None
    _signal(record.pid, signal.SIGTERM)
    if not _wait_gone(record.pid, grace):
        _signal(record.pid, signal.SIGKILL)
        if not _wait_gone(record.pid, 5.0):
            raise EmulatorError(f"the live runtime (pid {record.pid}) survived SIGKILL")
    _record_file(state_dir, stage).unlink(missing_ok=True)
    return record


def stop_all_runtimes(state_dir: Path, *, grace: float = 30.0) -> list[RuntimeRecord]:
    """Stop the runtime of every stage recorded in ``state_dir`` (before its emulator goes)."""
    stopped = []
    for path in sorted(state_dir.glob("runtime-*.json")):
        if path.name.endswith(".status.json"):
            continue
        record = stop_runtime(state_dir, path.stem.removeprefix("runtime-"), grace=grace)
        if record is not None:
            stopped.append(record)
    return stopped


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)  # the runtime leads a session of its own: its group is its pid


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_runtime(pid) or _group_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our child when the caller started it (tests, pipeline up)
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _is_runtime(pid: int) -> bool:
    """True if ``pid`` is a live (not zombie) ``tools.local.live`` process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and _MODULE.encode() in cmdline


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False
