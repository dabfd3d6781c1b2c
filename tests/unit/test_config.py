"""Validation of sandbox.yaml: the shipped file is valid, and each kind of mistake is reported with
the file, the field and what to do, before anything is seeded."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from sandbox.core.ecs_rules import parse_cpu, parse_memory
from sandbox.seeding.config import ConfigError, load_config, validate_config

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def raw():
    return yaml.safe_load((ROOT / "sandbox.yaml").read_text())


def problems(raw, path=ROOT / "sandbox.yaml") -> list[str]:
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, path)
    return exc.value.problems


def count_numbers(raw) -> dict:
    return next(td for td in raw["aws"]["task_definitions"] if td["family"] == "count-numbers")


def test_shipped_config_is_valid():
    config = load_config(ROOT / "sandbox.yaml")
    assert {td["family"] for td in config.aws["task_definitions"]} >= {"count-numbers", "upload-file-to-s3"}
    assert config.variables["ecs_cluster"] == "sandbox"
    aws_default = next(c for c in config.connections if c["conn_id"] == "aws_default")
    assert aws_default["extra"]["endpoint_url"] == "http://localstack:4566"


def test_placeholders_expand(raw):
    config = validate_config(raw, ROOT / "sandbox.yaml")
    td = config.expand(count_numbers(raw), registry="localhost:4566")
    assert td["containerDefinitions"][0]["image"] == "localhost:4566/sandbox-task:1.0"
    assert td["taskRoleArn"] == "arn:aws:iam::000000000000:role/ecs-task-data"


def test_invalid_fargate_cpu_memory_pair_is_rejected(raw):
    count_numbers(raw)["memory"] = "4096"  # 256 cpu allows 512, 1024, 2048 only
    [problem] = problems(raw)
    assert problem.startswith("sandbox.yaml: aws.task_definitions[0].memory:")
    assert "not a valid Fargate combination" in problem and "512, 1024, 2048" in problem


def test_unknown_fargate_cpu_is_rejected(raw):
    count_numbers(raw)["cpu"] = "300"
    assert any("aws.task_definitions[0].cpu" in p and "not a Fargate cpu" in p for p in problems(raw))


def test_role_arn_that_is_not_seeded_is_rejected(raw):
    count_numbers(raw)["taskRoleArn"] = "arn:aws:iam::{account_id}:role/no-such-role"
    [problem] = problems(raw)
    assert "aws.task_definitions[0].taskRoleArn" in problem
    assert "'no-such-role' does not exist" in problem and "aws.iam_roles" in problem


def test_awslogs_group_that_is_not_seeded_is_rejected(raw):
    count_numbers(raw)["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"] = "/ecs/other"
    [problem] = problems(raw)
    assert "containerDefinitions[0].logConfiguration.options.awslogs-group" in problem
    assert "'/ecs/other' is not seeded" in problem


def test_image_from_a_repository_that_is_not_seeded_is_rejected(raw):
    count_numbers(raw)["containerDefinitions"][0]["image"] = "{registry}/unknown-repo:latest"
    [problem] = problems(raw)
    assert "'unknown-repo' is not in aws.ecr_repositories" in problem


def test_every_problem_is_reported_at_once(raw):
    broken = copy.deepcopy(raw)
    broken["aws"]["region"] = "mars-1"
    broken["aws"]["s3_buckets"][0]["name"] = "Bad_Bucket"
    broken["airflow"]["connections"][0]["extra"] = "endpoint_url=http://x"
    broken["aws"]["unexpected"] = 1
    found = problems(broken)
    assert any(p.startswith("sandbox.yaml: aws.region:") for p in found)
    assert any("aws.s3_buckets[0].name" in p for p in found)
    assert any("airflow.connections[0].extra" in p and "mapping" in p for p in found)
    assert any("aws.unexpected: unknown field" in p for p in found)
    assert len(found) >= 4


def test_duplicates_and_missing_fields(raw):
    raw["aws"]["iam_roles"].append(copy.deepcopy(raw["aws"]["iam_roles"][0]))
    del raw["airflow"]["connections"][0]["conn_type"]
    found = problems(raw)
    assert any("duplicate name 'airflow-runner'" in p for p in found)
    assert any("airflow.connections[0].conn_type: required field is missing" in p for p in found)


def test_unknown_placeholder_is_rejected(raw):
    count_numbers(raw)["containerDefinitions"][0]["image"] = "{regsitry}/sandbox-task:1.0"
    assert any("unknown placeholder {regsitry}" in p for p in problems(raw))


def test_seed_object_file_must_exist(raw, tmp_path):
    raw["aws"]["s3_buckets"][0]["objects"] = [{"key": "a.txt", "file": "missing.txt"}]
    found = problems(raw, tmp_path / "sandbox.yaml")
    assert any("objects[0].file" in p and "'missing.txt' not found" in p for p in found)


def test_depends_on_must_name_a_container_and_condition(raw):
    count_numbers(raw)["containerDefinitions"][0]["dependsOn"] = [{"containerName": "ghost", "condition": "START"}]
    assert any("dependsOn[0].containerName" in p and "'ghost'" in p for p in problems(raw))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "sandbox.yaml"
    bad.write_text("aws: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_error_message_names_the_file_and_says_nothing_changed(raw):
    raw["aws"]["account_id"] = 123
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, ROOT / "sandbox.yaml")
    assert "sandbox.yaml" in str(exc.value) and "nothing was changed" in str(exc.value)
    assert "aws.account_id: expected 12 digits" in str(exc.value)


@pytest.mark.parametrize("value, units", [("256", 256), (512, 512), ("0.25 vCPU", 256), ("2 vCPU", 2048), ("x", None)])
def test_parse_cpu(value, units):
    assert parse_cpu(value) == units


@pytest.mark.parametrize("value, mib", [("512", 512), ("1 GB", 1024), ("0.5 GB", 512), ("lots", None)])
def test_parse_memory(value, mib):
    assert parse_memory(value) == mib


def test_variables_that_are_not_strings_are_stored_as_json(raw):
    raw["airflow"]["variables"]["ecs_subnets"] = ["subnet-00000001"]
    config = validate_config(raw, ROOT / "sandbox.yaml")
    assert config.variables["ecs_subnets"] == '["subnet-00000001"]'


def test_the_airflow_role_must_be_a_declared_role(raw):
    raw["aws"]["airflow_role"] = "no-such-role"
    assert any("aws.airflow_role" in p and "'no-such-role' is not in aws.iam_roles" in p for p in problems(raw))


def test_images_are_declared_before_ecr_and_the_cluster_use_them(raw):
    raw["aws"]["ecr_repositories"][0]["image"] = "sandbox/undeclared:1.0"
    raw["kubernetes"]["images"] = ["sandbox/undeclared:1.0"]
    raw["images"].append({"tag": "team/app:latest", "context": "images/task"})
    raw["images"].append({"tag": "team/other:1.0", "context": "no/such/dir"})
    found = problems(raw)
    assert any(p.startswith("sandbox.yaml: aws.ecr_repositories[0].image: 'sandbox/undeclared:1.0' is not in `images`")
               for p in found)
    assert any("kubernetes.images[0]" in p for p in found)
    assert any("images[1].tag" in p and "other than latest" in p for p in found)
    assert any("images[2].context" in p and "no such directory" in p for p in found)


def test_the_cluster_gets_every_declared_image_unless_it_lists_some(raw):
    del raw["kubernetes"]["images"]
    config = validate_config(raw, ROOT / "sandbox.yaml")
    assert config.kubernetes["images"] == [i["tag"] for i in config.images] == ["sandbox/task:1.0"]
    assert config.images[0]["dockerfile"] == ROOT / "images" / "task" / "Dockerfile"


def test_fargate_definitions_are_refused_what_fargate_refuses(raw):
    td = count_numbers(raw)
    td["containerDefinitions"][0]["privileged"] = True
    td["pidMode"] = "host"
    td["volumes"] = [{"name": "root", "host": {"sourcePath": "/"}}]
    found = problems(raw)
    for field_path in ("containerDefinitions[0].privileged", "pidMode", "volumes[0].host.sourcePath"):
        assert any(f"aws.task_definitions[0].{field_path}: " in p and "Fargate" in p for p in found), field_path


def test_the_pods_role_must_trust_their_service_account(raw):
    pod_role = next(r for r in raw["aws"]["iam_roles"] if r["name"] == "pod-task-data")
    pod_role["trusted_service_accounts"] = ["other-namespace/default"]
    assert any("kubernetes.aws_role.role" in p and "add 'airflow-tasks/default' to its trusted_service_accounts" in p
               for p in problems(raw))


def test_the_pods_role_secret_must_exist_and_hold_no_static_keys(raw):
    raw["kubernetes"]["secrets"]["aws-task-env"]["AWS_ACCESS_KEY_ID"] = "test"
    assert any("kubernetes.secrets.aws-task-env.AWS_ACCESS_KEY_ID" in p and "remove it" in p for p in problems(raw))
    raw["kubernetes"]["aws_role"]["secret"] = "nope"
    assert any("kubernetes.aws_role.secret" in p and "'nope' is not in kubernetes.secrets" in p
               for p in problems(raw))


def test_trusted_service_accounts_are_namespace_slash_name(raw):
    pod_role = next(r for r in raw["aws"]["iam_roles"] if r["name"] == "pod-task-data")
    pod_role["trusted_service_accounts"] = ["default"]
    assert any("trusted_service_accounts[0]" in p and "namespace/name" in p for p in problems(raw))


def test_account_id_and_xcom_sidecar_image_have_defaults(raw):
    del raw["aws"]["account_id"]
    raw["kubernetes"].pop("xcom_sidecar_image", None)
    config = validate_config(raw, ROOT / "sandbox.yaml")
    assert config.account_id == "000000000000"  # the emulator's account
    assert config.role_arn("ecs-task-data") == "arn:aws:iam::000000000000:role/ecs-task-data"
    assert config.kubernetes["xcom_sidecar_image"] == "sandbox/task:1.0"


def test_the_xcom_sidecar_defaults_to_the_first_image_the_cluster_loads(raw):
    raw["images"].insert(0, {"tag": "team/tools:1.0", "context": ".", "dockerfile": "images/task/Dockerfile"})
    raw["kubernetes"].pop("xcom_sidecar_image", None)
    assert raw["kubernetes"]["images"] == ["sandbox/task:1.0"]  # team/tools is built, not loaded
    assert validate_config(raw, ROOT / "sandbox.yaml").kubernetes["xcom_sidecar_image"] == "sandbox/task:1.0"
    del raw["kubernetes"]["images"]  # the cluster loads every declared image, team/tools first
    assert validate_config(raw, ROOT / "sandbox.yaml").kubernetes["xcom_sidecar_image"] == "team/tools:1.0"


def test_the_example_project_defaults_the_xcom_sidecar_to_its_own_image():
    path = ROOT / "examples" / "genomics" / "sandbox.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["kubernetes"].pop("xcom_sidecar_image", None)
    assert validate_config(raw, path).kubernetes["xcom_sidecar_image"] == "genomics/qc:1.0"


def test_without_a_loaded_image_the_xcom_sidecar_image_must_be_given(raw):
    raw["kubernetes"].pop("xcom_sidecar_image", None)
    raw["kubernetes"]["images"] = []
    [problem] = problems(raw)
    assert problem.startswith("sandbox.yaml: kubernetes.xcom_sidecar_image: not set")
    assert "/bin/sh and pgrep" in problem


def test_a_wrong_account_id_says_what_to_give(raw):
    raw["aws"]["account_id"] = 0
    [problem] = problems(raw)
    assert problem == ("sandbox.yaml: aws.account_id: expected 12 digits as a quoted string, found number 0; "
                       "leave it out for the emulator's account (000000000000)")


@pytest.mark.parametrize("field", [
    "aws.region", "kubernetes.namespace", "kubernetes.service_account", "kubernetes.connection_id",
    "kubernetes.rules", "kubernetes.aws_role.secret", "airflow.connections[0].conn_id",
    "airflow.connections[0].conn_type", "images[0].context", "aws.s3_buckets[0].name", "aws.ecs_clusters[0].name",
    "aws.ecr_repositories[0].image",
])
def test_a_missing_required_field_is_one_problem_naming_its_path(raw, field):
    *parents, key = [int(step) if step.isdigit() else step for step in re.findall(r"[^.\[\]]+", field)]
    holder = raw
    for step in parents:
        holder = holder[step]
    del holder[key]
    assert problems(raw) == [f"sandbox.yaml: {field}: required field is missing"]


def test_a_missing_aws_section_is_one_problem_not_one_per_field_in_it(raw):
    del raw["aws"]
    found = problems(raw)
    assert "sandbox.yaml: aws: required field is missing" in found
    assert not [p for p in found if p.startswith("sandbox.yaml: aws.")]


def test_a_missing_execution_role_is_reported_once_per_task_definition(raw):
    td = count_numbers(raw)
    del td["executionRoleArn"]
    td["containerDefinitions"].append({**copy.deepcopy(td["containerDefinitions"][0]), "name": "second"})
    where = "sandbox.yaml: aws.task_definitions[0].executionRoleArn: "
    assert [p for p in problems(raw) if "executionRoleArn" in p] == [
        where + "Fargate requires task definition to have execution role ARN to support ECR images. "
                "(RegisterTaskDefinition refuses it); add an executionRoleArn whose role may call "
                "ecr:GetAuthorizationToken, ecr:BatchGetImage and ecr:GetDownloadUrlForLayer"]


def test_static_keys_in_an_aws_connection_are_refused_by_field(raw):
    raw["airflow"]["connections"][0].update(login="test", password="test")
    raw["airflow"]["connections"][0]["extra"]["aws_session_token"] = "x"
    raw["airflow"]["connections"].append({"conn_id": "pg", "conn_type": "postgres", "login": "etl"})
    found = [p for p in problems(raw) if "acts as aws.airflow_role" in p]
    assert [p.split(": ")[1] for p in found] == [
        "airflow.connections[0].login", "airflow.connections[0].password",
        "airflow.connections[0].extra.aws_session_token"]
