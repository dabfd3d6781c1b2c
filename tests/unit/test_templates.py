"""CloudFormation templates in sandbox.yaml (aws.stacks): read with CloudFormation's short tags, and
refused before anything is deployed where the emulator would deploy something other than written."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sandbox.seeding.checker import Checker
from sandbox.seeding.config import ConfigError, load_config, validate_config
from sandbox.seeding.templates import check_template, read_template

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
GENOMICS = ROOT / "examples" / "genomics"


def problems_of(template: dict, given: dict | None = None) -> list[str]:
    c = Checker(Path("sandbox.yaml"))
    check_template(c, template, "aws.stacks[0].template", given or {})
    return [p.split("aws.stacks[0].template: ", 1)[1] for p in c.problems]


def bucket(**properties) -> dict:
    return {"Type": "AWS::S3::Bucket", "Properties": properties}


def test_short_tags_read_as_their_long_forms(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("AWSTemplateFormatVersion: 2010-09-09\nResources:\n  B:\n    Type: AWS::S3::Bucket\n"
                    "    Properties:\n      BucketName: !Sub '${AWS::StackName}-data'\n"
                    "Outputs:\n  Arn: {Value: !GetAtt B.Arn}\n  Name: {Value: !Ref B}\n"
                    "  Joined: {Value: !Join [',', [a, !Select [0, !GetAZs '']]]}\n")
    template = read_template(path)
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Resources"]["B"]["Properties"]["BucketName"] == {"Fn::Sub": "${AWS::StackName}-data"}
    assert template["Outputs"]["Arn"]["Value"] == {"Fn::GetAtt": ["B", "Arn"]}
    assert template["Outputs"]["Joined"]["Value"] == {"Fn::Join": [",", ["a", {"Fn::Select": [0, {"Fn::GetAZs": ""}]}]]}
    assert problems_of(template) == []


def test_the_example_template_is_read_and_its_names_count_for_sandbox_yaml():
    config = load_config(GENOMICS / "sandbox.yaml")
    assert config.aws["stacks"][0]["template"] == "infra/genomics.cfn.yaml"
    assert config.airflow_role == "genomics-airflow"  # a role of the template, not of aws.iam_roles
    assert problems_of(read_template(GENOMICS / "infra" / "genomics.cfn.yaml"), {"OidcProvider": "x"}) == []


@pytest.mark.parametrize("change, problem", [
    (lambda t: t["Resources"]["B"]["Properties"].update(Tags={"Fn::Foo": "x"}),
     "Resources.B.Properties.Tags: Fn::Foo is not an intrinsic function the emulator evaluates"),
    (lambda t: t["Resources"]["B"]["Properties"].update(BucketName={"Ref": "Nothing"}),
     "Resources.B.Properties.BucketName: Unresolved resource dependencies [Nothing] in the Resources block"),
    (lambda t: t["Resources"]["B"].update(DependsOn="Nothing"),
     "Resources.B.DependsOn: Unresolved resource dependencies [Nothing]"),
    (lambda t: t["Resources"]["B"]["Properties"].update(BucketName={"Fn::Sub": "${Stage}-data"}),
     "Fn::Sub uses ${Stage}, which is no parameter, resource or pseudo parameter"),
    (lambda t: t["Resources"]["B"]["Properties"].update(BucketName={"Fn::GetAtt": ["Other", "Arn"]}),
     "Fn::GetAtt names 'Other', which is not a resource of the template"),
    (lambda t: t.update(Conditions={"East": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}}),
     "the emulator compares the name 'AWS::Region', not its value, in a condition"),
    (lambda t: t.update(Transform="AWS::Serverless-2016-10-31"),
     "Transform: 'AWS::Serverless-2016-10-31' is not run by the emulator"),
    (lambda t: t.update(Resource={}), "Resource: not a section of a CloudFormation template"),
    (lambda t: t.update(Resources={}), "Resources: a template needs at least one resource"),
])
def test_what_the_emulator_would_deploy_otherwise_is_refused(change, problem):
    template = {"Resources": {"B": bucket(BucketName="data")}}
    change(template)
    assert [p for p in problems_of(template) if problem in p], problems_of(template)


def test_sub_keeps_literals_and_its_own_variables():
    template = {"Resources": {"B": bucket(BucketName={"Fn::Sub": ["${Prefix}-${!Literal}-${AWS::Region}",
                                                                 {"Prefix": "team"}]})}}
    assert problems_of(template) == []


def test_parameters_given_and_declared_must_match():
    template = {"Parameters": {"Stage": {"Type": "String"}, "Size": {"Type": "Number", "Default": 1}},
                "Resources": {"B": bucket(BucketName={"Ref": "Stage"})}}
    c = Checker(Path("sandbox.yaml"))
    check_template(c, template, "aws.stacks[0].template", {"Stag": "x"})
    assert c.problems == [
        "sandbox.yaml: aws.stacks[0].template.parameters.Stag: the template declares no parameter 'Stag' "
        "(it has: Size, Stage)",
        "sandbox.yaml: aws.stacks[0].template.parameters: parameter 'Stage' has no Default in the template: give "
        "its value here"]


@pytest.fixture
def genomics():
    return yaml.safe_load((GENOMICS / "sandbox.yaml").read_text())


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, GENOMICS / "sandbox.yaml")
    return exc.value.problems


def test_a_stack_entry_is_checked_like_any_other(genomics):
    stack = genomics["aws"]["stacks"][0]
    broken = copy.deepcopy(genomics)
    broken["aws"]["stacks"][0] = {**stack, "name": "1-bad", "images": {"Repo": "genomics/qc:1.0",
                                                                       "QcRepository": "genomics/other:1.0"}}
    found = problems(broken)
    assert "sandbox.yaml: aws.stacks[0].name: '1-bad' is not valid: a letter, then letters, digits and -, up to " \
           "128" in found
    assert "sandbox.yaml: aws.stacks[0].images.Repo: the template has no AWS::ECR::Repository 'Repo' (it has: " \
           "QcRepository)" in found
    assert any(p.startswith("sandbox.yaml: aws.stacks[0].images.QcRepository: 'genomics/other:1.0' is not in "
                            "`images`") for p in found)
    missing = copy.deepcopy(genomics)
    missing["aws"]["stacks"][0]["template"] = "infra/nothing.yaml"
    assert "sandbox.yaml: aws.stacks[0].template: 'infra/nothing.yaml': no such file next to sandbox.yaml" in \
        problems(missing)


def test_without_the_stack_its_roles_are_unknown(genomics):
    del genomics["aws"]["stacks"]
    found = problems(genomics)
    assert any(p.startswith("sandbox.yaml: aws.airflow_role: role 'genomics-airflow' is not in aws.iam_roles")
               for p in found)
    assert any(p.startswith("sandbox.yaml: kubernetes.aws_role.role: role 'genomics-qc-task' is not in "
                            "aws.iam_roles or a stack's template") for p in found)


def test_a_templates_task_definition_logging_to_a_group_nobody_creates_is_refused(genomics, tmp_path):
    template = (GENOMICS / "infra" / "genomics.cfn.yaml").read_text().replace(
        "awslogs-group: !Ref LogGroup", "awslogs-group: /ecs/nowhere")
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "genomics.cfn.yaml").write_text(template)
    (tmp_path / "images" / "qc").mkdir(parents=True)
    (tmp_path / "images" / "qc" / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ConfigError) as exc:
        validate_config(genomics, tmp_path / "sandbox.yaml")
    assert exc.value.problems == [
        "sandbox.yaml: aws.stacks[0].template (infra/genomics.cfn.yaml): Resources.QcTaskDefinition.Properties."
        "ContainerDefinitions[0].LogConfiguration.Options.awslogs-group: '/ecs/nowhere' is not seeded; add it to "
        "aws.log_groups or the template (ECS does not create it unless awslogs-create-group is set and the "
        "execution role may)"]
    genomics["aws"]["log_groups"] = [{"name": "/ecs/nowhere"}]
    validate_config(genomics, tmp_path / "sandbox.yaml")
