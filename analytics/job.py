"""The analytics job: one entry point, :func:`build`, for every deployment; the source and sinks are bindings.

``build(t_env, source, sinks, allowed_lateness)`` registers, in this order:

1. the source binding, which defines the ``events`` table (:data:`analytics.rows.EVENT_COLUMNS`, plus the
   rowtime ``event_time`` with ``WATERMARK FOR event_time AS event_time - <allowed lateness>``, and
   ``proc_time``):

   - :class:`ArchiveSource` (local): the archive's events staged as JSON lines, read by Flink's
     filesystem connector; the watermark is declared in ``sql/source_archive.sql``;
   - :class:`StreamSource` (AWS): a ``raw_records`` table of record bytes (the Kinesis connector in
     ``sql/source_kinesis.sql``, or any table with one ``BYTES`` column ``data`` that the caller
     registers), decoded by the ``decode_record`` table function (``sql/decoded.sql``); the decoded
     rows become ``events`` with the same columns and the same watermark expression, and the bad rows
     a ``bad_rows`` view;

2. the queries, ``sql/views.sql`` then one file per metric (:data:`analytics.sqlfiles.QUERY_FILES`);
3. one sink table per metric (``sink_<metric>``, key ``(pk, sk)``) from the sink binding, and a
   ``sink_bad_rows`` table for a stream source;

and returns the ``StatementSet`` of every ``INSERT``: one Flink job.

Sink bindings: :class:`FileSinks` writes each metric's changelog (debezium-json) to a local directory,
read back by :mod:`analytics.changelog`; :class:`DynamoDbSinks` writes ``window_metrics`` with the
DynamoDB connector (upserts by key: ``PARTITIONED BY (pk, sk)`` makes the connector keep only the last
write of a key within a batch, which ``BatchWriteItem`` requires).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from analytics.decoding import DECODED_COLUMNS, decode_record_function
from analytics.flink import data_type, execute_all, schema_builder
from analytics.metrics import METRICS, MetricSpec
from analytics.rows import EVENT_COLUMNS
from analytics.sqlfiles import QUERY_FILES, column_list, quote, sql_string, statements, watermark_delay

__all__ = [
    "BAD_ROW_COLUMNS",
    "DEFAULT_ALLOWED_LATENESS",
    "ArchiveSource",
    "DynamoDbSinks",
    "FileSinks",
    "StreamSource",
    "build",
    "sink_ddl",
]

DEFAULT_ALLOWED_LATENESS: Final = timedelta(seconds=30)
"""How far behind the newest event time an event may arrive and still count (the watermark's delay)."""

BAD_ROW_COLUMNS: Final = (
    ("reason", "STRING"),
    ("raw_base64", "STRING"),
    ("event_id", "STRING"),
    ("sub_sequence_number", "INT"),
    ("line", "INT"),
)
"""What the bad-rows output keeps of each unit that could not become a row of ``events``."""

_EVENT_TIME: Final = "TO_TIMESTAMP_LTZ(event_ms, 3)"
_PROC_TIME: Final = "PROCTIME()"


@dataclass(frozen=True, slots=True)
class ArchiveSource:
    """Events staged as JSON lines (:mod:`analytics.local`), one file or a directory of files."""

    path: Path


@dataclass(frozen=True, slots=True)
class StreamSource:
    """Raw records: the Kinesis stream (``kinesis`` set) or a ``raw_records`` table the caller registered."""

    kinesis: Mapping[str, str] | None = None
    """``stream_arn``, ``region``, ``init_position`` for ``sql/source_kinesis.sql``; ``None`` for tests."""


@dataclass(frozen=True, slots=True)
class FileSinks:
    """Each metric's changelog as debezium-json files under ``directory/<metric>/`` (and bad rows as JSON)."""

    directory: Path

    def options(self, name: str, *, changelog: bool = True) -> dict[str, str]:
        path = (self.directory / name).resolve().as_uri()
        if not changelog:
            return {"connector": "filesystem", "path": path, "format": "json"}
        return {
            "connector": "filesystem",
            "path": path,
            "format": "debezium-json",
            "debezium-json.encode.decimal-as-plain-number": "true",
        }

    partitioned: bool = field(default=False, init=False)


@dataclass(frozen=True, slots=True)
class DynamoDbSinks:
    """The ``window_metrics`` table through the DynamoDB connector; bad rows as JSON files under ``bad_rows``."""

    table_name: str
    region: str
    bad_rows: str
    """A filesystem URI for the bad-rows output, e.g. ``s3://<bucket>/analytics-bad-rows/``."""

    def options(self, name: str, *, changelog: bool = True) -> dict[str, str]:
        if not changelog:
            return {"connector": "filesystem", "path": self.bad_rows, "format": "json"}
        return {
            "connector": "dynamodb",
            "table-name": self.table_name,
            "aws.region": self.region,
            # An attribute whose value is NULL (an average over no durations) is left out of the item.
            "sink.ignore-nulls": "true",
        }

    partitioned: bool = field(default=True, init=False)


Sinks = FileSinks | DynamoDbSinks


def _with(options: Mapping[str, str]) -> str:
    return ",\n".join(f"  {sql_string(key)} = {sql_string(value)}" for key, value in options.items())


def sink_ddl(spec: MetricSpec, sinks: Sinks) -> str:
    """``CREATE TEMPORARY TABLE sink_<metric>`` for one metric, keyed ``(pk, sk)``."""
    partitioning = "PARTITIONED BY (pk, sk)\n" if sinks.partitioned else ""
    return (
        f"CREATE TEMPORARY TABLE {quote('sink_' + spec.name)} (\n{column_list(spec.columns)},\n"
        f"  PRIMARY KEY (pk, sk) NOT ENFORCED\n)\n{partitioning}WITH (\n{_with(sinks.options(spec.name))}\n)"
    )


def _bind_archive(t_env: Any, source: ArchiveSource, allowed_lateness: timedelta) -> None:
    values = {
        "columns": column_list(EVENT_COLUMNS),
        "path": source.path.resolve().as_uri(),
        "watermark_delay": watermark_delay(allowed_lateness),
    }
    execute_all(t_env, statements("source_archive.sql", values))


def _bind_stream(t_env: Any, source: StreamSource, allowed_lateness: timedelta) -> None:
    if source.kinesis is not None:
        execute_all(t_env, statements("source_kinesis.sql", source.kinesis))
    t_env.create_temporary_system_function("decode_record", decode_record_function())
    values = {
        "columns": ", ".join(quote(name) for name, _ in DECODED_COLUMNS),
        "event_columns": ", ".join(quote(name) for name, _ in EVENT_COLUMNS),
        "bad_columns": ", ".join(quote(name) for name, _ in BAD_ROW_COLUMNS),
    }
    execute_all(t_env, statements("decoded.sql", values))
    # A watermark can only be declared on a table, not on a view: the decoded rows go through a
    # DataStream (no Python in between, the rows stay in the JVM) and come back as a table whose
    # schema declares the same computed columns and the same WATERMARK as sql/source_archive.sql.
    schema = schema_builder()
    for name, sql_type in EVENT_COLUMNS:
        schema = schema.column(name, data_type(sql_type.removesuffix(" NOT NULL")))  # as the function emits
    schema = (
        schema.column_by_expression("event_time", _EVENT_TIME)
        .column_by_expression("proc_time", _PROC_TIME)
        .watermark("event_time", f"event_time - {watermark_delay(allowed_lateness)}")
    )
    decoded_events = t_env.to_data_stream(t_env.from_path("decoded_events"))
    t_env.create_temporary_view("events", t_env.from_data_stream(decoded_events, schema.build()))


def build(
    t_env: Any,
    source: ArchiveSource | StreamSource,
    sinks: Sinks,
    allowed_lateness: timedelta = DEFAULT_ALLOWED_LATENESS,
) -> Any:
    """Register the whole job on ``t_env`` and return its ``StatementSet`` (see the module docstring)."""
    if isinstance(source, ArchiveSource):
        _bind_archive(t_env, source, allowed_lateness)
    else:
        _bind_stream(t_env, source, allowed_lateness)
    for name in QUERY_FILES:
        execute_all(t_env, statements(name))
    statement_set = t_env.create_statement_set()
    for spec in METRICS:
        t_env.execute_sql(sink_ddl(spec, sinks))
        statement_set.add_insert(f"sink_{spec.name}", t_env.from_path(spec.name))
    if isinstance(source, StreamSource):
        bad_options = sinks.options("bad_rows", changelog=False)
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE sink_bad_rows (\n{column_list(BAD_ROW_COLUMNS)}\n) WITH (\n{_with(bad_options)}\n)"
        )
        statement_set.add_insert("sink_bad_rows", t_env.from_path("bad_rows"))
    return statement_set
