"""No seed file ends in a traceback: a sweep that breaks the shipped files one field at a time, and the
IAM policy rules that make a document AWS would refuse fail validation instead of a half-applied seed.

The sweep walks every node of each shipped file (mappings, lists, scalars) and, one mutation at a
time, puts a wrong value in its place, deletes it from its mapping, or adds an unknown key to a
mapping. Validation must then pass or raise ConfigError; anything else is a crash, and every crash
of a run is listed together with the field path and the value that caused it.
"""
from __future__ import annotations

import copy
import datetime
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from sandbox.seeding.airflow_settings import AirflowSettingsError, validate_airflow_settings
from sandbox.seeding.config import ConfigError, load_images, validate_config

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SEED_FILES = [ROOT / "sandbox.yaml", ROOT / "examples" / "genomics" / "sandbox.yaml"]
AIRFLOW_SETTINGS = ROOT / "examples" / "genomics" / "airflow_settings.yaml"

# Every node is replaced by each of these in turn: wrong types, edge numbers, blank, too long, and
# containers of every shape. Deterministic on purpose: a failure reproduces on every run.
WRONG_VALUES: tuple[Any, ...] = (None, -1, 0, 1.5, True, "", "x" * 300, "lots", [], [1], {}, {"a": 1},
                                 [[1, [2, {"b": None}]]])
UNKNOWN_KEYS: tuple[Any, ...] = ("unknown_field", 7)  # YAML allows a number as a mapping key


# --- the sweep ------------------------------------------------------------------------------------
def field_path(path: tuple) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) and not isinstance(step, bool) else f".{step}"
    return text.lstrip(".") or "(top level)"


def nodes(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from nodes(child, path + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from nodes(child, path + (i,))


def _replaced(doc: Any, path: tuple, change: Callable[[Any, Any], None]) -> Any:
    """A deep copy of `doc` with `change(parent, key)` applied at `path` (the root has no parent)."""
    mutated = copy.deepcopy(doc)
    holder = {"root": mutated}
    parent, key = holder, "root"
    for step in path:
        parent, key = parent[key], step
    change(parent, key)
    return holder["root"]


def mutations(doc: Any) -> Iterator[tuple[str, Any]]:
    """(what was done, mutated document) for every node and every mutation of it."""
    for path, node in nodes(doc):
        where = field_path(path)
        for wrong in WRONG_VALUES:
            if type(wrong) is type(node) and wrong == node:
                continue
            yield (f"{where} = {wrong!r}"[:160],
                   _replaced(doc, path, lambda parent, key, wrong=wrong: parent.__setitem__(key, copy.deepcopy(wrong))))
        if path and isinstance(_parent(doc, path), dict):
            yield f"del {where}", _replaced(doc, path, lambda parent, key: parent.__delitem__(key))
        if isinstance(node, dict):
            for extra in UNKNOWN_KEYS:
                if extra not in node:
                    yield (f"{where}[{extra!r}] added",
                           _replaced(doc, path, lambda parent, key, extra=extra: parent[key].__setitem__(extra, "x")))


def _parent(doc: Any, path: tuple) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


def sweep(doc: Any, validate: Callable[[Any], Any], allowed: type[Exception]) -> tuple[int, list[str]]:
    """Runs `validate` on every mutation of `doc`; returns how many ran and the crashes."""
    tried, crashes = 0, []
    for what, mutated in mutations(doc):
        tried += 1
        try:
            validate(mutated)
        except allowed:
            pass
        except Exception as exc:  # noqa: BLE001 - any other exception is the crash being looked for
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            crashes.append(f"{what}: {type(exc).__name__}: {exc} "
                           f"(at {Path(frame.filename).name}:{frame.lineno})")
    return tried, crashes


def with_every_optional_field(raw: dict) -> dict:
    """sandbox.yaml plus every optional field the shipped files leave out, so the sweep breaks those too."""
    raw = copy.deepcopy(raw)
    aws = raw["aws"]
    aws["iam_roles"][0]["policies"]["single-statement"] = {
        "Version": "2012-10-17", "Id": "single",
        "Statement": {"Sid": "ReadLogs", "Effect": "Deny", "NotAction": "logs:Delete*",
                      "NotResource": ["arn:aws:logs:us-east-1:{account_id}:log-group:/ecs/*"],
                      "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-east-1"]},
                                    "Bool": {"aws:SecureTransport": True}}}}
    aws["s3_buckets"][0]["objects"].append({"key": "seed/Dockerfile", "file": "images/task/Dockerfile",
                                            "content_type": "text/plain"})
    td = aws["task_definitions"][0]
    td["containerDefinitions"][0].update({"memory": 256, "environment": [{"name": "MODE", "value": "count"}],
                                          "portMappings": [{"containerPort": 8080, "protocol": "tcp"}]})
    td["containerDefinitions"].append({"name": "sidecar", "image": "{registry}/sandbox-task:1.0", "essential": False,
                                       "dependsOn": [{"containerName": "counter", "condition": "START"}]})
    raw["airflow"]["pools"] = [{"name": "ecs", "slots": 4, "description": "ECS tasks", "include_deferred": True}]
    raw["airflow"]["connections"][0].update({"host": "localstack", "port": 4566, "schema": "http"})
    raw["airflow"]["variables"]["ecs_retries"] = 3
    raw["kubernetes"]["rules"][0]["resourceNames"] = ["pod-a"]
    return raw


