"""The many-shards benchmark case on a small workload: S shards writing the same hot items cost about
one shard's write units per event (per-shard partials), and the report says so against its target."""

from __future__ import annotations

from collections import Counter

import pytest

from load.consumer_bench.plan_figures import _by_type
from load.consumer_bench.unit_report import SHARDS_TARGET, measure_units, shards_label, shards_ratio, units_section
from load.consumer_bench.unit_runs import UnitFigures, hot_shards
from load.consumer_bench.units import UnitTally
from tools.generate import generate_events


def test_fifty_shards_on_the_same_items_cost_one_shards_units_per_event() -> None:
    # GIVEN 1,000 reference events dealt in batches of 10 to 1 and to 50 shards (50 watermarks of
    # 99 bytes would make a hot product-day ~5 KB: 5 units a write, before partials)
    events = list(generate_events(1_000, 1))
    one, fifty = hot_shards(events, 1, 10), hot_shards(events, 50, 10)
    # THEN the steady state's write units per event stay within the target of one shard's
    per_event = [f.units.total_write_units / f.events for f in (one, fifty)]
    assert per_event[1] <= SHARDS_TARGET * per_event[0]
    # AND no partial-table write of the 50-shard run costs more than a unit
    for table in ("order_metrics", "product_metrics", "system_metrics"):
        assert fifty.units.write_units[table] == fifty.units.writes[table]


def test_the_report_states_the_ratio_at_the_most_shards_and_refuses_too_few_events() -> None:
    def case(write_units: float) -> dict[str, object]:
        return {
            "events_per_invocation": 100,
            "item_writes_per_event": 1.2,
            "write_units_per_event": write_units,
            "read_units_per_event": 0.1,
            "write_units_per_event_by_table": {"product_metrics": 0.4},
        }

    # GIVEN one shard at 1.25 WU/event and 1,000 shards at 1.30 (and at 1.60)
    units = {shards_label(1): case(1.25), shards_label(1_000): case(1.30)}
    # THEN the ratio is the most shards' over one shard's, printed with its verdict
    ratio = shards_ratio(units)
    assert ratio is not None and ratio[0] == 1_000 and ratio[1] == pytest.approx(1.04)
    assert units_section(units, None)[-1].endswith(
        "1,000 shards write 1.040x one shard's units per event (per-shard partial items; target <= 1.2x): PASS"
    )
    assert units_section({**units, shards_label(1_000): case(1.60)}, None)[-1].endswith("FAIL")
    # AND without one shard's figure there is no ratio; too few events for the shards is refused
    assert shards_ratio({shards_label(10): case(1.0), shards_label(100): case(1.0)}) is None
    with pytest.raises(ValueError, match="1,000 shards need at least 100,100"):
        measure_units(list(generate_events(200, 1)), 100, lambda _: None, (1, 1_000))


def test_an_index_s_units_count_for_its_table_s_event_type_and_an_unowned_table_is_refused() -> None:
    # GIVEN a metered run of 4 product views and 2 activities whose product index was written too
    units = UnitTally(
        writes={"product_metrics": 4, "user_activities": 2},
        write_units={"product_metrics": 4, "product_metrics/by-view-day": 4, "user_activities": 2, "event_dedup": 1},
        read_units={},
        failed={},
    )
    figures = UnitFigures("t", events=6, records=6, invocations=1, units=units)
    # THEN the index's units are the product views' (2 WU each), the dedup window's any event's
    out = _by_type(figures, Counter({"product_view": 4, "user_activity": 2}))
    assert out["write_units_per_event_of_type"] == {"product_view": 2.0, "user_activity": 1.0}
    assert out["write_units_per_event_any"] == round(1 / 6, 5)
    assert out["index_write_units_per_event_of_type"] == {"product_metrics/by-view-day": {"product_view": 1.0}}
    # AND a table no event type owns stops the figures instead of dropping out of them
    stray = UnitFigures("t", 6, 6, 1, UnitTally({}, {"mystery": 1}, {}, {}))
    with pytest.raises(ValueError, match="mystery"):
        _by_type(stray, Counter({"product_view": 4}))
