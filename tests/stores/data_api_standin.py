"""A local stand-in for the RDS Data API, so the Data API backend's real code path runs without AWS.

It is a botocore ``before-send`` hook on a real ``rds-data`` client: botocore validates and serialises
each request exactly as for AWS (rest-json, ``POST /Execute`` and friends); the hook executes it on a
real PostgreSQL server with psycopg and answers with an HTTP response that botocore parses as
usual. So the backend's request building, typed parameters, response parsing and error handling all
run for real; only the network hop and Aurora itself are replaced.

What it emulates:

- ``ExecuteStatement``: named ``:parameters`` with the Data API's typed values. A ``stringValue``
  without ``typeHint`` is sent as ``varchar`` (as the Data API does: inserting one into a ``numeric``
  column fails with "is of type numeric but expression is of type character varying"); ``typeHint``
  ``DECIMAL``/``TIMESTAMP``/``DATE``/``UUID``/``JSON`` convert it. ``records`` as typed ``Field`` s
  (``numeric`` as ``stringValue`` under the default ``decimalReturnType=STRING``, ``bigint``/``integer``
  as ``longValue``, ``timestamptz`` as ``stringValue`` ``YYYY-MM-DD HH:MM:SS[.ffffff]`` in UTC, ``json``
  text, ``bytea`` as ``blobValue``, ``NULL`` as ``isNull``); ``columnMetadata`` (``name``, ``label``,
  ``typeName``) with ``includeResultMetadata``; ``numberOfRecordsUpdated`` (rows of INSERT/UPDATE/
  DELETE, 0 for SELECT); ``generatedFields`` always empty (Aurora PostgreSQL does not fill it).
- ``BatchExecuteStatement``: one ``updateResults`` entry per parameter set; outside a transaction the
  sets commit together.
- ``BeginTransaction`` / ``CommitTransaction`` / ``RollbackTransaction``: a transaction id bound to one
  server session; an unknown id is a ``BadRequestException``.
- SQL errors: HTTP 400 ``BadRequestException`` whose message is PostgreSQL's, then
  ``; SQLState: <code>``. Inside a transaction, PostgreSQL's own rule applies: after an error only a
  rollback works.

What it does NOT emulate: authentication, IAM and Secrets Manager (the ARNs must be present, nothing
more), the HTTP endpoint and request signing, the 4 MiB request / 1 MiB response limits, statement
timeouts and ``continueAfterTimeout``, transactions expiring after 3 minutes idle, ``formatRecordsAs``
``JSON`` and ``decimalReturnType=DOUBLE_OR_LONG`` (refused with ``BadRequestException``), the newer
``DatabaseErrorException`` type, the exact text of AWS's own messages, column metadata beyond names and
types, array results, and a paused Serverless v2 cluster resuming (``DatabaseResumingException``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import psycopg
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from psycopg.types.json import Jsonb
from psycopg.types.string import StrDumperVarchar

from pipeline.settings import Settings, aws_client
from pipeline.stores.sql.text import to_pyformat

_COUNTED = re.compile(r"^(INSERT \d+|UPDATE|DELETE|MERGE) (\d+)$")
# Nothing listens there: if a request ever escaped the hook it would fail at once, locally.
_NOWHERE = "http://127.0.0.1:9"


class _Varchar(str):
    """A ``stringValue`` without a type hint: PostgreSQL sees ``character varying``."""

    __slots__ = ()


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class _BadRequest(Exception):  # noqa: N818 - the Data API's error name
    pass


def _value(parameter: dict[str, Any]) -> Any:
    value = parameter.get("value", {})
    hint = parameter.get("typeHint")
    if value.get("isNull"):
        return None
    if "stringValue" in value:
        text: str = value["stringValue"]
        if hint is None:
            return _Varchar(text)
        converters: dict[str, Any] = {
            "DECIMAL": Decimal,
            "TIMESTAMP": lambda t: datetime.fromisoformat(t.replace(" ", "T")),
            "DATE": date.fromisoformat,
            "UUID": uuid.UUID,
            "JSON": lambda t: Jsonb(json.loads(t)),
            "TIME": lambda t: t,
        }
        return converters[hint](text)
    if "blobValue" in value:
        return base64.b64decode(value["blobValue"])
    for member in ("longValue", "doubleValue", "booleanValue"):
        if member in value:
            return value[member]
    raise _BadRequest(f"unsupported parameter value {sorted(value)}")


def _field(value: Any) -> dict[str, Any]:
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, Decimal):
        return {"stringValue": str(value)}
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return {"stringValue": value.isoformat(sep=" ")}
    if isinstance(value, date | uuid.UUID):
        return {"stringValue": str(value)}
    if isinstance(value, bytes | memoryview):
        return {"blobValue": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict | list):
        return {"stringValue": json.dumps(value)}
    return {"stringValue": str(value)}


class DataApiStandIn:
    """Answers ``rds-data`` calls of the clients it made from the PostgreSQL database at ``conninfo``.

    ``calls`` counts operations by name. Thread-safe: each transaction has its own session.
    """

    def __init__(self, conninfo: str, *, database: str = "pipeline") -> None:
        self._conninfo = conninfo
        self.database = database
        self.resource_arn = "arn:aws:rds:us-east-1:000000000000:cluster:stand-in"
        self.secret_arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:stand-in"  # noqa: S105 - an ARN
        self._transactions: dict[str, psycopg.Connection[Any]] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def client(self) -> Any:
        """A real botocore ``rds-data`` client whose requests this stand-in answers."""
        client = aws_client("rds-data", Settings(endpoint_url=_NOWHERE, max_attempts=1))
        client.meta.events.register("before-send.rds-data", self._answer)
        return client

    def open_transactions(self) -> int:
        with self._lock:
            return len(self._transactions)

    def close(self) -> None:
        with self._lock:
            sessions, self._transactions = list(self._transactions.values()), {}
        for session in sessions:
            session.close()

    # ------------------------------------------------------------------ the hook

    def _answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        operation = urlsplit(request.url).path.strip("/")
        body = request.body
        payload = json.loads(body if isinstance(body, bytes | str) and body else "{}")
        with self._lock:
            self.calls[operation] += 1
        try:
            if not payload.get("resourceArn") or not payload.get("secretArn"):
                raise _BadRequest("resourceArn and secretArn are required")
            handler = {
                "Execute": self._execute,
                "BatchExecute": self._batch_execute,
                "BeginTransaction": self._begin,
                "CommitTransaction": self._commit,
                "RollbackTransaction": self._rollback,
            }.get(operation)
            if handler is None:
                raise _BadRequest(f"{operation} is not emulated")
            return self._response(request, 200, handler(payload))
        except psycopg.Error as exc:
            diag = exc.diag
            message = f"ERROR: {diag.message_primary or exc}"
            if diag.message_detail:
                message += f"\n  Detail: {diag.message_detail}"
            return self._error(request, f"{message}; SQLState: {exc.sqlstate}")
        except _BadRequest as exc:
            return self._error(request, str(exc))

    def _response(self, request: AWSPreparedRequest, status: int, body: dict[str, Any]) -> AWSResponse:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _Body(data))

    def _error(self, request: AWSPreparedRequest, message: str) -> AWSResponse:
        response = self._response(request, 400, {"message": message})
        response.headers["x-amzn-ErrorType"] = "BadRequestException"
        return response

    # ------------------------------------------------------------------ operations

    def _connect(self, *, autocommit: bool) -> psycopg.Connection[Any]:
        connection = psycopg.connect(self._conninfo, autocommit=autocommit, options="-c TimeZone=UTC")
        connection.adapters.register_dumper(_Varchar, StrDumperVarchar)
        return connection

    @contextlib.contextmanager
    def _session(self, payload: dict[str, Any]) -> Iterator[psycopg.Connection[Any]]:
        if payload.get("database", self.database) != self.database:
            raise _BadRequest(f"Database {payload.get('database')} does not exist")
        transaction_id = payload.get("transactionId")
        if transaction_id is None:
            with self._connect(autocommit=False) as connection:  # commits on exit, rolls back on error
                yield connection
            return
        with self._lock:
            open_session = self._transactions.get(transaction_id)
        if open_session is None:
            raise _BadRequest(f"Transaction {transaction_id} is not found")
        yield open_session

    def _execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("formatRecordsAs", "NONE") != "NONE":
            raise _BadRequest("formatRecordsAs JSON is not emulated")
        if payload.get("resultSetOptions", {}).get("decimalReturnType", "STRING") != "STRING":
            raise _BadRequest("decimalReturnType DOUBLE_OR_LONG is not emulated")
        params = {p["name"]: _value(p) for p in payload.get("parameters", [])}
        with self._session(payload) as connection, connection.cursor() as cursor:
            cursor.execute(to_pyformat(payload["sql"]), params)
            match = _COUNTED.match(cursor.statusmessage or "")
            response: dict[str, Any] = {
                "numberOfRecordsUpdated": int(match[2]) if match else 0,
                "generatedFields": [],
            }
            if cursor.description:
                response["records"] = [[_field(v) for v in row] for row in cursor.fetchall()]
                if payload.get("includeResultMetadata"):
                    types = connection.adapters.types
                    response["columnMetadata"] = [
                        {
                            "name": column.name,
                            "label": column.name,
                            "typeName": (info.name if (info := types.get(column.type_code)) else "unknown"),
                        }
                        for column in cursor.description
                    ]
            return response

    def _batch_execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        sets = [{p["name"]: _value(p) for p in parameters} for parameters in payload.get("parameterSets", [])]
        with self._session(payload) as connection, connection.cursor() as cursor:
            cursor.executemany(to_pyformat(payload["sql"]), sets)
        return {"updateResults": [{"generatedFields": []} for _ in sets]}

    def _begin(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("database", self.database) != self.database:
            raise _BadRequest(f"Database {payload.get('database')} does not exist")
        transaction_id = base64.b64encode(secrets.token_bytes(36)).decode()
        connection = self._connect(autocommit=False)
        with self._lock:
            self._transactions[transaction_id] = connection
        return {"transactionId": transaction_id}

    def _end(self, payload: dict[str, Any], *, commit: bool) -> None:
        with self._lock:
            connection = self._transactions.pop(payload.get("transactionId", ""), None)
        if connection is None:
            raise _BadRequest(f"Transaction {payload.get('transactionId')} is not found")
        try:
            if commit:
                connection.commit()
            else:
                connection.rollback()
        finally:
            connection.close()

    def _commit(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._end(payload, commit=True)
        return {"transactionStatus": "Transaction Committed"}

    def _rollback(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._end(payload, commit=False)
        return {"transactionStatus": "Rollback Complete"}
