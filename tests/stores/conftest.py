"""Fixtures of the entity store tests: a fresh single table on the session's emulator, and one real
PostgreSQL server for the session (``pipeline.local.postgres``: found or installed with apt, started on a
free port in a temporary directory, stopped at the end whatever happens) with a fresh database per test.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.local.postgres import LocalPostgres
from pipeline.settings import Settings, aws_client
from pipeline.stores.schema import create_table_request
from pipeline.stores.single_table import SingleTableRepository


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


@pytest.fixture
def postgres_database(postgres_server: LocalPostgres) -> Iterator[str]:
    """A fresh, empty database on the session's server; its libpq conninfo. Dropped after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server.conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.conninfo_for(name)
    with psycopg.connect(postgres_server.conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
