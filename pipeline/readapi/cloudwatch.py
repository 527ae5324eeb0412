"""The dashboard's charts from CloudWatch: bad rows per hour and the consumer's iterator age, one
``GetMetricData`` call each (``NextToken`` followed if CloudWatch pages, counted in the chart).

- Bad rows: the consumer's ``BadRows`` EMF metric (Powertools, namespace ``EventPipeline``, dimension
  ``service=event-pipeline``: ``POWERTOOLS_METRICS_NAMESPACE`` and ``POWERTOOLS_SERVICE_NAME`` in
  ``template.yaml``), summed per hour of arrival.
- Consumer lag: Lambda's ``IteratorAge`` of the consumer function (``AWS/Lambda``, ``FunctionName``),
  its maximum per period: how old the last record of each batch was when it was read.

Hours or periods CloudWatch has no data for are zero / absent, as CloudWatch reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from pipeline.readapi.models import BadRowsHour, Chart, LagPoint

__all__ = ["METRICS_NAMESPACE", "SERVICE", "CloudWatchReader"]

METRICS_NAMESPACE: Final = "EventPipeline"
SERVICE: Final = "event-pipeline"


class CloudWatchReader:
    """Charts from CloudWatch for one deployment. ``cloudwatch`` is a low-level boto3 client."""

    def __init__(
        self,
        cloudwatch: Any,
        consumer_function: str,
        *,
        namespace: str = METRICS_NAMESPACE,
        service: str = SERVICE,
    ) -> None:
        self._cloudwatch = cloudwatch
        self._function = consumer_function
        self._namespace = namespace
        self._service = service

    def bad_rows_per_hour(self, day: date) -> Chart[BadRowsHour]:
        """The consumer's bad rows per UTC hour of ``day``: 24 rows, zero where CloudWatch has nothing."""
        start = datetime.combine(day, time(0), tzinfo=UTC)
        metric = {
            "Namespace": self._namespace,
            "MetricName": "BadRows",
            "Dimensions": [{"Name": "service", "Value": self._service}],
        }
        values, calls = self._get(metric, "Sum", 3600, start, start + timedelta(days=1))
        by_hour = {when.astimezone(UTC).replace(minute=0, second=0, microsecond=0): v for when, v in values}
        rows = tuple(
            BadRowsHour(start + timedelta(hours=h), int(by_hour.get(start + timedelta(hours=h), 0))) for h in range(24)
        )
        return Chart("bad_rows_per_hour", rows, calls, f"GetMetricData {self._namespace}/BadRows Sum 1h")

    def iterator_age(self, since: datetime, until: datetime, period_s: int = 60) -> Chart[LagPoint]:
        """The consumer's maximum ``IteratorAge`` per ``period_s`` between two aware instants, oldest first."""
        if since.utcoffset() is None or until.utcoffset() is None:
            raise ValueError("since and until must be aware datetimes")
        metric = {
            "Namespace": "AWS/Lambda",
            "MetricName": "IteratorAge",
            "Dimensions": [{"Name": "FunctionName", "Value": self._function}],
        }
        values, calls = self._get(metric, "Maximum", period_s, since, until)
        rows = tuple(LagPoint(when.astimezone(UTC), int(value)) for when, value in sorted(values))
        return Chart("consumer_lag", rows, calls, f"GetMetricData AWS/Lambda/IteratorAge Maximum {period_s}s")

    def _get(
        self, metric: dict[str, Any], stat: str, period_s: int, start: datetime, end: datetime
    ) -> tuple[Sequence[tuple[datetime, float]], int]:
        query = {"Id": "m", "MetricStat": {"Metric": metric, "Period": period_s, "Stat": stat}, "ReturnData": True}
        params: dict[str, Any] = {"MetricDataQueries": [query], "StartTime": start, "EndTime": end}
        values: list[tuple[datetime, float]] = []
        calls = 0
        while True:
            response = self._cloudwatch.get_metric_data(**params)
            calls += 1
            for result in response.get("MetricDataResults", []):
                values.extend(zip(result.get("Timestamps", []), result.get("Values", []), strict=True))
            token = response.get("NextToken")
            if not token:
                return values, calls
            params["NextToken"] = token
