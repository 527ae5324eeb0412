"""``template.yaml`` against the code it deploys.

The tools pass on it (cfn-lint, ``sam validate --lint``, ``sam build`` of the consumer's package), and the
template and the code agree: tables and keys, the function's environment, the event source's failure
contract, permissions, outputs.

The tools run pinned, each in a uv environment of its own (``pipeline/local/tools.py``), offline from
AWS (dummy credentials); the first run of a pin downloads it from PyPI. The template is read with
cfn-lint's own decoder, so intrinsic functions come back in their JSON form: ``!Ref X`` is
``{"Ref": "X"}``, ``!GetAtt A.Arn`` is ``{"Fn::GetAtt": ["A", "Arn"]}``, ``!Sub s`` is ``{"Fn::Sub": s}``.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from analytics.managed import PROPERTY_GROUPS, ManagedSettings
from analytics.metrics import KEY_COLUMNS
from analytics.package import RUN_OPTIONS
from pipeline.archive.layout import FIREHOSE_ERROR_PREFIX, FIREHOSE_PREFIX
from pipeline.exceptions import ConfigurationError
from pipeline.metrics.tables import TABLES, Resources
from tools.local.firehose import FirehoseSettings
from tools.local.tools import (
    CFN_LINT_VERSION,
    cfn_lint_command,
    offline_aws_env,
    pinned_tool,
    sam_command,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTION = "ConsumerFunction"
TRANSFORM = "FirehoseTransformFunction"
_TOOL_TIMEOUT = 600

# Unzipped. Lambda's limit is 250 MiB; measured 42 MiB (botocore is 30 MiB of it). Anything heavy that
# slips in (a dev tool, Flink) blows this budget.
_PACKAGE_BUDGET = 64 * 2**20
_MUST_SHIP = (
    "consumers/kinesis_consumer.py",
    "consumers/firehose_transform.py",
    "pipeline/__init__.py",
    "orjson",
    "aws_lambda_powertools",
    "aws_kinesis_agg",
)
_MUST_NOT_SHIP = (
    "tests",
    "tools",
    "load",
    "producers",
    "analytics",
    "hypothesis",
    "pytest",
    "_pytest",
    "mypy",
    "ruff",
    "pyflink",
)

# What the function needs besides its own calls: SQS and S3 writes under the data key encrypt
# (GenerateDataKey); reading the encrypted stream, and reading back what it wrote, decrypt.
_KMS_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey"}
# IAM actions that are not named after the API operation that needs them.
_ACTION_OF_OPERATION = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:DeleteObjects": "s3:DeleteObject",
}
_PARTIQL_OPERATIONS = {"dynamodb:ExecuteStatement", "dynamodb:BatchExecuteStatement", "dynamodb:ExecuteTransaction"}
_PARTIQL_VERBS = {"INSERT": "dynamodb:PartiQLInsert", "UPDATE": "dynamodb:PartiQLUpdate"}
_PARTIQL_VERBS |= {"SELECT": "dynamodb:PartiQLSelect", "DELETE": "dynamodb:PartiQLDelete"}
_PARTIQL_STATEMENT = re.compile(r"\s*(INSERT\s+INTO|UPDATE|SELECT|DELETE\s+FROM)\s")
_RESOURCE_TYPE_OF_SERVICE = {
    "dynamodb": "AWS::DynamoDB::Table",
    "sqs": "AWS::SQS::Queue",
    "s3": "AWS::S3::Bucket",
    "kms": "AWS::KMS::Key",
}
_ACCOUNT_ROOT = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}

_DECODE = """
import json, sys
from cfnlint.decode import decode
template, matches = decode(sys.argv[1])
if matches:
    sys.exit("\\n".join(str(m) for m in matches))
