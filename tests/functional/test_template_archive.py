"""``template.yaml`` against the archive code: the delivery stream, its role, the transform, the buckets."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pipeline.archive.layout import FIREHOSE_ERROR_PREFIX, FIREHOSE_PREFIX
from tests.template_support import (
    TRANSFORM,
    _actions_the_code_uses,
    _arn_of,
    _as_list,
    _environment,
    _function,
    _ref,
    _resources_of_type,
    _statements,
)
from tools.local.firehose import FirehoseSettings

# ---------------------------------------------------------------------------------------- the archive


def _delivery_stream(template: Mapping[str, Any]) -> dict[str, Any]:
    (stream,) = _resources_of_type(template, "AWS::KinesisFirehose::DeliveryStream").values()
    properties: dict[str, Any] = stream["Properties"]
    return properties


def _archive_bucket(template: Mapping[str, Any]) -> str:
    logical, rest = _arn_of(_delivery_stream(template)["ExtendedS3DestinationConfiguration"]["BucketARN"])
    assert rest == ""
    return logical


def _default(template: Mapping[str, Any], value: Any) -> float:
    return float(template["Parameters"][_ref(value)]["Default"])


def test_the_delivery_stream_archives_the_stream_through_the_transform(template: dict[str, Any]) -> None:
    # GIVEN the template's one delivery stream
    delivery = _delivery_stream(template)
    (stream,) = _resources_of_type(template, "AWS::Kinesis::Stream")
    # THEN it reads the event stream
    assert delivery["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert delivery["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == {"Fn::GetAtt": [stream, "Arn"]}
    destination = delivery["ExtendedS3DestinationConfiguration"]
    # AND partitions by the transform's keys with the layout the code reads, errors under their own prefix
    assert destination["Prefix"] == FIREHOSE_PREFIX
    assert destination["ErrorOutputPrefix"] == FIREHOSE_ERROR_PREFIX
    assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert destination["CompressionFormat"] == "GZIP"
    # AND the transform is the function whose code is consumers/firehose_transform.py, writing the same bucket
    (processor,) = destination["ProcessingConfiguration"]["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert processor["Type"] == "Lambda"
    assert parameters["LambdaArn"] == {"Fn::GetAtt": [TRANSFORM, "Arn"]}
    assert _function(template, TRANSFORM)["Handler"] == "consumers/firehose_transform.handler"
    assert _ref(_environment(template, TRANSFORM)["ARCHIVE_BUCKET"]) == _archive_bucket(template)
    # AND the buffering hints are parameters whose defaults the local Firehose uses too
    hints = destination["BufferingHints"]
    local = FirehoseSettings.from_parameters(
        {
            "ArchiveBufferSizeMB": str(_default(template, hints["SizeInMBs"])),
            "ArchiveBufferIntervalSeconds": str(_default(template, hints["IntervalInSeconds"])),
            "ArchiveTransformBufferSizeMB": str(_default(template, parameters["BufferSizeInMBs"])),
        }
    )
    assert local == FirehoseSettings()
    # AND objects are encrypted under the template's key
    key, _ = _arn_of(destination["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"])
    assert template["Resources"][key]["Type"] == "AWS::KMS::Key"


def test_the_delivery_role_may_read_the_stream_invoke_the_transform_and_write_the_archive_only(
    template: dict[str, Any],
) -> None:
    # GIVEN the role Firehose assumes for the source and the destination
    delivery = _delivery_stream(template)
    role, _ = _arn_of(delivery["KinesisStreamSourceConfiguration"]["RoleARN"])
    assert _arn_of(delivery["ExtendedS3DestinationConfiguration"]["RoleARN"]) == (role, "")
    properties = template["Resources"][role]["Properties"]
    # THEN only Firehose may assume it, and only for this account
    (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}
    # AND each action is granted on exactly the resource it needs
    (stream,) = _resources_of_type(template, "AWS::Kinesis::Stream")
    (key,) = _resources_of_type(template, "AWS::KMS::Key")
    bucket = _archive_bucket(template)
    granted: dict[str, set[tuple[str, str]]] = {}
    for statement in _statements(properties["Policies"]):
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            granted.setdefault(action, set()).update(_arn_of(r) for r in _as_list(statement["Resource"]))
    objects = {(bucket, "/events/*"), (bucket, "/errors/*")}
    expected = [
        (
            ("kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"),
            {(stream, "")},
        ),
        (("lambda:InvokeFunction", "lambda:GetFunctionConfiguration"), {(TRANSFORM, "")}),
        (("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"), {(bucket, "")}),
        (("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"), objects),
        (("kms:Decrypt", "kms:GenerateDataKey"), {(key, "")}),
    ]
    assert granted == {action: resources for actions, resources in expected for action in actions}


def test_the_transform_may_do_what_its_code_does_and_nothing_else(template: dict[str, Any]) -> None:
    # GIVEN the transform's policies (inline documents only)
    function = _function(template, TRANSFORM)
    statements = list(_statements(function["Policies"]))
    bucket = _archive_bucket(template)
    (key,) = _resources_of_type(template, "AWS::KMS::Key")
    # THEN it may write objects under the archive's two prefixes (split records, partial errors) and encrypt them
    granted: dict[str, set[tuple[str, str]]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            granted.setdefault(action, set()).update(_arn_of(r) for r in _as_list(statement["Resource"]))
    assert granted == {
        "s3:PutObject": {(bucket, "/events/*"), (bucket, "/errors/*")},
        "kms:GenerateDataKey": {(key, "")},
    }
    # AND those are exactly the calls its code makes
    assert set(granted) == _actions_the_code_uses(function["Handler"]) | {"kms:GenerateDataKey"}


@pytest.mark.parametrize("logical", ["BadRowsBucket", "ArchiveBucket"])
def test_buckets_are_encrypted_versioned_private_tls_only_and_age_to_colder_storage(
    template: dict[str, Any], logical: str
) -> None:
    bucket = template["Resources"][logical]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert _ref(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) in _resources_of_type(
        template, "AWS::KMS::Key"
    )
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    transitions = [
        t for r in bucket["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled" for t in r["Transitions"]
    ]
    assert {t["StorageClass"] for t in transitions} & {"STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}
    (policy,) = [
        r["Properties"]["PolicyDocument"]
        for r in _resources_of_type(template, "AWS::S3::BucketPolicy").values()
        if r["Properties"]["Bucket"] == {"Ref": logical}
    ]
    (deny,) = policy["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {_arn_of(r) for r in deny["Resource"]} == {(logical, ""), (logical, "/*")}


def test_outputs_name_the_archive(template: dict[str, Any]) -> None:
    outputs = {name: output["Value"] for name, output in template["Outputs"].items()}
    (delivery,) = _resources_of_type(template, "AWS::KinesisFirehose::DeliveryStream")
    assert outputs["ArchiveBucket"] == {"Ref": _archive_bucket(template)}
    assert outputs["DeliveryStreamName"] == {"Ref": delivery}
    assert outputs["TransformFunctionName"] == {"Ref": TRANSFORM}


def test_sam_build_packages_the_transform_too(template: dict[str, Any], package: Path) -> None:
    # GIVEN the transform's package, built by the same Makefile recipe as the consumer's
    built = package.parent / TRANSFORM
    handler_module, handler_name = _function(template, TRANSFORM)["Handler"].rsplit(".", 1)
    tree = ast.parse((built / f"{handler_module}.py").read_text(encoding="utf-8"))
    # THEN it holds the handler and the same files as the consumer's
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert handler_name in defined
    assert sorted(p.relative_to(built) for p in built.rglob("*.py")) == sorted(
        p.relative_to(package) for p in package.rglob("*.py")
    )
