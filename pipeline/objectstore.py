"""Writing objects to S3 a few at a time: the archive transform's and the bad-row sink's one writer.

:class:`S3ObjectWriter` is a :class:`~pipeline.sinks.Sink` of ``(key, body)`` objects: ``add`` buffers,
``flush`` puts them a few at once on a small thread pool, retrying the ones that failed transiently by
the retry policy (botocore's own retries are off on the client), and returns the first position of an
object not written. Keys decided by the caller (positions, record ids) make a retry overwrite the same
objects with the same bytes: writing twice writes once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.exceptions import ConfigurationError, TransientError
from pipeline.retry import NO_DEADLINE, Deadline, RetryPolicy

__all__ = ["S3ObjectWriter"]

_NOT_TRANSIENT = frozenset({"NoSuchBucket", "AccessDenied", "InvalidBucketName", "AllAccessDisabled"})


class S3ObjectWriter:
    """Objects in one bucket; see the module docstring. Not thread-safe (one flush at a time)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        retry: RetryPolicy | None = None,
        call_seconds: float = 0.0,
        max_concurrency: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._retry = retry or RetryPolicy()
        self._call_seconds = call_seconds
        self._max_concurrency = max_concurrency
        self._sleep = sleep
        self._pending: list[tuple[str, tuple[str, bytes]]] = []

    def add(self, position: str, item: tuple[str, bytes]) -> None:
        self._pending.append((position, item))

    def discard(self) -> str | None:
        pending, self._pending = self._pending, []
        return min((position for position, _ in pending), default=None)

    def flush(self, shard_id: str = "", deadline: Deadline = NO_DEADLINE) -> str | None:
        """Write what was added; the first position of an object not written (``None``: all written)."""
        pending, self._pending = self._pending, []
        retry = 0
        while pending:
            written = self._put_all([item for _, item in pending], deadline)
            pending = [entry for entry, ok in zip(pending, written, strict=True) if not ok]
            retry += 1
            if pending and not self._retry.wait(
                retry, deadline=deadline, call_seconds=self._call_seconds, sleep=self._sleep
            ):
                break
        return min((position for position, _ in pending), default=None)

    def put_many(self, objects: Sequence[tuple[str, bytes]], deadline: Deadline = NO_DEADLINE) -> None:
        """Write every object, or raise :class:`TransientError` (nothing else for an AWS failure)."""
        for index, item in enumerate(objects):
            self.add(f"{index:012d}", item)
        if self.flush("", deadline) is not None:
            raise TransientError(f"objects not written to s3://{self._bucket} after retries")

    def _put_all(self, objects: list[tuple[str, bytes]], deadline: Deadline) -> list[bool]:
        def put(item: tuple[str, bytes]) -> bool:
            return self._put(item, deadline)

        if len(objects) == 1:
            return [put(objects[0])]
        with ThreadPoolExecutor(max_workers=min(self._max_concurrency, len(objects))) as pool:
            return list(pool.map(put, objects))

    def _put(self, item: tuple[str, bytes], deadline: Deadline) -> bool:
        """One PUT; False when it failed transiently or could not end by ``deadline`` (not made)."""
        if not deadline.allows(self._call_seconds):
            return False
        try:
            self._s3.put_object(Bucket=self._bucket, Key=item[0], Body=item[1])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _NOT_TRANSIENT:
                raise ConfigurationError(f"s3://{self._bucket}: {code}: {exc}") from exc
            return False
        except BotoCoreError:
            return False
        return True
