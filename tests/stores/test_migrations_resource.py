"""The migrations custom resource: its handler against a real PostgreSQL through the Data API stand-in,
and its answers to CloudFormation (the cfn-response contract), including over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from pipeline.stores.errors import StoreUnavailableError
from pipeline.stores.sql.backend import SqlBackend, SqlTransaction
from pipeline.stores.sql.data_api import DataApiBackend
from pipeline.stores.sql.migrate import applied_migrations, load_migrations
from pipeline.stores.sql.migrations_resource import MAX_BODY_BYTES, MigrationsResource, put_response
from tests.stores.data_api_standin import DataApiStandIn

LATEST = load_migrations()[-1].version


class _Context:
    def __init__(self, seconds_left: float = 300.0) -> None:
        self.seconds_left = seconds_left

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)


class _Responses:
    """Captures what the handler PUTs, per URL."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, url: str, body: bytes) -> None:
        assert len(body) <= MAX_BODY_BYTES
        self.sent.append((url, json.loads(body)))


def _request(kind: str, standin: DataApiStandIn, database: str, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": kind,
        "RequestId": f"req-{kind}",
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/s/1",
        "LogicalResourceId": "StoresSchema",
        "ResponseURL": f"https://cloudformation-custom-resource-response.example/{kind}",
        "ResourceType": "Custom::StoresMigrations",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:000000000000:function:m",
            "ClusterArn": standin.resource_arn,
            "SecretArn": standin.secret_arn,
            "Database": database,
            "Migrations": LATEST,
        },
    }
    event.update(extra)
    return event


@pytest.fixture
def standin(postgres_database: str) -> Iterator[tuple[DataApiStandIn, str]]:
    database = dict(part.split("=", 1) for part in postgres_database.split())["dbname"]
    server = DataApiStandIn(postgres_database, database=database)
    yield server, database
    assert server.open_transactions() == 0, "a transaction was left open"
    server.close()


def _factory(standin: DataApiStandIn, calls: list[Mapping[str, Any]]) -> Callable[[Mapping[str, Any]], SqlBackend]:
    def build(props: Mapping[str, Any]) -> SqlBackend:
        calls.append(props)
        arns = {"resource_arn": props["ClusterArn"], "secret_arn": props["SecretArn"]}
        return DataApiBackend(standin.client(), **arns, database=props["Database"])

    return build


def test_create_migrates_an_empty_database_and_update_applies_nothing_more(
    standin: tuple[DataApiStandIn, str],
) -> None:
    server, database = standin
    responses = _Responses()
    calls: list[Mapping[str, Any]] = []
    resource = MigrationsResource(_factory(server, calls), send=responses)
    # WHEN CloudFormation creates the resource on an empty database
    created = resource.handle(_request("Create", server, database), _Context())
    # THEN every migration is applied and the answer says so, to the request's URL, with its ids copied
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert created["Data"] == {"Applied": ",".join(m.version for m in load_migrations()), "Latest": LATEST}
    assert (created["RequestId"], created["LogicalResourceId"]) == ("req-Create", "StoresSchema")
    assert created["StackId"].startswith("arn:aws:cloudformation:")
    assert created["PhysicalResourceId"] == f"{server.resource_arn}/{database}/schema"
    backend = DataApiBackend(
        server.client(), resource_arn=server.resource_arn, secret_arn=server.secret_arn, database=database
    )
    assert applied_migrations(backend) == [m.version for m in load_migrations()]
    assert backend.execute_statement("SELECT to_regclass('outbox') IS NOT NULL AS present").one() == {"present": True}
    # WHEN it is updated (a new deploy), THEN nothing more is applied and the physical id is the same
    updated = resource.handle(
        _request("Update", server, database, PhysicalResourceId=created["PhysicalResourceId"]), _Context()
    )
    assert updated["Status"] == "SUCCESS"
    assert updated["Data"] == {"Applied": "", "Latest": LATEST}
    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert [url.rsplit("/", 1)[1] for url, _ in responses.sent] == ["Create", "Update"]


def test_delete_answers_success_without_touching_the_database(standin: tuple[DataApiStandIn, str]) -> None:
    server, database = standin
    responses = _Responses()
    calls: list[Mapping[str, Any]] = []
    resource = MigrationsResource(_factory(server, calls), send=responses)
    answer = resource.handle(_request("Delete", server, database, PhysicalResourceId="old-id"), _Context())
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "old-id")
    assert calls == []
    assert len(responses.sent) == 1


