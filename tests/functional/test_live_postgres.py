"""The live stack's PostgreSQL: ``pipeline up`` starts it detached and migrated, prints how to reach it,
``status`` shows it, ``down`` stops it from any directory; an interrupted start leaves nothing behind.
While ``up`` runs, orders placed in either store reach the metrics by change data capture."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import orjson
import psycopg
import pytest

from pipeline.settings import Settings, aws_client
from pipeline.stores.models import OrderLine
from pipeline.stores.single_table import SingleTableRepository
from pipeline.stores.sql.backend import SqlBackend
from pipeline.stores.sql.migrate import load_migrations
from pipeline.stores.sql.postgres import PostgresBackend
from pipeline.stores.sql.repository import AuroraRepository
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


def _place_orders(exports: dict[str, str]) -> set[str]:
    """One order in the stack's single table, one in the SQL store; their ids."""
    settings = Settings(endpoint_url=exports["PIPELINE_ENDPOINT_URL"])
    table = SingleTableRepository(aws_client("dynamodb", settings), exports["STORE_TABLE"])
    backend = PostgresBackend(exports["STORES_POSTGRES_CONNINFO"])
    sql = AuroraRepository(backend)
    ids = set()
    try:
        for store, create in ((table, table.create_order), (sql, sql.create_order_with_items)):
            store.create_user("buyer@example.com", "Buyer", user_id="u-live")
            store.create_product("Pen", "office", Decimal("1.50"), 10, product_id="pen")
            ids.add(create("u-live", [OrderLine("pen", 2, Decimal("1.50"))]).order_id)
    finally:
        backend.close()
    return ids


def _counted_orders(exports: dict[str, str]) -> set[str]:
    dynamodb = aws_client("dynamodb", Settings(endpoint_url=exports["PIPELINE_ENDPOINT_URL"]))
    items = dynamodb.scan(TableName=exports["ORDER_CLAIMS_TABLE"], ConsistentRead=True)["Items"]
    return {item["order_id"]["S"] for item in items if item["claim"]["S"] == "order"}


@pytest.mark.emulator
def test_up_starts_a_migrated_postgres_status_shows_it_and_down_stops_it_from_anywhere(tmp_path: Path) -> None:
    # GIVEN 'pipeline up'
    state_dir = tmp_path / "state"
    up = _cli(state_dir, "up")
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
    # AND an order placed in each store reaches the metrics by CDC, with no other command
    exports = {k: v.strip("'") for k, v in exports.items()}
    placed = _place_orders(exports)
    deadline = time.monotonic() + 120
    while _counted_orders(exports) != placed and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _counted_orders(exports) == placed
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
