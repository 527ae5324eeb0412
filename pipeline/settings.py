"""Settings read once from the environment, and the one place AWS clients are built.

Every AWS call in the project goes through :func:`aws_client` with a :class:`Settings`, so the same
code runs against real AWS (``endpoint_url`` unset), the embedded emulator or moto.
Build settings and clients once per process (Lambda: at module scope), never per call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Settings", "aws_client"]

_LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}  # emulator only


@dataclass(frozen=True, slots=True)
class Settings:
    """Where AWS is and how hard to retry. Immutable; derive variants with :meth:`with_`.

    ``endpoint_url``: ``None`` for real AWS; ``http://127.0.0.1:PORT`` for the embedded emulator. When it
    is set, dummy credentials are used unless the environment provides real ones.
    """

    region: str = "us-east-1"
    # max_attempts counts the first attempt too: 1 means botocore never retries (the caller owns retries).
    endpoint_url: str | None = None
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and ``PIPELINE_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL``)."""
        env = os.environ if environ is None else environ
        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("PIPELINE_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL") or None,
        )

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def aws_client(service: str, settings: Settings) -> Any:
    """A boto3 client for ``service`` configured from ``settings`` (standard retry mode, bounded timeouts).

    Thread-safe to share once built (boto3 clients are); building one costs milliseconds, so callers
    keep it.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=32,
    )
    kwargs: dict[str, Any] = {"config": config, "region_name": settings.region}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
        if not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
            kwargs.update(_LOCAL_CREDENTIALS)
    return boto3.client(service, **kwargs)  # type: ignore[call-overload]
