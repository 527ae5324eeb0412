"""Settings read once from the environment, and the one place AWS clients are built.

Every AWS call in the project goes through :func:`aws_client` with a :class:`Settings`, so the same
code runs against real AWS (``endpoint_url`` unset), the embedded emulator or moto.
Build settings and clients once per process (Lambda: at module scope), never per call.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.retry import RetryPolicy

__all__ = ["Settings", "aws_client", "lazy_client"]

_LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}  # emulator only


@dataclass(frozen=True, slots=True)
class Settings:
    """Where AWS is and how hard to retry. Immutable; derive variants with :meth:`with_`.

    ``endpoint_url``: ``None`` for real AWS; ``http://127.0.0.1:PORT`` for the embedded emulator. When it
    is set, dummy credentials are used unless the environment provides real ones.

    Two retry layers, never both on one call: ``max_attempts`` is botocore's (counting the first
    attempt; 1 means botocore never retries), for callers that retry nothing themselves (tools);
    ``retry`` is the policy of the project's own retry loops (writer, dedup store, S3 objects,
    producer), whose clients are built with ``max_attempts=1``.
    """

    region: str = "us-east-1"
    endpoint_url: str | None = None
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def call_seconds(self) -> float:
        """The longest one call can take on these settings' clients: connect plus read timeout."""
        return self.connect_timeout + self.read_timeout

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

    def for_lambda(self) -> Settings:
        """These settings for a function's own clients: botocore's retries off (the project's loops retry
        by :attr:`retry`) and short timeouts (connect 2 s, read 10 s), so one call takes at most 12 s."""
        return replace(self, max_attempts=1, connect_timeout=2.0, read_timeout=10.0)


def aws_client(service: str, settings: Settings, *, validate: bool = True) -> Any:
    """A client for ``service`` configured from ``settings`` (standard retry mode, bounded timeouts).

    It is a botocore client, which is what ``boto3.client`` returns too, built without importing boto3
    (boto3 pulls s3transfer and its resource layer: a tenth of a second of Lambda cold start for
    nothing this project uses). Thread-safe to share once built; building one costs milliseconds, so
    callers keep it. ``validate=False`` skips botocore's client-side parameter validation: only for
    clients whose every request is built by code from typed values (the consumer's DynamoDB client).
    """
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=32,
        parameter_validation=validate,
    )
    kwargs: dict[str, Any] = {"config": config, "region_name": settings.region}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
        if not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
            kwargs.update(_LOCAL_CREDENTIALS)
    with _SESSION_LOCK:  # botocore sessions are not thread-safe; clients are
        return _session().create_client(service, **kwargs)


class _LazyClient:
    """Builds its client on first use. For clients a Lambda rarely needs (bad rows, fulfilment):
    building one costs tens of milliseconds of cold start that most containers never use."""

    def __init__(self, service: str, settings: Settings) -> None:
        self._service = service
        self._settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = aws_client(self._service, self._settings)
        return getattr(self._client, name)


def lazy_client(service: str, settings: Settings) -> Any:
    """Like :func:`aws_client`, but the client is built on its first use (thread-safe)."""
    return _LazyClient(service, settings)


_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> Any:
    """One botocore session per process: it loads configuration and credentials once."""
    from botocore.session import get_session

    return get_session()
