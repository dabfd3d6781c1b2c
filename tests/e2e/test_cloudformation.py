"""CloudFormation in the emulator: a template's ECS task definition is registered as ECS registers
one (its refusals, its fields in ECS's shape), and a failed stack is told by resource, type and reason
(sandbox/seeding/stacks.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
import yaml

from sandbox.host.settings import ROOT
from sandbox.seeding import stacks
from sandbox.testing.commands import sandbox_command

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


def test_a_resource_type_the_emulator_cannot_create_is_named_and_nothing_is_deployed(stack):
    cfn, name = stack
    template = json.dumps({"Resources": {
        "Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": name}},
        "Queue": {"Type": "AWS::Batch::JobQueue", "Properties": {"Priority": 1, "ComputeEnvironmentOrder": []}}}})
    with pytest.raises(stacks.StackError) as failed:
        stacks.deploy(cfn, name, template)
    assert [(f.logical_id, f.type) for f in failed.value.failed] == [("Queue", "AWS::Batch::JobQueue")]
    assert "Unrecognized resource types: [AWS::Batch::JobQueue]" in str(failed.value)
    assert stacks.describe(cfn, name) is None


@pytest.mark.replaces_sandbox
def test_make_up_stops_at_a_stack_that_fails_and_names_what_failed(sandbox, team_project, aws_session):
    """examples/genomics' template with a task definition ECS refuses: `make up` fails, naming the
    resource, its type and ECS's reason, and CloudFormation leaves none of the stack's objects."""
    template = team_project / "infra" / "genomics.cfn.yaml"
    template.write_text(template.read_text().replace("      ExecutionRoleArn: !GetAtt ExecutionRole.Arn\n", ""))
    env = {"SANDBOX_PROJECT": str(team_project), "AIRFLOW_VERSION": ""}
    try:
        res = subprocess.run([sys.executable, "-m", "sandbox", "up"], cwd=ROOT, env={**os.environ, **env},
                             capture_output=True, text=True, timeout=1800)
        out = res.stdout + res.stderr
        assert res.returncode != 0, out[-3000:]
        assert "stack genomics ended ROLLBACK_COMPLETE; what failed:" in out, out[-3000:]
        assert "QcTaskDefinition (AWS::ECS::TaskDefinition): Resource handler returned message: \"Invalid request " \
               "provided: Create TaskDefinition: Fargate requires task definition to have execution role ARN to " \
               "support ECR images." in out, out[-3000:]
        # The roles the stack created before the definition failed were rolled back with it.
        assert "genomics-airflow" not in {r["RoleName"] for r in aws_session.client("iam").list_roles()["Roles"]}
        # Nor did the previous project's reseeder seed its objects into this project's emulator.
        assert "sandbox-data" not in {b["Name"] for b in aws_session.client("s3").list_buckets()["Buckets"]}
    finally:
        sandbox_command("up", {"SANDBOX_PROJECT": os.environ.get("SANDBOX_PROJECT", ""),
                               "AIRFLOW_VERSION": os.environ.get("AIRFLOW_VERSION", "")})


def exported_project(project) -> None:
    """This checkout's project with its aws: objects replaced by the stack of its own export (`make
    export`'s .build/export/sandbox.stack.yaml); only the buckets' seed data stays. The DAGs, the task
    image's build inputs and the template are copied in: the bootstrap sees the project's folder only."""
    shutil.copytree(ROOT / "dags", project / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "images" / "task", project / "images" / "task")
    (project / ".build").mkdir()
    shutil.copy(ROOT / ".build" / "ca-bundle.crt", project / ".build" / "ca-bundle.crt")
    (project / "infra").mkdir()
    shutil.copy(ROOT / ".build" / "export" / "sandbox.cfn.yaml", project / "infra" / "sandbox.cfn.yaml")
    raw = yaml.safe_load((ROOT / "sandbox.yaml").read_text())
    exported = yaml.safe_load((ROOT / ".build" / "export" / "sandbox.stack.yaml").read_text())["stacks"]
    aws = raw["aws"]
    raw["aws"] = {"region": aws["region"], "airflow_role": aws["airflow_role"],
                  "stacks": [{**stack, "template": "infra/sandbox.cfn.yaml"} for stack in exported],
                  "s3_buckets": [{k: v for k, v in b.items() if k in ("name", "objects", "generated")}
                                 for b in aws["s3_buckets"]]}
    (project / "sandbox.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    for path in [project.parent, project, *project.rglob("*")]:  # Airflow's user must read the mount
        path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.replaces_sandbox
def test_the_export_deployed_into_a_fresh_emulator_runs_the_dags_green(sandbox, tmp_path, airflow_api, aws_session):
    """`make export`, then a project whose AWS objects are only that template (its emulator starts
    empty: a project at another path has its own): poc_ecs_operator, upload_file_to_s3 and import_vcf
    on both backends run green with IAM enforced."""
    sandbox_command("export", {"SANDBOX_PROJECT": ""})
    project = tmp_path / "exported"
    exported_project(project)
    try:
        sandbox_command("up", {"SANDBOX_PROJECT": str(project), "AIRFLOW_VERSION": ""})
        cfn, iam = aws_session.client("cloudformation"), aws_session.client("iam")
        assert stacks.describe(cfn, "sandbox-export")["StackStatus"] == "CREATE_COMPLETE"
        assert sorted(iam.list_role_policies(RoleName="airflow-runner")["PolicyNames"]) == ["data", "run-ecs-tasks"]

        run = airflow_api.run_dag("poc_ecs_operator", {"count_to": 3}).assert_success()
        assert str(run.xcom("count")) == "0,1,2,3"
        run = airflow_api.run_dag("upload_file_to_s3", {"message": "from the exported template"}).assert_success()
        assert run.xcom("verify")["bucket"] == "sandbox-data"
        for backend in ("ecs", "k8s"):
            run = airflow_api.run_dag("import_vcf", {"backend": backend, "max_cases": 4}, timeout=600)
            run.assert_success()
            assert run.xcom("aggregate")["cases"] == 4
    finally:
        sandbox_command("up", {"SANDBOX_PROJECT": os.environ.get("SANDBOX_PROJECT", ""),
                               "AIRFLOW_VERSION": os.environ.get("AIRFLOW_VERSION", "")})