def test_a_failing_migration_is_answered_failed_with_its_reason_and_rolled_back(
    standin: tuple[DataApiStandIn, str],
) -> None:
    # GIVEN a database where a table of the first migration already exists (made by hand)
    server, database = standin
    backend = DataApiBackend(
        server.client(), resource_arn=server.resource_arn, secret_arn=server.secret_arn, database=database
    )
    backend.execute_statement("CREATE TABLE products (id int)")
    responses: _Responses = _Responses()
    answer = MigrationsResource(_factory(server, []), send=responses).handle(
        _request("Create", server, database), _Context()
    )
    # THEN the request is answered once, FAILED, naming PostgreSQL's reason, and nothing was recorded
    assert answer["Status"] == "FAILED"
    assert "already exists" in answer["Reason"]
    assert len(responses.sent) == 1
    assert applied_migrations(backend) == []
    assert backend.execute_statement("SELECT to_regclass('users') IS NULL AS absent").one() == {"absent": True}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"Migrations": "9999_future"}, "expects migration 9999_future", id="unknown-migration"),
        pytest.param({"Database": ""}, "Database is missing", id="no-database"),
        pytest.param({"RequestType": "Replace"}, "unknown RequestType", id="unknown-request"),
    ],
)
def test_a_request_the_handler_cannot_serve_is_answered_failed(
    standin: tuple[DataApiStandIn, str], change: dict[str, str], reason: str
) -> None:
    server, database = standin
    event = _request("Create", server, database)
    if "RequestType" in change:
        event.update(change)
    else:
        event["ResourceProperties"].update(change)
    responses = _Responses()
    calls: list[Mapping[str, Any]] = []
    answer = MigrationsResource(_factory(server, calls), send=responses).handle(event, _Context())
    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]
    assert calls == [], "nothing was run against the database"


class _Resuming:
    """A backend whose database is resuming for its first ``pauses`` transactions."""

    def __init__(self, inner: SqlBackend, pauses: int) -> None:
        self.inner, self.pauses = inner, pauses

    def execute_statement(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.execute_statement(*args, **kwargs)

    def batch_execute_statement(self, *args: Any, **kwargs: Any) -> None:
        self.inner.batch_execute_statement(*args, **kwargs)

    def transaction(self) -> AbstractContextManager[SqlTransaction]:
        return self.inner.transaction()

    def execute_transaction(self, work: Any) -> Any:
        if self.pauses:
            self.pauses -= 1
            raise StoreUnavailableError("RDS Data API DatabaseResumingException: the database is resuming")
        return self.inner.execute_transaction(work)


@pytest.mark.parametrize(
    ("seconds_left", "status", "sleeps"),
    [
        pytest.param(300.0, "SUCCESS", [1.0, 2.0], id="resumes-in-time"),
        pytest.param(20.5, "FAILED", [], id="no-time-to-wait"),
    ],
)
def test_a_resuming_database_is_waited_for_while_the_invocation_has_time(
    standin: tuple[DataApiStandIn, str], seconds_left: float, status: str, sleeps: list[float]
) -> None:
    server, database = standin
    slept: list[float] = []

    def build(props: Mapping[str, Any]) -> SqlBackend:
        return _Resuming(_factory(server, [])(props), pauses=2)

    resource = MigrationsResource(build, send=_Responses(), sleep=slept.append)
    answer = resource.handle(_request("Create", server, database), _Context(seconds_left))
    assert answer["Status"] == status
    assert slept == sleeps


def test_a_long_reason_is_cut_to_keep_the_body_within_the_limit(standin: tuple[DataApiStandIn, str]) -> None:
    server, database = standin
    event = _request("Create", server, database)
    event["ResourceProperties"]["Migrations"] = "x" * 6000
    responses = _Responses()
    answer = MigrationsResource(_factory(server, []), send=responses).handle(event, _Context())
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].endswith("...")
    assert len(json.dumps(answer).encode()) <= MAX_BODY_BYTES


def test_the_answer_is_a_put_with_an_empty_content_type_as_the_presigned_url_expects() -> None:
    # GIVEN a local HTTP server standing in for the pre-signed S3 URL
    received: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            received.update(method="PUT", content_type=self.headers.get("Content-Type"), body=self.rfile.read(length))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    try:
        # WHEN the handler's sender answers to it
        put_response(f"http://127.0.0.1:{server.server_port}/bucket/key?X-Amz-Signature=abc", b'{"Status": "SUCCESS"}')
    finally:
        thread.join(timeout=10)
        server.server_close()
    # THEN it was one PUT of the body, with an empty Content-Type (the signature covers none)
    assert received == {"method": "PUT", "content_type": "", "body": b'{"Status": "SUCCESS"}'}


def test_a_response_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an HTTP"):
        put_response("file:///etc/passwd", b"{}")
