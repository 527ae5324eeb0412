"""The analytics tests' fixtures: one Flink mini-cluster for the whole session, and the emulator's stores.

``flink``: the options of the process's one local Flink cluster (:func:`analytics.flink.shared_cluster`),
started on first use and stopped at the end of the session. Every test that runs a Flink job takes it
and carries ``@pytest.mark.flink``; where PyFlink or Java 17 is missing it is skipped, with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from analytics.flink import shared_cluster, unavailable_reason
from pipeline.settings import Settings, aws_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


@pytest.fixture(scope="session")
def flink() -> Iterator[dict[str, str]]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"Flink cannot run here: {reason}")
    cluster = shared_cluster()
    yield dict(cluster.options)
    cluster.close()


@pytest.fixture
def archive_bucket(emulator: Settings) -> str:
    s3: S3Client = aws_client("s3", emulator)
    name = f"archive-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def window_metrics_table(emulator: Settings) -> str:
    """A fresh table with the key of template.yaml's WindowMetricsTable."""
    dynamodb: DynamoDBClient = aws_client("dynamodb", emulator)
    name = f"window-metrics-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    return name
