"""A local copy of the archive bucket: files under a directory with the bucket's keys as relative paths.

:class:`LocalArchive` answers the two S3 calls :mod:`pipeline.archive.reader` makes (``list_objects_v2``
pages, ``get_object`` bodies), so the one reader serves both the emulator's bucket and a copy made with
``aws s3 sync s3://<archive bucket> DIR``. :func:`write_archive` writes events in the archive's layout
(gzip NDJSON objects under ``events/event_type=<type>/dt=<date>/``), for benchmarks and tests.

Guarantees: listings are in key order (S3's), one page, with ``StartAfter`` honoured; a key that is not
a file raises ``FileNotFoundError``. Read-only, except :func:`write_archive`.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pipeline.archive.layout import Partition
from pipeline.codecs import encode_event
from pipeline.events import Event

__all__ = ["LocalArchive", "write_archive"]

_CHUNK: Final = 256 * 1024


class _Body:
    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")

    def iter_chunks(self, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        while chunk := self._file.read(chunk_size):
            yield chunk

    def close(self) -> None:
        self._file.close()


class _Paginator:
    def __init__(self, root: Path) -> None:
        self._root = root

    def paginate(self, *, Bucket: str, Prefix: str = "", StartAfter: str = "") -> Iterator[dict[str, Any]]:  # noqa: N803 - S3's names
        keys = sorted(
            (p.relative_to(self._root).as_posix() for p in self._root.rglob("*") if p.is_file()),
            key=lambda key: key.encode(),  # S3 lists keys in UTF-8 byte order
        )
        contents = []
        for key in keys:
            if key.startswith(Prefix) and key.encode() > StartAfter.encode():
                stat = (self._root / key).stat()
                modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                contents.append({"Key": key, "Size": stat.st_size, "LastModified": modified})
        yield {"Contents": contents}


class LocalArchive:
    """The S3 surface the archive reader uses, over a directory (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_paginator(self, operation: str) -> _Paginator:
        if operation != "list_objects_v2":
            raise ValueError(f"a local archive only lists objects, not {operation!r}")
        return _Paginator(self.root)

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - S3's names
        path = self.root / Key
        if not path.is_file():
            raise FileNotFoundError(f"no object {Key!r} under {self.root}")
        return {"Body": _Body(path)}


def write_archive(events: Iterable[Event], root: Path, *, events_per_object: int = 50_000) -> int:
    """Write ``events`` under ``root`` in the archive's layout, gzip NDJSON; the number of objects written.

    Objects hold at most ``events_per_object`` events each, in input order, named ``part-<n>.gz``.
    """
    partitions: dict[Partition, list[bytes]] = defaultdict(list)
    for event in events:
        partitions[Partition.of(event)].append(encode_event(event))
    written = 0
    for partition, lines in sorted(partitions.items()):
        folder = root / partition.prefix
        folder.mkdir(parents=True, exist_ok=True)
        for number, first in enumerate(range(0, len(lines), events_per_object)):
            body = b"".join(line + b"\n" for line in lines[first : first + events_per_object])
            (folder / f"part-{number:05d}.gz").write_bytes(gzip.compress(body, mtime=0))
            written += 1
    return written
