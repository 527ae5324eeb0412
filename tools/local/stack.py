"""Deploy ``template.yaml`` as the CloudFormation stack ``event-pipeline-<stage>``: the local stack.

:func:`deploy` packages the code (:mod:`tools.local.package`), uploads it to the stage's artifacts
bucket, creates or updates the stack with the SAM transform and waits for it, then removes the
event source mapping the emulator made for the consumer (see below) and returns a :class:`StackInfo`.
:func:`describe` reads the same information back; :func:`destroy` deletes the stack and the bucket.

Guarantees and failure behaviour:

- Idempotent: deploying an unchanged tree is CloudFormation's "No updates are to be performed",
  reported as ``change == "unchanged"`` (the code zip is content-addressed, so unchanged code keeps
  its key). A stack left in ``ROLLBACK_COMPLETE`` by a failed first creation is deleted and created
  again, as it holds no resources; any other failed state raises :class:`StackError`.
- A stack that ends in anything but ``CREATE_COMPLETE``/``UPDATE_COMPLETE`` raises :class:`StackError`
  naming each failed resource with its reason (from the stack events and, for pre-provisioning
  validation failures, from ``DescribeEvents``).
- The emulator's event source mappings of the consumer and of the store table's bridge are deleted
  right after the stack completes, because it runs the functions itself without Lambda's partial-batch
  semantics (the local runtime, or the demo's stream poller, drives the handlers instead; the bridge's
  invocations would only fail to import, every few seconds, at a worker process each). By default
  this happens only against an emulator (``settings.endpoint_url`` set): on real AWS those mappings
  *are* the pipeline. An update that changes the template recreates them, and deploy deletes them
  again; in between they exist for milliseconds, and the emulator's Lambda cannot import the packaged
  code anyway (no third-party dependencies are packaged).

What ministack 1.5.33 does with this template (observed): every resource reports ``CREATE_COMPLETE``
in about 0.05 s (2 s for the first stack of an emulator: the SAM translator loads). Created: the KMS
key, the stream (``ON_DEMAND`` gets 4 shards, ``PROVISIONED`` ``ShardCount``), the tables with their
key schemas, the FIFO and standard queues (KMS key id and redrive policy kept), the bucket (versioning
and bucket policy kept), the function and its role, the event source mapping, the five alarms.
Ignored: stream encryption (``NONE``), table SSE and TTL (``DISABLED``), the bucket's KMS encryption
(reports ``AES256``). It does not check names across stacks for tables and streams (a second stack
naming an existing table adopts it, and deleting that stack deletes the table); buckets it does check.
It deletes a non-empty versioned bucket with its stack, where AWS fails the deletion. ``DeleteStack``
and ``CreateStack`` finish before they return. ``GetRecords`` ``MillisBehindLatest`` is not meaningful.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.exceptions import ConfigurationError
from pipeline.metrics.tables import QUEUES, TABLES, Resources
from pipeline.settings import Settings, aws_client
from tools.local import cloudformation
from tools.local.cloudformation import StackError, message
from tools.local.esm import EsmSettings
from tools.local.package import package_code, rewrite_template

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import StackTypeDef
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "DEFAULT_TEMPLATE",
    "EventSource",
    "StackError",
    "StackInfo",
    "artifacts_bucket",
    "deploy",
    "describe",
    "destroy",
    "stack_name",
]

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
"""The repository's template (this file is ``pipeline/local/stack.py`` in a source checkout)."""

_STAGE = re.compile(r"[a-z0-9-]{1,16}")  # the template's AllowedPattern; also keeps bucket names valid
_FUNCTION_OUTPUT = "ConsumerFunctionName"
_DRIVEN_LOCALLY = (_FUNCTION_OUTPUT, "OrderStreamBridgeFunctionName")
"""Functions whose event source mappings the local runtime (or the demo's stream poller) drives instead."""


@dataclass(frozen=True, slots=True)
class EventSource:
    """The consumer's Kinesis event source as the deployed template declares it, parameters resolved."""

    esm: EsmSettings
    stream_arn: str
    starting_position: str
    on_failure_arn: str | None = None
    on_failure_url: str | None = None


