"""Schema migrations: ``migrations/NNNN_name.sql``, applied in order, each once, each in one transaction.

Guarantees:

- A migration's statements and its row in ``schema_migrations`` commit together or not at all; a
  failed migration leaves the schema as it was before it (PostgreSQL's DDL is transactional).
- Concurrent runners (two deploys, two test workers) serialise on a transaction-level advisory lock
  taken first in every migration transaction: each migration is applied exactly once.
- Statements are sent one per call (the Data API runs one statement per ``ExecuteStatement``); files
  are split at top-level semicolons by :func:`~pipeline.stores.sql.text.split_statements`.
- Works through any :class:`~pipeline.stores.sql.backend.SqlBackend` (Data API or direct).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Final

from pipeline.stores.sql.backend import SqlBackend, SqlTransaction
from pipeline.stores.sql.text import split_statements

__all__ = ["MIGRATION_LOCK", "Migration", "applied_migrations", "load_migrations", "migrate"]

MIGRATION_LOCK: Final = 0x73746F726573  # "stores": the advisory lock key every runner takes
_BOOTSTRAP: Final = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: str  # the file name without .sql, e.g. "0001_initial"
    statements: tuple[str, ...]


def load_migrations() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    folder = resources.files("pipeline.stores.sql") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [
        Migration(f.name.removesuffix(".sql"), tuple(split_statements(f.read_text(encoding="utf-8")))) for f in files
    ]


def _apply(tx: SqlTransaction, migration: Migration) -> bool:
    tx.execute_statement("SELECT pg_advisory_xact_lock(:lock)", {"lock": MIGRATION_LOCK})
    tx.execute_statement(_BOOTSTRAP)
    done = tx.execute_statement(
        "SELECT 1 AS done FROM schema_migrations WHERE version = :version", {"version": migration.version}
    )
    if done.rows:
        return False
    for statement in migration.statements:
        tx.execute_statement(statement)
    tx.execute_statement(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (:version, now())", {"version": migration.version}
    )
    return True


def migrate(backend: SqlBackend, migrations: list[Migration] | None = None) -> list[str]:
    """Apply every migration not applied yet; the versions this call applied, in order."""
    applied = []
    for migration in migrations if migrations is not None else load_migrations():
        if backend.execute_transaction(functools.partial(_apply, migration=migration)):
            applied.append(migration.version)
    return applied


def applied_migrations(backend: SqlBackend) -> list[str]:
    """The versions recorded in ``schema_migrations`` (empty before the first migration)."""
    exists = backend.execute_statement("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").one()
    if not exists or not exists["present"]:
        return []
    rows = backend.execute_statement("SELECT version FROM schema_migrations ORDER BY version").rows
    return [row["version"] for row in rows]
