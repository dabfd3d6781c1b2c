"""The emulator refuses what Fargate refuses, with ECS's ClientException, and starts no task that
reaches into the host (it holds the Docker socket) unless ECS_ALLOW_HOST_ACCESS allows it."""
from __future__ import annotations

import uuid

import botocore.exceptions
import pytest

pytestmark = pytest.mark.e2e


def container(**extra):
    # memory: what ECS needs of a container on EC2 without a task-level memory.
    return {"name": "app", "image": "sandbox/task:1.0", "essential": True, "command": ["true"], "memory": 64,
            **extra}


def client_error(call, **kwargs) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as failed:
        call(**kwargs)
    assert failed.value.response["Error"]["Code"] == "ClientException", failed.value.response
    return failed.value.response["Error"]["Message"]


def test_fargate_definitions_are_refused_as_fargate_refuses_them(aws_session):
    ecs = aws_session.client("ecs")
    family = f"fargate-rules-{uuid.uuid4().hex[:8]}"
    base = {"family": family, "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512"}
    message = client_error(ecs.register_task_definition, **base,
                           containerDefinitions=[container(privileged=True)])
    assert "do not support privileged containers: container 'app' is privileged" in message
    message = client_error(ecs.register_task_definition, **{**base, "memory": "3000"},
                           containerDefinitions=[container()])
    assert message == "No Fargate configuration exists for given values: 256 CPU, 3000 memory."
    message = client_error(ecs.register_task_definition, **base, containerDefinitions=[container()],
                           volumes=[{"name": "root", "host": {"sourcePath": "/"}}])
    assert "volume 'root' mounts the host path '/'" in message
    assert not ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]


def test_no_task_of_any_launch_type_gets_the_host(aws_session):
    """An EC2 definition with a privileged container is refused when it is registered, as every option
    that reaches into the host is (tests/e2e/test_host_access.py has the others)."""
    ecs = aws_session.client("ecs")
    family = f"host-access-{uuid.uuid4().hex[:8]}"
    message = client_error(ecs.register_task_definition, family=family, requiresCompatibilities=["EC2"],
                           networkMode="bridge", containerDefinitions=[container(privileged=True)])
    assert "container 'app' is privileged" in message and "ECS_ALLOW_HOST_ACCESS=true" in message
    assert not ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]