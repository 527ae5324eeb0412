"""The RDS Data API backend: Aurora Serverless v2 PostgreSQL over HTTPS, through a boto3 ``rds-data`` client.

Only boto3 is needed (this is what the Lambda functions use). Guarantees, besides the interface's
(:mod:`pipeline.stores.sql.backend`):

- **Typed parameters**: ``None`` -> ``isNull``; ``bool`` -> ``booleanValue``; ``int`` -> ``longValue``;
  ``float`` -> ``doubleValue``; ``str`` -> ``stringValue``; ``bytes`` -> ``blobValue``; ``Decimal`` ->
  ``stringValue`` with ``typeHint`` ``DECIMAL`` (exact, never through a double); aware ``datetime`` ->
  ``stringValue`` ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC with ``TIMESTAMP``; ``date`` -> ``DATE``;
  ``UUID`` -> ``UUID``; :class:`Json` -> ``JSON``. A naive datetime is refused.
- **Typed results**: requests ask for result metadata and ``decimalReturnType=STRING``; each field is
  converted by its column's type name (``numeric`` -> ``Decimal``, ``timestamptz`` -> aware UTC
  ``datetime``, ``date``, ``uuid``, ``json``/``jsonb`` parsed; ``longValue`` -> ``int``, ...).
- **Transactions**: ``BeginTransaction`` gives a ``transactionId`` that every statement of the block
  carries; the block ends with ``CommitTransaction``, or with ``RollbackTransaction`` when **anything**
  raised inside it (a failed rollback is logged and the original error re-raised: the Data API rolls
  back a transaction left idle for 3 minutes by itself).
- **Errors**: SQL errors (``BadRequestException``/``DatabaseErrorException``) become
  :class:`SqlError` with the SQLSTATE and constraint name read from the message
  (``...; SQLState: 23505``); throttling, timeouts, a resuming or unavailable database become
  :class:`StoreUnavailableError` (botocore has already retried what it classifies as retryable).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.exceptions import ConfigurationError
from pipeline.stores.errors import SqlError, StoreError, StoreUnavailableError
from pipeline.stores.sql.backend import Json, Params, SqlResult, SqlTransaction, SqlValue, run_in_transaction

__all__ = ["TARGET_ENV", "DataApiBackend", "data_api_target_from_env", "from_field", "to_parameter"]

log = logging.getLogger(__name__)
T = TypeVar("T")

TARGET_ENV: Final = {
    "resource_arn": "STORES_CLUSTER_ARN",
    "secret_arn": "STORES_SECRET_ARN",
    "database": "STORES_DATABASE",
}
"""The environment variables naming the cluster, its credentials' secret and the database."""

_UNAVAILABLE: Final = frozenset(
    {
        "StatementTimeoutException",
        "ServiceUnavailableError",
        "InternalServerErrorException",
        "DatabaseResumingException",
        "DatabaseUnavailableException",
        "ThrottlingException",
    }
)
_SQL_ERRORS: Final = frozenset({"BadRequestException", "DatabaseErrorException"})
_SQLSTATE: Final = re.compile(r"SQLState: ([0-9A-Z]{5})")
_CONSTRAINT: Final = re.compile(r'constraint "([^"]+)"')


def _timestamp_text(name: str, value: datetime) -> str:
    if value.tzinfo is None:
        raise SqlError(f"parameter {name!r}: naive datetime (stores take aware times only)")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# (Python type, Field member, typeHint, text of the value); checked in order: bool before int, datetime before date.
_ENCODINGS: Final[tuple[tuple[type, str, str | None, Callable[[str, Any], Any]], ...]] = (
    (bool, "booleanValue", None, lambda _n, v: v),
    (int, "longValue", None, lambda _n, v: v),
    (float, "doubleValue", None, lambda _n, v: v),
    (str, "stringValue", None, lambda _n, v: v),
    (bytes, "blobValue", None, lambda _n, v: v),
    (Decimal, "stringValue", "DECIMAL", lambda _n, v: str(v)),
    (datetime, "stringValue", "TIMESTAMP", _timestamp_text),
    (date, "stringValue", "DATE", lambda _n, v: v.isoformat()),
    (UUID, "stringValue", "UUID", lambda _n, v: str(v)),
    (Json, "stringValue", "JSON", lambda _n, v: json.dumps(v.value, default=_json_default, separators=(",", ":"))),
)


def to_parameter(name: str, value: SqlValue) -> dict[str, Any]:
    """One ``SqlParameter`` of the Data API for a Python value (see the module docstring)."""
    if value is None:
        return {"name": name, "value": {"isNull": True}}
    for kind, member, hint, encode in _ENCODINGS:
        if isinstance(value, kind):
            parameter: dict[str, Any] = {"name": name, "value": {member: encode(name, value)}}
            if hint is not None:
                parameter["typeHint"] = hint
            return parameter
    raise SqlError(f"parameter {name!r}: {type(value).__name__} has no Data API type")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON")