def seed_documents() -> list[tuple[str, Path, dict]]:
    shipped = [(str(p.relative_to(ROOT)), p, yaml.safe_load(p.read_text())) for p in SEED_FILES]
    full = ("sandbox.yaml with every optional field", SEED_FILES[0], with_every_optional_field(shipped[0][2]))
    return [*shipped, full]


@pytest.mark.parametrize("name, path, raw", seed_documents(), ids=[d[0] for d in seed_documents()])
def test_no_mutation_of_a_seed_file_ends_in_a_traceback(name, path, raw):
    validate_config(copy.deepcopy(raw), path)  # the unmutated document is valid
    tried, crashes = sweep(raw, lambda doc: validate_config(doc, path), ConfigError)
    assert tried > 1000, "the sweep should cover every node of the file"
    assert not crashes, f"{len(crashes)} of {tried} mutations of {name} crashed instead of a ConfigError:\n" + \
        "\n".join(crashes)


def test_no_mutation_of_airflow_settings_ends_in_a_traceback():
    raw = yaml.safe_load(AIRFLOW_SETTINGS.read_text())
    tried, crashes = sweep(raw, lambda doc: validate_airflow_settings(doc, AIRFLOW_SETTINGS), AirflowSettingsError)
    assert tried > 300
    assert not crashes, f"{len(crashes)} of {tried} mutations of {AIRFLOW_SETTINGS.name} crashed:\n" + \
        "\n".join(crashes)


def test_the_shipped_files_still_validate():
    for path in SEED_FILES:
        validate_config(yaml.safe_load(path.read_text()), path)
    assert [i["tag"] for i in load_images(ROOT / "images.yaml")]


# --- IAM policy documents, as IAM checks them ------------------------------------------------------
@pytest.fixture
def raw():
    return yaml.safe_load(SEED_FILES[0].read_text())


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, SEED_FILES[0])
    return exc.value.problems


def problems_at(raw, field: str) -> list[str]:
    """The problems reported at exactly `field` (the text after "sandbox.yaml: <field>: ")."""
    prefix = f"sandbox.yaml: {field}: "
    return [p[len(prefix):] for p in problems(raw) if p.startswith(prefix)]


POLICY = "aws.iam_roles[0].policies.run-ecs-tasks"


def policy(raw) -> dict:
    return raw["aws"]["iam_roles"][0]["policies"]["run-ecs-tasks"]


def statement(raw) -> dict:
    return policy(raw)["Statement"][0]


def test_a_single_statement_mapping_is_accepted_as_iam_does(raw):
    policy(raw)["Statement"] = statement(raw)
    validate_config(raw, SEED_FILES[0])


@pytest.mark.parametrize("value", [None, [], "Allow", 1])
def test_statement_must_be_a_non_empty_list_or_one_statement(raw, value):
    policy(raw)["Statement"] = value
    [problem] = problems_at(raw, f"{POLICY}.Statement")
    assert "non-empty list of statements" in problem


