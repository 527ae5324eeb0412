"""The planner's inputs: measured figures and prices, each a dated JSON file under ``tools/plan/data/``.

Both are validated when loaded; a missing key, a wrong type or a negative price raises
:class:`PlanInputError` naming the file and the key, so the CLI can say it in one line.
Prices are :class:`~decimal.Decimal` (money never goes through a float).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import orjson

from pipeline.exceptions import PipelineError

__all__ = [
    "DEFAULT_FIGURES",
    "DEFAULT_PRICES",
    "EVENT_TYPES",
    "Figures",
    "PlanInputError",
    "Prices",
    "UnitPoint",
    "load_figures",
    "load_prices",
]

_DATA: Final = Path(__file__).parent / "data"
DEFAULT_FIGURES: Final = _DATA / "consumer-figures-v1-2026-12-02.json"
DEFAULT_PRICES: Final = _DATA / "prices-us-east-1-2026-12-01.json"
EVENT_TYPES: Final = ("order_event", "product_view", "system_metric", "user_activity")


class PlanInputError(PipelineError):
    """A figures or prices file that cannot be read or lacks what the planner needs."""


@dataclass(frozen=True, slots=True)
class UnitPoint:
    """Capacity units per event at one invocation size: per event of each type, plus per any event."""

    events_per_invocation: float
    write_per_type: Mapping[str, float]
    write_any: float
    read_per_type: Mapping[str, float]
    read_any: float
    index_write_per_type: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Of the write units, each global secondary index's (``<table>/<index>``) per event of each type."""

    def index_write_units(self, index: str, mix: Mapping[str, float]) -> float:
        """Write units per event of ``index`` alone (its partitions are apart from the table's)."""
        return sum(share * self.index_write_per_type.get(index, {}).get(t, 0.0) for t, share in mix.items())

    def write_units(self, mix: Mapping[str, float]) -> float:
        return sum(share * self.write_per_type.get(t, 0.0) for t, share in mix.items()) + self.write_any

    def read_units(self, mix: Mapping[str, float]) -> float:
        return sum(share * self.read_per_type.get(t, 0.0) for t, share in mix.items()) + self.read_any


@dataclass(frozen=True, slots=True)
class Figures:
    """What ``load/consumer_bench/plan_figures.py`` measured (see that module for how)."""

    source: str
    measured_on: str
    mix: Mapping[str, float]
    formats: Mapping[str, Mapping[str, float]]
    project_points: tuple[UnitPoint, ...]
    """Sorted by events per invocation."""
    seed: UnitPoint
    project_cpu_us: float
    project_wall_us: float
    seed_cpu_us: float
    seed_wall_us: float
    many_shards: Mapping[int, float]
    hottest_share: Mapping[str, float]
    watermark_bytes: int
    flink_events_per_kpu: float

    def project_units_at(self, events_per_invocation: float) -> UnitPoint:
        """The measured point with the nearest invocation size at or below ``events_per_invocation``
        (the first point below the smallest): coalescing only improves with larger invocations, so
        this never flatters the plan."""
        chosen = self.project_points[0]
        for point in self.project_points:
            if point.events_per_invocation <= events_per_invocation:
                chosen = point
        return chosen


@dataclass(frozen=True, slots=True)
class Prices:
    source: str
    as_of: str
    usd: Mapping[str, Decimal]

    def __getitem__(self, key: str) -> Decimal:
        try:
            return self.usd[key]
        except KeyError:
            raise PlanInputError(f"{self.source}: no price {key!r}") from None


def _read(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise PlanInputError(f"cannot read {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise PlanInputError(f"{path} is not JSON: {exc}") from exc


def _point(path: Path, raw: Mapping[str, Any]) -> UnitPoint:
    try:
        return UnitPoint(
            float(raw.get("events_per_invocation", 1.0)),
            {t: float(v) for t, v in raw["write_units_per_event_of_type"].items()},
            float(raw["write_units_per_event_any"]),
            {t: float(v) for t, v in raw["read_units_per_event_of_type"].items()},
            float(raw["read_units_per_event_any"]),
            {
                index: {t: float(v) for t, v in per_type.items()}
                for index, per_type in raw.get("index_write_units_per_event_of_type", {}).items()
            },
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanInputError(f"{path}: a units point lacks or mistypes {exc}") from exc


def load_figures(path: Path = DEFAULT_FIGURES) -> Figures:
    """The figures file at ``path``; raises :class:`PlanInputError` when it is unusable."""
    raw = _read(path)
    try:
        project, seed = raw["project"], raw["seed_style"]
        points = tuple(sorted((_point(path, p) for p in project["points"]), key=lambda p: p.events_per_invocation))
        if not points:
            raise PlanInputError(f"{path}: no project units points")
        return Figures(
            str(path),
            str(raw["measured_on"]),
            {t: float(v) for t, v in raw["workload"]["mix"].items()},
            {f: {k: float(v) for k, v in d.items()} for f, d in raw["formats"].items()},
            points,
            _point(path, seed),
            float(project["cpu_us_per_event"]),
            float(project["wall_us_per_event"]),
            float(seed["cpu_us_per_event"]),
            float(seed["wall_us_per_event"]),
            {int(s): float(v["write_units_per_event"]) for s, v in raw["many_shards"]["shards"].items()},
            {t: float(v) for t, v in raw["hottest_item_share"].items()},
            int(raw["watermark_bytes"]),
            float(raw["flink_events_per_s_per_kpu"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanInputError(f"{path}: missing or malformed figure {exc}") from exc


def load_prices(path: Path = DEFAULT_PRICES, overrides: Path | None = None) -> Prices:
    """The default prices, with every key of ``overrides`` (same layout) replacing the default's."""
    base = _prices(path, _read(path))
    if overrides is None:
        return base
    extra = _prices(overrides, _read(overrides))
    return Prices(f"{overrides} (over {path})", extra.as_of, {**base.usd, **extra.usd})


def _prices(path: Path, raw: Any) -> Prices:
    try:
        entries = raw["prices"]
        usd: dict[str, Decimal] = {}
        for key, entry in entries.items():
            value = Decimal(str(entry["usd"] if isinstance(entry, Mapping) else entry))
            if not value.is_finite() or value < 0:
                raise PlanInputError(f"{path}: price {key!r} must be a number at least 0, not {value}")
            usd[key] = value
        return Prices(str(path), str(raw.get("as_of", "?")), usd)
    except (KeyError, TypeError, AttributeError, InvalidOperation) as exc:
        raise PlanInputError(f"{path}: missing or malformed prices ({exc!r})") from exc
