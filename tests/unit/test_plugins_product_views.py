"""The product-view plugin: a view counts into its product's daily item and its hour."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pipeline.events import ProductViewData
from pipeline.metrics.effects import Extreme
from pipeline.plugins import BatchContext, ProductViewsPlugin
from tests.plugin_cases import T0, effects_of, make_event
from tools.oracle import apply_effects

_KEY_P1 = (("product_id", "p-1"), ("metric_date", "2026-11-24"))


def test_product_view_counts_into_its_daily_item_and_hour() -> None:
    # GIVEN two views of one product, the second earlier and in another hour
    stream = [
        make_event(ProductViewData("p-1"), T0, "e-1"),
        make_event(ProductViewData("p-1"), datetime(2026, 11, 24, 0, 5, tzinfo=timezone(timedelta(hours=-3))), "e-2"),
    ]
    # WHEN folded
    got = ProductViewsPlugin().effects(stream, BatchContext())
    tables = apply_effects(e for effects in got for e in effects)
    # THEN one daily item: the count, the UTC-hour histogram, and the latest view (never rewound)
    assert tables["product_metrics"] == {
        _KEY_P1: {
            "product_id": "p-1",
            "metric_date": "2026-11-24",
            "view_count": 2,
            "hour_10": 1,
            "hour_03": 1,
            "last_viewed": "2026-11-24T10:15:00.250000Z",
        }
    }
    assert effects_of(Extreme, got[1]) == [
        Extreme("product_metrics", _KEY_P1, "last_viewed", "2026-11-24T03:05:00.000000Z", "max")
    ]
