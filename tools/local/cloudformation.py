"""CloudFormation mechanics for :mod:`tools.local.stack`: create or update, wait, explain failures,
and read back what the SAM transform made.

Everything here takes a CloudFormation client and raises :class:`StackError` with a message that
names the stack, and for failures each failed resource with its reason. Polling starts at 20 ms and
backs off to 5 s, so the emulator (which finishes before answering) costs one poll and AWS is not
hammered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.exceptions import PipelineError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import StackTypeDef

__all__ = [
    "TEMPLATE_BODY_LIMIT",
    "Stack",
    "StackError",
    "create_or_update",
    "delete",
    "event_source_mapping",
    "find",
    "message",
    "outputs",
    "stack_resources",
    "upload_if_large",
]

logger = logging.getLogger(__name__)

Stack = Mapping[str, Any]
"""A ``DescribeStacks`` entry."""

_CAPABILITIES: list[Any] = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
_NO_UPDATES = "No updates are to be performed"
_RECREATABLE = "ROLLBACK_COMPLETE"  # a failed first creation: it holds no resources


class StackError(PipelineError):
    """CloudFormation refused, failed or timed out on a stack; the message names resources and reasons."""


TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation accepts inline


def upload_if_large(s3: Any, bucket: str, body: str, region: str) -> str | None:
    """The ``TemplateURL`` of ``body`` uploaded to ``bucket`` when it is over the inline limit (as ``sam
    deploy`` does; path-style URL, which CloudFormation and the emulator both resolve), else ``None``."""
    data = body.encode()
    if len(data) <= TEMPLATE_BODY_LIMIT:
        return None
    key = f"templates/{hashlib.sha256(data).hexdigest()}.yaml"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return f"https://s3.{region}.amazonaws.com/{bucket}/{key}"


def create_or_update(
    cfn: CloudFormationClient,
    name: str,
    body: str,
    parameters: Mapping[str, str],
    timeout: float,
    *,
    template_url: str | None = None,
) -> tuple[StackTypeDef, str]:
    """Bring stack ``name`` to ``body``; return it and ``created``/``updated``/``unchanged``.

    With ``template_url`` (the same template uploaded to S3, for one over the 51,200-byte inline limit,
    as ``sam deploy`` does) the request names the URL instead of carrying ``body``.

    A stack in progress is waited for first; one in ``ROLLBACK_COMPLETE`` is deleted and created again;
    one in another ``*_FAILED`` state raises.
    """
    existing = find(cfn, name)
    if existing is not None and existing["StackStatus"].endswith("_IN_PROGRESS"):
        existing = _wait(cfn, existing["StackId"], timeout)
    if existing is not None and existing["StackStatus"] == _RECREATABLE:
        logger.warning("stack %s is %s from a failed creation: deleting it first", name, _RECREATABLE)
        delete(cfn, existing, timeout)
        existing = None
    if existing is not None and existing["StackStatus"].endswith("_FAILED"):
        raise StackError(
            f"stack {name} is {existing['StackStatus']}: fix or delete it ('pipeline down', or delete-stack) first"
        )
    request: dict[str, Any] = {
        "StackName": name,
        **({"TemplateURL": template_url} if template_url else {"TemplateBody": body}),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
        "Capabilities": _CAPABILITIES,
    }
    try:
        if existing is None:
            stack_id = cfn.create_stack(**request)["StackId"]
            change, done = "created", "CREATE_COMPLETE"
        else:
            stack_id = cfn.update_stack(**request)["StackId"]
            change, done = "updated", "UPDATE_COMPLETE"
    except ClientError as exc:
        if existing is not None and _NO_UPDATES in message(exc):
            return existing, "unchanged"
        raise StackError(f"CloudFormation refused {name}: {message(exc)}") from exc
    stack = _wait(cfn, stack_id, timeout)
    if stack is None:
        raise StackError(f"stack {name} disappeared while being {change}")
    if stack["StackStatus"] != done:
        raise _failure(cfn, stack)
    return stack, change


def delete(cfn: CloudFormationClient, stack: StackTypeDef, timeout: float) -> None:
    """Delete ``stack`` and wait until it is gone; raise :class:`StackError` if the deletion fails."""
    try:
        cfn.delete_stack(StackName=stack["StackId"])
    except ClientError as exc:
        raise StackError(f"CloudFormation refused to delete {stack['StackName']}: {message(exc)}") from exc
    final = _wait(cfn, stack["StackId"], timeout)
    if final is not None and final["StackStatus"] != "DELETE_COMPLETE":
        raise _failure(cfn, final)


def find(cfn: CloudFormationClient, name: str) -> StackTypeDef | None:
    """The live stack called ``name``, or ``None``."""
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in message(exc):
            return None
        raise StackError(f"cannot describe stack {name}: {message(exc)}") from exc
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def outputs(stack: StackTypeDef) -> dict[str, str]:
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}


def stack_resources(cfn: CloudFormationClient, stack_id: str) -> list[Any]:
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id)
    return [summary for page in pages for summary in page["StackResourceSummaries"]]


def message(exc: ClientError) -> str:
    """``Message (Code)`` of a botocore error."""
    error = exc.response.get("Error", {})
    return f"{error.get('Message') or exc} ({error.get('Code', 'error')})"


def _wait(cfn: CloudFormationClient, stack_id: str, timeout: float) -> StackTypeDef | None:
    """Poll until the stack leaves ``*_IN_PROGRESS``; ``None`` if it is gone (deleted)."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        except ClientError as exc:
            if "does not exist" in message(exc):
                return None
            raise StackError(f"cannot describe stack {stack_id}: {message(exc)}") from exc
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if time.monotonic() > deadline:
            raise StackError(f"stack {stack['StackName']} still {stack['StackStatus']} after {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)


def _failure(cfn: CloudFormationClient, stack: StackTypeDef) -> StackError:
    """A :class:`StackError` naming the failed resources of the stack's latest operation and why."""
    name, stack_id = stack["StackName"], stack["StackId"]
    reasons: list[str] = []
    try:
        for event in cfn.describe_stack_events(StackName=stack_id)["StackEvents"]:  # newest first
            status, reason = event.get("ResourceStatus", ""), event.get("ResourceStatusReason", "")
            if event.get("LogicalResourceId") == name and status in {"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"}:
                break  # the start of the latest operation
            if status.endswith("_FAILED") and reason:
                reasons.append(f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}) {status}: {reason}")
        reasons.extend(_validation_failures(cfn, stack_id))
        reasons.sort(key=lambda reason: reason.startswith(f"{name} ("))  # the resources first, the stack last
    except ClientError as exc:
        reasons.append(f"(stack events unreadable: {message(exc)})")
    detail = "".join(f"\n  - {reason}" for reason in reasons) or f"\n  - {stack.get('StackStatusReason') or '?'}"
    return StackError(f"stack {name} ended {stack['StackStatus']}:{detail}")


