"""`make export`: sandbox.yaml's AWS objects as a CloudFormation template that cfn-lint passes, with
the account, region, partition and registry as pseudo parameters and the template's own objects
referenced; a task definition comes back from CloudFormation's shape as the request it was."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sandbox.host.export import lint
from sandbox.seeding.config import load_config
from sandbox.seeding.export import Export, export_config, logical_id, to_yaml
from sandbox.seeding.objects.task_definitions import _register_task_definition_shape, cfn_properties

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("cfn_fidelity", ROOT / "localstack" / "cfn_fidelity.py")
cfn_fidelity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cfn_fidelity)


@pytest.fixture(scope="module")
def exported():
    return export_config(load_config(ROOT / "sandbox.yaml"))


def test_the_export_of_the_sandboxs_project_lints_clean(exported, tmp_path):
    path = tmp_path / "sandbox.cfn.yaml"
    path.write_text(to_yaml(exported.template("test")))
    errors, warnings = lint(path, "us-east-1")
    assert errors == [] and warnings == []
    config = exported.config
    assert len(exported.resources) == sum(len(config.aws[s]) for s in config.aws if s != "stacks")


def test_references_and_pseudo_parameters(exported):
    resources = exported.resources
    td = resources["CountNumbersTaskDefinition"]["Properties"]
    assert td["ExecutionRoleArn"] == {"Fn::GetAtt": ["EcsTaskExecutionRole", "Arn"]}
    [container] = td["ContainerDefinitions"]
    assert container["Image"] == {"Fn::Sub": "${SandboxTaskRepository.RepositoryUri}:1.0"}
    assert container["Essential"] is True
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "EcsSandboxLogGroup"}
    assert container["LogConfiguration"]["Options"]["awslogs-region"] == {"Ref": "AWS::Region"}
    runner = resources["AirflowRunnerRole"]["Properties"]
    statements = runner["Policies"][0]["PolicyDocument"]["Statement"]
    assert {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/count-numbers:*"} \
        in statements[0]["Resource"]
    # A role its pods assume through their service-account token trusts the cluster's OIDC provider.
    pod_role = resources["PodTaskDataRole"]["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"]
    assert '"${OidcProvider}:sub": [\n' in pod_role and "system:serviceaccount:airflow-tasks:" in pod_role
    assert "OidcProvider" in exported.parameters


def test_a_literal_dollar_brace_is_kept_literal():
    export = Export(load_config(ROOT / "sandbox.yaml"))
    assert export.sub("arn:aws:s3:::bucket/${aws:username}/*") == \
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::bucket/${!aws:username}/*"}
    assert export.sub("home/${aws:username}") == "home/${aws:username}"
    assert export.sub("{account_id}") == {"Fn::Sub": "${AWS::AccountId}"}


def test_logical_ids_are_names_in_camel_case():
    assert logical_id("ecs-task-execution", "Role") == "EcsTaskExecutionRole"
    assert logical_id("/ecs/sandbox", "LogGroup") == "EcsSandboxLogGroup"
    assert logical_id("3d-data", "Bucket") == "R3dDataBucket"


def test_a_task_definition_comes_back_as_the_request_it_was():
    request = {"family": "etl", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256",
               "memory": "512", "volumes": [{"name": "scratch", "efsVolumeConfiguration": {
                   "fileSystemId": "fs-1", "authorizationConfig": {"iam": "ENABLED"}}}],
               "containerDefinitions": [{
                   "name": "app", "image": "team/etl:1.0", "essential": True, "memory": 256,
                   "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
                   "healthCheck": {"command": ["CMD", "true"], "interval": 10},
                   "dockerLabels": {"Team": "data"},
                   "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/etl"}}}]}
    export = Export(load_config(ROOT / "sandbox.yaml"))
    properties = cfn_properties(request, _register_task_definition_shape(), export)
    assert properties["Volumes"][0]["EFSVolumeConfiguration"] == {"FilesystemId": "fs-1",
                                                                  "AuthorizationConfig": {"IAM": "ENABLED"}}
    assert cfn_fidelity.register_request(properties) == request