@dataclass(frozen=True, slots=True)
class StackInfo:
    """What a deployed stack offers its clients. Read once; it does not follow later changes.

    ``outputs`` and ``parameters`` (effective values, defaults included) are CloudFormation's.
    ``function_environment`` is the consumer's environment as CloudFormation resolved it;
    ``event_source`` its event source mapping's settings (the mapping itself is removed on an emulator).
    ``change`` is ``created``/``updated``/``unchanged`` after :func:`deploy`, empty after :func:`describe`.
    """

    stack_name: str
    outputs: Mapping[str, str]
    parameters: Mapping[str, str]
    status: str = ""
    function_environment: Mapping[str, str] = field(default_factory=dict)
    event_source: EventSource | None = None
    change: str = ""
    removed_mappings: tuple[str, ...] = ()
    removed_delivery_streams: tuple[str, ...] = ()

    def resources(self) -> Resources:
        """The consumer's stores from the outputs (``<Logical>Table``, ``<Logical>QueueUrl``, ``BadRowsBucket``)."""
        wanted = {logical: f"{_camel(logical)}Table" for logical in TABLES}
        queues = {logical: f"{_camel(logical)}QueueUrl" for logical in QUEUES}
        missing = [key for key in [*wanted.values(), *queues.values(), "BadRowsBucket"] if key not in self.outputs]
        if missing:
            raise StackError(f"stack {self.stack_name} has no output {', '.join(missing)}: is template.yaml current?")
        return Resources(
            tables={logical: self.outputs[key] for logical, key in wanted.items()},
            queues={logical: self.outputs[key] for logical, key in queues.items()},
            bad_rows_bucket=self.outputs["BadRowsBucket"],
            bad_rows_prefix=self.function_environment.get("BAD_ROWS_PREFIX", "bad-rows/"),
        )

    def consumer_environment(self) -> dict[str, str]:
        """The environment variables the template sets on the consumer (tables, queue, bucket, Powertools)."""
        if not self.function_environment:
            raise StackError(f"stack {self.stack_name} ({self.status}) has no consumer function environment")
        return dict(self.function_environment)

    def esm_settings(self) -> EsmSettings:
        """The consumer's event-source settings; :attr:`event_source` adds the stream and the destination."""
        if self.event_source is None:
            raise StackError(f"stack {self.stack_name} ({self.status}) declares no Kinesis event source")
        return self.event_source.esm

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: what ``pipeline up`` prints and writes to ``stack-<stage>.json``."""
        source = self.event_source
        return {
            "stack_name": self.stack_name,
            "status": self.status,
            "change": self.change,
            "outputs": dict(self.outputs),
            "parameters": dict(self.parameters),
            "environment": dict(self.function_environment),
            "event_source": None
            if source is None
            else {
                "stream_arn": source.stream_arn,
                "starting_position": source.starting_position,
                "batch_size": source.esm.batch_size,
                "maximum_batching_window_s": source.esm.maximum_batching_window_s,
                "bisect_on_error": source.esm.bisect_on_error,
                "maximum_retry_attempts": source.esm.maximum_retry_attempts,
                "maximum_record_age_s": source.esm.maximum_record_age_s,
                "report_batch_item_failures": source.esm.report_batch_item_failures,
                "on_failure_arn": source.on_failure_arn,
                "on_failure_url": source.on_failure_url,
            },
            "removed_event_source_mappings": list(self.removed_mappings),
        }


def stack_name(stage: str) -> str:
    return f"event-pipeline-{_checked(stage)}"


def artifacts_bucket(stage: str) -> str:
    return f"event-pipeline-{_checked(stage)}-artifacts"


def deploy(
    settings: Settings,
    *,
    stage: str = "local",
    template: Path | None = None,
    parameters: Mapping[str, str | int] | None = None,
    detach_event_sources: bool | None = None,
    timeout: float = 600.0,
) -> StackInfo:
    """Create or update ``event-pipeline-<stage>`` from ``template`` (default :data:`DEFAULT_TEMPLATE`).

    ``parameters`` override the template's defaults (``Stage`` is ``stage``; against an emulator
    ``StoresMigrations`` is ``disabled`` unless given); they are the whole desired set, so a parameter
    given last time and not now returns to its default.
    ``detach_event_sources`` (default: only against an emulator) deletes the consumer's event source
    mappings once the stack is complete. Raises :class:`StackError` (see the module docstring) and
    :class:`ConfigurationError` for a bad stage, a missing template or code directory.
    """
    path = template or DEFAULT_TEMPLATE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the template {path}: {exc.strerror}; pass --template") from exc
    name, bucket = stack_name(stage), artifacts_bucket(stage)
    values = {key: str(value) for key, value in (parameters or {}).items()}
    if values.setdefault("Stage", stage) != stage:
        raise ConfigurationError(f"parameter Stage={values['Stage']!r} contradicts stage={stage!r}")
    if settings.endpoint_url is not None:
        # The emulator would invoke the migrations custom resource's function, which its Lambda cannot
        # import (no dependencies are packaged): no answer, a stuck deploy. Locally the SQL store is a
        # PostgreSQL server that 'pipeline up' migrates itself.
        values.setdefault("StoresMigrations", "disabled")
    code = package_code(path.parent)
    s3: S3Client = aws_client("s3", settings)
    _ensure_bucket(s3, bucket, settings.region)
    s3.put_object(Bucket=bucket, Key=code.key, Body=code.data)
    body = rewrite_template(text, f"s3://{bucket}/{code.key}")
    template_url = cloudformation.upload_if_large(s3, bucket, body, settings.region)
    cfn: CloudFormationClient = aws_client("cloudformation", settings)
    stack, change = cloudformation.create_or_update(cfn, name, body, values, timeout, template_url=template_url)
    removed: tuple[str, ...] = ()
    removed_streams: tuple[str, ...] = ()
    if detach_event_sources if detach_event_sources is not None else settings.endpoint_url is not None:
        outputs = cloudformation.outputs(stack)
        lam = aws_client("lambda", settings)
        for function in filter(None, (outputs.get(output) for output in _DRIVEN_LOCALLY)):
            removed += _detach(lam, function)
        # The emulator's Firehose pushes every PutRecords through the transform, synchronously, one
        # object per record (the code zip has no dependencies, so the transform fails to import and
        # every record lands under errors/). The local archive path (tools.local.firehose)
        # does what the delivery stream does instead, so the emulator's stream is deleted after every
        # create or update, as the consumer's event source mapping is.
        delivery = outputs.get("DeliveryStreamName")
        if delivery:
            removed_streams = _delete_delivery_stream(aws_client("firehose", settings), delivery)
    logger.info("stack %s %s (%s); removed %s %s", name, change, stack["StackStatus"], removed, removed_streams)
    return replace(
        _read(settings, stack), change=change, removed_mappings=removed, removed_delivery_streams=removed_streams
    )


def describe(settings: Settings, stage: str = "local") -> StackInfo | None:
    """The stack of ``stage`` as it is now, or ``None`` if there is none."""
    stack = cloudformation.find(aws_client("cloudformation", settings), stack_name(stage))
    return None if stack is None else _read(settings, stack)


def destroy(settings: Settings, stage: str = "local", *, empty_buckets: bool = False, timeout: float = 600.0) -> bool:
    """Delete the stack of ``stage`` and its artifacts bucket; ``True`` if a stack was deleted.

    ``empty_buckets`` first deletes every object version in the stack's buckets (bad rows): AWS refuses
    to delete a non-empty bucket and the stack deletion then fails with :class:`StackError`.
    A missing stack or bucket is fine.
    """
    cfn: CloudFormationClient = aws_client("cloudformation", settings)
    s3: S3Client = aws_client("s3", settings)
    stack = cloudformation.find(cfn, stack_name(stage))
    if stack is not None:
        if empty_buckets:
            for resource in cloudformation.stack_resources(cfn, stack["StackId"]):
                if resource["ResourceType"] == "AWS::S3::Bucket" and resource.get("PhysicalResourceId"):
                    _empty_bucket(s3, resource["PhysicalResourceId"])
        cloudformation.delete(cfn, stack, timeout)
    if _empty_bucket(s3, artifacts_bucket(stage)):
        s3.delete_bucket(Bucket=artifacts_bucket(stage))
    return stack is not None


# -- reading a stack ------------------------------------------------------------------------------


def _read(settings: Settings, stack: StackTypeDef) -> StackInfo:
    found = cloudformation.outputs(stack)
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    info = StackInfo(stack["StackName"], found, parameters, status=stack["StackStatus"])
    function = found.get(_FUNCTION_OUTPUT)
    if not function or not stack["StackStatus"].endswith("_COMPLETE") or "ROLLBACK" in stack["StackStatus"]:
        return info
    lam: LambdaClient = aws_client("lambda", settings)
    sqs: SQSClient = aws_client("sqs", settings)
    try:
        configuration = lam.get_function_configuration(FunctionName=function)
    except ClientError as exc:
        raise StackError(f"stack {info.stack_name}: cannot read function {function}: {message(exc)}") from exc
    environment = dict(configuration.get("Environment", {}).get("Variables", {}))
    cfn: CloudFormationClient = aws_client("cloudformation", settings)
    props = cloudformation.event_source_mapping(cfn, stack, function, _ArnLookup(settings))
    return replace(info, function_environment=environment, event_source=_event_source(props, sqs))


def _event_source(props: Mapping[str, Any] | None, sqs: SQSClient) -> EventSource | None:
    """Lambda's defaults for a Kinesis mapping apply to the properties the template leaves out."""
    if props is None:
        return None
    destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    arn = str(destination) if destination else None
    parts = arn.split(":") if arn else []
    url = None
    if len(parts) == 6 and parts[2] == "sqs":
        url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
    return EventSource(
        esm=EsmSettings(
            batch_size=int(props.get("BatchSize", 100)),
            maximum_batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            bisect_on_error=str(props.get("BisectBatchOnFunctionError", False)).lower() == "true",
            maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            maximum_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
            report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        ),
        stream_arn=str(props.get("EventSourceArn", "")),
        starting_position=str(props.get("StartingPosition", "")),
        on_failure_arn=arn,
        on_failure_url=url,
    )


