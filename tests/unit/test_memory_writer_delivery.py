"""The in-memory writer under Lambda-like delivery: crashes, transient failures, lost checkpoints and
new containers, batches re-delivered from the checkpoint; the store still ends with exactly the naive
fold of every event's effects, each message once."""

from __future__ import annotations

from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.metrics.effects import Add, Extreme, Message, PutOnce
from pipeline.metrics.partials import partial_key
from pipeline.metrics.plan import ItemRef, Positioned
from pipeline.retry import RetryPolicy
from tests.metric_streams import (
    SHARD,
    assert_persisted_before,
    delivered,
    expected_messages,
    expected_tables,
    flushed,
    order_key,
    pos,
)
from tools.memory import MemoryMetricWriter, MemoryStore, SimulatedCrash

_KEYS = [order_key(f"b{i}") for i in range(3)]
_SERIES = [(("metric_key", "latency"), ("minute", f"m{i}")) for i in range(2)]
_USERS = [(("user_id", f"u{i}"),) for i in range(2)]
_ROWS = [(("user_id", "u"), ("timestamp", f"t{i}")) for i in range(3)]


@st.composite
def _event_effects(draw: st.DrawFn, i: int) -> list[Positioned]:
    """Zero to four effects of event ``i`` on a few shared items; extreme values never tie across events."""
    at = pos(i)
    out: list[Positioned] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["add", "max", "min", "put", "message"]))
        if kind == "add":
            amount = draw(st.integers(-5, 5) | st.decimals(-5, 5, places=2, allow_nan=False, allow_infinity=False))
            out.append(Positioned(at, Add("order_metrics", draw(st.sampled_from(_KEYS)), {"n": 1, "sum": amount})))
        elif kind in ("max", "min"):
            value = draw(st.integers(0, 20)) * 1000 + i
            which: Literal["max", "min"] = "max" if kind == "max" else "min"
            if draw(st.booleans()):  # a partial table's declared extreme (no companions there)
                extreme = Extreme("system_metrics", draw(st.sampled_from(_SERIES)), which, value, which)
            else:
                extreme = Extreme(
                    "user_sessions", draw(st.sampled_from(_USERS)), which, value, which, {f"{which}_at": at}
                )
            out.append(Positioned(at, extreme))
        elif kind == "put":
            row = draw(st.sampled_from(_ROWS))
            out.append(Positioned(at, PutOnce("user_activities", row, {**dict(row), "by": i})))
        else:
            dedup = f"d{draw(st.integers(0, 3))}"
            out.append(Positioned(at, Message("fulfilment", {"by": i}, dedup, "g")))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(1, 25))
def test_lambda_like_delivery_converges_to_the_naive_fold(data: st.DataObject, n: int) -> None:
    # GIVEN a random stream, and a store whose items may fail transiently
    events = [data.draw(_event_effects(i)) for i in range(n)]
    stream = [p for effects in events for p in effects]
    store = MemoryStore()
    failing: set[ItemRef] = set()
    failing_messages: set[str] = set()

    def make() -> MemoryMetricWriter:  # a new container: empty cache
        return MemoryMetricWriter(
            store,
            retry=RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0),
            fails=lambda ref: ref in failing,
            fails_message=lambda m: m.dedup_id in failing_messages,
        )

    writer = make()
    refs = sorted(  # the stored items: a partial table's are this shard's partials
        {
            (p.effect.table, partial_key(p.effect.table, p.effect.key, SHARD))
            for p in stream
            if not isinstance(p.effect, Message)
        }
    )

    # WHEN Lambda delivers batches from its checkpoint, with crashes, failures and lost checkpoints
    checkpoint, mishaps = 0, 0
    while checkpoint < n:
        end = data.draw(st.integers(checkpoint + 1, n))
        batch = [p for effects in events[checkpoint:end] for p in effects]
        mishap = data.draw(st.sampled_from(["none", "crash", "fail", "lost", "new"])) if mishaps < 3 * n else "none"
        mishaps += mishap != "none"
        failing.clear()
        failing_messages.clear()
        if mishap == "new":
            writer = make()
        if mishap == "fail":
            failing.update(data.draw(st.sets(st.sampled_from(refs))) if refs else ())
            failing_messages.update(data.draw(st.sets(st.sampled_from(["d0", "d1", "d2", "d3"]))))
        if mishap == "crash":
            writer.crash_after_writes = data.draw(st.integers(0, 6))
        try:
            result = flushed(writer, SHARD, batch)
        except SimulatedCrash:
            writer = make() if data.draw(st.booleans()) else writer
            continue
        writer.crash_after_writes = None
        if result.failed_from is not None:
            assert_persisted_before(store, SHARD, batch, result.failed_from)
            checkpoint = next(i for i in range(checkpoint, end) if pos(i) == result.failed_from)
        elif mishap != "lost":
            checkpoint = end

    # THEN the store holds exactly the naive fold of every event's effects, once each
    assert store.tables() == expected_tables(stream)
    assert delivered(store) == expected_messages(stream)
