"""What ECS refuses at RegisterTaskDefinition and RunTask (sandbox/core/ecs_rules.py), in ECS's words:
each rule, the definitions it lets through, the emulator answering with them (localstack/ecs_fidelity.py)
and sandbox.yaml's validation reporting them."""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import yaml

from sandbox.core.ecs_rules import register_refusals, run_task_refusals
from sandbox.seeding.config import ConfigError, load_config, validate_config

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("ecs_fidelity", ROOT / "localstack" / "ecs_fidelity.py")
fidelity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fidelity)

AWSLOGS = {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/x", "awslogs-region": "us-east-1",
                                               "awslogs-stream-prefix": "x"}}
ROLE = "arn:aws:iam::000000000000:role/exec"
ECR_IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/team/task:1.0"


def fargate(*containers, **task):
    return {"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256",
            "memory": "512", "containerDefinitions": list(containers) or [{"name": "app", "image": "x"}], **task}


def ec2(*containers, **task):
    return {"family": "e", "requiresCompatibilities": ["EC2"], "containerDefinitions": list(containers), **task}


def messages(td, ecr=lambda image: image == ECR_IMAGE):
    return [message for _, message in register_refusals(td, ecr)]


def test_a_complete_definition_is_accepted():
    assert register_refusals(fargate({"name": "app", "image": ECR_IMAGE, "logConfiguration": AWSLOGS},
                                     executionRoleArn=ROLE)) == []
    assert register_refusals(ec2({"name": "app", "image": "x", "memoryReservation": 64})) == []
    assert register_refusals(ec2({"name": "app", "image": "x"}, memory="512")) == []  # the task's memory is enough


@pytest.mark.parametrize("td, message", [
    (fargate(containerDefinitions=[]), "Container list cannot be empty."),
    (fargate({"name": "", "image": "x"}), "Container.name should not be null or empty."),
    (fargate({"name": "app"}), "Container.image should not be null or empty."),
    (ec2({"name": "app", "image": "x"}),
     "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."),
    (fargate({"name": "app", "image": "x", "secrets": [{"name": "T", "valueFrom": "arn:aws:ssm:::parameter/t"}]}),
     "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."),
    (fargate({"name": "app", "image": "x", "logConfiguration": AWSLOGS}),
     "Fargate requires task definition to have execution role ARN to support log driver awslogs."),
    (fargate({"name": "app", "image": ECR_IMAGE}),
     "Fargate requires task definition to have execution role ARN to support ECR images."),
    (fargate({"name": "app", "image": "x", "logConfiguration": {"logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/x"}}}, executionRoleArn=ROLE),
     "Log driver awslogs requires options: awslogs-region, awslogs-stream-prefix"),
    (fargate({"name": "app", "image": "x", "logConfiguration": {"logDriver": "awslogs", "options": {
        **AWSLOGS["options"], "awslogs-group": ""}}}, executionRoleArn=ROLE),
     "Log driver awslogs option 'awslogs-group' should not be null or empty."),
    (fargate({"name": "app", "image": "x", "logConfiguration": {"logDriver": "awslogs", "options": {
        **AWSLOGS["options"], "awslogs-create-group": "false"}}}, executionRoleArn=ROLE),
     "Log driver awslogs option 'awslogs-create-group' should only be set to 'true', else omit option."),
    (fargate({"name": "app", "image": "x", "logConfiguration": {"logDriver": "awslogs", "options": {
        **AWSLOGS["options"], "log_key": "x"}}}, executionRoleArn=ROLE),
     "Log driver awslogs disallows options: log_key"),
    (fargate({"name": "app", "image": "x", "logConfiguration": {"logDriver": "json-file"}}),
     "Fargate does not support log driver 'json-file'; use one of awslogs, splunk, awsfirelens."),
    (fargate({"name": "app", "image": "x", "essential": False}),
     "All tasks must have at least one essential container."),
    (fargate({"name": "app", "image": "x", "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]}),
     "Cannot depend on container + 'init' because it does not exist"),
    (fargate({"name": "app", "image": "x", "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
             {"name": "init", "image": "x"}),
     "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"),
])
def test_what_register_task_definition_refuses(td, message):
    assert messages(td) == [message]


def test_the_execution_role_is_asked_for_once():
    td = fargate({"name": "app", "image": ECR_IMAGE, "logConfiguration": AWSLOGS},
                 {"name": "side", "image": ECR_IMAGE, "logConfiguration": AWSLOGS})
    assert messages(td) == ["Fargate requires task definition to have execution role ARN to support ECR images."]


def test_a_dependency_that_does_not_stop_the_task_may_wait_for_an_essential_container():
    td = fargate({"name": "app", "image": "x", "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]},
                 {"name": "db", "image": "x"})
    assert messages(td) == []


def test_definitions_of_the_wrong_shape_are_looked_into_without_a_traceback():
    td = {"requiresCompatibilities": ["FARGATE"], "containerDefinitions": [
        "app", {"name": ["x"], "image": 3, "dependsOn": [{"containerName": ["a"], "condition": ["SUCCESS"]}],
                "logConfiguration": {"logDriver": "awslogs", "options": ["x"]}, "secrets": "x"}]}
    assert "Log driver awslogs requires options: awslogs-region, awslogs-group, awslogs-stream-prefix" in messages(td)


@pytest.mark.parametrize("td, request_, launch_type, message", [
    (ec2({"name": "app", "image": "x", "memory": 64}), {}, "FARGATE",
     "Task definition does not support launch_type FARGATE."),
    (fargate(), {}, "FARGATE", "Network Configuration must be provided when networkMode 'awsvpc' is specified."),
    (ec2({"name": "app", "image": "x", "memory": 64}, networkMode="bridge"),
     {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}, "EC2",
     "Network Configuration is not valid for the given networkMode of this task definition."),
    (fargate(), {"networkConfiguration": {"awsvpcConfiguration": {"subnets": []}}}, "FARGATE",
     "subnets can not be empty."),
])
def test_what_run_task_refuses(td, request_, launch_type, message):
    assert run_task_refusals(td, request_, launch_type) == [message]


def test_run_task_with_subnets_is_accepted():
    network = {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}
    assert run_task_refusals(fargate(), network, "FARGATE") == []
    assert run_task_refusals(ec2({"name": "a", "image": "x", "memory": 64}, networkMode="bridge"), {}, "EC2") == []


@pytest.mark.parametrize("path", [ROOT / "sandbox.yaml", *sorted(ROOT.glob("examples/*/sandbox.yaml"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_shipped_definitions_pass_the_rules(path):
    config = load_config(path)
    for td in config.aws["task_definitions"]:
        assert register_refusals(config.expand(td, "localhost:4566"), fidelity.is_ecr_image) == [], td["family"]


def test_sandbox_yaml_reports_ecs_refusals_at_their_field():
    raw = yaml.safe_load((ROOT / "sandbox.yaml").read_text())
    td = copy.deepcopy(raw["aws"]["task_definitions"][0])
    td["containerDefinitions"][0]["secrets"] = [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:"
                                                                              "parameter/token"}]
    del td["executionRoleArn"]
    raw["aws"]["task_definitions"][0] = td
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, ROOT / "sandbox.yaml")
    assert "sandbox.yaml: aws.task_definitions[0].containerDefinitions[0].secrets: When you are specifying " \
           "container secrets, you must also specify a value for 'executionRoleArn'. (RegisterTaskDefinition " \
           "refuses it)" in exc.value.problems