json.dump(template, sys.stdout)
"""


# ---------------------------------------------------------------------------------------- helpers


def _run(command: Sequence[str]) -> str:
    """Run a pinned tool from the repository root, offline from AWS; its stdout, or a failed assertion."""
    result = subprocess.run(
        list(command),
        cwd=ROOT,
        env=offline_aws_env(),
        capture_output=True,
        text=True,
        timeout=_TOOL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result.stdout


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _ref(value: Any) -> str:
    assert isinstance(value, dict), value
    assert set(value) == {"Ref"}, value
    name: str = value["Ref"]
    return name


def _arn_of(value: Any) -> tuple[str, str]:
    """``(logical id, rest)`` of ``!GetAtt X.Arn`` (rest ``""``) or ``!Sub "${X.Arn}rest"``."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1:] == ["Arn"]:
        return value["Fn::GetAtt"][0], ""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}(.*)", value["Fn::Sub"])
        assert match, value
        return match[1], match[2]
    raise AssertionError(f"not the ARN of a resource of this template: {value!r}")


def _resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _function(template: Mapping[str, Any], logical: str = FUNCTION) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical]["Properties"]
    return properties


def _environment(template: Mapping[str, Any], logical: str = FUNCTION) -> dict[str, Any]:
    """The function's environment variables: the template's Globals, then the function's own."""
    merged: dict[str, Any] = dict(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    merged.update(_function(template, logical).get("Environment", {}).get("Variables", {}))
    return merged


def _required_variables(names: Sequence[str]) -> list[str]:
    """Those of ``names`` without which ``Resources.from_env`` refuses to start the consumer."""
    required = []
    for name in names:
        try:
            Resources.from_env({other: "x" for other in names if other != name})
        except ConfigurationError:
            required.append(name)
    return required


def _statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement anywhere under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Statement":
                yield from _as_list(value)
            else:
                yield from _statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from _statements(item)


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _lambda_modules(handler: str) -> list[Path]:
    """The project's modules the handler imports, transitively (any import statement counts, lazy ones
    and type-only ones too: an over-approximation, which is the safe side for this check)."""
    start = _module_file(handler.rsplit(".", 1)[0].replace("/", "."))
    assert start is not None, f"no module for handler {handler!r}"
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.level == 0, f"{path}: relative import (this scan reads absolute imports only)"
                modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for module in modules:
                parts = module.split(".")
                if parts[0] in {"pipeline", "consumers", "producers"}:
                    # importing a.b.c runs a/__init__.py and a/b/__init__.py first
                    todo += [f for i in range(len(parts)) if (f := _module_file(".".join(parts[: i + 1])))]
    return sorted(seen)


def _actions_the_code_uses(handler: str, services: Sequence[str] = ("dynamodb", "sqs", "s3")) -> set[str]:
    """IAM actions for the AWS operations of ``services`` the handler's code calls, found by name: a call
    ``x.put_object(...)`` is ``s3:PutObject``; PartiQL calls need the verbs of the statements the code
    writes (string literals that start with INSERT INTO, UPDATE, SELECT or DELETE FROM). Scan services whose
    operation names differ (DynamoDB's and the RDS Data API's ``execute_statement`` would be confused)."""
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    operations = {
        xform_name(op): f"{service}:{op}"
        for service in services
        for op in session.get_service_model(service).operation_names
    }
    called: set[str] = set()
    verbs: set[str] = set()
    for path in _lambda_modules(handler):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in operations:
                called.add(operations[node.func.attr])
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and (match := _PARTIQL_STATEMENT.match(node.value))
            ):
                verbs.add(match[1].split()[0])
    actions = {_ACTION_OF_OPERATION.get(op, op) for op in called - _PARTIQL_OPERATIONS}
    if called & _PARTIQL_OPERATIONS:
        actions |= {_PARTIQL_VERBS[verb] for verb in verbs}
    return actions


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(
        _run(pinned_tool(f"cfn-lint=={CFN_LINT_VERSION}", "python", "-c", _DECODE, str(TEMPLATE)))
    )
    return decoded


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam build`` into a temporary directory; the consumer's built package (unzipped)."""
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    # --build-in-source: make runs in the repository (the Makefile writes only into ARTIFACTS_DIR)
    # instead of in a copy of it, .venv included.
    _run(sam_command("build", "--build-in-source", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir)))
    return build_dir / FUNCTION


# ---------------------------------------------------------------------------------------- the tools