class _ArnLookup:
    """``Fn::GetAtt <resource>.Arn`` for the resource types an event source mapping refers to."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __call__(self, physical: str, kind: str, attribute: str) -> str:
        if attribute == "Arn" and kind == "AWS::SQS::Queue":
            sqs: SQSClient = aws_client("sqs", self._settings)
            return sqs.get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if attribute == "Arn" and kind == "AWS::Kinesis::Stream":
            kinesis: KinesisClient = aws_client("kinesis", self._settings)
            return kinesis.describe_stream_summary(StreamName=physical)["StreamDescriptionSummary"]["StreamARN"]
        if attribute == "Arn" and kind == "AWS::SNS::Topic":
            return physical
        raise StackError(f"cannot resolve Fn::GetAtt {physical}.{attribute} ({kind or 'unknown resource'})")


# -- Lambda and S3 --------------------------------------------------------------------------------


def _delete_delivery_stream(firehose: Any, name: str) -> tuple[str, ...]:
    try:
        firehose.delete_delivery_stream(DeliveryStreamName=name)
    except firehose.exceptions.ResourceNotFoundException:
        return ()
    return (name,)


def _detach(lam: LambdaClient, function: str) -> tuple[str, ...]:
    """Delete every event source mapping of ``function``; their UUIDs."""
    pages = lam.get_paginator("list_event_source_mappings").paginate(FunctionName=function)
    uuids = tuple(m["UUID"] for page in pages for m in page.get("EventSourceMappings", []) if "UUID" in m)
    for uuid in uuids:
        try:
            lam.delete_event_source_mapping(UUID=uuid)
        except lam.exceptions.ResourceNotFoundException:
            continue
    return uuids


def _ensure_bucket(s3: S3Client, bucket: str, region: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    except s3.exceptions.BucketAlreadyOwnedByYou:
        return


def _empty_bucket(s3: S3Client, bucket: str) -> bool:
    """Delete every object version and delete marker in ``bucket``; ``False`` if there is no such bucket."""
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            keys: list[Any] = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            for start in range(0, len(keys), 1000):
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return False
        raise
    return True


# -- small helpers --------------------------------------------------------------------------------


def _checked(stage: str) -> str:
    if not _STAGE.fullmatch(stage):
        raise ConfigurationError(f"stage {stage!r}: use 1 to 16 of a-z, 0-9 and '-' (the template's Stage pattern)")
    return stage


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))
