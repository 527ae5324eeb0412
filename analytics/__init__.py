"""Windowed analytics over the events with Apache Flink SQL (PyFlink 2.x): one job, two source bindings.

Not part of the Lambda package: nothing under ``pipeline/`` or ``consumers/`` imports it at run time, and
PyFlink is an optional dependency group (``analytics``). One module per role:

- :mod:`analytics.rows`: an event as the flat row the SQL reads (``events`` table), or why it cannot be;
- :mod:`analytics.metrics`: the ``window_metrics`` item of each metric, keyed for upserts;
- ``analytics/sql/*.sql``: the queries (window table functions, a declared ``WATERMARK``, window Top-N),
  loaded by :mod:`analytics.sqlfiles`;
- :mod:`analytics.decoding`: the table function that turns raw Kinesis records into rows (and bad rows);
- :mod:`analytics.job`: the one entry point: source bindings (archive, stream) and sinks (files, DynamoDB);
- :mod:`analytics.flink`: the only module that touches PyFlink: availability, environments, the mini-cluster;
- :mod:`analytics.managed`: ``main()`` on Amazon Managed Service for Apache Flink (Kinesis -> DynamoDB);
- :mod:`analytics.local`: the local run (S3 archive -> Flink -> items), with :mod:`analytics.changelog`
  (reading the local sinks back), :mod:`analytics.store` (writing ``window_metrics``) and
  :mod:`analytics.archive_copy` (a local copy of the archive bucket);
- :mod:`analytics.reference`: the same windows in plain Python, for tests and verification;
- :mod:`analytics.package`: the zip Managed Flink runs, and what it still needs (``analytics/deploy/``);
- :mod:`analytics.errors`: this package's errors.

Import from the submodules; this package imports none of them (PyFlink loads only where a job runs).
"""

from __future__ import annotations

__all__: list[str] = []
