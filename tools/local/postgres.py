"""A throwaway PostgreSQL server for tests and the local stack: a temporary directory, a free port, gone after.

Guarantees:

- The binaries are Debian's (``/usr/lib/postgresql/<major>/bin``, the highest major found), or those in
  ``$PIPELINE_POSTGRES_BIN``, or ``pg_config --bindir``, or ``initdb`` on ``PATH``. When none is found and
  ``install=True``, Debian's ``postgresql`` package is installed with ``apt-get`` (root only; an
  ``apt-get update`` is tried once if the first install fails). Otherwise :class:`EmulatorError` says how
  to install it.
- ``initdb`` runs in a fresh temporary directory under the system temp dir (not under pytest's, whose
  parents are private to root): the data directory and the unix socket directory live there. The server
  listens on ``127.0.0.1`` only, on a free port, and on a socket in that directory; the superuser has a
  random password (scram-sha-256), so other local users cannot log in.
- PostgreSQL refuses to run as root. As root, every server process runs as the OS user ``postgres``
  (created by Debian's package; override with ``os_user``), started directly with ``subprocess``'s
  ``user=``/``group=`` (no ``su``, no PAM), and the temporary directory is handed to that user.
- Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): a crash of the machine
  loses the data, which is what a throwaway server is for. Transactions, locks and isolation are
  PostgreSQL's own, unchanged.
- :meth:`LocalPostgres.stop` (also on leaving the ``with`` block, and at interpreter exit as a safety net)
  asks for a fast shutdown (SIGINT), waits, then SIGKILLs the process group, and removes the temporary
  directory. It is idempotent. If the server does not answer within the start timeout, it is stopped and
  :class:`EmulatorError` quotes the end of its log.

Not thread-safe; one instance per process is the intended use (a test session, ``pipeline up``).
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from pipeline.exceptions import EmulatorError

__all__ = [
    "SERVER_SETTINGS",
    "LocalPostgres",
    "PostgresBinaries",
    "find_binaries",
    "free_local_port",
    "init_cluster",
    "install_with_apt",
    "server_user",
]

_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_HOST = "127.0.0.1"
_SUPERUSER = "postgres"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0
_POLL_INTERVAL = 0.05
SERVER_SETTINGS: Final = {
    "listen_addresses": _HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "timezone": "UTC",
    "log_min_messages": "warning",
}


@dataclass(frozen=True, slots=True)
class PostgresBinaries:
    """Where ``initdb`` and ``postgres`` are, and their major version."""

    bindir: Path
    major: int

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"


def _binaries_in(bindir: Path) -> PostgresBinaries | None:
    if not (bindir / "initdb").is_file() or not (bindir / "postgres").is_file():
        return None
    out = subprocess.run(  # noqa: S603 - a fixed binary of a PostgreSQL installation
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return PostgresBinaries(bindir, int(match[1])) if match else None


def find_binaries() -> PostgresBinaries | None:
    """The PostgreSQL server binaries on this machine, or ``None`` (see the module docstring for the order)."""
    candidates: list[Path] = []
    if configured := os.environ.get("PIPELINE_POSTGRES_BIN"):
        candidates.append(Path(configured))
    if _DEBIAN_ROOT.is_dir():
        majors = sorted((p for p in _DEBIAN_ROOT.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        candidates += [p / "bin" for p in reversed(majors)]
    if pg_config := shutil.which("pg_config"):
        reported = subprocess.run(  # noqa: S603 - pg_config found on PATH
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=30
        ).stdout.strip()
        if reported:
            candidates.append(Path(reported))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if found := _binaries_in(bindir):
            return found
    return None


def install_with_apt() -> None:
    """Debian's ``postgresql`` package (root and apt-get only); :class:`EmulatorError` otherwise."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise EmulatorError(
            "PostgreSQL is not installed and cannot be installed from here (needs root and apt-get): "
            "install Debian's 'postgresql' package, or set PIPELINE_POSTGRES_BIN to its bin directory"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode == 0:  # noqa: S603
        return
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)  # noqa: S607
    result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise EmulatorError(f"apt-get install postgresql failed: {result.stderr[-2000:]}")


def free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_user(os_user: str) -> tuple[int | None, int | None, list[int] | None]:
    """``Popen``'s ``user``, ``group`` and ``extra_groups`` for a server process: ``os_user`` as root."""
    if os.geteuid() != 0:
        return None, None, None
    try:
        user = pwd.getpwnam(os_user)
    except KeyError as exc:
        raise EmulatorError(
            f"running as root, PostgreSQL needs an unprivileged OS user; {os_user!r} does not exist "
            "(Debian's postgresql package creates 'postgres')"
        ) from exc
    return user.pw_uid, user.pw_gid, []


