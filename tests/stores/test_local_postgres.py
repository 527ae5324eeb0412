"""The throwaway PostgreSQL server: found, started on its own port and directory, stopped without a trace."""

from __future__ import annotations

import os
import pwd

import psycopg
import pytest

from tools.local.postgres import LocalPostgres, find_binaries


def _server_processes(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_servers_run_side_by_side_and_leave_nothing_behind() -> None:
    # GIVEN the machine's PostgreSQL
    binaries = find_binaries()
    assert binaries is not None and binaries.major >= 13
    # WHEN two throwaway servers run at once
    with LocalPostgres(database="one") as first, LocalPostgres(database="two") as second:
        assert first.port != second.port
        with psycopg.connect(first.conninfo) as a, psycopg.connect(second.conninfo) as b:
            a.execute("CREATE TABLE only_here (x int)")
            row = b.execute("SELECT to_regclass('only_here') IS NULL").fetchone()
            assert row == (True,)
            owner = a.execute("SELECT current_setting('data_directory')").fetchone()
            assert owner is not None
            data_directory = owner[0]
            listen = a.execute("SELECT current_setting('listen_addresses')").fetchone()
            assert listen == ("127.0.0.1",)
        # AND a login without the password is refused, even over its unix socket
        for without_password in (
            f"host=127.0.0.1 port={first.port} dbname=one user=postgres",
            f"host={first.socket_dir} port={first.port} dbname=one user=postgres",
        ):
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(without_password, connect_timeout=5)
        process = first._process
        assert process is not None
        if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as the postgres OS user
            assert os.stat(data_directory).st_uid == pwd.getpwnam("postgres").pw_uid
        root = first._root
    # THEN, stopped, no process of its group is left and its directory is gone
    assert not _server_processes(process.pid)
    assert root is not None and not root.exists()
