"""What the template tests share: the template's path, the pinned tools' runner, and readers of the
decoded template (resources, functions, environments, policy statements) and of the code (which AWS
actions a handler's modules call).

The template is read with cfn-lint's own decoder, so intrinsic functions come back in their JSON form:
``!Ref X`` is ``{"Ref": "X"}``, ``!GetAtt A.Arn`` is ``{"Fn::GetAtt": ["A", "Arn"]}``, ``!Sub s`` is
``{"Fn::Sub": s}``. The tools run pinned, each in a uv environment of its own (``tools/local/tools.py``),
offline from AWS.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.exceptions import ConfigurationError
from pipeline.metrics.tables import Resources
from tools.local.tools import (
    offline_aws_env,
)

ROOT = Path(__file__).resolve().parents[1]
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


BRIDGE = "OrderStreamBridgeFunction"
"""The function that bridges the store table's stream into the events stream."""


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


def _window_metrics_table(template: Mapping[str, Any]) -> str:
    """The table the analytics job writes: the stack output 'pipeline analytics run' reads (WINDOW_METRICS_TABLE)."""
    return _ref(template["Outputs"]["WindowMetricsTable"]["Value"])
