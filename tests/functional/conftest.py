"""Fixtures the functional tests share: an S3 client on the session's emulator and a fresh bucket (the
archive tests); one test's metric tables and queue (the writer tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.settings import Settings, aws_client
from tests.archive_cases import new_bucket
from tests.live_stack import LiveStack
from tests.tables import provisioned
from tests.template_support import _DECODE, FUNCTION, TEMPLATE, _run
from tests.writer_stores import Stores
from tools.local.tools import CFN_LINT_VERSION, pinned_tool, sam_command

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


# ------------------------------------------------------- the template tests (tests/functional/test_template*.py)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(
        _run(pinned_tool(f"cfn-lint=={CFN_LINT_VERSION}", "python", "-c", _DECODE, str(TEMPLATE)))
    )
    return decoded


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam build`` into a temporary directory; the consumer's built package (unzipped)."""
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    # --build-in-source: make runs in the repository (the Makefile writes only into ARTIFACTS_DIR)
    # instead of in a copy of it, .venv included.
    _run(sam_command("build", "--build-in-source", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir)))
    return build_dir / FUNCTION


# ------------------------------------------------------- the live stack's readers (dashboard, metrics, Locust)


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """One ``pipeline up`` for every test of the stack's readers; ``pipeline down`` at the end."""
    stack = LiveStack(tmp_path_factory.mktemp("live-readers"), "readers")
    try:
        yield stack
    finally:
        stack.down()
