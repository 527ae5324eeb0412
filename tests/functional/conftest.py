"""Fixtures the functional tests share: an S3 client on the session's emulator and a fresh bucket (the
archive tests); one test's metric tables and queue (the writer tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pipeline.settings import Settings, aws_client
from tests.archive_cases import new_bucket
from tests.tables import provisioned
from tests.writer_stores import Stores

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture(scope="module")
def s3(emulator: Settings) -> S3Client:
    client: S3Client = aws_client("s3", emulator)
    return client


@pytest.fixture
def bucket(s3: S3Client) -> str:
    return new_bucket(s3)


@pytest.fixture
def stores(emulator: Settings) -> Iterator[Stores]:
    settings = emulator.with_(max_attempts=1)
    with provisioned(settings) as resources:
        found = Stores(settings, resources, aws_client("dynamodb", settings), aws_client("sqs", settings))
        yield found
        for writer in found.writers:
            writer.close()