def _parse_timestamp(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace(" ", "T"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


_FROM_TEXT: Final[Mapping[str, Callable[[str], Any]]] = {
    "numeric": Decimal,
    "decimal": Decimal,
    "timestamptz": _parse_timestamp,
    "timestamp": _parse_timestamp,
    "date": date.fromisoformat,
    "uuid": UUID,
    "json": lambda text: json.loads(text, parse_float=Decimal),
    "jsonb": lambda text: json.loads(text, parse_float=Decimal),
    "int8": int,  # longReturnType=STRING
    "int4": int,
    "int2": int,
}


def from_field(field: Mapping[str, Any], type_name: str) -> Any:
    """A Data API ``Field`` as the Python value the interface promises for a column of ``type_name``."""
    if field.get("isNull"):
        return None
    if "stringValue" in field:
        convert = _FROM_TEXT.get(type_name.lower())
        return convert(field["stringValue"]) if convert else field["stringValue"]
    if "blobValue" in field:
        blob = field["blobValue"]
        return blob if isinstance(blob, bytes) else base64.b64decode(blob)
    if "arrayValue" in field:
        (values,) = field["arrayValue"].values()
        return list(values)
    for member in ("longValue", "booleanValue", "doubleValue"):
        if member in field:
            return field[member]
    raise SqlError(f"unexpected Data API field {sorted(field)}")


def data_api_target_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """:class:`DataApiBackend`'s keyword arguments from :data:`TARGET_ENV`; :class:`ConfigurationError`
    naming every variable that is unset."""
    missing = [name for name in TARGET_ENV.values() if not environ.get(name)]
    if missing:
        raise ConfigurationError(f"the SQL store's Data API target is not configured: set {', '.join(missing)}")
    return {argument: environ[name] for argument, name in TARGET_ENV.items()}


def _translate(exc: ClientError | BotoCoreError) -> StoreError:
    if isinstance(exc, BotoCoreError):  # connection errors after botocore's retries
        return StoreUnavailableError(f"RDS Data API unreachable: {exc}")
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", str(exc))
    if code in _UNAVAILABLE:
        return StoreUnavailableError(f"RDS Data API {code}: {message}")
    if code in _SQL_ERRORS:
        state = _SQLSTATE.search(message)
        constraint = _CONSTRAINT.search(message)
        return SqlError(message, code=state[1] if state else None, constraint=constraint[1] if constraint else None)
    return StoreError(f"RDS Data API refused the request ({code}): {message}")


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Every Data API call runs in this: botocore's errors leave it as store errors."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc) from exc


class _Transaction:
    def __init__(self, backend: DataApiBackend, transaction_id: str) -> None:
        self._backend = backend
        self._id = transaction_id

    @property
    def transaction_id(self) -> str:
        return self._id

    def execute_statement(self, sql: str, params: Params | None = None) -> SqlResult:
        return self._backend._execute(sql, params, self._id)

    def batch_execute_statement(self, sql: str, param_sets: Sequence[Params]) -> None:
        self._backend._batch(sql, param_sets, self._id)


class DataApiBackend:
    """An Aurora cluster's database through the Data API. ``client`` is a boto3/botocore ``rds-data``
    client built once by the caller; ``resource_arn`` the cluster's ARN, ``secret_arn`` the Secrets
    Manager secret with the database credentials. Thread-safe."""

    def __init__(self, client: Any, *, resource_arn: str, secret_arn: str, database: str) -> None:
        self._client = client
        self._arns = {"resourceArn": resource_arn, "secretArn": secret_arn}
        self._target = {**self._arns, "database": database}

    def execute_statement(self, sql: str, params: Params | None = None) -> SqlResult:
        return self._execute(sql, params, None)

    def batch_execute_statement(self, sql: str, param_sets: Sequence[Params]) -> None:
        """Outside a transaction the Data API commits the call's sets itself."""
        self._batch(sql, param_sets, None)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        with _translated():
            transaction_id: str = self._client.begin_transaction(**self._target)["transactionId"]
        try:
            yield _Transaction(self, transaction_id)
        except BaseException:
            try:
                with _translated():
                    self._client.rollback_transaction(**self._arns, transactionId=transaction_id)
            except StoreError:
                log.warning("rollback of transaction %s failed; the Data API ends it after 3 minutes", transaction_id)
            raise
        with _translated():
            self._client.commit_transaction(**self._arns, transactionId=transaction_id)

    def execute_transaction(self, work: Callable[[SqlTransaction], T]) -> T:
        return run_in_transaction(self.transaction(), work)

    # ------------------------------------------------------------------ internals

    def _execute(self, sql: str, params: Params | None, transaction_id: str | None) -> SqlResult:
        request: dict[str, Any] = {
            "sql": sql,
            "parameters": [to_parameter(name, value) for name, value in (params or {}).items()],
            "includeResultMetadata": True,
            "resultSetOptions": {"decimalReturnType": "STRING", "longReturnType": "LONG"},
        }
        if transaction_id is not None:
            request["transactionId"] = transaction_id
        with _translated():
            response: dict[str, Any] = self._client.execute_statement(**self._target, **request)
        metadata = response.get("columnMetadata") or []
        columns = tuple(str(column.get("label") or column.get("name")) for column in metadata)
        types = [str(column.get("typeName", "")) for column in metadata]
        rows = [
            {name: from_field(value, kind) for name, kind, value in zip(columns, types, record, strict=True)}
            for record in response.get("records") or []
        ]
        return SqlResult(rows=rows, rows_updated=int(response.get("numberOfRecordsUpdated", 0)), columns=columns)

    def _batch(self, sql: str, param_sets: Sequence[Params], transaction_id: str | None) -> None:
        if not param_sets:
            return
        request: dict[str, Any] = {
            "sql": sql,
            "parameterSets": [[to_parameter(n, v) for n, v in params.items()] for params in param_sets],
        }
        if transaction_id is not None:
            request["transactionId"] = transaction_id
        with _translated():
            self._client.batch_execute_statement(**self._target, **request)