def init_cluster(binaries: PostgresBinaries, root: Path, password: str, os_user: str) -> Path:
    """``initdb`` into ``root/data`` (superuser ``postgres`` with ``password``, scram-sha-256), with
    ``root/socket`` and the log file ``root/postgres.log`` (returned); as root, owned by ``os_user``."""
    (root / "socket").mkdir()
    log = root / "postgres.log"
    log.touch()
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    uid, gid, groups = server_user(os_user)
    if uid is not None and gid is not None:
        for path in (root, root / "socket", log, pwfile):
            os.chown(path, uid, grp.getgrgid(gid).gr_gid)
    command = [str(binaries.initdb), "--pgdata", str(root / "data"), "--username", _SUPERUSER]
    command += ["--pwfile", str(pwfile), "--auth", "scram-sha-256", "--encoding", "UTF8", "--no-locale", "--no-sync"]
    result = subprocess.run(  # noqa: S603 - the installation's own initdb
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=root,
        user=uid,
        group=gid,
        extra_groups=groups,
    )
    pwfile.unlink()
    if result.returncode != 0:
        raise EmulatorError(f"initdb failed ({result.returncode}): {(result.stderr or result.stdout)[-2000:]}")
    return log


class LocalPostgres:
    """One throwaway PostgreSQL server. Use as a context manager, or call :meth:`start` and :meth:`stop`.

    ``database`` is created on start. ``conninfo`` is a libpq connection string for it (TCP on
    127.0.0.1, the superuser and its password).
    """

    def __init__(
        self,
        *,
        database: str = "pipeline",
        install: bool = True,
        os_user: str = "postgres",
        start_timeout: float = _START_TIMEOUT,
    ) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
            raise EmulatorError(f"database name {database!r}: use lowercase letters, digits and underscores")
        self.database = database
        self._install = install
        self._os_user = os_user
        self._start_timeout = start_timeout
        self._password = secrets.token_urlsafe(18)
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._log: Path | None = None

    # ------------------------------------------------------------------ public surface

    @property
    def port(self) -> int:
        self._require_running()
        return self._port

    @property
    def socket_dir(self) -> Path:
        self._require_running()
        if self._root is None:
            raise EmulatorError("the local PostgreSQL server has no directory")
        return self._root / "socket"

    @property
    def conninfo(self) -> str:
        """``host=127.0.0.1 port=… dbname=… user=postgres password=…``."""
        return self.conninfo_for(self.database)

    def conninfo_for(self, database: str) -> str:
        self._require_running()
        return f"host={_HOST} port={self._port} dbname={database} user={_SUPERUSER} password={self._password}"

    @property
    def log_path(self) -> Path | None:
        return self._log

    def start(self) -> Self:
        if self._process is not None:
            return self
        binaries = find_binaries()
        if binaries is None and self._install:
            install_with_apt()
            binaries = find_binaries()
        if binaries is None:
            raise EmulatorError(
                "PostgreSQL server binaries (initdb, postgres) not found; see pipeline/local/postgres.py"
            )
        atexit.register(self.stop)
        try:
            self._init_cluster(binaries)
            self._launch(binaries)
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown, then SIGKILL; remove the temporary directory. Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)  # fast shutdown: roll back, disconnect, stop
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=_STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError):  # any straggler of the group
                os.killpg(process.pid, signal.SIGKILL)
        root, self._root = self._root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _require_running(self) -> None:
        if self._process is None:
            raise EmulatorError("the local PostgreSQL server is not running")

    def _server_user(self) -> tuple[int | None, int | None, list[int] | None]:
        return server_user(self._os_user)

    def _init_cluster(self, binaries: PostgresBinaries) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="pipeline-postgres-"))
        self._log = init_cluster(binaries, self._root, self._password, self._os_user)

    def _launch(self, binaries: PostgresBinaries) -> None:
        if self._root is None or self._log is None:
            raise EmulatorError("initdb has not run")
        for _attempt in range(3):  # the free port can be taken between the probe and the bind
            self._port = free_local_port()
            command = [str(binaries.postgres), "-D", str(self._root / "data"), "-p", str(self._port)]
            command += ["-k", str(self._root / "socket")]
            for name, value in SERVER_SETTINGS.items():
                command += ["-c", f"{name}={value}"]
            uid, gid, groups = self._server_user()
            with self._log.open("ab") as log:
                self._process = subprocess.Popen(  # noqa: S603 - the installation's own server
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._root,
                    start_new_session=True,  # its own process group: stop() ends every backend with it
                    user=uid,
                    group=gid,
                    extra_groups=groups,
                )
            if self._wait_ready():
                return
            self._kill_process()
        raise EmulatorError(f"PostgreSQL did not start; its log ({self._log}) ends with:\n{self._log_tail()}")

    def _kill_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=_STOP_TIMEOUT)

    def _wait_ready(self) -> bool:
        """True once the server accepts a login; False if it exited or timed out."""
        import psycopg

        if self._process is None:
            return False
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with psycopg.connect(self.conninfo_for("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(_POLL_INTERVAL)
        return False

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo_for("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.database}"')  # name checked in __init__

    def _log_tail(self) -> str:
        if self._log is None or not self._log.exists():
            return "(no log)"
        return "\n".join(self._log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
