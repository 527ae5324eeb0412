"""Gzip payloads: deterministic compression and bounded, streaming-safe decompression."""

from __future__ import annotations

import zlib
from typing import Final

from pipeline.codecs.formats import MAX_DECOMPRESSED_BYTES

__all__ = ["GzipError", "gunzip", "gzip_bytes"]

_GZIP_WBITS: Final = 31  # zlib with a gzip header and trailer


class GzipError(ValueError):
    """Internal to the codec layer: turned into a DecodeError with the raw bytes by the caller."""


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    """Gzip ``data`` with a zero mtime, so the same input always gives the same bytes."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
    return compressor.compress(data) + compressor.flush()


def gunzip(data: bytes, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Inflate every gzip member in ``data``; raise :class:`GzipError` if corrupt, truncated or over ``limit``."""
    out = []
    total = 0
    rest = data
    while rest:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            chunk = inflater.decompress(rest, limit - total + 1)
        except zlib.error as exc:
            raise GzipError(f"bad gzip data: {exc}") from None
        total += len(chunk)
        if total > limit or inflater.unconsumed_tail:
            raise GzipError(f"gzip payload inflates past {limit} bytes")
        if not inflater.eof:
            raise GzipError("truncated gzip data (no end of stream)")
        out.append(chunk)
        rest = inflater.unused_data
    return out[0] if len(out) == 1 else b"".join(out)
