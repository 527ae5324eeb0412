"""The job on Amazon Managed Service for Apache Flink: ``main()``, called by the zip's ``main.py``.

Managed Flink writes the application's runtime properties to ``/etc/flink/application_properties.json``
(a list of ``{"PropertyGroupId": ..., "PropertyMap": {...}}``); ``template.yaml`` sets them. The groups
this job reads (:data:`PROPERTY_GROUPS`; keys are case-sensitive):

======================  ========================  ===========================================================
group                   key                       meaning
======================  ========================  ===========================================================
``EventStream``         ``stream.arn``            the Kinesis stream (raw records, any project format)
``EventStream``         ``aws.region``            its region
``EventStream``         ``source.init.position``  ``TRIM_HORIZON`` (default), ``LATEST`` or ``AT_TIMESTAMP``
``WindowMetrics``       ``table.name``            the ``window_metrics`` DynamoDB table
``WindowMetrics``       ``aws.region``            its region
``BadRows``             ``path``                  where undecodable records go, e.g. ``s3://b/analytics-bad-rows/``
``Analytics``           ``allowed.lateness.ms``   the watermark's delay (default 30000)
``Analytics``           ``state.ttl``             how long per-key state lives (default ``7 d``): an event id
                                                  resent, or an order's later event, after that counts again
======================  ========================  ===========================================================

plus ``kinesis.analytics.flink.run.options`` (``python``, ``jarfile``, ``pyFiles``), read by the service.

Guarantees: a missing or malformed property raises :class:`~pipeline.exceptions.ConfigurationError`
naming the group and key, before any job is submitted. ``main`` submits the job and returns (the service
runs it); it never waits.

Semantics in AWS differ from the local run in one way only: watermarks advance on Flink's periodic
timer (200 ms) and per source split, so *which* events are late depends on timing and parallelism.
Every event is still either counted in its windows or counted in ``late_events_1h``, never both, never
neither; windows emit once, when the watermark passes their end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import orjson

from analytics.flink import table_environment
from analytics.job import DEFAULT_ALLOWED_LATENESS, DynamoDbSinks, StreamSource, build
from pipeline.exceptions import ConfigurationError

__all__ = ["PROPERTIES_FILE", "PROPERTY_GROUPS", "ManagedSettings", "job", "load_properties", "main"]

PROPERTIES_FILE: Final = Path("/etc/flink/application_properties.json")
PROPERTY_GROUPS: Final = ("EventStream", "WindowMetrics", "BadRows", "Analytics")
_POSITIONS: Final = frozenset({"LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"})


def load_properties(path: Path = PROPERTIES_FILE) -> dict[str, dict[str, str]]:
    """The runtime property groups in ``path``, by group id."""
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read the application properties {path}: {exc}") from exc
    if not isinstance(document, list):
        raise ConfigurationError(f"{path}: expected a list of property groups")
    groups: dict[str, dict[str, str]] = {}
    for group in document:
        if not isinstance(group, dict) or not isinstance(group.get("PropertyMap"), dict):
            raise ConfigurationError(f"{path}: not a property group: {group!r}"[:300])
        groups[str(group.get("PropertyGroupId"))] = {str(k): str(v) for k, v in group["PropertyMap"].items()}
    return groups


def _get(groups: Mapping[str, Mapping[str, str]], group: str, key: str, default: str | None = None) -> str:
    value = groups.get(group, {}).get(key, default)
    if not value:
        raise ConfigurationError(f"runtime property {group}.{key} is not set (template.yaml sets it)")
    return value


@dataclass(frozen=True, slots=True)
class ManagedSettings:
    """What the job needs from its runtime properties (see the module docstring)."""

    stream_arn: str
    stream_region: str
    init_position: str
    table_name: str
    table_region: str
    bad_rows_path: str
    allowed_lateness: timedelta = DEFAULT_ALLOWED_LATENESS
    state_ttl: str = "7 d"

    @classmethod
    def from_properties(cls, groups: Mapping[str, Mapping[str, str]]) -> ManagedSettings:
        position = _get(groups, "EventStream", "source.init.position", "TRIM_HORIZON")
        if position not in _POSITIONS:
            raise ConfigurationError(f"EventStream.source.init.position must be one of {sorted(_POSITIONS)}")
        lateness = _get(
            groups, "Analytics", "allowed.lateness.ms", str(DEFAULT_ALLOWED_LATENESS // timedelta(milliseconds=1))
        )
        if not lateness.isdigit():
            raise ConfigurationError(
                f"Analytics.allowed.lateness.ms must be a whole number of milliseconds: {lateness!r}"
            )
        return cls(
            stream_arn=_get(groups, "EventStream", "stream.arn"),
            stream_region=_get(groups, "EventStream", "aws.region"),
            init_position=position,
            table_name=_get(groups, "WindowMetrics", "table.name"),
            table_region=_get(groups, "WindowMetrics", "aws.region"),
            bad_rows_path=_get(groups, "BadRows", "path"),
            allowed_lateness=timedelta(milliseconds=int(lateness)),
            state_ttl=_get(groups, "Analytics", "state.ttl", "7 d"),
        )


def job(settings: ManagedSettings) -> Any:
    """The managed job's ``StatementSet``: Kinesis -> decode -> windows -> DynamoDB and the bad-rows output."""
    t_env = table_environment(
        deterministic=False,
        this_python=False,
        config={
            "table.exec.state.ttl": settings.state_ttl,
            # A shard with no new records must not hold every window back.
            "table.exec.source.idle-timeout": "1 min",
        },
    )
    source = StreamSource(
        kinesis={
            "stream_arn": settings.stream_arn,
            "region": settings.stream_region,
            "init_position": settings.init_position,
        }
    )
    sinks = DynamoDbSinks(settings.table_name, settings.table_region, settings.bad_rows_path)
    return build(t_env, source, sinks, settings.allowed_lateness)


def main(properties: Path = PROPERTIES_FILE) -> None:
    """Read the runtime properties, submit the job, return (Managed Flink runs it)."""
    job(ManagedSettings.from_properties(load_properties(properties))).execute()
