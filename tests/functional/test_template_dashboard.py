"""The operations dashboard in ``template.yaml``: its body is valid dashboard JSON once CloudFormation
substitutes it, and it charts what the operators need, from the names the stack really uses."""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline.readapi.cloudwatch import METRICS_NAMESPACE, SERVICE


def _body(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body with every ``${...}`` replaced by a stand-in (numbers for the alarm threshold)."""
    body, names = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for name in re.findall(r"\$\{([^}]+)\}", body):
        known = (
            name in template["Resources"] or name in template["Parameters"] or name in names or name.startswith("AWS::")
        )
        assert known, f"${{{name}}} names nothing in the template"
    substituted = re.sub(r"\$\{IteratorAgeAlarmMilliseconds\}", "60000", body)
    parsed: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]+)\}", r"X-\1", substituted))
    return parsed


def test_the_dashboard_charts_the_operational_metrics(template: dict[str, Any]) -> None:
    resource = template["Resources"]["OperationsDashboard"]
    assert resource["Type"] == "AWS::CloudWatch::Dashboard"
    metrics = {
        (line[0], line[1], line[3]) for widget in _body(template)["widgets"] for line in widget["properties"]["metrics"]
    }
    assert {
        ("AWS/Lambda", "IteratorAge", "X-ConsumerFunction"),
        ("AWS/Lambda", "Errors", "X-ConsumerFunction"),
        ("AWS/Lambda", "Throttles", "X-ConsumerFunction"),
        (METRICS_NAMESPACE, "BadRows", SERVICE),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "X-ConsumerFailureQueueName"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "X-FulfilmentDlqName"),
        ("AWS/Firehose", "DeliveryToS3.DataFreshness", "X-ArchiveDeliveryStream"),
    } <= metrics
    # the BadRows namespace and dimension are the ones the consumer's Powertools metrics are given
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert environment["POWERTOOLS_SERVICE_NAME"] == SERVICE
