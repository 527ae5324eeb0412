"""Where the charts come from, and all of them at once as one JSON-ready document.

:func:`resolve_source` finds the deployment the way ``pipeline status`` and ``pipeline load`` do: the
stack file ``pipeline up`` wrote to the state dir (endpoint, region, table names, consumer function),
``--endpoint-url`` overriding its endpoint; without a stack file, the table names come from the
environment (``ORDER_METRICS_TABLE``, ... as ``eval "$(pipeline up)"`` or a deployment exports them).

:func:`collect` reads every chart through the read API (:mod:`pipeline.readapi`): one ``Query`` per
page of each DynamoDB chart, one ``GetMetricData`` per CloudWatch chart. Consumer lag is the live
runtime's status file when a local runtime is running (its per-shard iterator age, no AWS call), and
CloudWatch's ``IteratorAge`` of the consumer otherwise (one call). Money is exact decimal text in the
document; times are ISO 8601 UTC.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from pipeline.exceptions import ConfigurationError
from pipeline.readapi.cloudwatch import CloudWatchReader
from pipeline.readapi.models import Chart
from pipeline.readapi.tables import MetricsReader, ReadTables
from pipeline.settings import Settings, aws_client
from tools.local.state import stack_file

__all__ = ["CHARTS", "Source", "chart_json", "collect", "resolve_source"]

CHARTS = ("orders", "views", "top", "windows", "bad-rows", "lag")
"""Every chart, in the order the terminal and the page show them."""


@dataclass(frozen=True, slots=True)
class Source:
    """One deployment's readers, and the local runtime's status file when there is one."""

    settings: Settings
    tables: ReadTables
    consumer_function: str
    state_dir: Path | None
    stage: str
    where: str
    """Where the names came from, for the user: the stack file, or the environment."""

    def readers(self, dynamodb: Any = None, cloudwatch: Any = None) -> tuple[MetricsReader, CloudWatchReader]:
        """The read API's readers (clients built here unless given: tests pass instrumented ones)."""
        dynamodb = dynamodb or aws_client("dynamodb", self.settings)
        cloudwatch = cloudwatch or aws_client("cloudwatch", self.settings)
        return MetricsReader(dynamodb, self.tables), CloudWatchReader(cloudwatch, self.consumer_function)


def resolve_source(
    state_dir: Path, stage: str, *, endpoint_url: str | None = None, environ: Mapping[str, str] | None = None
) -> Source:
    """The deployment to read; raises :class:`ConfigurationError` (one line, what to do) when none is found."""
    env = os.environ if environ is None else environ
    base = Settings.from_env(env)
    path = stack_file(state_dir, stage)
    if path.exists():
        try:
            document: dict[str, Any] = orjson.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read {path}: {exc}; run 'pipeline up' again") from exc
        outputs = document.get("outputs") or {}
        endpoint = endpoint_url or str(document.get("endpoint_url") or "") or base.endpoint_url
        settings = base.with_(endpoint_url=endpoint) if endpoint else base
        if not endpoint_url and document.get("region"):
            settings = settings.with_(region=str(document["region"]))
        return Source(
            settings=settings,
            tables=ReadTables.from_outputs(outputs),
            consumer_function=str(outputs.get("ConsumerFunctionName", "")),
            state_dir=state_dir,
            stage=stage,
            where=str(path),
        )
    if not env.get("ORDER_METRICS_TABLE"):
        raise ConfigurationError(
            f"no live stack in {state_dir} (stage {stage}) and no ORDER_METRICS_TABLE in the environment: "
            "run 'pipeline up', or export the stack's table names"
        )
    settings = base.with_(endpoint_url=endpoint_url) if endpoint_url else base
    return Source(
        settings=settings,
        tables=ReadTables.from_env(env),
        consumer_function=env.get("CONSUMER_FUNCTION_NAME", ""),
        state_dir=None,
        stage=stage,
        where="the environment",
    )


def collect(
    source: Source,
    day: date,
    *,
    charts: tuple[str, ...] = CHARTS,
    product: str | None = None,
    top: int = 10,
    window_metric: str = "orders_1h",
    window_key: str | None = None,
    dynamodb: Any = None,
    cloudwatch: Any = None,
) -> dict[str, Any]:
    """Every chart in ``charts`` for ``day``, JSON-ready: ``{"day", "read_at", "charts": {name: chart}}``."""
    tables, metrics = source.readers(dynamodb, cloudwatch)
    out: dict[str, Any] = {}
    for name in charts:
        if name == "orders":
            out[name] = chart_json(tables.orders_per_hour(day))
        elif name == "views":
            out[name] = chart_json(tables.product_views_per_hour(day, product))
        elif name == "top":
            out[name] = chart_json(tables.top_products(day, top))
        elif name == "windows":
            out[name] = chart_json(tables.windows(day, window_metric, window_key))
        elif name == "bad-rows":
            out[name] = chart_json(metrics.bad_rows_per_hour(day))
        elif name == "lag":
            out[name] = _lag(source, metrics)
        else:
            raise ValueError(f"unknown chart {name!r}; one of {', '.join(CHARTS)}")
    return {"day": day.isoformat(), "read_at": datetime.now(UTC).isoformat(timespec="seconds"), "charts": out}


def chart_json(chart: Chart[Any]) -> dict[str, Any]:
    """A chart as JSON-ready data: rows as objects, ``Decimal`` as exact text, times as ISO 8601."""
    rows = [dataclasses.asdict(row) for row in chart.rows]
    return {
        "name": chart.name,
        "source": chart.source,
        "requests": chart.requests,
        "rows": [{k: _value(v) for k, v in row.items()} for row in rows],
        "totals": _totals(rows),
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Exact sums of the rows' counters (``int``) and amounts (``Decimal``, as text); ranks and ages are not sums."""
    if not rows:
        return {}
    totals: dict[str, Any] = {}
    for name, first in rows[0].items():
        if name in {"rank", "iterator_age_ms"} or isinstance(first, bool) or not isinstance(first, int | Decimal):
            continue
        total = sum((row[name] for row in rows), start=Decimal(0) if isinstance(first, Decimal) else 0)
        totals[name] = str(total) if isinstance(total, Decimal) else total
    return totals


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    return value


def _lag(source: Source, metrics: CloudWatchReader) -> dict[str, Any]:
    """The local runtime's per-shard iterator age when it runs; CloudWatch's IteratorAge otherwise (none
    without the consumer function's name: set CONSUMER_FUNCTION_NAME)."""
    if source.state_dir is not None:
        from tools.cli.live_status import runtime_status

        status = runtime_status(source.state_dir, source.stage)
        if status["state"] != "not running":
            at = str(status.get("updated_at") or datetime.now(UTC).isoformat(timespec="seconds"))
            rows = [
                {"at": at, "iterator_age_ms": int(shard.get("iterator_age_ms", 0)), "shard": name}
                for name, shard in sorted((status.get("shards") or {}).items())
            ]
            return {
                "name": "consumer_lag",
                "source": f"the live runtime's status file ({source.state_dir})",
                "requests": 0,
                "rows": rows,
                "runtime": {k: status.get(k) for k in ("state", "records", "events", "bad_rows", "function_errors")},
            }
    if not source.consumer_function:
        return {"name": "consumer_lag", "source": "unknown: no consumer function name", "requests": 0, "rows": []}
    until = datetime.now(UTC)
    return chart_json(metrics.iterator_age(until - timedelta(hours=1), until))
