"""Fixtures shared by every tier.

``emulator``: one embedded ministack for the whole test session, in a temporary directory, stopped at
the end whatever the tests did (pytest runs fixture teardown after failures and on Ctrl-C). Tests that
use it, directly or through ``kinesis_stream``, carry ``@pytest.mark.emulator``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pipeline.settings import Settings, aws_client
from tools.local.emulator import EmbeddedEmulator

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at the session's emulator (127.0.0.1, a free port, in-memory state)."""
    with EmbeddedEmulator(state_dir=tmp_path_factory.mktemp("emulator")) as running:
        yield Settings(endpoint_url=running.endpoint_url)


@pytest.fixture
def kinesis_stream(emulator: Settings) -> Iterator[str]:
    """A fresh 2-shard stream, ACTIVE; deleted after the test."""
    kinesis: KinesisClient = aws_client("kinesis", emulator)
    name = f"test-{uuid.uuid4().hex[:12]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield name
    with contextlib.suppress(kinesis.exceptions.ResourceNotFoundException):  # the test may have deleted it
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
