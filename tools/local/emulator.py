"""The embedded AWS emulator: ministack, pinned, in an environment of its own, on 127.0.0.1.

Guarantees:

- It runs as ``uvx --from 'ministack[full]==1.5.33' ministack``: uv builds and caches an environment for
  it, so ministack's pinned botocore never meets ours. Nothing is installed into the project's venv.
- It listens on 127.0.0.1 only, on a free port unless one is given. The listeners ministack opens by
  itself besides the gateway are switched off: the IoT MQTT-over-TLS broker (``0.0.0.0:8883`` at boot,
  ``IOT_MTLS_ENABLED=0``) and the Transfer SFTP listener (``0.0.0.0:2222`` once a server exists,
  ``SFTP_ENABLED=0``, and ``SFTP_HOST=127.0.0.1`` should anyone turn it back on). So any number of
  emulators can run side by side (tests next to a developer's demo). Other listeners (DSQL and RDS
  proxies, containers) open only when such resources are created; the pipeline creates none.
- Its ``TMPDIR`` is a scratch directory of its own (pid file, Lambda code caches, TLS material), removed
  by :meth:`EmbeddedEmulator.stop` once the process group is gone. The log file is kept.
- :meth:`EmbeddedEmulator.stop` ends the whole process group (uv, ministack and any Lambda worker it
  spawned): SIGTERM, then SIGKILL after a grace period. It returns only when no process of the group is
  left, or raises :class:`EmulatorError` if one survives SIGKILL.
- If the emulator does not answer HTTP within the start timeout, or exits first, its process group is
  stopped and :class:`EmulatorError` names the log file (and quotes its last lines).

State is in memory: stopping the emulator forgets every stream, table and bucket.
POSIX only (process groups). Instances are not thread-safe; share one per process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from pipeline.exceptions import EmulatorError
from tools.local.ministack import HOST, answers, free_port, group_alive, reap, signal_group
from tools.local.tools import uv_tool_run

__all__ = [
    "MINISTACK_VERSION",
    "STATE_FILE",
    "EmbeddedEmulator",
    "EmulatorError",
    "EmulatorRecord",
    "find_recorded",
    "start_or_reuse",
    "stop_recorded",
]

logger = logging.getLogger(__name__)

MINISTACK_VERSION = "1.5.33"
_MINISTACK_SPEC = f"ministack[full]=={MINISTACK_VERSION}"
STATE_FILE = "emulator.json"  # in the state dir; JSON of an EmulatorRecord
_DEFAULT_STATE_DIR = ".pipeline"
_POLL_INTERVAL = 0.05

# Listeners ministack would open beside the gateway, all on 0.0.0.0 and fixed ports.
_QUIET_LISTENERS = {"IOT_MTLS_ENABLED": "0", "SFTP_ENABLED": "0", "SFTP_HOST": HOST}


@dataclass(frozen=True, slots=True)
class EmulatorRecord:
    """What the state file says about a running emulator (``<state_dir>/emulator.json``)."""

    pid: int  # also the process group id: the emulator is started in a session of its own
    port: int
    endpoint_url: str
    log_path: str
    version: str = MINISTACK_VERSION
    started_at: str = ""  # ISO 8601, UTC

    @classmethod
    def read(cls, path: Path) -> EmulatorRecord | None:
        """The record in ``path``, or ``None`` if it is missing or unreadable."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                pid=int(raw["pid"]),
                port=int(raw["port"]),
                endpoint_url=str(raw["endpoint_url"]),
                log_path=str(raw["log_path"]),
                version=str(raw.get("version", "")),
                started_at=str(raw.get("started_at", "")),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable emulator state file %s: %s", path, exc)
            return None

    def write(self, path: Path) -> None:
        """Write atomically: a reader sees the old record or the new one, never half of one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


class EmbeddedEmulator:
    """One ministack process group. Start with :meth:`start` or ``with``; end with :meth:`stop`.

    ``state_dir`` (default ``.pipeline/`` under the current directory) holds the default log file
    ``emulator-<port>.log`` and the scratch directory. ``extra_env`` is passed to ministack (for example
    ``{"LOG_LEVEL": "DEBUG"}``); it cannot move the bind address or the port.
    """

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        log_path: Path | None = None,
        port: int | None = None,
        startup_timeout: float = 60.0,
        stop_grace: float = 5.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self._state_dir = (state_dir if state_dir is not None else Path.cwd() / _DEFAULT_STATE_DIR).absolute()
        self._log_path = log_path.absolute() if log_path is not None else None
        self._port = port
        self._startup_timeout = startup_timeout
        self._stop_grace = stop_grace
        self._extra_env = dict(extra_env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None  # kept after stop(), so callers can check that nothing is left
        self._running = False
        self._record_path: Path | None = None  # set when a state file describes this emulator
        self.reused = False

    # -- what callers read ------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def port(self) -> int:
        if self._port is None or self._pid is None:
            raise EmulatorError("the emulator is not started")
        return self._port

    @property
    def pid(self) -> int:
        """The process (and process group) id of the ``uvx`` launcher; still readable after :meth:`stop`."""
        if self._pid is None:
            raise EmulatorError("the emulator is not started")
        return self._pid

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            raise EmulatorError("the emulator is not started")
        return self._log_path

    def is_running(self) -> bool:
        """True if the process group is alive and the gateway answers."""
        return self._running and self._pid is not None and group_alive(self._pid) and answers(self.port)

    def record(self) -> EmulatorRecord:
        return EmulatorRecord(
            pid=self.pid,
            port=self.port,
            endpoint_url=self.endpoint_url,
            log_path=str(self.log_path),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start ministack and return once it answers HTTP.

        Raises :class:`ConfigurationError` if uv cannot be found (:func:`tools.local.tools.uv_tool_run`), and
        :class:`EmulatorError` if the emulator exits or stays silent for ``startup_timeout`` seconds; in
        both cases its process group has been stopped and the error names the log file.
        """
        if self._pid is not None:
            raise EmulatorError(f"an EmbeddedEmulator starts once; this one was started as pid {self._pid}")
        launcher = uv_tool_run()
        port = self._port if self._port is not None else free_port()
        self._port = port
        self._log_path = self._log_path or self._state_dir / f"emulator-{port}.log"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self._scratch_dir()
        scratch.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **_QUIET_LISTENERS,
            "PERSIST_STATE": "0",
            **self._extra_env,
            "TMPDIR": str(scratch),
            "BIND_HOST": HOST,
            "GATEWAY_PORT": str(port),
        }
        command = [*launcher, "--from", _MINISTACK_SPEC, "ministack"]
        started = time.monotonic()
        try:
            with self._log_path.open("wb") as log:
                # A session of its own: the pid is also the process group id, so stop() reaches uv's child.
                self._process = subprocess.Popen(  # noqa: S603 - fixed command, no shell
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise EmulatorError(f"could not run {launcher[0]}: {exc}") from exc
        self._pid = self._process.pid
        self._running = True
        logger.info(
            "starting ministack %s on %s (pid %d, log %s)",
            MINISTACK_VERSION,
            self.endpoint_url,
            self._pid,
            self._log_path,
        )
        try:
            self._wait_until_answering(started)
        except BaseException:  # a timeout, or Ctrl-C while waiting: leave nothing running
            self.stop()
            raise
        logger.info("ministack answered on %s after %.2f s", self.endpoint_url, time.monotonic() - started)
        return self

    def stop(self) -> None:
        """Stop the whole process group; idempotent.

        SIGTERM to the group, SIGKILL to whatever is left after ``stop_grace`` seconds. Returns once no
        process of the group is left, then removes the scratch directory and, if this emulator is the one
        recorded in the state file, the state file. Raises :class:`EmulatorError` if a process survives
        SIGKILL (which only an uninterruptible sleep can cause).
        """
        if not self._running or self._pid is None:
            return
        pgid = self._pid
        reap(self._process, pgid)
        if group_alive(pgid):
            logger.info("stopping ministack on port %s (process group %d)", self._port, pgid)
            signal_group(pgid, signal.SIGTERM)
            if not self._wait_group_gone(pgid, self._stop_grace):
                logger.warning("ministack group %d ignored SIGTERM for %.1f s: sending SIGKILL", pgid, self._stop_grace)
                signal_group(pgid, signal.SIGKILL)
                if not self._wait_group_gone(pgid, self._stop_grace):
                    raise EmulatorError(f"process group {pgid} survived SIGKILL; see {self._log_path}")
        if self._process is not None:
            self._process.wait()  # reaps uv, so no zombie is left behind
        if self._record_path is not None:
            current = EmulatorRecord.read(self._record_path)
            if current is not None and current.pid == pgid:
                self._record_path.unlink(missing_ok=True)
        if self._port is not None:
            shutil.rmtree(self._scratch_dir(), ignore_errors=True)
        self._running = False
        self._process = None

    def __enter__(self) -> Self:
        return self if self._running else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._running else ("stopped" if self._pid is not None else "not started")
        where = f"{self.endpoint_url}, " if self._pid is not None else ""
        return f"EmbeddedEmulator({where}{state}, pid={self._pid}, reused={self.reused})"

    # -- internals --------------------------------------------------------------------------------

    @classmethod
    def _attach(cls, record: EmulatorRecord, record_path: Path, stop_grace: float) -> EmbeddedEmulator:
        """A handle on an emulator some other process started (its pid is not our child)."""
        emulator = cls(state_dir=record_path.parent, log_path=Path(record.log_path), port=record.port)
        emulator._stop_grace = stop_grace
        emulator._pid = record.pid
        emulator._running = True
        emulator._record_path = record_path
        emulator.reused = True
        return emulator

    def _scratch_dir(self) -> Path:
        return self._state_dir / f"emulator-{self._port}.tmp"

    def _wait_until_answering(self, started: float) -> None:
        deadline = started + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and (code := self._process.poll()) is not None:
                raise EmulatorError(f"ministack exited with code {code} before answering.{self._log_excerpt()}")
            if answers(self.port):
                return
            time.sleep(_POLL_INTERVAL)
        raise EmulatorError(
            f"ministack did not answer on {self.endpoint_url} within {self._startup_timeout:g} s "
            f"(a cold uv cache downloads it first); it was stopped.{self._log_excerpt()}"
        )

    def _log_excerpt(self, lines: int = 8) -> str:
        try:
            tail = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            tail = []
        quoted = "".join(f"\n  | {line}" for line in tail)
        return f" Log: {self._log_path}{quoted}"

    def _wait_group_gone(self, pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            reap(self._process, pgid)
            if not group_alive(pgid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_INTERVAL)


def find_recorded(state_dir: Path | None = None, *, stop_grace: float = 5.0) -> EmbeddedEmulator | None:
    """The emulator recorded in ``state_dir``, if its process group is alive and it answers HTTP.

    A record whose process is gone or whose port does not answer is treated as absent: the state file is
    removed and nothing is signalled (a pid that does not answer on the recorded port may by now belong to
    an unrelated process).
    """
    path = _state_path(state_dir)
    record = EmulatorRecord.read(path)
    if record is None:
        return None
    if group_alive(record.pid) and answers(record.port):
        if record.version != MINISTACK_VERSION:
            logger.warning(
                "the recorded emulator runs ministack %s; this code pins %s", record.version, MINISTACK_VERSION
            )
        return EmbeddedEmulator._attach(record, path, stop_grace)
    logger.info("recorded emulator (pid %d, port %d) is not running: forgetting it", record.pid, record.port)
    path.unlink(missing_ok=True)
    return None


def start_or_reuse(
    state_dir: Path | None = None, *, startup_timeout: float = 60.0, stop_grace: float = 5.0
) -> EmbeddedEmulator:
    """The emulator recorded in ``state_dir`` if it is running, else a new one, recorded there.

    The returned handle has ``reused`` set accordingly. Its :meth:`~EmbeddedEmulator.stop` stops the
    emulator and removes the record whoever started it; a caller that wants it to outlive the current
    process (``pipeline up``) simply does not call it. Two processes calling this at the same moment
    on the same state dir may both start one; the last record wins and the other is not tracked.
    """
    found = find_recorded(state_dir, stop_grace=stop_grace)
    if found is not None:
        logger.info("reusing the running emulator at %s (pid %d)", found.endpoint_url, found.pid)
        return found
    path = _state_path(state_dir)
    emulator = EmbeddedEmulator(state_dir=path.parent, startup_timeout=startup_timeout, stop_grace=stop_grace)
    emulator.start()
    try:
        emulator.record().write(path)
    except OSError:
        emulator.stop()
        raise
    emulator._record_path = path
    return emulator


def stop_recorded(state_dir: Path | None = None, *, stop_grace: float = 5.0) -> bool:
    """Stop the emulator recorded in ``state_dir`` and remove the record.

    Returns ``True`` if a running emulator was stopped, ``False`` if none was recorded or the recorded
    one was not running (its stale record is removed; see :func:`find_recorded`).
    """
    found = find_recorded(state_dir, stop_grace=stop_grace)
    if found is None:
        return False
    found.stop()
    return True


def _state_path(state_dir: Path | None) -> Path:
    return (state_dir if state_dir is not None else Path.cwd() / _DEFAULT_STATE_DIR).absolute() / STATE_FILE
