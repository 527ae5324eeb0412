"""The analytics job's errors, under the project's root :class:`~pipeline.exceptions.PipelineError`."""

from __future__ import annotations

from pipeline.exceptions import PipelineError

__all__ = ["AnalyticsError", "FlinkUnavailableError", "JobFailedError", "SinkOutputError"]


class AnalyticsError(PipelineError):
    """Root of the analytics job's own errors."""


class FlinkUnavailableError(AnalyticsError):
    """PyFlink or a Java 17+ runtime is missing; the message says which and how to install it."""


class JobFailedError(AnalyticsError):
    """The Flink job did not finish; the message carries Flink's own reason (the root cause's first line)."""


class SinkOutputError(AnalyticsError):
    """A local sink file holds something that is not a changelog row of its metric (damage, or a bug)."""
