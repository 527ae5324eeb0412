"""The live local stack's PostgreSQL: a detached server that ``pipeline up`` starts and ``pipeline down`` stops.

Unlike :class:`~tools.local.postgres.LocalPostgres` (owned by one process, gone at its exit), this server
outlives the command that started it: ``pg_ctl start`` runs it in a session of its own, and its record
(``postgres.json`` in the state dir: pid, port, data directory, database, the superuser's password) lets
``status`` and ``down`` find it from any directory.

Guarantees:

- One server per state dir; :func:`start_or_reuse` reuses a recorded server that still answers.
- ``initdb`` runs in ``<state-dir>/postgres`` when the server runs as the caller; as root the server must
  run as the OS user ``postgres``, who cannot enter a directory under root's home, so the data directory
  is then a fresh directory under the system temp dir (recorded, and removed by :func:`stop`).
- It listens on 127.0.0.1 only, on a free port, with a random superuser password (scram-sha-256); the
  database :data:`DATABASE` is created and migrated (:func:`~pipeline.stores.sql.migrate.migrate`).
- A start interrupted or failing at any step (Ctrl-C, SIGTERM, a failed migration) stops what it
  started and removes its directory: nothing is left running, no record is written.
- :func:`stop` asks ``pg_ctl`` for a fast shutdown, then SIGKILLs what is left of the recorded server,
  removes its data directory and its record. Durability is off, as for the test servers: the data is
  throwaway, like the emulator's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from pipeline.exceptions import EmulatorError
from pipeline.stores.sql.migrate import migrate
from pipeline.stores.sql.postgres import PostgresBackend
from tools.local.postgres import (
    SERVER_SETTINGS,
    PostgresBinaries,
    find_binaries,
    free_local_port,
    init_cluster,
    install_with_apt,
    server_user,
)

__all__ = [
    "DATABASE",
    "STATE_FILE",
    "PostgresRecord",
    "describe",
    "find_recorded",
    "start_or_reuse",
    "status_lines",
    "stop",
]

STATE_FILE: Final = "postgres.json"
DATABASE: Final = "stores"
_OS_USER: Final = "postgres"
_TIMEOUT_S: Final = 30


@dataclass(frozen=True, slots=True)
class PostgresRecord:
    """What ``up`` wrote about the server it started."""

    pid: int
    port: int
    root: str
    database: str
    password: str
    version: int
    started_at: str
    bindir: str
    stage: str = "local"
    """The stage whose ``up`` started the server: its live runtime relays the outbox (one relay per database)."""

    @property
    def conninfo(self) -> str:
        """A libpq connection string for :attr:`database` (TCP on 127.0.0.1)."""
        return f"host=127.0.0.1 port={self.port} dbname={self.database} user=postgres password={self.password}"

    @property
    def log_path(self) -> Path:
        return Path(self.root) / "postgres.log"

    def exports(self) -> dict[str, str]:
        """The connection settings ``up`` prints: the conninfo, and libpq's variables (for ``psql``)."""
        return {
            "STORES_POSTGRES_CONNINFO": self.conninfo,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGDATABASE": self.database,
            "PGUSER": "postgres",
            "PGPASSWORD": self.password,
        }

    def write(self, path: Path) -> None:
        path.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2) + b"\n")
        path.chmod(0o600)  # it holds the password

    @classmethod
    def read(cls, path: Path) -> PostgresRecord | None:
        try:
            return cls(**orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError, TypeError):
            return None


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running PostgreSQL process (not a recycled pid of something else)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: the server, if its command line says so
        pass
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"postgres" in cmdline.read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: trust the signal probe
        return True


def find_recorded(state_dir: Path) -> PostgresRecord | None:
    """The recorded server if its postmaster is still running, else ``None``."""
    record = PostgresRecord.read(state_dir / STATE_FILE)
    if record is None or not _alive(record.pid):
        return None
    return record


