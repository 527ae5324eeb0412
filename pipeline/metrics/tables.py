"""The stores the consumer writes: logical names, key schemas, and their physical names.

Logical names are what plugins put in effects; the physical names come from the deployment
(``template.yaml`` outputs, passed to the function as environment variables), so plugins never know
the stage or the account.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipeline.exceptions import ConfigurationError

__all__ = ["QUEUES", "TABLES", "Resources", "TableSpec"]


@dataclass(frozen=True, slots=True)
class TableSpec:
    keys: tuple[str, ...]
    """Partition key, then sort key if any."""
    ttl_attribute: str | None = None
    env: str = ""
    """The environment variable that carries the physical name."""
    written_by_plugins: bool = True
    """False for tables the consumer only reads (entities) or keeps for itself (dedup entries)."""
    partial: bool = False
    """Counter tables: each shard writes its own partial item of every logical item (the sort key
    gains ``~<shard ordinal>``), and readers merge them (:mod:`pipeline.metrics.partials`)."""
    extremes: Mapping[str, Literal["max", "min"]] = field(default_factory=dict)
    """Of a partial table: the attributes kept as a max or min (merged by max/min, not summed)."""
    day_attribute: str | None = None
    """Of a partial table: an attribute each partial carries with the logical sort key (an index's key)."""


TABLES: Mapping[str, TableSpec] = {
    "order_metrics": TableSpec(("metric_type", "time_bucket"), env="ORDER_METRICS_TABLE", partial=True),
    "product_metrics": TableSpec(
        ("product_id", "metric_date"),
        env="PRODUCT_METRICS_TABLE",
        partial=True,
        extremes={"last_viewed": "max"},
        day_attribute="view_day",
    ),
    "user_activities": TableSpec(("user_id", "timestamp"), ttl_attribute="ttl", env="USER_ACTIVITIES_TABLE"),
    "user_sessions": TableSpec(("user_id",), env="USER_SESSIONS_TABLE"),
    "system_metrics": TableSpec(
        ("metric_key", "minute"), env="SYSTEM_METRICS_TABLE", partial=True, extremes={"max": "max", "min": "min"}
    ),
    "order_claims": TableSpec(("order_id", "claim"), env="ORDER_CLAIMS_TABLE"),
    # The entity store's single table (pipeline/stores): the consumer reads its user items' segments.
    "store": TableSpec(("PK", "SK"), env="STORE_TABLE", written_by_plugins=False),
    "event_dedup": TableSpec(
        ("shard", "batch"), ttl_attribute="ttl", env="EVENT_DEDUP_TABLE", written_by_plugins=False
    ),
}
QUEUES: Mapping[str, str] = {"fulfilment": "FULFILMENT_QUEUE_URL"}


@dataclass(frozen=True, slots=True)
class Resources:
    """Physical names of everything the consumer touches. Build once per container."""

    tables: Mapping[str, str] = field(default_factory=dict)
    queues: Mapping[str, str] = field(default_factory=dict)
    bad_rows_bucket: str = ""
    bad_rows_prefix: str = "bad-rows/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Resources:
        """Read every name; a missing one raises :class:`ConfigurationError` naming the variable."""
        env = os.environ if environ is None else environ
        missing = [spec.env for spec in TABLES.values() if not env.get(spec.env)]
        missing += [var for var in QUEUES.values() if not env.get(var)]
        if not env.get("BAD_ROWS_BUCKET"):
            missing.append("BAD_ROWS_BUCKET")
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)} (set by template.yaml)")
        return cls(
            tables={name: env[spec.env] for name, spec in TABLES.items()},
            queues={name: env[var] for name, var in QUEUES.items()},
            bad_rows_bucket=env["BAD_ROWS_BUCKET"],
            bad_rows_prefix=env.get("BAD_ROWS_PREFIX", "bad-rows/"),
        )

    def table(self, logical: str) -> str:
        try:
            return self.tables[logical]
        except KeyError:
            raise ConfigurationError(f"no physical table configured for {logical!r}") from None
