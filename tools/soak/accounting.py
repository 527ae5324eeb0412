"""The soak's verdict: what the stores hold against what the oracle says they must, in units a reader can
count. Pure functions of their inputs (no AWS), so a unit test can feed them a deliberately wrong
pipeline and see them fail.

The tables are aggregates, so loss and double counting are measured on their counters. A counter is
an integer attribute that events increment (``view_count``, ``order_count``, ``count``, ``hour_07``...):
every integer attribute except the put-once ones in :data:`NOT_COUNTERS`. For each item:

- ``lost``: increments the oracle expects that the table lacks (``expected - actual`` where positive),
  plus one per item that should exist and does not when it has no counter (a user activity, an order
  claim, a session), plus every expected event id absent from the archive;
- ``double_counted``: increments the table has beyond the oracle's (``actual - expected`` where
  positive), plus one per item that should not exist when it has no counter;
- ``mismatched``: items whose other attributes differ (revenue sums, extremes, put-once values,
  timestamps): a failure too, reported apart because it is neither a loss nor a double count.

The archive is at-least-once by design (a resent event is archived twice, as Firehose would), so
extra copies of a sent event are reported (``archive_duplicates``) but are no failure; an archived id
that was never sent is a mismatch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from pipeline.metrics.effects import ItemKey

__all__ = ["NOT_COUNTERS", "Verdict", "account"]

NOT_COUNTERS: Final = frozenset({"ttl", "session_duration"})

Tables = Mapping[str, Mapping[ItemKey, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The comparison of one soak's stores with the oracle. ``ok`` is what the exit code follows."""

    expected_events: int
    archive_missing: int
    archive_duplicates: int
    archive_unexpected: int
    table_lost: int
    double_counted: int
    mismatched: int
    examples: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.archive_missing + self.table_lost

    @property
    def archive_completeness(self) -> float:
        if self.expected_events == 0:
            return 1.0
        return round((self.expected_events - self.archive_missing) / self.expected_events, 6)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.double_counted == 0 and self.mismatched == 0 and self.archive_unexpected == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "expected_events": self.expected_events,
            "lost": self.lost,
            "lost_in_tables": self.table_lost,
            "lost_in_archive": self.archive_missing,
            "double_counted": self.double_counted,
            "mismatched_items": self.mismatched,
            "archive_completeness": self.archive_completeness,
            "archive_duplicates": self.archive_duplicates,
            "archive_unexpected": self.archive_unexpected,
            "examples": self.examples,
        }


def _is_counter(name: str, value: object) -> bool:
    return name not in NOT_COUNTERS and isinstance(value, int | Decimal) and Decimal(value) == int(value)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def account(
    actual: Tables, expected: Tables, sent_ids: Iterable[str], archived_ids: Counter[str], *, examples: int = 10
) -> Verdict:
    """Compare ``actual`` tables with the oracle's ``expected`` ones (numbers as the oracle gives them: ints
    for counters), and the archive's id counts with the unique ids sent. See the module docstring."""
    lost = double = mismatched = 0
    shown: list[str] = []
    for table in sorted(set(actual) | set(expected)):
        got_items, want_items = actual.get(table, {}), expected.get(table, {})
        for key in sorted(set(got_items) | set(want_items), key=repr):
            got, want = got_items.get(key), want_items.get(key)
            if got == want:
                continue
            counters_want = {a: int(v) for a, v in (want or {}).items() if a not in NOT_COUNTERS and _whole(v)}
            if got is None:
                lost += sum(counters_want.values()) or 1
                note = "missing"
            elif want is None:
                extra = {a: int(v) for a, v in got.items() if a not in NOT_COUNTERS and _is_counter(a, v)}
                double += sum(extra.values()) or 1
                note = "unexpected"
            else:
                note = _compare(got, want, counters_want)
                short = sum(max(n - int(got.get(a, 0)), 0) for a, n in counters_want.items())
                excess = sum(max(int(got.get(a, 0)) - n, 0) for a, n in counters_want.items())
                lost, double = lost + short, double + excess
                others = {a for a in set(got) | set(want) if a not in counters_want}
                if any(got.get(a) != want.get(a) for a in others):
                    mismatched += 1
            if len(shown) < examples:
                shown.append(f"{table} {dict(key)}: {note}")
    unique = set(sent_ids)
    archived = set(archived_ids)
    missing = unique - archived
    duplicates = sum(n - 1 for i, n in archived_ids.items() if i in unique and n > 1)
    unexpected = archived - unique
    shown += [f"archive: event {i} missing" for i in sorted(missing)[: max(examples - len(shown), 0)]]
    return Verdict(len(unique), len(missing), duplicates, len(unexpected), lost, double, mismatched, shown)


def _compare(got: Mapping[str, Any], want: Mapping[str, Any], counters: Mapping[str, int]) -> str:
    diff = {a: (got.get(a), want.get(a)) for a in sorted(set(got) | set(want)) if got.get(a) != want.get(a)}
    kinds = "counters" if set(diff) <= set(counters) else "attributes"
    return f"{kinds} differ (got, expected) {diff}"
