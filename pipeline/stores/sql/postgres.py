"""The direct backend: PostgreSQL through psycopg 3, for local runs and tests against a real server.

Why psycopg 3: it is the maintained PostgreSQL driver for Python (psycopg2's successor, same
maintainers), typed (``py.typed``), adapts ``Decimal``, aware ``datetime``, ``UUID`` and ``jsonb``
natively in both directions, reports SQLSTATE and constraint names on every error, and ships binary
wheels with libpq for CPython 3.11 and 3.12 (no system libpq or compiler needed). It is imported only
by this module, lazily: the Lambda package (which reaches Aurora through the Data API) never needs it.

Guarantees, besides the interface's (:mod:`pipeline.stores.sql.backend`):

- Every session runs in UTC (``timestamptz`` values come back aware, in UTC).
- Connections come from a small pool (at most ``max_connections`` open at once; callers beyond that
  wait); a connection whose session broke is discarded, not reused. Thread-safe.
- Transactions run at the server's default isolation, READ COMMITTED, as Aurora's do through the Data
  API; the repository's conditional updates are written to be correct at that level.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pipeline.stores.errors import SqlError, StoreUnavailableError
from pipeline.stores.sql.backend import Json, Params, SqlResult, SqlTransaction, rows_of, run_in_transaction
from pipeline.stores.sql.text import to_pyformat

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresBackend"]

T = TypeVar("T")
_COUNTED = re.compile(r"^(INSERT \d+|UPDATE|DELETE|MERGE) (\d+)$")


def _adapt(params: Params | None) -> dict[str, Any]:
    from psycopg.types.json import Jsonb

    if not params:
        return {}
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, Json):
            out[name] = Jsonb(value.value, dumps=_json_dumps)
        elif isinstance(value, datetime) and value.tzinfo is None:
            raise SqlError(f"parameter {name!r}: naive datetime (stores take aware times only)")
        else:
            out[name] = value
    return out


def _json_dumps(value: Any) -> str:
    import json
    from decimal import Decimal

    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return str(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON")

    return json.dumps(value, default=default, separators=(",", ":"))


def _translate(exc: Exception) -> Exception:
    """Connection-level failures (no SQLSTATE, class 08, server shutting down) are
    :class:`StoreUnavailableError`; everything the database refused, deadlocks and serialisation
    failures included, is :class:`SqlError` with its SQLSTATE and constraint."""
    import psycopg

    if not isinstance(exc, psycopg.Error):
        return exc
    state = exc.sqlstate
    if state is None or state.startswith("08") or state in {"57P01", "57P02", "57P03"}:
        return StoreUnavailableError(f"PostgreSQL unreachable: {exc}")
    return SqlError(str(exc).strip(), code=state, constraint=exc.diag.constraint_name)


class _Transaction:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        self._id = f"pg-{id(connection):x}-{connection.info.backend_pid}"

    @property
    def transaction_id(self) -> str:
        return self._id

    def execute_statement(self, sql: str, params: Params | None = None) -> SqlResult:
        return _execute(self._connection, sql, params)

    def batch_execute_statement(self, sql: str, param_sets: Sequence[Params]) -> None:
        _execute_many(self._connection, sql, param_sets)


def _execute(connection: psycopg.Connection[Any], sql: str, params: Params | None) -> SqlResult:
    import psycopg

    try:
        with connection.cursor() as cursor:
            cursor.execute(to_pyformat(sql), _adapt(params))
            columns = tuple(column.name for column in cursor.description or ())
            rows = rows_of(columns, cursor.fetchall()) if cursor.description else []
            match = _COUNTED.match(cursor.statusmessage or "")
            return SqlResult(rows=rows, rows_updated=int(match[2]) if match else 0, columns=columns)
    except psycopg.Error as exc:
        raise _translate(exc) from exc


def _execute_many(connection: psycopg.Connection[Any], sql: str, param_sets: Sequence[Params]) -> None:
    import psycopg

    if not param_sets:
        return
    try:
        with connection.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), [_adapt(p) for p in param_sets])
    except psycopg.Error as exc:
        raise _translate(exc) from exc


class PostgresBackend:
    """A PostgreSQL database at ``conninfo`` (a libpq connection string). Call :meth:`close` when done."""

    def __init__(self, conninfo: str, *, max_connections: int = 8, connect_timeout: float = 10.0) -> None:
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._idle: list[psycopg.Connection[Any]] = []
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ the interface

    def execute_statement(self, sql: str, params: Params | None = None) -> SqlResult:
        with self._connection(autocommit=True) as connection:
            return _execute(connection, sql, params)

    def batch_execute_statement(self, sql: str, param_sets: Sequence[Params]) -> None:
        """Outside a transaction the sets run in one implicit transaction (all or none)."""
        with self.transaction() as tx:
            tx.batch_execute_statement(sql, param_sets)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        import psycopg

        with self._connection(autocommit=False) as connection:
            try:
                yield _Transaction(connection)
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    connection.rollback()
                raise
            try:
                connection.commit()
            except psycopg.Error as exc:
                raise _translate(exc) from exc

    def execute_transaction(self, work: Callable[[SqlTransaction], T]) -> T:
        return run_in_transaction(self.transaction(), work)

    def close(self) -> None:
        """Close idle connections; connections in use close when returned."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # ------------------------------------------------------------------ the pool

    @contextlib.contextmanager
    def _connection(self, *, autocommit: bool) -> Iterator[psycopg.Connection[Any]]:
        import psycopg

        self._slots.acquire()
        connection: psycopg.Connection[Any] | None = None
        try:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                try:
                    connection = psycopg.connect(
                        self._conninfo, connect_timeout=int(self._connect_timeout), options="-c TimeZone=UTC"
                    )
                except psycopg.Error as exc:
                    raise _translate(exc) from exc
            connection.autocommit = autocommit
            yield connection
        finally:
            if connection is not None:
                healthy = (
                    not connection.closed and connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                )
                with self._lock:
                    keep = healthy and not self._closed
                    if keep:
                        self._idle.append(connection)
                if not keep:
                    connection.close()
            self._slots.release()
