"""The local stack: ``template.yaml`` packaged, deployed into the emulator, read back, deleted; and
``pipeline up | status | down`` as users run them.

Each emulator test deploys its own stage into the session's emulator, so tests share no stack.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from pipeline.exceptions import ConfigurationError
from pipeline.metrics.tables import TABLES, Resources
from pipeline.settings import Settings, aws_client
from tools.local.esm import EsmSettings
from tools.local.package import TemplateRewriteError, package_code, rewrite_template
from tools.local.stack import StackError, StackInfo, artifacts_bucket, deploy, describe, destroy, stack_name

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
BIN = Path(sys.executable).parent
CODE_URI = "s3://artifacts/code/abc.zip"


def _stage() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def stack(emulator: Settings) -> Iterator[StackInfo]:
    """One stage deployed for the read-only tests of this module; destroyed after them."""
    stage = _stage()
    info = deploy(emulator, stage=stage, template=TEMPLATE)
    yield info
    destroy(emulator, stage, empty_buckets=True)


# -- packaging (no emulator) ----------------------------------------------------------------------


def test_the_code_zip_is_deterministic_and_holds_only_the_packages(tmp_path: Path) -> None:
    # GIVEN a tree with the two packages, caches and a hidden file
    for name in ("pipeline/__init__.py", "pipeline/sql/w.sql", "consumers/handler.py", "producers/p.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n")
    (tmp_path / "pipeline/__pycache__").mkdir()
    (tmp_path / "pipeline/__pycache__/x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "pipeline/.hidden").write_text("x")
    # WHEN packaged twice, with a file's timestamp changed in between
    first = package_code(tmp_path)
    os.utime(tmp_path / "consumers/handler.py", (1, 1))
    second = package_code(tmp_path)
    # THEN the bytes are equal, and only the packages' files are in, sorted
    assert first.data == second.data
    assert first.key == f"code/{first.sha256[:24]}.zip"
    with zipfile.ZipFile(io.BytesIO(first.data)) as archive:
        assert archive.namelist() == ["consumers/handler.py", "pipeline/__init__.py", "pipeline/sql/w.sql"]


def test_the_project_packages_and_nothing_else_are_zipped() -> None:
    package = package_code(ROOT)
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        names = archive.namelist()
    assert "consumers/kinesis_consumer.py" in names
    assert "pipeline/consumer/processor.py" in names
    assert all(n.split("/")[0] in {"pipeline", "consumers"} for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_rewriting_the_real_template_changes_only_code_uri_and_build_metadata() -> None:
    # GIVEN the repository's template WHEN rewritten
    original = TEMPLATE.read_text()
    rewritten = rewrite_template(original, CODE_URI)
    # THEN every CodeUri names the artifact, BuildMethod is gone, and every other line is untouched
    assert re.findall(r"^\s*CodeUri:\s*(.*)$", rewritten, re.MULTILINE) == [CODE_URI]
    assert "BuildMethod" not in rewritten
    kept = [line for line in original.splitlines() if "CodeUri:" not in line and "BuildMethod" not in line]
    dropped_metadata = [i for i, line in enumerate(kept) if line.strip() == "Metadata:" and line.startswith("    ")]
    kept = [line for i, line in enumerate(kept) if i not in dropped_metadata]
    assert [line for line in rewritten.splitlines() if "CodeUri:" not in line] == kept


EDGE_TEMPLATE = """\
Description: >
  Resources:
    Fake:
      CodeUri: not-a-key
Globals:
  Function:
    CodeUri: src/
Resources:
  Fn:
    Properties:
      CodeUri: "./src"   # trailing comment
      Description: |
        CodeUri: inside a literal block
    Metadata:
      BuildMethod: makefile
      BuildProperties:
        UseNpmCi: true

      Other: kept
    Type: AWS::Serverless::Function
  NotAFunction:
    Type: AWS::Lambda::Function
    Properties:
      CodeUri: untouched
