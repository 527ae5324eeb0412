"""Reading the stores back and checking them against the oracle: the demo's verification.

:func:`scan_tables` reads every table the consumer writes (consistent scans, per-shard partials
merged into logical items, watermark attributes left out, numbers as ``Decimal``);
:func:`differences` compares two table sets and says, item by item, what differs, so a failed
verification points at the item and the attribute.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from pipeline.metrics.effects import ItemKey
from pipeline.metrics.partials import merge_items
from pipeline.metrics.statements import from_attribute_values
from pipeline.metrics.tables import TABLES, Resources

__all__ = ["Tables", "bad_rows", "differences", "jsonable", "numbers_as_decimal", "scan_tables"]

Tables = dict[str, dict[ItemKey, dict[str, Any]]]


def scan_tables(dynamodb: Any, resources: Resources, key_split: int = 1) -> Tables:
    """Every consumer table (not the ``users`` entity table it only reads), keyed like the oracle;
    ``key_split`` is the stack's ``MetricKeySplit`` (the demo's, soak's and bench's stacks keep 1)."""
    out: Tables = {}
    for name, spec in TABLES.items():
        if not spec.written_by_plugins:
            continue
        stored = [
            from_attribute_values(raw)
            for page in dynamodb.get_paginator("scan").paginate(TableName=resources.table(name), ConsistentRead=True)
            for raw in page["Items"]
        ]
        if stored:
            out[name] = merge_items(name, stored, key_split)
    return out


def numbers_as_decimal(tables: Mapping[str, Mapping[ItemKey, Mapping[str, Any]]]) -> Tables:
    """The oracle's ints as ``Decimal``, the way DynamoDB returns every number."""

    def norm(value: Any) -> Any:
        return Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value

    return {
        table: {
            tuple((k, norm(v)) for k, v in key): {a: norm(v) for a, v in item.items()} for key, item in items.items()
        }
        for table, items in tables.items()
    }


def differences(actual: Tables, expected: Tables, limit: int = 20) -> list[str]:
    """Human-readable differences, at most ``limit``; empty when the tables are equal."""
    out: list[str] = []
    for table in sorted(set(actual) | set(expected)):
        got, want = actual.get(table, {}), expected.get(table, {})
        for key in sorted(set(got) | set(want), key=repr):
            if key not in got:
                out.append(f"{table} {dict(key)}: missing (expected {want[key]})")
            elif key not in want:
                out.append(f"{table} {dict(key)}: unexpected item {got[key]}")
            elif got[key] != want[key]:
                attrs = sorted(set(got[key]) | set(want[key]))
                diff = {a: (got[key].get(a), want[key].get(a)) for a in attrs if got[key].get(a) != want[key].get(a)}
                out.append(f"{table} {dict(key)}: (got, expected) {diff}")
            if len(out) >= limit:
                return out
    return out


def bad_rows(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every bad row in the sink, as stored (reason, raw_base64, position, arrival): each object holds
    one record's rows, one JSON line each."""
    rows: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            rows.extend(orjson.loads(line) for line in body.splitlines() if line.strip())
    return rows


def jsonable(tables: Tables) -> dict[str, list[dict[str, Any]]]:
    """Tables as JSON-friendly lists of items (Decimals as strings, bytes as base64)."""

    def value(v: Any) -> Any:
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, bytes):
            return base64.b64encode(v).decode()
        return v

    return {t: [{a: value(v) for a, v in item.items()} for item in items.values()] for t, items in tables.items()}
