"""The consumer's behaviour settings (not resource names): read once per container from the environment.

The template sets them from its parameters: ``DEDUP_WINDOW_MINUTES`` (``DedupWindowMinutes``),
``EVENT_TIME_HORIZON_HOURS`` (``EventTimeHorizonHours``) and ``METRIC_KEY_SPLIT`` (``MetricKeySplit``).
Each has the template's default when unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from pipeline.events import ValidationPolicy
from pipeline.exceptions import ConfigurationError
from pipeline.metrics.partials import SPLIT_MAX
from pipeline.plugins.base import PluginSettings

__all__ = ["ConsumerConfig"]


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={raw} is outside {low:g}-{high:g}")
    return value


def _key_split(env: Mapping[str, str]) -> int:
    value = _number(env, "METRIC_KEY_SPLIT", 1, 1, SPLIT_MAX)
    if value != int(value):
        raise ConfigurationError(f"METRIC_KEY_SPLIT={value:g} is not a whole number")
    return int(value)


def _policy(env: Mapping[str, str]) -> ValidationPolicy:
    try:
        return ValidationPolicy.from_env(env)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """How the consumer behaves: dedup window, validation policy, plugin settings, write concurrency."""

    dedup_window: timedelta = timedelta(minutes=60)
    policy: ValidationPolicy = field(default_factory=ValidationPolicy)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    writer_concurrency: int = 4
    """DynamoDB and SQS calls the metric writer runs at once (each of 25 statements, 100 keys or 10
    messages)."""
    key_split: int = 1
    """Hot-key write sharding: partition keys of partial tables split K ways (:mod:`pipeline.metrics.partials`)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsumerConfig:
        """Read the settings; a malformed one raises :class:`ConfigurationError` naming it."""
        env = os.environ if environ is None else environ
        return cls(
            dedup_window=timedelta(minutes=_number(env, "DEDUP_WINDOW_MINUTES", 60, 1, 1440)),
            policy=_policy(env),
            key_split=_key_split(env),
        )
