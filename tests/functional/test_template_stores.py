"""``template.yaml`` against the entity stores' code: the table, the bridge and relay functions, the cluster."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from tests.template_support import (
    _KMS_ACTIONS,
    BRIDGE,
    ROOT,
    _actions_the_code_uses,
    _as_list,
    _environment,
    _function,
    _logical,
    _ref,
    _resources_of_type,
    _statements,
    _store_table,
)

# ---------------------------------------------------------------------------------------- the entity stores

RELAY = "OutboxRelayFunction"
MIGRATIONS = "StoresMigrationsFunction"
_STORE_SERVICES = ("kinesis", "rds-data")
_STORE_RESOURCE_TYPES = {
    "kinesis": "AWS::Kinesis::Stream",
    "kms": "AWS::KMS::Key",
    "rds-data": "AWS::RDS::DBCluster",
    "secretsmanager": "AWS::SecretsManager::Secret",
}
_SAMPLE_STREAM_EVENT = ROOT / "tests" / "events" / "dynamodb_stream_orders.json"


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


@pytest.mark.parametrize(
    "logical",
    [pytest.param(BRIDGE, id="bridge"), pytest.param(RELAY, id="relay"), pytest.param(MIGRATIONS, id="migrations")],
)
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


def test_a_deploy_migrates_the_cluster_the_relay_uses_through_the_migrations_custom_resource(
    template: dict[str, Any],
) -> None:
    from pipeline.stores.sql.data_api import TARGET_ENV
    from pipeline.stores.sql.migrate import load_migrations

    # GIVEN the custom resource served by the migrations function
    (logical,) = [name for name, r in template["Resources"].items() if r["Type"] == "Custom::StoresMigrations"]
    resource = template["Resources"][logical]
    props = resource["Properties"]
    assert props["ServiceToken"] == {"Fn::GetAtt": [MIGRATIONS, "Arn"]}
    assert _function(template, MIGRATIONS)["Handler"] == "consumers/stores_migrations.handler"
    # THEN it migrates the relay's cluster, secret and database, once the instance and secret exist
    relay = _environment(template, RELAY)
    assert props["ClusterArn"] == relay[TARGET_ENV["resource_arn"]]
    assert props["SecretArn"] == relay[TARGET_ENV["secret_arn"]]
    assert props["Database"] == relay[TARGET_ENV["database"]]
    instance = next(iter(_resources_of_type(template, "AWS::RDS::DBInstance")))
    assert instance in resource["DependsOn"]
    # AND it names the newest migration the package ships: a new one changes it, so a deploy updates it
    assert props["Migrations"] == load_migrations()[-1].version
    # AND CloudFormation gives up on an unanswered request within minutes, not the default hour
    assert 0 < int(props["ServiceTimeout"]) <= 3600
    # AND the function and the resource exist unless the stack is deployed with migrations disabled (locally)
    condition = template["Conditions"][resource["Condition"]]
    assert template["Resources"][MIGRATIONS]["Condition"] == resource["Condition"]
    assert condition == {"Fn::Equals": [{"Ref": "StoresMigrations"}, "enabled"]}
    assert template["Parameters"]["StoresMigrations"]["Default"] == "enabled"
