"""Windowed analytics over the events with Apache Flink SQL (PyFlink 2.x): one job, two source bindings.

Not part of the Lambda package: nothing under ``pipeline/`` or ``consumers/`` imports it at run time, and
PyFlink is an optional dependency group (``analytics``). One module per role:

- :mod:`analytics.rows`: an event as the flat row the SQL reads (``events`` table), or why it cannot be;
- :mod:`analytics.metrics`: the ``window_metrics`` item of each metric, keyed for upserts;
- ``analytics/sql/*.sql``: the queries (window table functions, a declared ``WATERMARK``, window Top-N),
  loaded by :mod:`analytics.sqlfiles`;
- :mod:`analytics.decoding`: the table function that turns raw Kinesis records into rows (and bad rows);
- :mod:`analytics.job`: the one entry point: environment, source bindings (archive, stream), sinks;
- :mod:`analytics.managed`: ``main()`` on Amazon Managed Service for Apache Flink (Kinesis -> DynamoDB);
- :mod:`analytics.local`: the local run (S3 archive -> Flink -> ``window_metrics`` in the emulator);
- :mod:`analytics.reference`: the same windows in plain Python, for tests and verification;
- :mod:`analytics.package`: the zip Managed Flink runs, and what it still needs (``analytics/deploy/``).

Import from the submodules; this package imports none of them (PyFlink loads only where a job runs).
"""

from __future__ import annotations

__all__: list[str] = []
