"""The e-commerce entity stores services embed: users, products, orders and reviews.

Two stores with one set of operations, each usable alone:

- :mod:`pipeline.stores.single_table`: a DynamoDB single-table design (keys in
  :mod:`pipeline.stores.keys`, reads in :mod:`pipeline.stores.single_table_reads`), every
  multi-item write one ``TransactWriteItems``;
- :mod:`pipeline.stores.sql`: Aurora Serverless v2 PostgreSQL through the RDS Data API, or a direct
  PostgreSQL connection, behind one interface (:mod:`pipeline.stores.sql.backend`).

Committed orders reach the events stream by change data capture, never by a second write from the
service: the table's stream through :mod:`pipeline.stores.cdc`, the SQL store's transactional outbox
through :mod:`pipeline.stores.sql.outbox`. Errors are in :mod:`pipeline.stores.errors`.

Runtime code: nothing here imports the CLI, the local runtime, the generator or the tests.
"""

from __future__ import annotations

__all__: list[str] = []
