"""Reading the local sinks back: each metric's debezium-json changelog folded into its final items.

Flink's debezium-json encoding of a changelog row: an insert or an update's new image is
``{"before": null, "after": {...}, "op": "c"}``; a delete or an update's old image is
``{"before": {...}, "after": null, "op": "d"}``. Folding applies them in file order: ``c`` puts the row
under its key ``(pk, sk)``, ``d`` removes the key. What remains is what an upsert sink (DynamoDB) holds.

Guarantees: part files are read in the order Flink wrote them (by their counter, one subtask as the
local job runs with parallelism 1); an in-progress file left behind (a job that did not finish) or a
line that is not a changelog row of the metric raises :class:`~analytics.errors.SinkOutputError`.
Numbers are read as ``int`` or exact :class:`~decimal.Decimal`, never float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from analytics.errors import SinkOutputError
from analytics.metrics import METRICS, Item, ItemKey, MetricSpec, item_key, to_item

__all__ = ["fold", "read_items", "read_rows"]

_PART: Final = re.compile(r"part-[0-9a-f-]+-(\d+)-(\d+)(?:\..*)?")


def _part_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    stray = [p.name for p in directory.iterdir() if p.name.startswith(".") and not p.name.endswith(".crc")]
    if stray:
        raise SinkOutputError(f"{directory}: unfinished files {stray} (did the job end?)")
    parts = []
    for path in directory.iterdir():
        match = _PART.fullmatch(path.name)
        if match is None:
            raise SinkOutputError(f"{path}: not a part file of a Flink filesystem sink")
        parts.append(((int(match[1]), int(match[2])), path))
    return [path for _, path in sorted(parts)]


def read_rows(directory: Path) -> Iterator[dict[str, Any]]:
    """Every JSON line of every part file of one sink directory, in write order."""
    for path in _part_files(directory):
        with path.open("rb") as handle:
            for number, line in enumerate(handle):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line, parse_float=Decimal)
                except ValueError as exc:
                    raise SinkOutputError(f"{path}, line {number}: not JSON: {exc}") from exc
                if not isinstance(row, dict):
                    raise SinkOutputError(f"{path}, line {number}: not a JSON object")
                yield row


def fold(spec: MetricSpec, directory: Path) -> dict[ItemKey, Item]:
    """The final items of one metric's changelog directory (see the module docstring)."""
    items: dict[ItemKey, Item] = {}
    for change in read_rows(directory):
        op = change.get("op")
        image = change.get("after" if op == "c" else "before")
        if op not in {"c", "d"} or not isinstance(image, Mapping):
            raise SinkOutputError(f"{directory}: not a debezium-json change: {change!r}"[:300])
        try:
            item = to_item(spec, image)
        except ValueError as exc:
            raise SinkOutputError(f"{directory}: {exc}") from exc
        if op == "c":
            items[item_key(item)] = item
        else:
            items.pop(item_key(item), None)
    return items


def read_items(directory: Path) -> dict[str, dict[ItemKey, Item]]:
    """Every metric's final items from a :class:`~analytics.job.FileSinks` directory, by metric name."""
    return {spec.name: fold(spec, directory / spec.name) for spec in METRICS}
