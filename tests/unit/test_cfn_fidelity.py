"""A template's AWS::ECS::TaskDefinition becomes ECS's RegisterTaskDefinition request key by key
(localstack/cfn_fidelity.py), and what the emulator's RegisterTaskDefinition refuses fails the
resource with CloudFormation's handler message."""
from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
LOCALSTACK = Path(__file__).resolve().parents[2] / "localstack"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, LOCALSTACK / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cfn = _load("cfn_fidelity")
fidelity = _load("ecs_fidelity")

TEMPLATE_PROPERTIES = {
    "Family": "etl", "Cpu": 256, "Memory": "512", "NetworkMode": "awsvpc", "RequiresCompatibilities": ["FARGATE"],
    "ExecutionRoleArn": "arn:aws:iam::000000000000:role/exec",
    "Tags": [{"Key": "team", "Value": "data"}],
    "Volumes": [{"Name": "scratch", "Host": {"SourcePath": "/"}}],
    "ProxyConfiguration": {"Type": "APPMESH", "ContainerName": "envoy",
                           "ProxyConfigurationProperties": [{"Name": "AppPorts", "Value": "8080"}]},
    "ContainerDefinitions": [{
        "Name": "app", "Image": "team/etl:1.0", "Essential": "true", "Memory": "256",
        "Secrets": [{"Name": "TOKEN", "ValueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/token"}],
        "DependsOn": [{"ContainerName": "init", "Condition": "SUCCESS"}],
        "HealthCheck": {"Command": ["CMD", "true"], "Interval": 10},
        "LinuxParameters": {"InitProcessEnabled": True, "Capabilities": {"Add": ["SYS_ADMIN"]}},
        "DockerLabels": {"Team": "data"},
        "LogConfiguration": {"LogDriver": "awslogs", "Options": {"awslogs-group": "/ecs/etl"}},
    }],
}


def test_the_template_properties_become_the_request_ecs_takes():
    request = cfn.register_request(TEMPLATE_PROPERTIES)
    assert request["cpu"] == "256" and request["memory"] == "512"
    assert request["tags"] == [{"key": "team", "value": "data"}]
    assert request["volumes"] == [{"name": "scratch", "host": {"sourcePath": "/"}}]
    assert request["proxyConfiguration"]["properties"] == [{"name": "AppPorts", "value": "8080"}]
    [container] = request["containerDefinitions"]
    assert container["essential"] is True and container["memory"] == 256
    assert container["secrets"] == [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:"
                                                                   "parameter/token"}]
    assert container["dependsOn"] == [{"containerName": "init", "condition": "SUCCESS"}]
    assert container["healthCheck"] == {"command": ["CMD", "true"], "interval": 10}
    assert container["linuxParameters"] == {"initProcessEnabled": True, "capabilities": {"add": ["SYS_ADMIN"]}}
    # Maps keep their keys as written: they are names, not members.
    assert container["dockerLabels"] == {"Team": "data"}
    assert container["logConfiguration"] == {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/etl"}}


@pytest.mark.parametrize("properties, words", [
    ({"Family": "x", "ContainerDefinitions": [{"Name": "a", "Imag": "x"}]},
     "#/TaskDefinition/ContainerDefinitions/0: extraneous key [Imag] is not permitted"),
    ({"Family": "x", "ContainerDefinitions": {"Name": "a"}},
     "#/TaskDefinition/ContainerDefinitions: expected type: JSONArray, found: dict"),
])
def test_a_property_ecs_has_no_place_for_fails_the_resource(properties, words):
    with pytest.raises(ValueError) as failed:
        cfn.create_task_definition("Etl", properties, "stack")
    assert str(failed.value) == f"Properties validation failed for resource Etl with message: [{words}]"


@pytest.fixture
def emulator(monkeypatch):
    """cfn_fidelity over ecs_fidelity's RegisterTaskDefinition over a stand-in for MiniStack's ecs module."""
    registered = []

    def register(data):
        registered.append(data)
        arn = f"arn:aws:ecs:us-east-1:000000000000:task-definition/{data['family']}:1"
        return 200, {}, json.dumps({"taskDefinition": {"taskDefinitionArn": arn}}).encode()

    fake = types.SimpleNamespace(
        _ACTION_MAP={"RegisterTaskDefinition": fidelity._register_task_definition},
        error_response_json=lambda code, message, status: (status, {}, json.dumps(
            {"__type": code, "message": message}).encode()))
    monkeypatch.setattr(fidelity, "ecs", fake)
    monkeypatch.setitem(fidelity._original, "_register_task_definition", register)
    monkeypatch.setattr(cfn, "ecs", fake)
    monkeypatch.delenv("ECS_ALLOW_HOST_ACCESS", raising=False)
    return registered


def test_a_definition_reaching_into_the_host_fails_with_the_emulators_refusal(emulator):
    with pytest.raises(ValueError) as failed:
        cfn.create_task_definition("Etl", TEMPLATE_PROPERTIES, "stack")
    message = str(failed.value)
    assert message.startswith('Resource handler returned message: "Invalid request provided: Create '
                              'TaskDefinition: ')
    assert "Log driver awslogs requires options: awslogs-region, awslogs-stream-prefix" in message
    assert "volume 'scratch' mounts the host path '/'" in message
    assert message.endswith('(Service: AmazonECS; Status Code: 400; Error Code: ClientException)" '
                            '(HandlerErrorCode: InvalidRequest)')
    assert not emulator


def test_an_accepted_definition_is_registered_under_its_family_or_the_stacks_name(emulator):
    properties = {"RequiresCompatibilities": ["FARGATE"], "Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc",
                  "ContainerDefinitions": [{"Name": "app", "Image": "team/etl:1.0"}]}
    arn, attributes = cfn.create_task_definition("Etl", properties, "stack")
    assert arn.endswith("task-definition/stack-Etl:1") and attributes == {"TaskDefinitionArn": arn}
    assert emulator[0]["containerDefinitions"] == [{"name": "app", "image": "team/etl:1.0"}]