"""


def test_rewrite_follows_structure_not_text() -> None:
    # GIVEN keys in any order, block scalars that look like keys, Globals and other Metadata
    rewritten = rewrite_template(EDGE_TEMPLATE.replace("\n", "\r\n"), CODE_URI)
    lines = rewritten.split("\r\n")
    # THEN only the function's and the global CodeUri change; build hints go, other Metadata stays
    assert f"      CodeUri: {CODE_URI}" in lines
    assert f"    CodeUri: {CODE_URI}" in lines
    assert "      CodeUri: not-a-key" in lines
    assert "        CodeUri: inside a literal block" in lines
    assert "      CodeUri: untouched" in lines
    assert "    Metadata:" in lines
    assert "      Other: kept" in lines
    assert not [line for line in lines if "Build" in line or "UseNpmCi" in line]
    assert rewritten.count("\r\n") == EDGE_TEMPLATE.count("\n") - 3


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        pytest.param(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties:\n      CodeUri:\n        Bucket: b\n",
            "mapping",
            id="code-uri-mapping",
        ),
        pytest.param(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: a.b\n",
            "no CodeUri",
            id="no-code-uri",
        ),
    ],
)
def test_rewrite_refuses_what_it_does_not_understand(template: str, reason: str) -> None:
    with pytest.raises(TemplateRewriteError, match=reason):
        rewrite_template(template, CODE_URI)


def test_a_stage_outside_the_template_pattern_is_refused_before_any_call() -> None:
    with pytest.raises(ConfigurationError, match="1 to 16"):
        deploy(Settings(endpoint_url="http://127.0.0.1:9"), stage="Bad_Stage")


# -- deployed into the emulator -------------------------------------------------------------------


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
    assert len(stack.removed_mappings) == 1  # the emulator made one, from the function's Kinesis event
    assert lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"] == []
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
    dynamodb.put_item(TableName=resources.table("users"), Item={"user_id": {"S": "u1"}})
    sqs: SQSClient = aws_client("sqs", emulator)
    sqs.send_message(QueueUrl=stack.outputs["ConsumerFailureQueueUrl"], MessageBody="{}")
    s3: S3Client = aws_client("s3", emulator)
    s3.put_object(Bucket=resources.bad_rows_bucket, Key=f"{resources.bad_rows_prefix}x.json", Body=b"{}")
    try:
        # WHEN the status is taken
        status = stack_status(emulator, stack)
        # THEN it counts each of them
        assert sum(shard["records"] for shard in status["stream"]["shards"]) == 1
        assert status["tables"][resources.table("users")] == 1
        assert status["tables"][resources.table("order_metrics")] == 0
        assert status["queues"][stack.outputs["ConsumerFailureQueueUrl"].rsplit("/", 1)[-1]]["visible"] == 1
        assert status["bad_rows"]["objects"] == 1
    finally:
        dynamodb.delete_item(TableName=resources.table("users"), Key={"user_id": {"S": "u1"}})
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


# -- the commands ---------------------------------------------------------------------------------


def _pipeline(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN / "pipeline"), *args], capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"pipeline {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.emulator
def test_up_status_down_from_the_command_line(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    common = ["--state-dir", state, "--stage", "cli"]
    pid = None
    try:
        # WHEN 'pipeline up' runs THEN it prints exports a shell can eval and writes the stack file
        up = _pipeline("up", *common, "--template", str(TEMPLATE))
        exports = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in up.stdout.splitlines() if line
        )
        assert exports["STREAM_NAME"] == "event-pipeline-cli-events"
        assert exports["ORDER_METRICS_TABLE"] == "event-pipeline-cli-order-metrics"
        assert exports["BAD_ROWS_PREFIX"] == "bad-rows/"
        assert "created" in up.stderr
        document: dict[str, Any] = orjson.loads((tmp_path / "state" / "stack-cli.json").read_bytes())
        assert document["endpoint_url"] == exports["PIPELINE_ENDPOINT_URL"]
        assert document["event_source"]["batch_size"] == 1000
        pid = orjson.loads((tmp_path / "state" / "emulator.json").read_bytes())["pid"]
        # WHEN 'pipeline up' runs again THEN the emulator is reused and the stack unchanged
        again = _pipeline("up", *common, "--template", str(TEMPLATE), "--json")
        assert orjson.loads(again.stdout)["change"] == "unchanged"
        assert "reused" in again.stderr
        # WHEN 'pipeline status --json' runs THEN it shows the emulator, the stack and empty stores
        status = orjson.loads(_pipeline("status", *common, "--json").stdout)
        assert status["emulator"]["pid"] == pid
        assert status["stack"]["status"] == "CREATE_COMPLETE"
        assert all(shard["records"] == 0 for shard in status["stream"]["shards"])
        assert set(status["tables"].values()) == {0}
        assert "event-pipeline-cli-order-metrics" in _pipeline("status", *common).stdout
        # WHEN 'pipeline down' runs THEN the stack and the emulator are gone
        down = _pipeline("down", *common)
        assert "deleted" in down.stderr
        assert not _group_alive(pid)
        assert not (tmp_path / "state" / "stack-cli.json").exists()
        # THEN status says what to do, and down again is harmless
        after = _pipeline("status", *common, check=False)
        assert after.returncode == 1
        assert "run 'pipeline up'" in after.stderr
        assert _pipeline("down", *common).returncode == 0
    finally:
        if pid is not None and _group_alive(pid):
            _pipeline("down", *common, check=False)


def test_status_without_an_emulator_says_to_run_up(tmp_path: Path) -> None:
    result = _pipeline("status", "--state-dir", str(tmp_path), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"pipeline status: no emulator running in {tmp_path}: run 'pipeline up'"


def test_the_commands_explain_themselves() -> None:
    for command in ("up", "down", "status"):
        text = _pipeline(command, "--help").stdout
        assert "--stage" in text
        assert "--state-dir" in text
    assert "eval" in _pipeline("up", "--help").stdout


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))
