"""CloudFormation in the emulator: a template's ECS task definition is registered as ECS registers
one (its refusals, its fields in ECS's shape), and a failed stack is told by resource, type and reason
(sandbox/seeding/stacks.py)."""
from __future__ import annotations

import json
import uuid

import pytest

from sandbox.seeding import stacks

pytestmark = pytest.mark.e2e


def task_template(**properties) -> str:
    return json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc", "Cpu": "256", "Memory": "512",
            **properties}}}})


@pytest.fixture
def stack(aws_session):
    cfn = aws_session.client("cloudformation")
    name = f"cfn-{uuid.uuid4().hex[:10]}"
    yield cfn, name
    cfn.delete_stack(StackName=name)
    stacks.settled(cfn, name)


def test_a_templates_task_definition_meets_the_emulators_refusals(stack, aws_session):
    cfn, name = stack
    template = task_template(Family=name, Volumes=[{"Name": "root", "Host": {"SourcePath": "/"}}],
                             ContainerDefinitions=[{"Name": "app", "Image": "sandbox/task:1.0", "MountPoints": [
                                 {"SourceVolume": "root", "ContainerPath": "/host"}]}])
    with pytest.raises(stacks.StackError) as failed:
        stacks.deploy(cfn, name, template)
    assert failed.value.status == "ROLLBACK_COMPLETE"
    [resource] = failed.value.failed
    assert (resource.logical_id, resource.type) == ("Task", "AWS::ECS::TaskDefinition")
    assert "Invalid request provided: Create TaskDefinition: Tasks using the Fargate launch type do not support " \
           "host path volumes: volume 'root' mounts the host path '/'." in resource.reason
    assert "Task (AWS::ECS::TaskDefinition): Resource handler returned message" in str(failed.value)
    assert not aws_session.client("ecs").list_task_definitions(familyPrefix=name)["taskDefinitionArns"]


def test_a_templates_task_definition_keeps_every_field_in_ecss_shape(stack, aws_session):
    cfn, name = stack
    ecs = aws_session.client("ecs")
    containers = [
        {"Name": "app", "Image": "sandbox/task:1.0", "DependsOn": [{"ContainerName": "init", "Condition": "SUCCESS"}],
         "HealthCheck": {"Command": ["CMD-SHELL", "true"], "Interval": 10},
         "LinuxParameters": {"InitProcessEnabled": True}, "Environment": [{"Name": "STAGE", "Value": "test"}]},
        {"Name": "init", "Image": "sandbox/task:1.0", "Essential": False}]
    assert stacks.deploy(cfn, name, task_template(Family=name, ContainerDefinitions=containers)) == "created"
    registered = ecs.describe_task_definition(taskDefinition=name)["taskDefinition"]
    app = next(c for c in registered["containerDefinitions"] if c["name"] == "app")
    assert app["dependsOn"] == [{"containerName": "init", "condition": "SUCCESS"}]
    assert app["healthCheck"]["command"] == ["CMD-SHELL", "true"] and app["healthCheck"]["interval"] == 10
    assert app["linuxParameters"]["initProcessEnabled"] is True
    assert app["environment"] == [{"name": "STAGE", "value": "test"}]
    assert registered["networkMode"] == "awsvpc" and registered["revision"] == 1

    assert stacks.deploy(cfn, name, task_template(Family=name, ContainerDefinitions=containers)) == "unchanged"
    assert stacks.deploy(cfn, name, task_template(Family=name, ContainerDefinitions=containers,
                                                  Memory="1024")) == "updated"
    latest = ecs.describe_task_definition(taskDefinition=name)["taskDefinition"]
    assert (latest["revision"], latest["memory"]) == (2, "1024")
