"""``template.yaml`` against the analytics job: the window table, the Managed Flink application, its role."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from analytics.managed import PROPERTY_GROUPS, ManagedSettings
from analytics.metrics import KEY_COLUMNS
from analytics.package import RUN_OPTIONS
from tests.template_support import (
    ROOT,
    _arn_of,
    _as_list,
    _ref,
    _resources_of_type,
    _statements,
    _window_metrics_table,
)

# ---------------------------------------------------------------------------------------- the analytics


ANALYTICS = "AnalyticsApplication"
_FLINK_PIN = re.compile(r'"apache-flink==(\d+)\.(\d+)\.\d+[";]')  # the requirement may carry a marker


def _property_groups(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    configuration = template["Resources"][ANALYTICS]["Properties"]["ApplicationConfiguration"]
    groups = configuration["EnvironmentProperties"]["PropertyGroups"]
    return {group["PropertyGroupId"]: group["PropertyMap"] for group in groups}


def test_the_window_metrics_table_has_the_key_the_job_writes(template: dict[str, Any]) -> None:
    # GIVEN the table named by the WindowMetricsTable output
    table = template["Resources"][_window_metrics_table(template)]["Properties"]
    # THEN its key is the items' (pk, sk), strings, on demand and encrypted under the template's key
    key = [name for name, _ in KEY_COLUMNS[:2]]
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [(key[0], "HASH"), (key[1], "RANGE")]
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == dict.fromkeys(key, "S")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert _ref(table["SSESpecification"]["KMSMasterKeyId"]) in _resources_of_type(template, "AWS::KMS::Key")


def test_the_managed_flink_application_runs_the_packaged_job_on_the_pinned_flink(template: dict[str, Any]) -> None:
    # GIVEN the application, created only when its code bucket is given
    resource = template["Resources"][ANALYTICS]
    assert resource["Condition"] == "AnalyticsDeployed"
    properties = resource["Properties"]
    # THEN its runtime is the Flink of the 'analytics' dependency group (apache-flink==X.Y.Z -> FLINK-X_Y)
    pin = _FLINK_PIN.search((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pin, "pyproject.toml pins no apache-flink"
    assert properties["RuntimeEnvironment"] == f"FLINK-{pin[1]}_{pin[2]}"
    configuration = properties["ApplicationConfiguration"]
    # AND its code is the zip in S3 that analytics/package.py lays out, run with the options it names
    code = configuration["ApplicationCodeConfiguration"]
    assert code["CodeContentType"] == "ZIPFILE"
    location = code["CodeContent"]["S3ContentLocation"]
    assert location["BucketARN"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AnalyticsCodeBucket}"}
    assert _ref(location["FileKey"]) in template["Parameters"]
    groups = _property_groups(template)
    assert groups["kinesis.analytics.flink.run.options"] == RUN_OPTIONS
    # AND parallelism and parallelism per KPU (hence KPUs) are parameters; checkpoints are on
    flink = configuration["FlinkApplicationConfiguration"]
    parallelism = flink["ParallelismConfiguration"]
    assert parallelism["ConfigurationType"] == "CUSTOM"
    for key in ("Parallelism", "ParallelismPerKPU"):
        assert _ref(parallelism[key]) in template["Parameters"], key
    assert flink["CheckpointConfiguration"]["ConfigurationType"] == "DEFAULT"


def test_the_application_properties_are_what_the_job_reads(template: dict[str, Any]) -> None:
    # GIVEN the property groups, intrinsics standing for their values
    groups = _property_groups(template)
    assert set(PROPERTY_GROUPS) <= set(groups)
    (stream,) = _resources_of_type(template, "AWS::Kinesis::Stream")
    assert groups["EventStream"]["stream.arn"] == {"Fn::GetAtt": [stream, "Arn"]}
    assert groups["WindowMetrics"]["table.name"] == {"Ref": _window_metrics_table(template)}
    bad_rows = groups["BadRows"]["path"]["Fn::Sub"]
    assert bad_rows.startswith("s3://${BadRowsBucket}/")
    # THEN the job's settings load from them (a missing or malformed one raises ConfigurationError)
    parameters = template["Parameters"]

    def value(v: Any) -> str:
        if isinstance(v, dict) and "Ref" in v and v["Ref"] in parameters:
            return str(parameters[v["Ref"]]["Default"])
        return v if isinstance(v, str) else "x"

    resolved = {group: {k: value(v) for k, v in props.items()} for group, props in groups.items()}
    settings = ManagedSettings.from_properties(resolved)
    assert settings.init_position in {"TRIM_HORIZON", "LATEST"}


def test_the_analytics_role_may_do_what_the_job_does_and_nothing_else(template: dict[str, Any]) -> None:
    # GIVEN the role the application runs as
    application = template["Resources"][ANALYTICS]["Properties"]
    role, _ = _arn_of(application["ServiceExecutionRole"])
    properties = template["Resources"][role]["Properties"]
    # THEN only Managed Flink may assume it, for this account only
    (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "kinesisanalytics.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    # AND each action is granted on exactly the resource it needs: its code object, the stream (the
    # Kinesis source's polling calls), the window metrics table (the DynamoDB sink's one call), the
    # bad-rows prefix (the filesystem sink's multipart uploads) and the data key
    (stream,) = _resources_of_type(template, "AWS::Kinesis::Stream")
    (key,) = _resources_of_type(template, "AWS::KMS::Key")
    code = "arn:${AWS::Partition}:s3:::${AnalyticsCodeBucket}/${AnalyticsCodeKey}"
    granted: dict[str, set[Any]] = {}
    for statement in _statements(properties["Policies"]):
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                target = resource["Fn::Sub"] if resource == {"Fn::Sub": code} else _arn_of(resource)
                granted.setdefault(action, set()).add(target)
    objects = {("BadRowsBucket", "/analytics-bad-rows/*")}
    expected = [
        (("s3:GetObjectVersion",), {code}),
        (("s3:GetObject",), {code, *objects}),
        (
            ("kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords"),
            {(stream, "")},
        ),
        (("dynamodb:BatchWriteItem",), {(_window_metrics_table(template), "")}),
        (("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"), objects),
        (("s3:ListBucket",), {("BadRowsBucket", "")}),
        (("kms:Decrypt", "kms:GenerateDataKey"), {(key, "")}),
    ]
    assert granted == {action: resources for actions, resources in expected for action in actions}
    # AND listing the bad-rows bucket is limited to the job's prefix
    (listing,) = [st for st in _statements(properties["Policies"]) if st["Action"] == ["s3:ListBucket"]]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "analytics-bad-rows/*"}}


def test_outputs_name_the_analytics(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["WindowMetricsTable"]["Value"] == {"Ref": _window_metrics_table(template)}
    assert outputs["AnalyticsApplicationName"] == {"Condition": "AnalyticsDeployed", "Value": {"Ref": ANALYTICS}}
