"""The local EMF path: Powertools' metric documents in the handler's stdout become PutMetricData."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from tools.local.emf import EmfForwarder, metric_data


class _CloudWatch:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def put_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail:
            self.fail -= 1
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "PutMetricData")
        self.calls.append(kwargs)
        return {}


def _document(bad_rows: int, events: int) -> str:
    metrics = Metrics(namespace="EventPipeline", service="event-pipeline")
    metrics.add_metric(name="BadRows", unit=MetricUnit.Count, value=bad_rows)
    metrics.add_metric(name="Events", unit=MetricUnit.Count, value=events)
    document = metrics.serialize_metric_set()
    metrics.clear_metrics()
    return orjson.dumps(document).decode()


def test_a_powertools_document_becomes_one_datum_per_metric_with_its_dimension() -> None:
    document = orjson.loads(_document(3, 1000))
    data = sorted(metric_data(document), key=lambda pair: pair[1]["MetricName"])
    assert [(ns, d["MetricName"], d["Value"], d["Unit"]) for ns, d in data] == [
        ("EventPipeline", "BadRows", 3.0, "Count"),
        ("EventPipeline", "Events", 1000.0, "Count"),
    ]
    assert all(d["Dimensions"] == [{"Name": "service", "Value": "event-pipeline"}] for _, d in data)
    stamp = data[0][1]["Timestamp"]
    assert stamp.tzinfo is UTC and abs((datetime.now(UTC) - stamp).total_seconds()) < 60


def test_lines_pass_through_whole_and_metrics_are_sent_only_on_send() -> None:
    out = io.StringIO()
    cloudwatch = _CloudWatch()
    forwarder = EmfForwarder(out, cloudwatch)
    text = '{"level":"INFO","message":"batch done"}\n' + _document(2, 10) + "\n" + _document(5, 20) + "\n"
    forwarder.write(text[:50])  # lines arrive in arbitrary pieces, as print() writes them
    forwarder.write(text[50:])
    forwarder.flush()
    assert out.getvalue() == text
    assert cloudwatch.calls == [] and forwarder.pending() == 4
    forwarder.send()
    assert len(cloudwatch.calls) == 1 and forwarder.sent == 4 and forwarder.pending() == 0
    bad = [d["Value"] for d in cloudwatch.calls[0]["MetricData"] if d["MetricName"] == "BadRows"]
    assert bad == [2.0, 5.0]


def test_a_failed_put_keeps_the_data_for_the_next_send_and_batches_hold_at_most_1000() -> None:
    cloudwatch = _CloudWatch(fail=1)
    forwarder = EmfForwarder(io.StringIO(), cloudwatch)
    forwarder.write("".join(_document(1, 1) + "\n" for _ in range(600)))
    forwarder.send()
    assert cloudwatch.calls == [] and forwarder.pending() == 1200
    forwarder.send()
    assert [len(c["MetricData"]) for c in cloudwatch.calls] == [1000, 200]
    assert forwarder.sent == 1200 and forwarder.pending() == 0


@pytest.mark.parametrize("line", ['{"_aws": {"Timestamp": "x"}}', '{"_aws": 1}', '{"_aws": '])
def test_malformed_documents_are_counted_and_never_raise(line: str) -> None:
    forwarder = EmfForwarder(io.StringIO(), _CloudWatch())
    forwarder.write(line + "\n")
    assert forwarder.malformed == 1 and forwarder.pending() == 0


def test_past_max_pending_the_oldest_data_are_dropped_and_counted() -> None:
    forwarder = EmfForwarder(io.StringIO(), _CloudWatch(), max_pending=3)
    forwarder.write(_document(1, 1) + "\n" + _document(2, 2) + "\n")
    assert forwarder.pending() == 3 and forwarder.dropped == 1
