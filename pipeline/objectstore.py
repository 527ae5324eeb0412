"""Writing objects to S3 a few at a time: the bad-rows sink and the archive transform share it.

Guarantee: :meth:`S3ObjectWriter.put_many` writes every object or raises
:class:`~pipeline.exceptions.TransientError` (nothing else for an AWS failure); keys decided by the
caller make a retry overwrite the same objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.exceptions import TransientError

__all__ = ["S3ObjectWriter"]


class S3ObjectWriter:
    """Objects in one bucket, a few at once on a small thread pool."""

    def __init__(self, s3: Any, bucket: str, *, max_concurrency: int = 8) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._max_concurrency = max_concurrency

    def _put(self, item: tuple[str, bytes]) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=item[0], Body=item[1])

    def put_many(self, objects: Sequence[tuple[str, bytes]]) -> None:
        if not objects:
            return
        try:
            if len(objects) == 1:
                self._put(objects[0])
                return
            with ThreadPoolExecutor(max_workers=min(self._max_concurrency, len(objects))) as pool:
                list(pool.map(self._put, objects))
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"objects not written to s3://{self._bucket}: {exc}") from exc
