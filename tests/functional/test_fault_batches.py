"""Partial failures of batch calls, S3 throttles and chaos() on real clients against the emulator: what is
reported unprocessed is really not done, and is reported the way each service reports a throttled entry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.settings import Settings, aws_client
from tools.faults import FaultInjector

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def table(emulator: Settings) -> Iterator[str]:
    dynamodb = aws_client("dynamodb", emulator)
    name = f"faults-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    dynamodb.delete_table(TableName=name)


def _keys_in(dynamodb: Any, table: str) -> set[str]:
    return {item["pk"]["S"] for item in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]}


def test_batch_write_withholds_entries_and_returns_them_unprocessed(emulator: Settings, table: str) -> None:
    # GIVEN a DynamoDB client on which half the batch entries fail
    dynamodb = aws_client("dynamodb", emulator)
    injector = FaultInjector(seed=3)
    injector.fail_batch_entries(dynamodb, 0.5)
    keys = [f"w-{i}" for i in range(20)]
    # WHEN 20 puts are sent in one BatchWriteItem
    response = dynamodb.batch_write_item(
        RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": k}}}} for k in keys]}
    )
    # THEN exactly the unprocessed ones are missing from the table, and the counts agree
    unprocessed = {r["PutRequest"]["Item"]["pk"]["S"] for r in response["UnprocessedItems"].get(table, [])}
    assert 0 < len(unprocessed) < 20 and injector.counts.failed_batch_entries == len(unprocessed)
    written = {k for k in _keys_in(dynamodb, table) if k.startswith("w-")}
    assert written == set(keys) - unprocessed


def test_batch_execute_statement_reports_withheld_statements_as_throttled(emulator: Settings, table: str) -> None:
    # GIVEN a client on which half the statements fail
    dynamodb = aws_client("dynamodb", emulator)
    injector = FaultInjector(seed=5)
    injector.fail_batch_entries(dynamodb, 0.5)
    keys = [f"s-{i}" for i in range(10)]
    statements = [{"Statement": f"INSERT INTO \"{table}\" VALUE {{'pk': ?}}", "Parameters": [{"S": k}]} for k in keys]
    # WHEN they run as one BatchExecuteStatement
    responses = dynamodb.batch_execute_statement(Statements=statements)["Responses"]
    # THEN the answer stays aligned with the statements; the throttled ones were not executed
    assert len(responses) == 10
    throttled = {k for k, r in zip(keys, responses, strict=True) if r.get("Error", {}).get("Code") == "ThrottlingError"}
    assert 0 < len(throttled) < 10
    assert {k for k in _keys_in(dynamodb, table) if k.startswith("s-")} == set(keys) - throttled


def test_batch_get_returns_withheld_keys_unprocessed(emulator: Settings, table: str) -> None:
    # GIVEN 10 items, and a client on which every other key read fails
    dynamodb = aws_client("dynamodb", emulator)
    keys = [f"g-{i}" for i in range(10)]
    dynamodb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": k}}}} for k in keys]})
    injector = FaultInjector(seed=7)
    injector.fail_batch_entries(dynamodb, 0.5)
    # WHEN they are read in one BatchGetItem
    request = {table: {"Keys": [{"pk": {"S": k}} for k in keys], "ConsistentRead": True}}
    response = dynamodb.batch_get_item(RequestItems=request)
    # THEN what is returned and what is unprocessed partition the keys, the projection kept
    got = {item["pk"]["S"] for item in response["Responses"].get(table, [])}
    unprocessed = response["UnprocessedKeys"].get(table, {})
    left = {key["pk"]["S"] for key in unprocessed.get("Keys", [])}
    assert got | left == set(keys) and not got & left and left
    assert unprocessed["ConsistentRead"] is True


def test_send_message_batch_reports_withheld_messages_failed_and_does_not_send_them(emulator: Settings) -> None:
    # GIVEN a queue and an SQS client on which half the entries fail
    sqs = aws_client("sqs", emulator)
    url = sqs.create_queue(QueueName=f"faults-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    injector = FaultInjector(seed=11)
    injector.fail_batch_entries(sqs, 0.5)
    # WHEN ten messages are sent in one call
    response = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
    # THEN the failed ones are throttled (not the sender's fault) and only the others are in the queue
    failed = {f["Id"] for f in response["Failed"]}
    assert failed and all(f["Code"] == "RequestThrottled" and not f["SenderFault"] for f in response["Failed"])
    assert {s["Id"] for s in response["Successful"]} == {str(i) for i in range(10)} - failed
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(attributes["Attributes"]["ApproximateNumberOfMessages"]) == 10 - len(failed)


def test_s3_throttle_is_a_503_slow_down_that_botocore_retries(emulator: Settings) -> None:
    # GIVEN an S3 client whose every PutObject attempt is throttled
    s3 = aws_client("s3", emulator.with_(max_attempts=3))
    injector = FaultInjector()
    injector.throttle(s3, 1.0, operations=["PutObject"])
    # WHEN an object is put
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket="never-created", Key="k", Body=b"x")
    # THEN the caller sees SlowDown after botocore's three attempts
    assert raised.value.response["Error"]["Code"] == "SlowDown"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert injector.counts.throttled_requests == 3


def test_chaos_cancels_transactions_and_reaches_clients_built_inside_on_every_client(emulator: Settings) -> None:
    # GIVEN chaos at rate 1 on every client built inside the block
    injector = FaultInjector()
    with injector.on_every_client(lambda client: injector.chaos(client, 1.0)):
        inside = aws_client("dynamodb", emulator.with_(max_attempts=1))
    outside = aws_client("dynamodb", emulator.with_(max_attempts=1))
    item = {"Put": {"TableName": "never-created", "Item": {"pk": {"S": "a"}}}}
    # WHEN each runs a transaction
    with pytest.raises(ClientError) as raised:
        inside.transact_write_items(TransactItems=[item])
    # THEN the one built inside gets a throttled cancellation; the other reaches the emulator
    error = raised.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in error["CancellationReasons"]] == ["ThrottlingError"]
    with pytest.raises(ClientError) as real:
        outside.transact_write_items(TransactItems=[item])
    assert "injected" not in str(real.value) and injector.counts.throttled_requests == 1


def test_chaos_leaves_a_client_of_another_protocol_alone(emulator: Settings) -> None:
    # GIVEN chaos at rate 1 on a CloudWatch client (query protocol: no synthetic answer is modelled)
    cloudwatch = aws_client("cloudwatch", emulator.with_(max_attempts=1))
    injector = FaultInjector()
    injector.chaos(cloudwatch, 1.0)
    # WHEN it is used THEN it reaches the emulator, untouched
    cloudwatch.list_metrics()
    assert injector.counts.throttled_requests == 0
