"""What one demo run did and found: the figures ``pipeline demo`` prints (and ``--json`` writes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tools.local.demo_shop import ShopSummary
from tools.local.demo_stores import OrderCheck
from tools.local.demo_windows import WindowSummary
from tools.local.runtime import DrainResult
from tools.verify import Tables, jsonable

__all__ = ["DemoSummary"]


@dataclass
class DemoSummary:
    endpoint: str
    stack: str
    record_format: str
    fault_rate: float
    events_sent: int = 0
    """Events the producer published (every input event but the orders)."""
    malformed_sent: int = 0
    order_events_in: int = 0
    """Order events of the input: applied to the stores, never published as they are."""
    shop: ShopSummary | None = None
    orders: OrderCheck | None = None
    """What the stores committed and what the metrics counted of it."""
    producer: dict[str, int] = field(default_factory=dict)
    records_consumed: int = 0
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    bisections: int = 0
    discarded_batches: int = 0
    dynamodb_requests: int = 0
    bad_row_reasons: list[str] = field(default_factory=list)
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    fulfilment_messages: int = 0
    archive_bucket: str = ""
    archive_objects: int = 0
    archive_events: int = 0
    archive_error_objects: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    verified: bool = False
    problems: list[str] = field(default_factory=list)
    tables: Tables = field(default_factory=dict)
    windows: WindowSummary | None = None
    """The windowed analytics over the archive (``None`` when the demo skipped them)."""

    @property
    def events_total(self) -> int:
        """Valid events on the stream: the producer's and, once verified, one per committed order change."""
        return self.events_sent + (len(self.orders.events) if self.orders else 0)

    @property
    def dynamodb_requests_per_event(self) -> float:
        return self.dynamodb_requests / max(self.events_total, 1)

    def record_drain(self, drained: DrainResult, dynamodb_requests: int, faults: dict[str, int]) -> None:
        """The consumer's side of the run, from the local event source's result."""
        self.records_consumed = drained.records
        self.invocations = drained.total("invocations")
        self.function_errors = drained.total("function_errors")
        self.partial_failures = drained.total("partial_failures")
        self.bisections = drained.total("bisections")
        self.dynamodb_requests = dynamodb_requests
        self.faults = faults

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in {"shop", "orders"}}
        out["shop"] = self.shop.as_json() if self.shop else None
        out["orders"] = self.orders.as_json() if self.orders else None
        out["tables"] = jsonable(self.tables)
        out["dynamodb_requests_per_event"] = round(self.dynamodb_requests_per_event, 4)
        out["item_counts"] = {table: len(items) for table, items in self.tables.items()}
        return out