def test_a_statement_that_is_not_a_mapping_is_refused(raw):
    policy(raw)["Statement"] = ["s3:GetObject"]
    assert "expected a statement" in problems_at(raw, f"{POLICY}.Statement[0]")[0]


def test_a_policy_that_is_not_a_document_is_refused(raw):
    raw["aws"]["iam_roles"][0]["policies"]["run-ecs-tasks"] = ["ecs:RunTask"]
    assert "expected an IAM policy document" in problems_at(raw, POLICY)[0]


@pytest.mark.parametrize("version, hint", [("2008-10-17", "expected \"2012-10-17\""),
                                           (datetime.date(2012, 10, 17), "YAML reads it as a date: quote it")])
def test_version_must_be_2012_10_17(raw, version, hint):
    policy(raw)["Version"] = version
    [problem] = problems_at(raw, f"{POLICY}.Version")
    assert hint in problem


def test_version_and_statement_are_required(raw):
    raw["aws"]["iam_roles"][0]["policies"]["run-ecs-tasks"] = {"Id": "x"}
    assert problems_at(raw, f"{POLICY}.Version") == ["required field is missing"]
    assert problems_at(raw, f"{POLICY}.Statement") == ["required field is missing"]


@pytest.mark.parametrize("effect", [-1, "allow", "Permit", None, ["Allow"]])
def test_effect_must_be_allow_or_deny(raw, effect):
    statement(raw)["Effect"] = effect
    [problem] = problems_at(raw, f"{POLICY}.Statement[0].Effect")
    assert problem.startswith("expected Allow or Deny (IAM takes them only so capitalised)")


def test_effect_action_and_resource_are_required(raw):
    policy(raw)["Statement"] = [{"Sid": "Empty"}]
    where = f"{POLICY}.Statement[0]"
    assert problems_at(raw, f"{where}.Effect") == ["required field is missing"]
    assert problems_at(raw, f"{where}.Action")[0].startswith("required field is missing: give Action (or NotAction)")
    assert problems_at(raw, f"{where}.Resource")[0].startswith(
        "required field is missing: give Resource (or NotResource)")


@pytest.mark.parametrize("action, field", [
    ("RunTask", ""), ("*:RunTask", ""), ("ecs:Run Task", ""), (["ecs:RunTask", 7], "[1]"),
    (["ecs:RunTask", "RunTask"], "[1]"),
])
def test_actions_are_service_prefixed_strings(raw, action, field):
    statement(raw)["Action"] = action
    [problem] = problems_at(raw, f"{POLICY}.Statement[0].Action{field}")
    assert "service:Action" in problem or "expected a non-empty string" in problem


@pytest.mark.parametrize("action", [[], {"ecs": "RunTask"}, None, 3])
def test_action_must_be_a_string_or_a_non_empty_list(raw, action):
    statement(raw)["Action"] = action
    [problem] = problems_at(raw, f"{POLICY}.Statement[0].Action")
    assert "or a non-empty list of them" in problem


@pytest.mark.parametrize("action", ["*", "s3:Get*", ["ecs:Run?ask", "logs:*"]])
def test_wildcard_actions_are_accepted(raw, action):
    statement(raw)["Action"] = action
    validate_config(raw, SEED_FILES[0])


