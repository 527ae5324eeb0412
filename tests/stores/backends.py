"""Both SQL backends on one database, for tests: the direct one and the Data API one through the stand-in."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.stores.sql.backend import SqlBackend
from pipeline.stores.sql.data_api import DataApiBackend
from pipeline.stores.sql.postgres import PostgresBackend
from tests.stores.data_api_standin import DataApiStandIn


def sql_backend_for(kind: str, conninfo: str) -> tuple[SqlBackend, Callable[[], None]]:
    """The backend ``kind`` (``postgres`` or ``data-api``) on the database at ``conninfo``, and its closer."""
    if kind == "postgres":
        direct = PostgresBackend(conninfo, max_connections=16)
        return direct, direct.close
    database = dict(part.split("=", 1) for part in conninfo.split())["dbname"]
    standin = DataApiStandIn(conninfo, database=database)
    data_api = DataApiBackend(
        standin.client(), resource_arn=standin.resource_arn, secret_arn=standin.secret_arn, database=database
    )

    def close() -> None:
        assert standin.open_transactions() == 0, "a transaction was left open"
        standin.close()

    return data_api, close