def test_cfn_lint_passes() -> None:
    _run(cfn_lint_command(str(TEMPLATE)))


def test_sam_validate_with_lint_passes() -> None:
    assert "is a valid SAM Template" in _run(sam_command("validate", "--lint", "--template-file", str(TEMPLATE)))


def test_sam_build_packages_the_code_and_its_runtime_dependencies_only(template: dict[str, Any], package: Path) -> None:
    # GIVEN the package sam build made for the function
    function = _function(template)
    shipped = {p.name for p in package.iterdir()}
    distributions = {name.split("-")[0].lower() for name in shipped if name.endswith(".dist-info")}
    # THEN it has the handler, the core and the locked runtime dependencies
    for required in _MUST_SHIP:
        assert (package / required).exists(), f"{required} is not in the package"
    handler_module, handler_name = function["Handler"].rsplit(".", 1)
    handler_file = package / f"{handler_module}.py"
    tree = ast.parse(handler_file.read_text(encoding="utf-8"))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert handler_name in defined
    # AND the project's code exactly as in the repository, without caches
    for source in (*ROOT.joinpath("pipeline").rglob("*.py"), *ROOT.joinpath("consumers").rglob("*.py")):
        copy = package / source.relative_to(ROOT)
        assert copy.read_bytes() == source.read_bytes(), f"{copy} differs from the repository's"
    assert not [p for d in ("pipeline", "consumers") for p in (package / d).rglob("*") if p.suffix == ".pyc"]
    # AND nothing of the tests, the dev tools or Flink
    for forbidden in _MUST_NOT_SHIP:
        assert forbidden not in shipped, f"{forbidden} is in the package"
        assert forbidden not in distributions, f"{forbidden} is installed in the package"
    assert not [name for name in shipped | distributions if name.startswith(("mypy", "pytest", "hypothesis"))]
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
    assert size < _PACKAGE_BUDGET, f"the package is {size / 2**20:.1f} MiB"