def _pg_ctl(binaries_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    uid, gid, groups = server_user(_OS_USER)
    return subprocess.run(  # noqa: S603 - the installation's own pg_ctl
        [str(binaries_dir / "pg_ctl"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=_TIMEOUT_S + 30,
        stdin=subprocess.DEVNULL,
        user=uid,
        group=gid,
        extra_groups=groups,
    )


def start_or_reuse(state_dir: Path, stage: str = "local") -> tuple[PostgresRecord, bool]:
    """The state dir's server, started (initdb, migrated) unless a recorded one runs; ``(record, reused)``.

    Raises :class:`EmulatorError` when PostgreSQL cannot be found or installed, or does not start.
    """
    running = find_recorded(state_dir)
    if running is not None:
        return running, True
    binaries = find_binaries()
    if binaries is None:
        install_with_apt()
        binaries = find_binaries()
    if binaries is None:
        raise EmulatorError("PostgreSQL server binaries (initdb, postgres, pg_ctl) not found")
    state_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        root = Path(tempfile.mkdtemp(prefix="pipeline-up-postgres-"))
    else:
        root = state_dir / "postgres"
        shutil.rmtree(root, ignore_errors=True)  # a stale directory of a server that is gone
        root.mkdir()
    started = False
    try:
        record = replace(_start(binaries, root), stage=stage)
        started = True
        backend = PostgresBackend(record.conninfo)
        try:
            migrate(backend)
        finally:
            backend.close()
        record.write(state_dir / STATE_FILE)
    except BaseException:  # Ctrl-C, SIGTERM (raised as KeyboardInterrupt by the CLI) or a failure: undo
        if started:
            _pg_ctl(binaries.bindir, "stop", "-D", str(root / "data"), "-m", "immediate", "-w")
        shutil.rmtree(root, ignore_errors=True)
        raise
    return record, False


def _start(binaries: PostgresBinaries, root: Path) -> PostgresRecord:
    import psycopg

    password = os.urandom(18).hex()
    log = init_cluster(binaries, root, password, _OS_USER)
    port = free_local_port()
    options = [f"-p {port}", f"-k {root / 'socket'}"] + [f"-c {k}={v}" for k, v in SERVER_SETTINGS.items()]
    result = _pg_ctl(
        binaries.bindir, "start", "-D", str(root / "data"), "-l", str(log), "-w", "-t", str(_TIMEOUT_S),
        "-o", " ".join(options),
    )  # fmt: skip
    if result.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        raise EmulatorError(f"pg_ctl start failed ({result.returncode}): {result.stderr.strip()}\n{tail}")
    pid = int((root / "data" / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0])
    conninfo = f"host=127.0.0.1 port={port} dbname=postgres user=postgres password={password}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    return PostgresRecord(
        pid=pid,
        port=port,
        root=str(root),
        database=DATABASE,
        password=password,
        version=binaries.major,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        bindir=str(binaries.bindir),
    )


def stop(state_dir: Path) -> PostgresRecord | None:
    """Stop the recorded server (fast shutdown, then SIGKILL), remove its directory and record; the record
    of what was stopped, or ``None`` when nothing was recorded. Idempotent."""
    path = state_dir / STATE_FILE
    record = PostgresRecord.read(path)
    if record is None:
        path.unlink(missing_ok=True)
        return None
    data = Path(record.root) / "data"
    if _alive(record.pid) and data.is_dir():
        _pg_ctl(Path(record.bindir), "stop", "-D", str(data), "-m", "fast", "-w", "-t", str(_TIMEOUT_S))
    deadline = time.monotonic() + _TIMEOUT_S
    while _alive(record.pid) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
        time.sleep(0.1)
    if _alive(record.pid):
        raise EmulatorError(f"PostgreSQL (pid {record.pid}) did not stop; its directory is {record.root}")
    shutil.rmtree(record.root, ignore_errors=True)
    path.unlink(missing_ok=True)
    return record


def describe(state_dir: Path) -> dict[str, object]:
    """What ``pipeline status`` shows: the running server and its applied migrations, or why there is none."""
    from pipeline.stores.errors import StoreError
    from pipeline.stores.sql.migrate import applied_migrations

    record = find_recorded(state_dir)
    if record is None:
        return {"running": False}
    report: dict[str, object] = {
        "running": True,
        "pid": record.pid,
        "port": record.port,
        "database": record.database,
        "version": record.version,
        "started_at": record.started_at,
        "log": str(record.log_path),
    }
    backend = PostgresBackend(record.conninfo, connect_timeout=5)
    try:
        report["migrations"] = applied_migrations(backend)
    except StoreError as exc:
        report["error"] = str(exc)
    finally:
        backend.close()
    return report


def status_lines(report: Mapping[str, Any]) -> list[str]:
    """:func:`describe`'s report as ``pipeline status`` prints it."""
    if not report.get("running"):
        return ["postgres  not running ('pipeline up' starts it)"]
    applied = ", ".join(report.get("migrations", [])) or report.get("error", "none")
    return [
        f"postgres  127.0.0.1:{report['port']}  pid {report['pid']}  PostgreSQL {report['version']}  "
        f"database {report['database']}",
        f"          migrations {applied}; log {report['log']}",
    ]
