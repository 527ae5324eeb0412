"""The live stack's PostgreSQL: ``pipeline up`` starts it detached and migrated, prints how to reach it,
``status`` shows it, ``down`` stops it from any directory; an interrupted start leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import psycopg
import pytest

from pipeline.stores.sql.backend import SqlBackend
from pipeline.stores.sql.migrate import load_migrations
from tools.local import postgres_service

ROOT = Path(__file__).resolve().parents[2]


def _cli(state_dir: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIPELINE_STATE_DIR": str(state_dir)}
    env.pop("PIPELINE_ENDPOINT_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli.main", *args], check=False, env=env, cwd=cwd, capture_output=True, timeout=600
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done


def _postgres_processes(root: str) -> list[int]:
    """Live processes whose command line names the server's directory (the postmaster and its children
    name the data directory only in the postmaster; its children are in its process group)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if stat[0] != "Z" and root.encode() in cmdline:
            found.append(int(proc.name))
    return found


def _tables(conninfo: str) -> set[str]:
    with psycopg.connect(conninfo, connect_timeout=10) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


@pytest.mark.emulator
def test_up_starts_a_migrated_postgres_status_shows_it_and_down_stops_it_from_anywhere(tmp_path: Path) -> None:
    # GIVEN 'pipeline up' (no runtime: this test is about PostgreSQL)
    state_dir = tmp_path / "state"
    up = _cli(state_dir, "up", "--no-runtime")
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in up.stdout.decode().splitlines() if line.strip()
    )
    record = postgres_service.find_recorded(state_dir)
    assert record is not None
    # THEN its connection settings are exported, and the database has every migration's tables
    conninfo = exports["STORES_POSTGRES_CONNINFO"].strip("'")
    assert conninfo == record.conninfo
    assert (exports["PGPORT"], exports["PGDATABASE"]) == (str(record.port), postgres_service.DATABASE)
    assert {"users", "orders", "outbox", "schema_migrations"} <= _tables(conninfo)
    assert b"PostgreSQL" in up.stderr and f"127.0.0.1:{record.port}".encode() in up.stderr
    # AND the server outlives the command that started it, and 'up' again reuses it
    assert _postgres_processes(record.root)
    again = _cli(state_dir, "up", "--no-runtime")
    assert b"reused" in again.stderr
    assert postgres_service.find_recorded(state_dir) == record
    # AND status shows it with its migrations
    status = orjson.loads(_cli(state_dir, "status", "--json").stdout)["postgres"]
    assert status["running"] is True and status["port"] == record.port
    assert status["migrations"] == [m.version for m in load_migrations()]
    assert b"postgres  127.0.0.1:" in _cli(state_dir, "status").stdout
    # WHEN 'pipeline down' runs from another directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    down = _cli(state_dir, "down", cwd=elsewhere)
    # THEN the server is stopped, its directory and record removed, and no process of it is left
    assert b"PostgreSQL stopped" in down.stderr
    assert not _postgres_processes(record.root)
    assert not Path(record.root).exists()
    assert not (state_dir / postgres_service.STATE_FILE).exists()
    assert postgres_service.find_recorded(state_dir) is None


def test_a_start_interrupted_while_migrating_leaves_no_server_and_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a start that is interrupted (Ctrl-C, or SIGTERM as the CLI raises it) while it migrates
    roots: list[str] = []

    def interrupted(backend: SqlBackend) -> list[str]:
        row = backend.execute_statement("SELECT current_setting('data_directory') AS data").one()
        assert row is not None
        roots.append(str(Path(row["data"]).parent))
        raise KeyboardInterrupt

    monkeypatch.setattr(postgres_service, "migrate", interrupted)
    state_dir = tmp_path / "state"
    with pytest.raises(KeyboardInterrupt):
        postgres_service.start_or_reuse(state_dir)
    # THEN the server it had started is gone, with its directory, and nothing is recorded
    (root,) = roots
    assert not _postgres_processes(root)
    assert not Path(root).exists()
    assert not (state_dir / postgres_service.STATE_FILE).exists()
    assert postgres_service.stop(state_dir) is None