def test_native_extensions_are_built_for_the_functions_runtime_and_architecture(
    template: dict[str, Any], package: Path
) -> None:
    # GIVEN the runtime and architecture the template gives the function
    settings = {**template["Globals"]["Function"], **_function(template)}
    (architecture,) = settings["Architectures"]
    machine, elf_machine = {"arm64": ("aarch64", 183), "x86_64": ("x86_64", 62)}[architecture]
    python = settings["Runtime"].removeprefix("python").replace(".", "")
    # THEN the tests run on that Python, and every native library in the package is for that pair
    assert settings["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"
    libraries = list(package.rglob("*.so"))
    assert any(p.parent.name == "orjson" for p in libraries)
    for library in libraries:
        assert _elf_machine(library) == elf_machine, f"{library} is not for {architecture}"
        if "cpython-" in library.name:
            assert library.name.endswith(f".cpython-{python}-{machine}-linux-gnu.so"), library


# ---------------------------------------------------------------------------------------- template and code


@pytest.mark.parametrize("logical", [pytest.param(name, id=name) for name in TABLES])
def test_each_table_the_code_writes_is_declared_with_its_keys(template: dict[str, Any], logical: str) -> None:
    # GIVEN the table the function's environment names for a logical table of the code
    spec = TABLES[logical]
    environment = _environment(template)
    assert spec.env in environment, f"the function's environment does not set {spec.env}"
    resource = template["Resources"][_ref(environment[spec.env])]
    assert resource["Type"] == "AWS::DynamoDB::Table"
    table = resource["Properties"]
    # THEN its keys are the code's, as strings (every key the plugins write is one)
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [
        (name, "RANGE" if i else "HASH") for i, name in enumerate(spec.keys)
    ]
    defined = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert {name: defined.get(name) for name in spec.keys} == dict.fromkeys(spec.keys, "S")
    if spec.written_by_plugins:  # the entity store's table has its indexes' attributes too
        assert defined.keys() == set(spec.keys)
    # AND it is on demand, encrypted under the template's key, and expires items as the code expects
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    sse = table["SSESpecification"]
    assert sse["SSEEnabled"] is True
    if sse.get("SSEType") == "KMS":
        assert _ref(sse["KMSMasterKeyId"]) in _resources_of_type(template, "AWS::KMS::Key")
    if spec.ttl_attribute is None:
        assert not table.get("TimeToLiveSpecification", {}).get("Enabled", False)
    else:
        assert table.get("TimeToLiveSpecification") == {"AttributeName": spec.ttl_attribute, "Enabled": True}


def test_every_table_in_the_template_is_one_the_code_knows(template: dict[str, Any]) -> None:
    environment = _environment(template)
    known = {_ref(environment[spec.env]) for spec in TABLES.values()} | {_store_table(template)}
    known.add(_window_metrics_table(template))  # the analytics job's, not the consumer's
    assert set(_resources_of_type(template, "AWS::DynamoDB::Table")) == known


def test_the_function_environment_names_everything_the_consumer_reads(template: dict[str, Any]) -> None:
    # GIVEN the function's environment (values are intrinsics here; only presence matters)
    names = sorted(_environment(template))
    # THEN the consumer's resource names load from it (a missing one raises ConfigurationError)
    Resources.from_env(dict.fromkeys(names, "x"))
    assert _required_variables(names), "Resources.from_env requires nothing: this check checks nothing"


def test_the_stream_event_source_honours_the_failure_contract(template: dict[str, Any]) -> None:
    # GIVEN the function's one event source
    (event,) = _function(template)["Events"].values()
    assert event["Type"] == "Kinesis"
    source = event["Properties"]
    (stream,) = _resources_of_type(template, "AWS::Kinesis::Stream")
    assert source["Stream"] == {"Fn::GetAtt": [stream, "Arn"]}
    assert source["StartingPosition"] in {"TRIM_HORIZON", "LATEST"}
    # THEN failed records are reported one by one, and a failing batch is split to isolate them
    assert source.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
    assert source.get("BisectBatchOnFunctionError") is True
    # AND the batch shape and the retry bounds are parameters of the stack
    parameters = template["Parameters"]
    for key in ("BatchSize", "MaximumBatchingWindowInSeconds", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds"):
        assert key in source, f"{key} is not set"
        assert _ref(source[key]) in parameters, f"{key} is not a parameter"
    # AND by default a poison record leaves the shard eventually (-1 would retry it until it expires)
    for key in ("MaximumRetryAttempts", "MaximumRecordAgeInSeconds"):
        assert parameters[_ref(source[key])]["Default"] != -1, f"{key} is unbounded by default"
    # AND what is given up on goes to a standard queue (Lambda refuses FIFO on-failure destinations)
    on_failure = source["DestinationConfig"]["OnFailure"]
    queue, rest = _arn_of(on_failure["Destination"])
    assert rest == ""
    assert on_failure.get("Type", "SQS") == "SQS"
    assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    assert not template["Resources"][queue]["Properties"].get("FifoQueue", False)


def test_the_function_may_do_what_its_code_does_and_nothing_else(template: dict[str, Any]) -> None:
    # GIVEN the function's policies: inline documents only (SAM policy templates and managed policies
    # grant more than any one function uses)
    function = _function(template)
    policies = _as_list(function["Policies"])
    assert all(isinstance(p, dict) and "Statement" in p for p in policies), policies
    statements = list(_statements(policies))
    # THEN each statement allows named actions on resources the function is configured with
    environment = _environment(template)
    configured = {_ref(v) for v in environment.values() if isinstance(v, dict) and "Ref" in v}
    keys = set(_resources_of_type(template, "AWS::KMS::Key"))
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = _as_list(statement["Action"])
        assert all("*" not in action for action in actions), statement
        services = {action.split(":")[0] for action in actions}
        assert len(services) == 1, f"one service per statement: {statement}"
        (service,) = services
        for resource in _as_list(statement["Resource"]):
            logical, rest = _arn_of(resource)
            assert logical in (keys if service == "kms" else configured), statement
            assert template["Resources"][logical]["Type"] == _RESOURCE_TYPE_OF_SERVICE[service], statement
            if service == "s3":  # objects under the bad-rows prefix only
                assert _ref(environment["BAD_ROWS_BUCKET"]) == logical
                assert rest == f"/{environment['BAD_ROWS_PREFIX']}*", statement
            else:
                assert rest == "", statement
    # AND the actions are exactly those of the calls in the handler's code, plus the key's
    granted = {action for statement in statements for action in _as_list(statement["Action"])}
    assert granted == _actions_the_code_uses(function["Handler"]) | _KMS_ACTIONS


def test_no_policy_in_the_template_grants_a_wildcard_except_where_aws_requires_it(
    template: dict[str, Any],
) -> None:
    for name, resource in template["Resources"].items():
        for statement in _statements(resource.get("Properties", {})):
            if statement.get("Effect") != "Allow":
                continue  # denials (the bucket's TLS-only rule) may be as wide as they like
            wild_action = any("*" in action for action in _as_list(statement.get("Action", [])))
            wild_resource = "*" in _as_list(statement.get("Resource", []))
            if resource["Type"] == "AWS::KMS::Key":
                # A key policy's Resource is always "*" (it means this key); only the account may administer it.
                assert not wild_action or statement.get("Principal") == _ACCOUNT_ROOT, f"{name}: {statement}"
            else:
                assert not wild_action and not wild_resource, f"{name}: {statement}"


def test_outputs_name_everything_a_client_needs(template: dict[str, Any]) -> None:
    outputs = {name: output["Value"] for name, output in template["Outputs"].items()}
    environment = _environment(template)
    # THEN each store the consumer is configured with is an output, named like its variable
    # (ORDER_METRICS_TABLE -> OrderMetricsTable), with the same value
    for variable in _required_variables(sorted(environment)):
        key = "".join(word.capitalize() for word in variable.split("_"))
        assert outputs.get(key) == environment[variable], f"output {key} (for {variable})"
    # AND the stream producers write to, the function, and the queue of batches given up on
    (stream,) = _resources_of_type(template, "AWS::Kinesis::Stream")
    assert outputs["StreamName"] == {"Ref": stream}
    assert outputs["StreamArn"] == {"Fn::GetAtt": [stream, "Arn"]}
    assert outputs["ConsumerFunctionName"] == {"Ref": FUNCTION}
    (event,) = _function(template)["Events"].values()
    failures, _ = _arn_of(event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"])
    assert outputs["ConsumerFailureQueueUrl"] == {"Ref": failures}


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


# ---------------------------------------------------------------------------------------- the entity stores

BRIDGE = "OrderStreamBridgeFunction"
RELAY = "OutboxRelayFunction"
_STORE_SERVICES = ("kinesis", "rds-data")
_STORE_RESOURCE_TYPES = {
    "kinesis": "AWS::Kinesis::Stream",
    "kms": "AWS::KMS::Key",
    "rds-data": "AWS::RDS::DBCluster",
    "secretsmanager": "AWS::SecretsManager::Secret",
}
_SAMPLE_STREAM_EVENT = ROOT / "tests" / "events" / "dynamodb_stream_orders.json"


def _logical(value: Any) -> str:
    """The logical id a ``!Ref X``, ``!GetAtt X.<attribute>`` or ``!Sub "${X.Arn}..."`` names."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return _ref(value)
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        logical: str = value["Fn::GetAtt"][0]
        return logical
    return _arn_of(value)[0]


def _store_table(template: Mapping[str, Any]) -> str:
    """The table whose stream the bridge reads."""
    (event,) = _function(template, BRIDGE)["Events"].values()
    stream = event["Properties"]["Stream"]
    assert stream["Fn::GetAtt"][1] == "StreamArn", stream
    return _logical(stream)


def _matches(pattern: Any, record: Any) -> bool:
    """An EventBridge-style filter pattern of nested objects and value lists (what the bridge's filter uses)."""
    if isinstance(pattern, list):
        return record in pattern
    return isinstance(record, dict) and all(k in record and _matches(v, record[k]) for k, v in pattern.items())


def test_the_store_table_is_the_one_the_store_code_creates(template: dict[str, Any]) -> None:
    from pipeline.stores.schema import STREAM_VIEW_TYPE, create_table_request

    # GIVEN the template's store table and the CreateTable request the stores use locally
    table = template["Resources"][_store_table(template)]["Properties"]
    local = create_table_request("x")
    # THEN keys, attributes and indexes are the same
    assert table["KeySchema"] == local["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(local["AttributeDefinitions"], key=str)
    assert table["GlobalSecondaryIndexes"] == local["GlobalSecondaryIndexes"]
    assert table["LocalSecondaryIndexes"] == local["LocalSecondaryIndexes"]
    # AND it streams old and new images, keeps point-in-time recovery, is on demand and encrypted under the key
    assert table["StreamSpecification"] == {"StreamViewType": STREAM_VIEW_TYPE}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert _ref(table["SSESpecification"]["KMSMasterKeyId"]) in _resources_of_type(template, "AWS::KMS::Key")


def test_the_bridge_reads_the_table_stream_with_the_failure_contract_and_a_filter_that_keeps_every_order_change(
    template: dict[str, Any],
) -> None:
    from pipeline.stores.cdc import STREAM_ENV, order_event_of

    # GIVEN the bridge's one event source
    (event,) = _function(template, BRIDGE)["Events"].values()
    assert event["Type"] == "DynamoDB"
    source = event["Properties"]
    # THEN failures are reported per record, bisected, retried a bounded number of times, then queued
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["BisectBatchOnFunctionError"] is True
    retries = template["Parameters"][_ref(source["MaximumRetryAttempts"])]
    assert retries["Default"] != -1
    queue = _logical(source["DestinationConfig"]["OnFailure"]["Destination"])
    assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    assert not template["Resources"][queue]["Properties"].get("FifoQueue", False)
    # AND the filter lets through every record the bridge turns into an event, and not the others
    (pattern,) = (json.loads(f["Pattern"]) for f in source["FilterCriteria"]["Filters"])
    records = json.loads(_SAMPLE_STREAM_EVENT.read_text(encoding="utf-8"))["Records"]
    assert any(order_event_of(r) for r in records)
    for record in records:
        if order_event_of(record) is not None:
            assert _matches(pattern, record), record["dynamodb"]["Keys"]
    assert not all(_matches(pattern, r) for r in records), "the filter keeps everything: it filters nothing"
    # AND it publishes to the event stream
    (stream,) = _resources_of_type(template, "AWS::Kinesis::Stream")
    assert _environment(template, BRIDGE)[STREAM_ENV] == {"Ref": stream}


@pytest.mark.parametrize("logical", [pytest.param(BRIDGE, id="bridge"), pytest.param(RELAY, id="relay")])
def test_the_store_functions_may_do_what_their_code_does_and_nothing_else(
    template: dict[str, Any], logical: str
) -> None:
    # GIVEN the function's inline policy statements
    function = _function(template, logical)
    statements = list(_statements(_as_list(function["Policies"])))
    granted: set[str] = set()
    for statement in statements:
        # THEN each names its actions, of one service, on resources of this template of that service's type
        assert statement["Effect"] == "Allow"
        actions = _as_list(statement["Action"])
        assert all("*" not in action for action in actions), statement
        (service,) = {action.split(":")[0] for action in actions}
        for resource in _as_list(statement["Resource"]):
            assert template["Resources"][_logical(resource)]["Type"] == _STORE_RESOURCE_TYPES[service], statement
        granted |= set(actions)
    # AND the actions are those of the calls in its code, the key's, and, for the Data API (which reads the
    # secret with the caller's credentials), reading the database secret
    expected = _actions_the_code_uses(function["Handler"], _STORE_SERVICES) | _KMS_ACTIONS
    if any(action.startswith("rds-data:") for action in expected):
        expected.add("secretsmanager:GetSecretValue")
    assert granted == expected
    assert not _actions_the_code_uses(function["Handler"], ("sqs", "s3")), "the store functions call no SQS or S3"


def test_the_store_cluster_is_serverless_v2_with_the_data_api_and_encrypted_secret_credentials(
    template: dict[str, Any],
) -> None:
    from pipeline.stores.sql.data_api import TARGET_ENV

    # GIVEN the cluster the relay is configured with
    environment = _environment(template, RELAY)
    cluster_id = _logical(environment[TARGET_ENV["resource_arn"]])
    cluster = template["Resources"][cluster_id]
    assert (cluster["Type"], cluster["Properties"]["Engine"]) == ("AWS::RDS::DBCluster", "aurora-postgresql")
    properties = cluster["Properties"]
    # THEN it scales as Serverless v2 between the stack's parameters, with the Data API on, encrypted
    scaling = properties["ServerlessV2ScalingConfiguration"]
    assert {_ref(scaling["MinCapacity"]), _ref(scaling["MaxCapacity"])} <= set(template["Parameters"])
    assert properties["EnableHttpEndpoint"] is True
    assert properties["StorageEncrypted"] is True
    keys = _resources_of_type(template, "AWS::KMS::Key")
    assert _ref(properties["KmsKeyId"]) in keys
    (instance,) = [
        r["Properties"]
        for r in _resources_of_type(template, "AWS::RDS::DBInstance").values()
        if r["Properties"]["DBClusterIdentifier"] == {"Ref": cluster_id}
    ]
    assert instance["DBInstanceClass"] == "db.serverless"
    # AND its credentials come from the secret the relay reads, itself encrypted under the key
    secret = _logical(environment[TARGET_ENV["secret_arn"]])
    assert template["Resources"][secret]["Type"] == "AWS::SecretsManager::Secret"
    assert _ref(template["Resources"][secret]["Properties"]["KmsKeyId"]) in keys
    for field, name in (("MasterUsername", "username"), ("MasterUserPassword", "password")):
        assert properties[field] == {"Fn::Sub": f"{{{{resolve:secretsmanager:${{{secret}}}:SecretString:{name}}}}}"}
    # AND the relay's database is the cluster's
    assert environment[TARGET_ENV["database"]] == properties["DatabaseName"]


def test_outputs_name_the_stores(template: dict[str, Any]) -> None:
    outputs = {name: output["Value"] for name, output in template["Outputs"].items()}
    table = _store_table(template)
    assert outputs["StoreTable"] == {"Ref": table}
    assert outputs["StoreTableStreamArn"] == {"Fn::GetAtt": [table, "StreamArn"]}
    relay = _environment(template, RELAY)
    assert outputs["StoresClusterArn"] == relay["STORES_CLUSTER_ARN"]
    assert outputs["StoresSecretArn"] == relay["STORES_SECRET_ARN"]
    assert outputs["StoresDatabase"] == relay["STORES_DATABASE"]
    assert (outputs["OrderStreamBridgeFunctionName"], outputs["OutboxRelayFunctionName"]) == (
        {"Ref": BRIDGE},
        {"Ref": RELAY},
    )


@pytest.mark.parametrize("logical", [pytest.param(BRIDGE, id="bridge"), pytest.param(RELAY, id="relay")])
def test_sam_build_packages_the_store_functions_with_the_producer(
    template: dict[str, Any], package: Path, logical: str
) -> None:
    built = package.parent / logical
    handler_module, handler_name = _function(template, logical)["Handler"].rsplit(".", 1)
    tree = ast.parse((built / f"{handler_module}.py").read_text(encoding="utf-8"))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert handler_name in defined
    assert (built / "producers" / "producer.py").is_file()
    assert (built / "pipeline" / "stores" / "sql" / "migrations" / "0001_initial.sql").is_file()
    assert not (built / "psycopg").exists(), "the Data API needs boto3 only"


# ---------------------------------------------------------------------------------------- the analytics


ANALYTICS = "AnalyticsApplication"
_FLINK_PIN = re.compile(r'"apache-flink==(\d+)\.(\d+)\.\d+[";]')  # the requirement may carry a marker


def _window_metrics_table(template: Mapping[str, Any]) -> str:
    """The table the analytics job writes: the stack output 'pipeline analytics run' reads (WINDOW_METRICS_TABLE)."""
    return _ref(template["Outputs"]["WindowMetricsTable"]["Value"])


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
