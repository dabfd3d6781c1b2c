"""The astro CLI's airflow_settings.yaml: what it converts to, what it refuses, and how pools are applied."""
from __future__ import annotations

import json
import textwrap
import urllib.parse
from pathlib import Path

import pytest

from sandbox.seeding.airflow_settings import (
    AirflowSettingsError,
    PoolSeedError,
    load_airflow_settings,
    seed_pools,
    validate_pools,
)

pytestmark = pytest.mark.unit

# What `astro dev init` writes (astronomer/astro-cli pkg/airflowrt/include/airflow3/settingsyml.yml).
ASTRO_TEMPLATE = """\
# This file allows you to configure Airflow Connections, Pools, and Variables in a single place for local development only.
# NOTE: json dicts can be added to the conn_extra field as yaml key value pairs. See the example below.

airflow:
  connections:
    - conn_id:
      conn_type:
      conn_host:
      conn_schema:
      conn_login:
      conn_password:
      conn_port:
      conn_extra:
        example_extra_field: example-value
  pools:
    - pool_name:
      pool_slot:
      pool_description:
  variables:
    - variable_name:
      variable_value:
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(AirflowSettingsError) as caught:
        load_airflow_settings(write(tmp_path, text))
    return caught.value.problems


@pytest.mark.parametrize("text", [ASTRO_TEMPLATE, "", "airflow:\n", "# only a comment\n",
                                  "airflow:\n  connections: []\n  pools:\n  variables: []\n"])
def test_template_and_empty_files_mean_nothing_to_seed(tmp_path, text):
    settings = load_airflow_settings(write(tmp_path, text))
    assert (settings.connections, settings.variables, settings.pools) == ([], {}, [])


def test_a_realistic_file_converts_to_sandbox_shapes(tmp_path):
    settings = load_airflow_settings(write(tmp_path, """\
        airflow:
          connections:
            - conn_id: aws_default
              conn_type: aws
              conn_extra:
                region_name: us-east-1
                endpoint_url: http://localstack:4566
                config_kwargs: {retries: {max_attempts: 3}}
                verify: false
            - conn_id: warehouse
              conn_type: postgres
              conn_host: db.example.com
              conn_schema: analytics
              conn_login: etl
              conn_password: 's3cret'
              conn_port: 5432
              conn_uri: ""
              conn_extra: '{"sslmode": "require", "connect_timeout": 10}'
            - conn_id: from_uri
              conn_uri: postgresql://user%40corp:p%3Ass@pg.internal:6432/my%2Fdb?sslmode=verify-full
            - conn_id: http_api
              conn_uri: http://https://api.example.com
              conn_extra:
                timeout: 5
          pools:
            - pool_name: ecs_tasks
              pool_slot: 4
              pool_description: ECS tasks at once
            - pool_name: default_pool
              pool_slot: 64
            - pool_name: unlimited
              pool_slot: -1
              pool_description: ''
          variables:
            - variable_name: data_bucket
              variable_value: sandbox-data
            - variable_name: subnets
              variable_value: ["subnet-1", "subnet-2"]
            - variable_name: retries
              variable_value: 3
            - variable_name: flags
              variable_value: {dry_run: true}
            - variable_name: empty
              variable_value: ''
        """))
    assert settings.connections == [
        {"conn_id": "aws_default", "conn_type": "aws",
         "extra": {"region_name": "us-east-1", "endpoint_url": "http://localstack:4566",
                   "config_kwargs": {"retries": {"max_attempts": 3}}, "verify": False}},
        {"conn_id": "warehouse", "conn_type": "postgres", "host": "db.example.com", "schema": "analytics",
         "login": "etl", "password": "s3cret", "port": 5432,
         "extra": {"sslmode": "require", "connect_timeout": 10}},
        {"conn_id": "from_uri", "conn_type": "postgres", "host": "pg.internal", "port": 6432,
         "login": "user@corp", "password": "p:ss", "schema": "my/db", "extra": {"sslmode": "verify-full"}},
        {"conn_id": "http_api", "conn_type": "http", "host": "https://api.example.com", "extra": {"timeout": 5}},
    ]
    assert settings.variables == {"data_bucket": "sandbox-data", "subnets": '["subnet-1", "subnet-2"]',
                                  "retries": "3", "flags": '{"dry_run": true}', "empty": ""}
    assert settings.pools == [
        {"name": "ecs_tasks", "slots": 4, "description": "ECS tasks at once", "include_deferred": False},
        {"name": "default_pool", "slots": 64, "description": None, "include_deferred": False},
        {"name": "unlimited", "slots": -1, "description": None, "include_deferred": False},
    ]


def test_what_astro_export_writes_for_absent_fields_means_absent(tmp_path):
    # `astro dev object export` writes port 0, an empty conn_uri and {} for a connection without them.
    settings = load_airflow_settings(write(tmp_path, """\
        airflow:
          connections:
            - conn_id: local_postgres
              conn_type: postgres
              conn_host: example.db.example.com
              conn_schema: schema
              conn_login: username
              conn_password: password
              conn_port: 0
              conn_uri: ""
              conn_extra: {}
          pools:
            - pool_name: default_pool
              pool_slot: 128
              pool_description: Default pool
        """))
    assert settings.connections == [{"conn_id": "local_postgres", "conn_type": "postgres",
                                     "host": "example.db.example.com", "schema": "schema", "login": "username",
                                     "password": "password"}]
    assert settings.pools == [{"name": "default_pool", "slots": 128, "description": "Default pool",
                               "include_deferred": False}]


def test_uri_extras_in_airflow_extra_form_are_parsed_as_json(tmp_path):
    extra = urllib.parse.quote(json.dumps({"nested": {"a": 1}}))
    settings = load_airflow_settings(write(tmp_path, f"""\
        airflow:
          connections:
            - conn_id: c
              conn_uri: "generic://h?__extra__={extra}"
        """))
    assert settings.connections == [{"conn_id": "c", "conn_type": "generic", "host": "h",
                                     "extra": {"nested": {"a": 1}}}]


def test_the_example_project_file_loads():
    path = Path(__file__).resolve().parents[2] / "examples" / "genomics" / "airflow_settings.yaml"
    settings = load_airflow_settings(path)
    assert [c["conn_id"] for c in settings.connections] == ["lims_api"]
    assert settings.connections[0]["extra"] == {"timeout": 30, "verify": True}
    assert settings.pools == [{"name": "genomics_qc", "slots": 4, "description": "QC tasks at once",
                               "include_deferred": False}]
    assert settings.variables["genomics_subnets"] == '["subnet-00000001"]'


def test_every_problem_in_the_file_is_reported_at_once(tmp_path):
    problems = problems_of(tmp_path, """\
        airflow:
          connections:
            - conn_id: ok
              conn_type: http
            - conn_type: postgres
              conn_host: h
            - conn_id: no_type
              conn_host: h
            - conn_id: bad_port
              conn_type: postgres
              conn_port: testing
            - conn_id: bad_extra_text
              conn_type: http
              conn_extra: 'region=us-east-1'
            - conn_id: bad_extra_list
              conn_type: http
              conn_extra: [a, b]
            - conn_id: extra_json_list
              conn_type: http
              conn_extra: '[1, 2]'
            - conn_id: ok
              conn_type: http
            - conn_id: mixed
              conn_type: postgres
              conn_uri: postgres://h/db
            - conn_id: not_a_uri
              conn_uri: just-a-host
            - conn_id: bad id!
              conn_type: http
              conn_password: 123456
              conn_hots: typo
          pools:
            - pool_name: p
              pool_slot: three
            - pool_name: p
              pool_slot: -2
            - pool_slot: 2
            - pool_name: q
          variables:
            - variable_value: orphan
            - variable_name: v
            - variable_name: v
              variable_value: x
          pool: {}
        extras: true
        """)
    prefix = "airflow_settings.yaml: "
    expected = {
        "(top level).extras": "unknown field; expected one of: airflow",
        "airflow.pool": "unknown field; expected one of: connections, pools, variables",
        "airflow.connections[1].conn_id": "required field is missing",
        "airflow.connections[2].conn_type": "required field is missing",
        "airflow.connections[3].conn_port": "expected an integer port from 1 to 65535, found str 'testing'",
        "airflow.connections[4].conn_extra": "is text but not JSON",
        "airflow.connections[5].conn_extra": "expected a mapping of extra fields or a JSON object string, found list",
        "airflow.connections[6].conn_extra": "is JSON but a list, not an object",
        "airflow.connections[7].conn_id": "duplicate conn_id 'ok'",
        "airflow.connections[8].conn_uri": "give either conn_uri or conn_type, not both",
        "airflow.connections[9].conn_uri": "is not a connection URI",
        "airflow.connections[10].conn_id": "'bad id!' is not valid",
        "airflow.connections[10].conn_password": "expected text, found int; quote the value",
        "airflow.connections[10].conn_hots": "unknown field; expected one of: conn_id, conn_type, conn_host",
        "airflow.pools[0].pool_slot": "expected an integer of -1 (unlimited) or more, found str 'three'",
        "airflow.pools[1].pool_slot": "found int -2",
        "airflow.pools[1].pool_name": "duplicate pool_name 'p'",
        "airflow.pools[2].pool_name": "required field is missing",
        "airflow.pools[3].pool_slot": "required field is missing",
        "airflow.variables[0].variable_name": "required field is missing",
        "airflow.variables[1].variable_value": "has no value",
        "airflow.variables[2].variable_name": "duplicate variable_name 'v'",
    }
    for where, message in expected.items():
        matching = [p for p in problems if p.startswith(f"{prefix}{where}: ")]
        assert matching, f"no problem reported at {where}; got:\n" + "\n".join(problems)
        assert any(message in p for p in matching), f"{where}: expected {message!r} in {matching}"
    assert len(problems) == len(expected), "\n".join(problems)
    assert all("s3cret" not in p and "123456" not in p for p in problems)


def test_the_error_message_names_the_file_and_says_nothing_changed(tmp_path):
    path = write(tmp_path, "airflow:\n  pools:\n    - pool_name: p\n      pool_slot: x\n")
    with pytest.raises(AirflowSettingsError) as caught:
        load_airflow_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 1 problem(s) in the Airflow settings file; nothing was changed.\n  - ")
    assert "airflow_settings.yaml: airflow.pools[0].pool_slot: expected an integer" in message


@pytest.mark.parametrize("text, where, message", [
    ("airflow: [\n", "airflow_settings.yaml: not valid YAML", ""),
    ("- a\n- b\n", "airflow_settings.yaml: (top level): expected a mapping", "found list"),
    ("airflow: just text\n", "airflow_settings.yaml: airflow: expected a mapping", "found str"),
    ("airflow:\n  variables:\n    data_bucket: x\n", "airflow_settings.yaml: airflow.variables: expected a list",
     "variable_name, variable_value"),
    ("airflow:\n  connections:\n    - aws_default\n",
     "airflow_settings.yaml: airflow.connections[0]: expected a mapping", "found str"),
    ("airflow:\n  connections:\n    - {conn_id: c, conn_uri: 'http://h?a=1', conn_extra: {b: 2}}\n",
     "airflow_settings.yaml: airflow.connections[0].conn_extra: conn_uri already carries extras", ""),
    ("airflow:\n  connections:\n    - {conn_id: c, conn_type: http, conn_extra: {1: x}}\n",
     "airflow_settings.yaml: airflow.connections[0].conn_extra: field names must be text", "[1]"),
    ("airflow:\n  connections:\n    - {conn_id: c, conn_type: http, conn_extra: {since: 2024-01-01}}\n",
     "airflow_settings.yaml: airflow.connections[0].conn_extra: has a value JSON cannot store", "quote it"),
    ("airflow:\n  variables:\n    - {variable_name: start, variable_value: 2024-01-01}\n",
     "airflow_settings.yaml: airflow.variables[0].variable_value: a date cannot be stored as JSON", "quote"),
])
def test_malformed_files_are_refused(tmp_path, text, where, message):
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1 and problems[0].startswith(where) and message in problems[0], problems


def test_a_missing_file_is_an_error_not_a_silent_skip(tmp_path):
    with pytest.raises(AirflowSettingsError, match="file not found"):
        load_airflow_settings(tmp_path / "airflow_settings.yaml")


def test_an_entry_with_only_the_template_extra_and_an_id_is_not_skipped(tmp_path):
    problems = problems_of(tmp_path, """\
        airflow:
          connections:
            - conn_id: mine
              conn_extra:
                example_extra_field: example-value
        """)
    assert problems == ["airflow_settings.yaml: airflow.connections[0].conn_type: required field is missing: "
                        "give the connection type (aws, postgres, http, ...) or a conn_uri"]


def test_validate_pools_reports_through_the_callers_checker():
    found: list[tuple[str, str]] = []
    pools = validate_pools([{"name": "a", "slots": 2},
                            {"name": "b", "slots": 1, "description": "d", "include_deferred": True},
                            {"name": "a", "slots": "x", "size": 1, "include_deferred": "yes"}],
                           "airflow.pools", lambda where, message: found.append((where, message)))
    assert pools[:2] == [{"name": "a", "slots": 2, "description": None, "include_deferred": False},
                         {"name": "b", "slots": 1, "description": "d", "include_deferred": True}]
    assert [where for where, _ in found] == ["airflow.pools[2].size", "airflow.pools[2].slots",
                                             "airflow.pools[2].include_deferred", "airflow.pools[2].name"]
    assert "duplicate name 'a'" in found[-1][1]


def test_validate_pools_accepts_nothing_and_refuses_a_mapping():
    found: list[tuple[str, str]] = []
    assert validate_pools(None, "airflow.pools", lambda w, m: found.append((w, m))) == []
    assert found == []
    validate_pools({"a": 1}, "airflow.pools", lambda w, m: found.append((w, m)))
    assert found and found[0][0] == "airflow.pools" and "expected a list" in found[0][1]


# --- seed_pools against a fake Airflow -------------------------------------------------------
class FakeResponse:
    def __init__(self, status_code: int, body: dict | None = None):
        self.status_code, self.body = status_code, body

    def json(self):
        return self.body


class FakeAirflow:
    """The pool endpoints of Airflow 3's REST API v2, as far as seeding uses them.

    `drops` names fields this server ignores on write, to show a failed read-back."""

    def __init__(self, pools: list[dict], drops: tuple[str, ...] = ()):
        self.pools = {p["name"]: {"description": None, "include_deferred": False, **p} for p in pools}
        self.drops = drops
        self.calls: list[tuple[str, str, dict | None, dict | None]] = []

    def request(self, method, path, ok=(200,), json=None, params=None):
        self.calls.append((method, path, params, json))
        resp = self._handle(method, path, json, params)
        if resp.status_code not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status_code}")
        return resp

    def get(self, path, **params):
        return self.request("GET", path).json()

    def _handle(self, method, path, body, params):
        name = urllib.parse.unquote(path.removeprefix("pools/")) if path.startswith("pools/") else None
        if method == "GET":
            return FakeResponse(200, dict(self.pools[name])) if name in self.pools else FakeResponse(404)
        if method == "POST":
            if body["name"] in self.pools:
                return FakeResponse(409)
            self.pools[body["name"]] = {k: v for k, v in body.items() if k not in self.drops}
            self.pools[body["name"]].setdefault("include_deferred", False)
            return FakeResponse(201, self.pools[body["name"]])
        if method == "PATCH":
            if name not in self.pools:
                return FakeResponse(404)
            mask = (params or {}).get("update_mask")
            if name == "default_pool" and not (mask and set(mask) <= {"slots", "include_deferred"}):
                return FakeResponse(400)
            fields = {k: v for k, v in body.items() if (not mask or k in mask) and k not in self.drops}
            self.pools[name].update(fields)
            return FakeResponse(200, self.pools[name])
        return FakeResponse(405)

    def writes(self):
        return [(m, p, params, body) for m, p, params, body in self.calls if m != "GET"]


def pool(name, slots, description=None, include_deferred=False):
    return {"name": name, "slots": slots, "description": description, "include_deferred": include_deferred}


def run(client, pools):
    reported = []
    seed_pools(client, pools, lambda kind, name, outcome: reported.append((kind, name, outcome)))
    return reported


def test_seed_pools_creates_updates_and_leaves_unchanged():
    client = FakeAirflow([pool("default_pool", 128, "Default pool"), pool("same", 2, "d"), pool("old", 1)])
    reported = run(client, [pool("new/pool", 3, "fresh"), pool("same", 2, "d"), pool("old", 5, "more", True),
                            pool("default_pool", 16)])
    assert reported == [("airflow pool", "new/pool", "created"), ("airflow pool", "same", "unchanged"),
                        ("airflow pool", "old", "updated"), ("airflow pool", "default_pool", "updated")]
    assert client.writes() == [
        ("POST", "pools", None, {"name": "new/pool", "slots": 3, "description": "fresh", "include_deferred": False}),
        ("PATCH", "pools/old", None, {"name": "old", "slots": 5, "description": "more", "include_deferred": True}),
        ("PATCH", "pools/default_pool", {"update_mask": ["slots", "include_deferred"]},
         {"slots": 16, "include_deferred": False}),
    ]
    assert ("GET", "pools/new%2Fpool", None, None) in client.calls
    assert client.pools["default_pool"] == {"name": "default_pool", "slots": 16, "description": "Default pool",
                                            "include_deferred": False}
    assert client.pools["old"]["slots"] == 5


def test_seeding_pools_again_writes_nothing():
    pools = [pool("a", 3, "x"), pool("default_pool", 8, "Default pool")]
    client = FakeAirflow([pool("default_pool", 128, "Default pool")])
    run(client, pools)
    client.calls.clear()
    assert run(client, pools) == [("airflow pool", "a", "unchanged"), ("airflow pool", "default_pool", "unchanged")]
    assert client.writes() == []


def test_a_pool_that_does_not_round_trip_fails():
    client = FakeAirflow([], drops=("include_deferred",))
    with pytest.raises(PoolSeedError, match=r"pool 'p' did not round-trip: stored include_deferred False, "
                                            r"expected True"):
        run(client, [pool("p", 2, include_deferred=True)])


def test_default_pool_is_never_created_and_its_description_is_not_forced():
    with pytest.raises(PoolSeedError, match="missing from Airflow"):
        run(FakeAirflow([]), [pool("default_pool", 4)])
    client = FakeAirflow([pool("default_pool", 128, "Default pool")])
    with pytest.raises(PoolSeedError, match="only slots and include_deferred"):
        run(client, [pool("default_pool", 4, "mine")])
    assert client.writes() == []


def test_static_keys_in_an_aws_connection_are_refused_by_field(tmp_path):
    # Airflow acts as aws.airflow_role; the emulator refuses static keys (LocalStack's `test` too).
    with pytest.raises(AirflowSettingsError) as failed:
        load_airflow_settings(write(tmp_path, """\
            airflow:
              connections:
                - conn_id: aws_default
                  conn_type: aws
                  conn_login: test
                  conn_password: test
                - conn_id: aws_other
                  conn_type: aws
                  conn_extra: {aws_access_key_id: AKIAEXAMPLE, region_name: us-east-1}
                - conn_id: warehouse
                  conn_type: postgres
                  conn_login: etl
            """))
    text = str(failed.value)
    for field in ("connections[0].conn_login", "connections[0].conn_password",
                  "connections[1].conn_extra.aws_access_key_id"):
        assert field in text
    assert "warehouse" not in text and "connections[2]" not in text
    assert "acts as aws.airflow_role" in text
