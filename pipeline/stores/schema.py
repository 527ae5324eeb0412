"""The single table's shape, as ``CreateTable`` arguments: what ``template.yaml`` declares, for local runs.

A test holds this and the template's ``StoreTable`` resource equal (keys, indexes, projections, stream
view), so a table made here for tests or the local stack is the one AWS gets.
"""

from __future__ import annotations

from typing import Any, Final

from pipeline.stores.keys import GSI1, GSI2, LSI1

__all__ = ["KEY_ATTRIBUTES", "STREAM_VIEW_TYPE", "create_table_request"]

KEY_ATTRIBUTES: Final = ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "LSI1SK")
STREAM_VIEW_TYPE: Final = "NEW_AND_OLD_IMAGES"


def _schema(hash_key: str, range_key: str) -> list[dict[str, str]]:
    return [{"AttributeName": hash_key, "KeyType": "HASH"}, {"AttributeName": range_key, "KeyType": "RANGE"}]


def create_table_request(table_name: str) -> dict[str, Any]:
    """``CreateTable`` keyword arguments: on demand, ``GSI1``/``GSI2``/``LSI1`` (all attributes
    projected), a stream with old and new images, server-side encryption."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in KEY_ATTRIBUTES],
        "KeySchema": _schema("PK", "SK"),
        "GlobalSecondaryIndexes": [
            {"IndexName": GSI1, "KeySchema": _schema("GSI1PK", "GSI1SK"), "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": GSI2, "KeySchema": _schema("GSI2PK", "GSI2SK"), "Projection": {"ProjectionType": "ALL"}},
        ],
        "LocalSecondaryIndexes": [
            {"IndexName": LSI1, "KeySchema": _schema("PK", "LSI1SK"), "Projection": {"ProjectionType": "ALL"}},
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE},
        "SSESpecification": {"Enabled": True},
    }
