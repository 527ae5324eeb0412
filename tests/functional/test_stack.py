"""The local stack in the emulator: ``template.yaml`` deployed, read back, updated, deleted, and a
failed creation recovered. Packaging is in ``test_stack_package.py``, the commands in
``test_stack_commands.py``.

Each test that changes a stack deploys its own stage into the session's emulator; the read-only
tests share one stage deployed for this module.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipeline.metrics.tables import TABLES, Resources
from pipeline.settings import Settings, aws_client
from tools.local.esm import EsmSettings
from tools.local.stack import StackError, StackInfo, artifacts_bucket, deploy, describe, destroy, stack_name

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


def _stage() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def stack(emulator: Settings) -> Iterator[StackInfo]:
    """One stage deployed for the read-only tests of this module; destroyed after them."""
    stage = _stage()
    info = deploy(emulator, stage=stage, template=TEMPLATE)
    yield info
    destroy(emulator, stage, empty_buckets=True)


@pytest.mark.emulator
def test_outputs_name_every_table_queue_bucket_and_the_stream(stack: StackInfo) -> None:
    stage = stack.stack_name.removeprefix("event-pipeline-")
    assert stack.status == "CREATE_COMPLETE"
    assert stack.change == "created"
    assert stack.outputs["StreamName"] == f"event-pipeline-{stage}-events"
    assert stack.outputs["ConsumerFunctionName"] == f"event-pipeline-{stage}-consumer"
    for logical in TABLES:
        assert stack.outputs[_camel(logical) + "Table"] == f"event-pipeline-{stage}-{logical.replace('_', '-')}"
    assert stack.outputs["FulfilmentQueueUrl"].endswith(f"/event-pipeline-{stage}-fulfilment.fifo")
    assert stack.outputs["ConsumerFailureQueueUrl"].endswith(f"/event-pipeline-{stage}-consumer-failures")
    assert stack.outputs["BadRowsBucket"].startswith(f"event-pipeline-{stage}-bad-rows-")
    assert stack.parameters["Stage"] == stage
    assert stack.parameters["ConsumerBatchSize"] == "1000"  # effective values include the defaults


@pytest.mark.emulator
def test_tables_exist_with_the_key_schemas_the_plugins_write(emulator: Settings, stack: StackInfo) -> None:
    dynamodb: DynamoDBClient = aws_client("dynamodb", emulator)
    resources = stack.resources()
    for logical, spec in TABLES.items():
        table = dynamodb.describe_table(TableName=resources.table(logical))["Table"]
        keys = [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]]
        assert keys == [(name, "RANGE" if i else "HASH") for i, name in enumerate(spec.keys)], logical
        assert table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"


@pytest.mark.emulator
def test_the_emulators_event_source_mapping_is_removed(emulator: Settings, stack: StackInfo) -> None:
    lam: LambdaClient = aws_client("lambda", emulator)
    function = stack.outputs["ConsumerFunctionName"]
    # the emulator made two: the consumer's (Kinesis) and the store table bridge's (DynamoDB stream)
    assert len(stack.removed_mappings) == 2
    for name in (function, stack.outputs["OrderStreamBridgeFunctionName"]):
        assert lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []
    assert lam.get_function_configuration(FunctionName=function)["Handler"] == "consumers/kinesis_consumer.handler"


@pytest.mark.emulator
def test_resources_and_environment_name_stores_that_exist(emulator: Settings, stack: StackInfo) -> None:
    # GIVEN the consumer's environment as deployed
    environment = stack.consumer_environment()
    # THEN it configures the consumer exactly as the outputs say, and every name exists
    assert Resources.from_env(environment) == stack.resources()
    assert environment["POWERTOOLS_SERVICE_NAME"] == "event-pipeline"
    assert environment["POWERTOOLS_TRACE_DISABLED"] == "true"  # Tracing defaults to PassThrough
    resources = stack.resources()
    dynamodb: DynamoDBClient = aws_client("dynamodb", emulator)
    assert set(resources.tables.values()) <= set(dynamodb.list_tables()["TableNames"])
    sqs: SQSClient = aws_client("sqs", emulator)
    fifo = sqs.get_queue_attributes(QueueUrl=resources.queues["fulfilment"], AttributeNames=["FifoQueue"])
    assert fifo["Attributes"]["FifoQueue"] == "true"
    s3: S3Client = aws_client("s3", emulator)
    s3.head_bucket(Bucket=resources.bad_rows_bucket)


@pytest.mark.emulator
def test_event_source_settings_are_the_templates_effective_values(emulator: Settings, stack: StackInfo) -> None:
    assert stack.esm_settings() == EsmSettings(
        batch_size=1000,
        maximum_batching_window_s=1.0,
        bisect_on_error=True,
        maximum_retry_attempts=10,
        maximum_record_age_s=86400,
        report_batch_item_failures=True,
    )
    source = stack.event_source
    assert source is not None
    assert source.stream_arn == stack.outputs["StreamArn"]
    assert source.starting_position == "TRIM_HORIZON"
    assert source.on_failure_arn is not None
    assert source.on_failure_arn.endswith(":" + stack.outputs["ConsumerFailureQueueUrl"].rsplit("/", 1)[-1])
    assert source.on_failure_url is not None
    sqs: SQSClient = aws_client("sqs", emulator)
    arn = sqs.get_queue_attributes(QueueUrl=source.on_failure_url, AttributeNames=["QueueArn"])["Attributes"]
    assert arn["QueueArn"] == source.on_failure_arn


@pytest.mark.emulator
def test_describe_reads_back_what_deploy_returned(emulator: Settings, stack: StackInfo) -> None:
    stage = stack.stack_name.removeprefix("event-pipeline-")
    again = describe(emulator, stage)
    assert again is not None
    assert (again.outputs, again.parameters, again.function_environment, again.event_source) == (
        stack.outputs,
        stack.parameters,
        stack.function_environment,
        stack.event_source,
    )
    assert again.change == ""
    assert describe(emulator, _stage()) is None


@pytest.mark.emulator
def test_deploying_twice_is_a_no_op_and_a_parameter_change_an_update(emulator: Settings) -> None:
    stage = _stage()
    lam: LambdaClient = aws_client("lambda", emulator)
    try:
        # GIVEN a deployed stage
        first = deploy(emulator, stage=stage, template=TEMPLATE)
        # WHEN deployed again unchanged THEN nothing changes and no mapping reappears
        second = deploy(emulator, stage=stage, template=TEMPLATE)
        assert (second.change, second.removed_mappings, second.outputs) == ("unchanged", (), first.outputs)
        # WHEN a parameter changes THEN it is an update, read back, and the recreated mapping is removed again
        third = deploy(emulator, stage=stage, template=TEMPLATE, parameters={"ConsumerBatchSize": 100})
        assert third.change == "updated"
        assert third.status == "UPDATE_COMPLETE"
        assert third.parameters["ConsumerBatchSize"] == "100"
        assert third.esm_settings().batch_size == 100
        function = third.outputs["ConsumerFunctionName"]
        assert lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"] == []
    finally:
        destroy(emulator, stage)


@pytest.mark.emulator
def test_status_counts_records_items_messages_and_bad_rows(emulator: Settings, stack: StackInfo) -> None:
    from tools.cli.stack_cmd import stack_status

    # GIVEN a record in the stream, an item, a queued failure and a bad row
    resources = stack.resources()
    aws_client("kinesis", emulator).put_record(StreamName=stack.outputs["StreamName"], Data=b"{}", PartitionKey="k")
    dynamodb: DynamoDBClient = aws_client("dynamodb", emulator)
    dynamodb.put_item(TableName=resources.table("store"), Item={"PK": {"S": "USER#u1"}, "SK": {"S": "#METADATA"}})
    sqs: SQSClient = aws_client("sqs", emulator)
    sqs.send_message(QueueUrl=stack.outputs["ConsumerFailureQueueUrl"], MessageBody="{}")
    s3: S3Client = aws_client("s3", emulator)
    s3.put_object(Bucket=resources.bad_rows_bucket, Key=f"{resources.bad_rows_prefix}x.json", Body=b"{}")
    try:
        # WHEN the status is taken
        status = stack_status(emulator, stack)
        # THEN it counts each of them
        assert sum(shard["records"] for shard in status["stream"]["shards"]) == 1
        assert status["tables"][resources.table("store")] == 1
        assert status["tables"][resources.table("order_metrics")] == 0
        assert status["queues"][stack.outputs["ConsumerFailureQueueUrl"].rsplit("/", 1)[-1]]["visible"] == 1
        assert status["bad_rows"]["objects"] == 1
    finally:
        dynamodb.delete_item(TableName=resources.table("store"), Key={"PK": {"S": "USER#u1"}, "SK": {"S": "#METADATA"}})
        sqs.purge_queue(QueueUrl=stack.outputs["ConsumerFailureQueueUrl"])


@pytest.mark.emulator
def test_destroy_removes_the_stack_its_tables_and_the_artifacts(emulator: Settings) -> None:
    # GIVEN a deployed stage with a bad row in its bucket
    stage = _stage()
    info = deploy(emulator, stage=stage, template=TEMPLATE)
    s3: S3Client = aws_client("s3", emulator)
    s3.put_object(Bucket=info.outputs["BadRowsBucket"], Key="bad-rows/x", Body=b"1")
    # WHEN destroyed
    assert destroy(emulator, stage, empty_buckets=True) is True
    # THEN the stack, its tables and both buckets are gone, and destroying again is fine
    assert describe(emulator, stage) is None
    dynamodb: DynamoDBClient = aws_client("dynamodb", emulator)
    assert not [t for t in dynamodb.list_tables()["TableNames"] if t.startswith(f"event-pipeline-{stage}-")]
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert artifacts_bucket(stage) not in buckets
    assert info.outputs["BadRowsBucket"] not in buckets
    assert destroy(emulator, stage) is False


@pytest.mark.emulator
def test_a_failed_creation_names_the_resource_and_the_next_deploy_recovers(emulator: Settings) -> None:
    # GIVEN the bad-rows bucket's name already taken outside the stack
    stage = _stage()
    s3: S3Client = aws_client("s3", emulator)
    squatter = f"event-pipeline-{stage}-bad-rows-000000000000"
    s3.create_bucket(Bucket=squatter)
    try:
        # WHEN deployed THEN the error names the resource and the reason
        with pytest.raises(StackError, match=r"BadRowsBucket \(AWS::S3::Bucket\).*already exists") as failure:
            deploy(emulator, stage=stage, template=TEMPLATE)
        assert stack_name(stage) in str(failure.value)
        assert "ROLLBACK_COMPLETE" in str(failure.value)
        # WHEN the cause is removed THEN the next deploy replaces the rolled-back stack
        s3.delete_bucket(Bucket=squatter)
        info = deploy(emulator, stage=stage, template=TEMPLATE)
        assert (info.change, info.status) == ("created", "CREATE_COMPLETE")
    finally:
        with contextlib.suppress(s3.exceptions.NoSuchBucket, StackError):
            s3.delete_bucket(Bucket=squatter)
        destroy(emulator, stage)


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))
