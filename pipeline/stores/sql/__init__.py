"""The SQL store: one interface (:mod:`~pipeline.stores.sql.backend`), two backends (the RDS Data API in
:mod:`~pipeline.stores.sql.data_api`, a direct PostgreSQL connection in :mod:`~pipeline.stores.sql.postgres`),
schema migrations (:mod:`~pipeline.stores.sql.migrate`), the repository
(:mod:`~pipeline.stores.sql.repository`) and the outbox relay (:mod:`~pipeline.stores.sql.outbox`)."""

from __future__ import annotations

__all__: list[str] = []
