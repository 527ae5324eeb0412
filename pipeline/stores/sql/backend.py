"""The SQL store's interface: statements with typed named parameters, transactions, batches.

Statements use the RDS Data API's placeholder syntax, ``:name``, whatever the backend. Parameter
values are Python values with one meaning on every backend (:data:`SqlValue`): ``Decimal`` is an
exact ``numeric`` (never a float), ``datetime`` must be aware and is a ``timestamptz`` instant,
:class:`Json` is ``jsonb``. Rows come back as dicts of Python values of the same kinds: ``numeric``
as ``Decimal``, ``bigint``/``integer`` as ``int``, ``timestamptz`` as an aware UTC ``datetime``,
``date`` as ``date``, ``uuid`` as :class:`~uuid.UUID`, ``json``/``jsonb`` parsed.

Guarantees every backend gives:

- :meth:`SqlBackend.execute_statement` outside a transaction commits on its own (autocommit).
- :meth:`SqlBackend.transaction` begins a transaction; leaving the block normally commits, leaving it
  by **any** exception (ours, the database's, ``KeyboardInterrupt``) rolls back and re-raises.
  :meth:`SqlBackend.execute_transaction` runs a function in one.
- Errors: the database's refusals are :class:`~pipeline.stores.errors.SqlError` with the SQLSTATE
  ``code`` and the constraint name when there is one; an unreachable or throttling service is
  :class:`~pipeline.stores.errors.StoreUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from uuid import UUID

__all__ = ["Json", "Params", "SqlBackend", "SqlResult", "SqlTransaction", "SqlValue", "run_in_transaction"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Json:
    """A value sent as ``jsonb`` (dicts, lists, strings, numbers; ``Decimal`` as its exact text)."""

    value: Any


SqlValue = None | bool | int | float | str | Decimal | datetime | date | UUID | bytes | Json
Params = Mapping[str, SqlValue]


@dataclass(frozen=True, slots=True)
class SqlResult:
    """What one statement returned.

    ``rows``: the result set, one dict per row keyed by column label (empty for statements without
    one). ``rows_updated``: rows inserted, updated or deleted (0 for a ``SELECT``). Aurora PostgreSQL
    returns no generated fields: use ``RETURNING``.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    rows_updated: int = 0
    columns: tuple[str, ...] = ()

    def one(self) -> dict[str, Any] | None:
        """The only row, or ``None`` when there is none (more than one is a bug: ``ValueError``)."""
        if len(self.rows) > 1:
            raise ValueError(f"expected at most one row, got {len(self.rows)}")
        return self.rows[0] if self.rows else None


class SqlTransaction(Protocol):
    """An open transaction: statements run in it until the backend commits or rolls it back."""

    @property
    def transaction_id(self) -> str: ...

    def execute_statement(self, sql: str, params: Params | None = None) -> SqlResult: ...

    def batch_execute_statement(self, sql: str, param_sets: Sequence[Params]) -> None:
        """The same statement once per parameter set (the Data API returns no per-set counts)."""
        ...


class SqlBackend(Protocol):
    """A PostgreSQL database reached one way or another. Implementations are thread-safe."""

    def execute_statement(self, sql: str, params: Params | None = None) -> SqlResult: ...

    def batch_execute_statement(self, sql: str, param_sets: Sequence[Params]) -> None: ...

    def transaction(self) -> AbstractContextManager[SqlTransaction]: ...

    def execute_transaction(self, work: Callable[[SqlTransaction], T]) -> T: ...


def run_in_transaction(transaction: AbstractContextManager[SqlTransaction], work: Callable[[SqlTransaction], T]) -> T:
    """``work`` in ``transaction``: committed if it returns, rolled back if it raises anything."""
    with transaction as tx:
        return work(tx)


def rows_of(columns: Sequence[str], records: Iterator[Sequence[Any]] | Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, record, strict=True)) for record in records]
