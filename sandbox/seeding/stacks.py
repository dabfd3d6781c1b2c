"""CloudFormation stacks deployed into the emulator and waited for, their failures told by resource.

CreateStack and UpdateStack answer at once and deploy afterwards, so the outcome is the stack's
status once it stops changing. A stack that did not complete is reported with each resource that
failed (its logical id, type and CloudFormation's reason) from the events of this deployment: the
stack's own reason is empty after a rollback.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sandbox.core.poll import NotYet, wait_until

COMPLETE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
# A stack whose creation failed can only be deleted; a new deployment starts from nothing.
DEAD = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"}
NO_UPDATES = "No updates are to be performed."


@dataclass
class FailedResource:
    logical_id: str
    type: str
    reason: str

    def __str__(self) -> str:
        return f"{self.logical_id} ({self.type}): {self.reason}"


class StackError(RuntimeError):
    def __init__(self, stack: str, status: str, failed: list[FailedResource], reason: str = ""):
        self.stack, self.status, self.failed = stack, status, failed
        lines = [f"  - {f}" for f in failed] or [f"  - {reason or 'no resource reported a failure'}"]
        if failed and reason and all(f.reason == reason for f in failed):  # one refusal of the template
            lines = [f"  - {f.logical_id} ({f.type})" for f in failed] + [f"  {reason}"]
        super().__init__(f"stack {stack} ended {status}; what failed:\n" + "\n".join(lines))


def describe(cfn: Any, stack: str) -> dict | None:
    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def settled(cfn: Any, stack: str, timeout: float = 300) -> dict:
    """The stack once its status stops ending in _IN_PROGRESS."""
    def done() -> dict:
        current = describe(cfn, stack)
        if current is None:
            return {"StackStatus": "DELETE_COMPLETE", "StackName": stack}
        if current["StackStatus"].endswith("_IN_PROGRESS"):
            raise NotYet(current["StackStatus"])
        return current
    return wait_until(done, timeout=timeout, interval=0.5, what=f"CloudFormation stack {stack} to settle",
                      error=RuntimeError)


def failed_resources(cfn: Any, stack: str) -> list[FailedResource]:
    """The resources that failed in the stack's latest deployment (events newest first, back to the
    stack's own "User Initiated" event that began it)."""
    failed = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack):
        for event in page["StackEvents"]:
            if event.get("ResourceType") == "AWS::CloudFormation::Stack" and \
                    event.get("ResourceStatusReason") == "User Initiated":
                return failed[::-1]
            if event.get("ResourceStatus", "").endswith("_FAILED") and \
                    event.get("ResourceType") != "AWS::CloudFormation::Stack":
                failed.append(FailedResource(event["LogicalResourceId"], event["ResourceType"],
                                             event.get("ResourceStatusReason", "")))
    return failed[::-1]


def deploy(cfn: Any, stack: str, template_body: str, parameters: dict[str, str] | None = None,
           timeout: float = 300) -> str:
    """Creates the stack, or updates it; returns "created", "updated" or "unchanged", or raises
    StackError naming what failed (CloudFormation has rolled back what this deployment created)."""
    kwargs = {"StackName": stack, "TemplateBody": template_body,
              "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
              # Templates that name their IAM roles need it, as on AWS.
              "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]}
    current = describe(cfn, stack)
    if current is not None and current["StackStatus"].endswith("_IN_PROGRESS"):
        current = settled(cfn, stack, timeout)
    if current is not None and current["StackStatus"] in DEAD:
        cfn.delete_stack(StackName=stack)
        settled(cfn, stack, timeout)
        current = None
    try:
        if current is None:
            cfn.create_stack(**kwargs)
            outcome = "created"
        else:
            cfn.update_stack(**kwargs)
            outcome = "updated"
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if NO_UPDATES in message:
            return "unchanged"
        # Refused before anything was deployed: the template as a whole (its format, its resource types).
        raise StackError(stack, "refused by CreateStack" if current is None else "refused by UpdateStack",
                         _named_resources(template_body, message), message) from None
    final = settled(cfn, stack, timeout)
    if final["StackStatus"] not in COMPLETE:
        raise StackError(stack, final["StackStatus"], failed_resources(cfn, stack) or validation_failures(cfn, stack),
                         final.get("StackStatusReason", ""))
    return outcome


def validation_failures(cfn: Any, stack: str) -> list[FailedResource]:
    """What CloudFormation's checks before provisioning refused (a bucket name taken, a property's
    value): the stack's events say only "Validation failed", DescribeEvents says what."""
    try:
        events = cfn.describe_events(StackName=stack)["OperationEvents"]
    except ClientError:
        return []
    return [FailedResource(e.get("LogicalResourceId", ""), e.get("ResourceType", ""), e["ValidationStatusReason"])
            for e in events if e.get("EventType") == "VALIDATION_ERROR" and e.get("ValidationStatusReason")]


def _named_resources(template_body: str, message: str) -> list[FailedResource]:
    """The template's resources whose type a refusal names ("Unrecognized resource types: [AWS::X::Y]")."""
    from sandbox.seeding.templates import read_text
    try:
        resources = read_text(template_body).get("Resources") or {}
    except ValueError:
        return []
    return [FailedResource(name, r["Type"], message) for name, r in resources.items()
            if isinstance(r, dict) and isinstance(r.get("Type"), str) and r["Type"] in message]


def outputs(cfn: Any, stack: str) -> dict[str, str]:
    current = describe(cfn, stack) or {}
    return {o["OutputKey"]: o["OutputValue"] for o in current.get("Outputs", [])}
