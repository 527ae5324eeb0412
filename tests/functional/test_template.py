"""``template.yaml`` against the code it deploys.

The tools pass on it (cfn-lint, ``sam validate --lint``, ``sam build`` of the consumer's package), and the
template and the code agree: tables and keys, the function's environment, the event source's failure
contract, permissions, outputs.

The tools run pinned, each in a uv environment of its own (``tools/local/tools.py``), offline from
AWS (dummy credentials); the first run of a pin downloads it from PyPI. The template is read with
cfn-lint's own decoder, so intrinsic functions come back in their JSON form: ``!Ref X`` is
``{"Ref": "X"}``, ``!GetAtt A.Arn`` is ``{"Fn::GetAtt": ["A", "Arn"]}``, ``!Sub s`` is ``{"Fn::Sub": s}``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest

from load.consumer_bench.units import INDEXES
from pipeline.metrics.tables import TABLES, Resources
from tests.template_support import (
    _ACCOUNT_ROOT,
    _KMS_ACTIONS,
    _MUST_NOT_SHIP,
    _MUST_SHIP,
    _PACKAGE_BUDGET,
    _RESOURCE_TYPE_OF_SERVICE,
    FUNCTION,
    ROOT,
    TEMPLATE,
    _actions_the_code_uses,
    _arn_of,
    _as_list,
    _elf_machine,
    _environment,
    _function,
    _ref,
    _required_variables,
    _resources_of_type,
    _run,
    _statements,
    _store_table,
    _window_metrics_table,
)
from tools.local.tools import (
    cfn_lint_command,
    sam_command,
)

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
    if spec.written_by_plugins:  # only key attributes are declared: the table's and its readers' indexes'
        indexed = {k["AttributeName"] for index in table.get("GlobalSecondaryIndexes", []) for k in index["KeySchema"]}
        assert defined.keys() == set(spec.keys) | indexed
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


def test_the_consumer_benchmark_meters_every_index_of_the_tables_the_consumer_writes(template: dict[str, Any]) -> None:
    # GIVEN the global secondary indexes the template puts on the tables the consumer writes
    environment = _environment(template)
    declared = {}
    for logical, spec in TABLES.items():
        if spec.written_by_plugins:
            table = template["Resources"][_ref(environment[spec.env])]["Properties"]
            for index in table.get("GlobalSecondaryIndexes", []):
                projection = index["Projection"]
                assert projection["ProjectionType"] == "INCLUDE", "the meter knows INCLUDE projections only"
                keys = tuple(k["AttributeName"] for k in index["KeySchema"])
                declared[(logical, index["IndexName"])] = (keys, frozenset(projection["NonKeyAttributes"]))
    # THEN the write-units meter bills each of them with the template's keys and projection
    metered = {(i.table, i.name): (i.keys, i.projected) for i in INDEXES}
    assert metered == declared


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
