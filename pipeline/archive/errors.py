"""The archive's errors, under the project's root :class:`~pipeline.exceptions.PipelineError`.

Write failures that a retry may fix are :class:`~pipeline.exceptions.TransientError`, as everywhere.
"""

from __future__ import annotations

from pipeline.exceptions import PipelineError

__all__ = ["ArchiveFormatError", "TransformContractError"]


class TransformContractError(PipelineError):
    """An event or a response breaks Firehose's data-transformation contract (ids, results, keys, size)."""


class ArchiveFormatError(PipelineError):
    """An archive object holds something that is not an event; the message names the key and the line."""
