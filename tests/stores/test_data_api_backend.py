"""The Data API backend's requests, as botocore sends them (seen by a hook before the stand-in answers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from pipeline.stores.errors import SqlError, StoreUnavailableError
from pipeline.stores.sql.data_api import DataApiBackend
from pipeline.stores.sql.postgres import PostgresBackend
from tests.stores.data_api_standin import DataApiStandIn


@pytest.fixture
def recorded(postgres_database: str) -> Iterator[tuple[DataApiBackend, list[tuple[str, dict[str, Any]]]]]:
    database = dict(part.split("=", 1) for part in postgres_database.split())["dbname"]
    standin = DataApiStandIn(postgres_database, database=database)
    client = standin.client()
    requests: list[tuple[str, dict[str, Any]]] = []

    def record(request: Any, **_: Any) -> None:
        requests.append((request.url.rsplit("/", 1)[-1], json.loads(request.body or b"{}")))

    client.meta.events.register_first("before-send.rds-data", record)
    yield (
        DataApiBackend(client, resource_arn=standin.resource_arn, secret_arn=standin.secret_arn, database=database),
        requests,
    )
    standin.close()


def test_money_goes_as_a_decimal_type_hint_and_a_bare_string_would_not_do(
    recorded: tuple[DataApiBackend, list[tuple[str, dict[str, Any]]]],
) -> None:
    backend, requests = recorded
    backend.execute_statement("CREATE TABLE m (amount numeric)")
    # WHEN a Decimal is written
    backend.execute_statement("INSERT INTO m VALUES (:amount)", {"amount": Decimal("0.10")})
    # THEN it went as a string with typeHint DECIMAL, never through a double
    (parameter,) = requests[-1][1]["parameters"]
    assert parameter == {"name": "amount", "value": {"stringValue": "0.10"}, "typeHint": "DECIMAL"}
    # AND the same text without the hint is refused, as by the Data API (varchar into numeric)
    with pytest.raises(SqlError) as caught:
        backend.execute_statement("INSERT INTO m VALUES (:amount)", {"amount": "0.10"})
    assert caught.value.code == "42804"


def test_every_statement_of_a_transaction_carries_its_id_and_an_error_rolls_it_back(
    recorded: tuple[DataApiBackend, list[tuple[str, dict[str, Any]]]],
) -> None:
    backend, requests = recorded
    backend.execute_statement("CREATE TABLE k (v bigint PRIMARY KEY)")
    requests.clear()
    with pytest.raises(SqlError), backend.transaction() as tx:
        tx.execute_statement("INSERT INTO k VALUES (:v)", {"v": 1})
        tx.batch_execute_statement("INSERT INTO k VALUES (:v)", [{"v": 2}, {"v": 1}])
    operations = [operation for operation, _ in requests]
    assert operations == ["BeginTransaction", "Execute", "BatchExecute", "RollbackTransaction"]
    ids = {body.get("transactionId") for operation, body in requests if operation != "BeginTransaction"}
    assert len(ids) == 1 and None not in ids
    assert backend.execute_statement("SELECT count(*) AS n FROM k").rows == [{"n": 0}]


def test_a_resuming_database_is_a_store_unavailable_error(
    recorded: tuple[DataApiBackend, list[tuple[str, dict[str, Any]]]],
) -> None:
    # GIVEN a Data API that answers like a paused Serverless v2 cluster waking up
    backend, _ = recorded

    def resuming(request: Any, **_: Any) -> AWSResponse:
        body = json.dumps({"message": "The database is resuming"}).encode()
        headers = {"x-amzn-ErrorType": "DatabaseResumingException", "Content-Length": str(len(body))}
        return AWSResponse(request.url, 400, HTTPHeaders.from_dict(headers), _Raw(body))

    backend._client.meta.events.register_first("before-send.rds-data", resuming)
    # WHEN a statement runs, THEN the caller is told to come back later, not that its SQL is wrong
    with pytest.raises(StoreUnavailableError):
        backend.execute_statement("SELECT 1")


def test_an_unreachable_server_is_a_store_unavailable_error() -> None:
    backend = PostgresBackend("host=127.0.0.1 port=9 dbname=x user=x password=x", connect_timeout=2)
    with pytest.raises(StoreUnavailableError):
        backend.execute_statement("SELECT 1")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body
