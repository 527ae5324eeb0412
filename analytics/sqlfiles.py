"""The job's SQL, kept in ``analytics/sql/*.sql``: loading, filling placeholders, splitting statements.

Guarantees:

- :func:`statements` returns the statements of one file in order, each without its trailing ``;`` and
  without full-line ``--`` comments; placeholders (``$name``) are filled from ``values`` and a missing
  one raises ``KeyError`` naming it (never left in the SQL).
- :data:`QUERY_FILES` lists the files that define the views every binding registers, in dependency
  order; each metric of :data:`analytics.metrics.METRICS` is a view of the same name defined by them.
- Files are read as package data (``importlib.resources``), so the zip for Managed Flink carries them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from importlib import resources
from string import Template
from typing import Final

__all__ = [
    "QUERY_FILES",
    "STAMP_FORMAT",
    "column_list",
    "quote",
    "sql_string",
    "statements",
    "watermark_delay",
]

QUERY_FILES: Final = (
    "views.sql",
    "product_views_1m.sql",
    "top_products_1m.sql",
    "product_trends_5m.sql",
    "orders_1h.sql",
    "late_events_1h.sql",
)
STAMP_FORMAT: Final = "'yyyy-MM-dd''T''HH:mm:ss.SSSSSS''Z'''"
"""``DATE_FORMAT`` pattern (as a SQL literal) of the project's stamp, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""

_COMMENT: Final = re.compile(r"^\s*--.*$", re.MULTILINE)
_END: Final = re.compile(r";\s*(?:\n|$)")


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def quote(name: str) -> str:
    """``name`` as a quoted identifier (backticks doubled): column names such as ``rank`` are keywords."""
    return "`" + name.replace("`", "``") + "`"


def column_list(columns: Sequence[tuple[str, str]], indent: str = "  ") -> str:
    """``name TYPE`` lines, comma-separated, for a ``CREATE TABLE`` column list."""
    return ",\n".join(f"{indent}{quote(name)} {sql_type}" for name, sql_type in columns)


def watermark_delay(allowed_lateness: timedelta) -> str:
    """The watermark's delay as a SQL interval, to the millisecond: ``INTERVAL '0 00:00:30.000' DAY TO SECOND(3)``.

    Raises ``ValueError`` for a negative lateness, one of 100 days or more, or one that is not a whole
    number of milliseconds.
    """
    millis, rest = divmod(allowed_lateness, timedelta(milliseconds=1))
    if millis < 0 or rest or allowed_lateness >= timedelta(days=100):
        raise ValueError(f"allowed lateness must be whole milliseconds in [0, 100 days): {allowed_lateness}")
    seconds, ms = divmod(millis, 1000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    return f"INTERVAL '{days} {hour:02d}:{minute:02d}:{second:02d}.{ms:03d}' DAY TO SECOND(3)"


def statements(name: str, values: Mapping[str, str] | None = None) -> list[str]:
    """The statements of ``analytics/sql/<name>``, placeholders filled (``$stamp`` always is)."""
    text = resources.files("analytics").joinpath("sql", name).read_text(encoding="utf-8")
    # Comments go first: they name the placeholders, and a value may span lines.
    body = Template(_COMMENT.sub("", text)).substitute({"stamp": STAMP_FORMAT, **(values or {})})
    return [statement.strip() for statement in _END.split(body) if statement.strip()]