def test_not_action_and_not_resource_stand_in_for_action_and_resource(raw):
    policy(raw)["Statement"] = {"Effect": "Deny", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::sandbox-data"}
    validate_config(raw, SEED_FILES[0])


def test_action_and_not_action_together_are_refused(raw):
    statement(raw)["NotAction"] = "iam:*"
    [problem] = problems_at(raw, f"{POLICY}.Statement[0].NotAction")
    assert "give Action or NotAction, not both" in problem


@pytest.mark.parametrize("resource, field", [("sandbox-data", ""), (["*", "s3:::bucket"], "[1]"),
                                             (["arn:aws:s3"], "[0]")])
def test_resources_are_arns_or_a_wildcard(raw, resource, field):
    statement(raw)["Resource"] = resource
    [problem] = problems_at(raw, f"{POLICY}.Statement[0].Resource{field}")
    assert "an ARN" in problem


@pytest.mark.parametrize("resource", [[], None, {"arn": "x"}])
def test_resource_must_be_a_string_or_a_non_empty_list(raw, resource):
    statement(raw)["Resource"] = resource
    [problem] = problems_at(raw, f"{POLICY}.Statement[0].Resource")
    assert "or a non-empty list of them" in problem


@pytest.mark.parametrize("key", ["Principal", "NotPrincipal"])
def test_principal_is_refused_in_a_role_policy(raw, key):
    statement(raw)[key] = {"AWS": "*"}
    [problem] = problems_at(raw, f"{POLICY}.Statement[0].{key}")
    assert "identity policy" in problem and "trusted_services / trusted_accounts" in problem


def test_sid_is_alphanumeric_and_unique(raw):
    policy(raw)["Statement"] = [dict(statement(raw), Sid="Run-Tasks"), dict(statement(raw), Sid="Run"),
                                dict(statement(raw), Sid="Run")]
    assert "ASCII letters and digits only" in problems_at(raw, f"{POLICY}.Statement[0].Sid")[0]
    assert "duplicate Sid 'Run'" in problems_at(raw, f"{POLICY}.Statement[2].Sid")[0]


@pytest.mark.parametrize("condition, field", [
    ("aws:SecureTransport", ""),
    ({}, ""),
    ({"StringEquals": "us-east-1"}, ".StringEquals"),
    ({"String Equals": {"aws:RequestedRegion": "us-east-1"}}, ".String Equals"),
    ({"StringEquals": {"RequestedRegion": "us-east-1"}}, ".StringEquals.RequestedRegion"),
    ({"StringEquals": {"aws:RequestedRegion": {"a": 1}}}, ".StringEquals.aws:RequestedRegion"),
    ({"StringEquals": {"aws:RequestedRegion": []}}, ".StringEquals.aws:RequestedRegion"),
])
def test_condition_maps_operators_to_prefixed_keys_and_values(raw, condition, field):
    statement(raw)["Condition"] = condition
    assert problems_at(raw, f"{POLICY}.Statement[0].Condition{field}")


@pytest.mark.parametrize("operator", ["stringEquals", "StringEqual", "NullIfExists", "ForEveryValue:StringLike"])
def test_condition_operators_are_iams_case_sensitive_ones(raw, operator):
    statement(raw)["Condition"] = {operator: {"aws:RequestedRegion": "us-east-1"}}
    [problem] = problems_at(raw, f"{POLICY}.Statement[0].Condition.{operator}")
    assert "is not an IAM condition operator" in problem


def test_a_valid_condition_is_accepted(raw):
    statement(raw)["Condition"] = {"StringEquals": {"aws:RequestedRegion": ["us-east-1"]},
                                   "Bool": {"aws:SecureTransport": True},
                                   "ForAnyValue:StringLike": {"s3:prefix": "home/*"},
                                   "StringEqualsIfExists": {"aws:PrincipalTag/team": "data"},
                                   "Null": {"aws:TokenIssueTime": "false"}}
    validate_config(raw, SEED_FILES[0])


def test_unknown_statement_and_document_fields_are_refused(raw):
    statement(raw)["Efect"] = "Allow"
    policy(raw)["Versoin"] = "2012-10-17"
    assert "did you mean Effect?" in problems_at(raw, f"{POLICY}.Statement[0].Efect")[0]
    assert "did you mean Version?" in problems_at(raw, f"{POLICY}.Versoin")[0]


def test_policy_names_follow_iam(raw):
    policies = raw["aws"]["iam_roles"][0]["policies"]
    policies["run tasks"] = policies.pop("run-ecs-tasks")
    assert "policy names are" in problems_at(raw, "aws.iam_roles[0].policies.run tasks")[0]


def test_a_roles_inline_policies_must_fit_iams_size_limit(raw):
    statement(raw)["Resource"] = [f"arn:aws:s3:::sandbox-data/prefix-{i:05d}/*" for i in range(400)]
    [problem] = problems_at(raw, "aws.iam_roles[0].policies")
    assert "IAM allows 10240 per role" in problem


# --- types of other fields -------------------------------------------------------------------------
def count_numbers(raw) -> dict:
    return raw["aws"]["task_definitions"][0]


def test_task_definition_fields_are_checked_against_ecs_request_model(raw):
    container = count_numbers(raw)["containerDefinitions"][0]
    container.update({"memory": "lots", "essential": "yes", "enviroment": []})
    count_numbers(raw)["cpu"] = 256
    where = "aws.task_definitions[0]"
    assert problems_at(raw, f"{where}.containerDefinitions[0].memory") == ["expected a whole number, found text 'lots'"]
    assert problems_at(raw, f"{where}.containerDefinitions[0].essential") == [
        "expected true or false, found text 'yes'"]
    assert "did you mean environment?" in problems_at(raw, f"{where}.containerDefinitions[0].enviroment")[0]
    assert "quote it" in problems_at(raw, f"{where}.cpu")[0]


def test_a_field_of_the_wrong_type_is_reported_once(raw):
    """Nothing inside a field of the wrong type is looked at: one problem, not a cascade."""
    count_numbers(raw)["containerDefinitions"][0]["logConfiguration"]["options"] = "awslogs"
    assert problems(raw) == ["sandbox.yaml: aws.task_definitions[0].containerDefinitions[0].logConfiguration.options: "
                             "expected a mapping of name: value, found text 'awslogs'"]


def test_container_memory_below_dockers_floor_is_refused(raw):
    count_numbers(raw)["containerDefinitions"][0]["memory"] = 4
    assert "at least 6" in problems_at(raw, "aws.task_definitions[0].containerDefinitions[0].memory")[0]


def test_unknown_keys_of_mixed_types_are_all_reported(raw):
    raw["aws"].update({7: "x", "zz": "y"})
    assert problems_at(raw, "aws.7") and problems_at(raw, "aws.zz")


def test_a_path_the_file_system_cannot_hold_is_reported(raw):
    raw["images"][0]["context"] = "x" * 300  # longer than a file name may be: is_dir() raises, not False
    assert "no such directory" in problems_at(raw, "images[0].context")[0]


def test_an_image_with_bad_build_args_still_counts_as_declared(raw):
    raw["images"][0]["build_args"] = {"BASE_IMAGE": ["x"], "2ND": "y", "OTHER": "{pyhton_base}"}
    assert [p.split(": ")[1] for p in problems(raw)] == ["images[0].build_args.BASE_IMAGE", "images[0].build_args.2ND",
                                                         "images[0].build_args.OTHER"]


def test_trusted_principals_are_checked(raw):
    raw["aws"]["iam_roles"][1]["trusted_services"] = [1, "ecs tasks"]
    raw["aws"]["iam_roles"][0]["trusted_accounts"] = ["1234"]
    assert problems_at(raw, "aws.iam_roles[1].trusted_services[0]")
    assert "service principal" in problems_at(raw, "aws.iam_roles[1].trusted_services[1]")[0]
    assert "account id" in problems_at(raw, "aws.iam_roles[0].trusted_accounts[0]")[0]


def test_connection_fields_and_secret_values_are_typed(raw):
    raw["airflow"]["connections"][0].update({"port": True, "host": 10, "extra": {1: "x"}})
    raw["kubernetes"]["secrets"]["aws-task-env"]["AWS_DEFAULT_REGION"] = 1
    assert "expected an integer from 1 to 65535" in problems_at(raw, "airflow.connections[0].port")[0]
    assert "expected text, found number 10" in problems_at(raw, "airflow.connections[0].host")[0]
    assert "field names must be text" in problems_at(raw, "airflow.connections[0].extra")[0]
    assert "quote it" in problems_at(raw, "kubernetes.secrets.aws-task-env.AWS_DEFAULT_REGION")[0]


@pytest.mark.parametrize("name, path, raw", seed_documents(), ids=[d[0] for d in seed_documents()])
def test_a_deleted_field_is_reported_once(name, path, raw):
    """A required field that is missing is one problem: the check of its type that follows says nothing more."""
    twice = []
    for what, mutated in mutations(raw):
        if not what.startswith("del "):
            continue
        try:
            validate_config(mutated, path)
        except ConfigError as exc:
            fields = [p.split(": ", 2)[1] for p in exc.problems]
            twice += [f"{what}: {field} ({fields.count(field)} times)" for field in sorted(set(fields))
                      if fields.count(field) > 1]
    assert not twice, f"fields reported more than once in {name}:\n" + "\n".join(twice)
