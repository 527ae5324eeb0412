"""Fixtures of the entity store tests: a fresh single table on the session's emulator, and one real
PostgreSQL server for the session (``tools.local.postgres``: found or installed with apt, started on a
free port in a temporary directory, stopped at the end whatever happens) with a fresh database per test.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.settings import Settings, aws_client
from pipeline.stores.schema import create_table_request
from pipeline.stores.single_table import SingleTableRepository
from pipeline.stores.sql.backend import SqlBackend
from pipeline.stores.sql.migrate import migrate
from pipeline.stores.sql.postgres import PostgresBackend
from tests.stores.backends import sql_backend_for
from tools.local.postgres import LocalPostgres


@pytest.fixture
def store_table(emulator: Settings) -> Iterator[str]:
    """A fresh single table (streams on), ACTIVE; deleted after the test."""
    dynamodb = aws_client("dynamodb", emulator)
    name = f"store-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(**create_table_request(name))
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield name
    with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
        dynamodb.delete_table(TableName=name)


@pytest.fixture
def dynamodb(emulator: Settings) -> Any:
    return aws_client("dynamodb", emulator)


@pytest.fixture
def single_table(dynamodb: Any, store_table: str) -> SingleTableRepository:
    return SingleTableRepository(dynamodb, store_table)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    with LocalPostgres(database="stores_admin") as server:
        yield server


_TEMPLATE = "stores_migrated"


@pytest.fixture(scope="session")
def migrated_template(postgres_server: LocalPostgres) -> str:
    """A database migrated once per session, copied by ``CREATE DATABASE ... TEMPLATE`` for each test."""
    import psycopg

    with psycopg.connect(postgres_server.conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{_TEMPLATE}"')
    template = PostgresBackend(postgres_server.conninfo_for(_TEMPLATE))
    migrate(template)
    template.close()
    return _TEMPLATE


def _database(server: LocalPostgres, template: str | None) -> Iterator[str]:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else " STRATEGY FILE_COPY"
    with psycopg.connect(server.conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{copy}')
    yield server.conninfo_for(name)
    with psycopg.connect(server.conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_database(postgres_server: LocalPostgres) -> Iterator[str]:
    """A fresh, empty database on the session's server; its libpq conninfo. Dropped after the test."""
    yield from _database(postgres_server, None)


@pytest.fixture
def migrated_database(postgres_server: LocalPostgres, migrated_template: str) -> Iterator[str]:
    """A fresh database with the stores' schema (a copy of the session's migrated one)."""
    yield from _database(postgres_server, migrated_template)


@pytest.fixture(params=[pytest.param("postgres", id="postgres"), pytest.param("data-api", id="data-api")])
def sql_backend(request: pytest.FixtureRequest, migrated_database: str) -> Iterator[SqlBackend]:
    """A fresh, migrated database behind each backend: the direct one, and the Data API one (through the
    stand-in, on the same real server)."""
    backend, close = sql_backend_for(request.param, migrated_database)
    yield backend
    close()
