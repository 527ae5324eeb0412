"""The local event source mapping's retry spacing: what lets the live runtime ride through an outage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.stream import StreamRecord
from tools.local.esm import EsmSettings, ShardDriver
from tools.local.runtime import retry_backoff


def _records(n: int) -> list[StreamRecord]:
    arrival = datetime.now(UTC)
    return [StreamRecord("shardId-0", f"{i:030d}", b"{}", arrival, "pk") for i in range(n)]


def test_failed_batches_wait_the_retry_delay_and_a_success_waits_nothing() -> None:
    # GIVEN a handler that fails three times, then succeeds, and a driver spacing retries by n seconds
    outcomes = [RuntimeError("down"), RuntimeError("down"), RuntimeError("down"), None]
    slept: list[float] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    settings = EsmSettings(batch_size=10, maximum_retry_attempts=10)
    driver = ShardDriver(handler, settings, stream_arn="arn", retry_delay=float, sleep=slept.append)
    # WHEN it drains a batch
    driver.drain(_records(3))
    # THEN it waited before each retry, longer each time, and the batch was processed, not discarded
    assert slept == [1.0, 2.0, 3.0]
    assert driver.stats.function_errors == 3 and driver.stats.discarded_records == 0


def test_the_runtime_backoff_spans_about_a_minute_over_the_templates_ten_retries() -> None:
    delays = [retry_backoff(n) for n in range(1, 11)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0] and max(delays) == 10.0
    assert 60 <= sum(delays) <= 70