def _validation_failures(cfn: CloudFormationClient, stack_id: str) -> list[str]:
    """Failures found before provisioning (``DescribeEvents``, ``VALIDATION_ERROR``: name conflicts...).

    The stack events then only say "Validation failed with 1 error(s). Call DescribeEvents".
    """
    try:
        events = cfn.describe_events(StackName=stack_id).get("OperationEvents", [])
    except ClientError:  # an endpoint without DescribeEvents
        return []
    if not events:
        return []
    latest = max(events, key=lambda e: e["Timestamp"].timestamp() if "Timestamp" in e else 0.0).get("OperationId")
    return [
        f"{e.get('LogicalResourceId')} ({e.get('ResourceType')}) validation failed: {e.get('ValidationStatusReason')}"
        for e in events
        if e.get("OperationId") == latest and e.get("EventType") == "VALIDATION_ERROR"
    ]


# -- reading what the transform made --------------------------------------------------------------


def event_source_mapping(
    cfn: CloudFormationClient,
    stack: StackTypeDef,
    function: str,
    get_att: Callable[[str, str, str], str],
) -> dict[str, Any] | None:
    """The properties of the Kinesis event source mapping of ``function``, intrinsic functions resolved.

    Read from the processed template (after the SAM transform), with ``Ref`` to parameters (their
    effective values), pseudo parameters and resources (physical ids), ``Fn::If`` on ``Fn::Equals``
    conditions, and ``Fn::GetAtt`` through ``get_att(physical_id, resource_type, attribute)``.
    """
    template = _processed_template(cfn, stack)
    resolver = _Resolver(stack, stack_resources(cfn, stack["StackId"]), template.get("Conditions", {}), get_att)
    for logical, resource in sorted(template.get("Resources", {}).items()):
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        props: dict[str, Any] = resolver.value(resource.get("Properties", {}))
        if str(props.get("FunctionName", "")).rsplit(":", 1)[-1] == function and ":kinesis:" in str(
            props.get("EventSourceArn", "")
        ):
            logger.debug("event source mapping %s of %s: %s", logical, function, props)
            return props
    return None


def _processed_template(cfn: CloudFormationClient, stack: StackTypeDef) -> dict[str, Any]:
    """The template after the SAM transform: JSON, which botocore has already parsed into a dict."""
    body: Any = cfn.get_template(StackName=stack["StackId"], TemplateStage="Processed")["TemplateBody"]
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise StackError(f"stack {stack['StackName']}: the processed template is not JSON") from exc
    if not isinstance(body, dict):
        raise StackError(f"stack {stack['StackName']}: unexpected processed template {type(body).__name__}")
    return body


class _Resolver:
    """Just enough of CloudFormation's intrinsic functions to read an event source mapping."""

    def __init__(
        self,
        stack: StackTypeDef,
        resources: list[Any],
        conditions: Mapping[str, Any],
        get_att: Callable[[str, str, str], str],
    ) -> None:
        _, partition, _, region, account, *_ = stack["StackId"].split(":")
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        pseudo = {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": partition}
        self._physical: dict[str, str] = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources}
        self._types: dict[str, str] = {r["LogicalResourceId"]: r["ResourceType"] for r in resources}
        self._refs: dict[str, str] = {**self._physical, **pseudo, **parameters}
        self._conditions = conditions
        self._get_att = get_att

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if str(arg) not in self._refs:
                    raise StackError(f"cannot resolve Ref {arg}")
                return self._refs[str(arg)]
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._get_att(self._physical.get(logical, ""), self._types.get(logical, ""), attribute)
            if key == "Fn::If":
                return self.value(arg[1] if self._condition(str(arg[0])) else arg[2])
            if key.startswith("Fn::"):
                raise StackError(f"cannot resolve {key} in an event source mapping; extend cloudformation._Resolver")
        return {k: self.value(v) for k, v in node.items()}

    def _condition(self, name: str) -> bool:
        node = self._conditions.get(name)
        if not isinstance(node, dict) or list(node) != ["Fn::Equals"]:
            raise StackError(f"cannot evaluate condition {name}; extend cloudformation._Resolver")
        left, right = (self.value(side) for side in node["Fn::Equals"])
        return bool(left == right)
