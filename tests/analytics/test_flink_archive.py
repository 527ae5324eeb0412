"""Acceptance: the real Flink job over a demo-sized archive writes exactly the reference's items.

The archive is written the way the pipeline writes it (the records a producer sends, through the
Firehose transform and the local delivery stream, into the emulator's bucket); ``pipeline analytics run``
reads it back, runs the job on the session's Flink cluster and writes ``window_metrics`` in the emulator.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from analytics.local import replay_events
from analytics.metrics import METRIC_NAMES
from analytics.reference import expected_windows
from analytics.store import read_items
from pipeline.archive.transform import FirehoseTransform
from pipeline.codecs import RecordFormat, encode_records
from pipeline.objectstore import S3ObjectWriter
from pipeline.settings import Settings, aws_client
from pipeline.stream import StreamRecord
from tools.cli.main import main
from tools.generate import generate_events
from tools.local.firehose import LocalFirehose

pytestmark = [pytest.mark.flink, pytest.mark.emulator]

DEMO_EVENTS = 20_000
_ARRIVAL = datetime.fromtimestamp(1_795_500_000, UTC)


def _archive(s3: Any, bucket: str) -> None:
    """The demo's events, sent as gzip batches, archived by the transform and the local delivery stream."""
    records = encode_records(list(generate_events(DEMO_EVENTS, seed=1)), RecordFormat.GZIP_BATCH)
    firehose = LocalFirehose(s3, bucket, FirehoseTransform(S3ObjectWriter(s3, bucket)))
    firehose.put_records(
        StreamRecord(r.shard_id, str(49_650_000_000_000_000_000 + n), r.data, _ARRIVAL, r.partition_key)
        for n, r in enumerate(records)
    )
    firehose.flush()


def test_the_job_over_the_demo_archive_writes_exactly_the_reference_items(
    flink: dict[str, str],
    emulator: Settings,
    archive_bucket: str,
    window_metrics_table: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the archive of 20,000 demo events in the emulator's bucket
    s3 = aws_client("s3", emulator)
    _archive(s3, archive_bucket)
    # WHEN pipeline analytics run replays it through Flink with no allowed lateness (events sharing a
    # millisecond are then late: the late path runs too) and writes the table
    argv = ["analytics", "run", "--endpoint-url", str(emulator.endpoint_url), "--bucket", archive_bucket]
    status = main([*argv, "--table", window_metrics_table, "--allowed-lateness", "0", "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    summary = orjson.loads(captured.out)
    # THEN the table holds exactly the reference's items, for every metric
    expected = expected_windows(replay_events(s3, archive_bucket), timedelta(0))
    stored = read_items(aws_client("dynamodb", emulator), window_metrics_table)
    assert stored.keys() == expected.items.keys()
    assert stored == expected.items
    assert {item["metric"] for item in stored.values()} == set(METRIC_NAMES)
    # AND the summary reports what it read and wrote, late events included
    assert (summary["events"], summary["rows"], summary["rejected"]) == (DEMO_EVENTS, DEMO_EVENTS, [])
    assert summary["late_events"] == len(expected.late) > 0
    assert summary["written"] == len(stored)
    assert sum(summary["items"].values()) == len(stored)
