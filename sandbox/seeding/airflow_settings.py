"""The astro CLI's `airflow_settings.yaml`: connections, variables and pools, checked as a whole.

Teams coming from the astro CLI keep their local Airflow objects in this file. astro applies it
leniently: it drops `conn_extra` it cannot convert (astro-cli #1591), skips entries with a blank
field, and does nothing when the file is missing or malformed. Here the whole file is checked
before anything changes, every problem is reported with its field path, and the result has the
shape of sandbox.yaml's `airflow:` section, so the same code seeds it: `seed_airflow`'s
connection and variable seeding take an `AirflowSettings` as they take the seed config, and
`seed_pools` below applies pools (from this file or from sandbox.yaml's `airflow.pools`).

The format, as astro reads it (astronomer/astro-cli settings/types.go):
    airflow:
      connections: [{conn_id, conn_type, conn_host, conn_schema, conn_login, conn_password,
                     conn_port, conn_uri, conn_extra}]
      pools: [{pool_name, pool_slot, pool_description}]
      variables: [{variable_name, variable_value}]
"""
from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sandbox.seeding.errors import ConfigError, read_yaml

Fail = Callable[[str, str], None]  # (field path, what to do)
Report = Callable[[str, str, str], None]  # (kind, name, outcome)

DEFAULT_POOL = "default_pool"
CONNECTION_FIELDS = ("conn_id", "conn_type", "conn_host", "conn_schema", "conn_login", "conn_password",
                     "conn_port", "conn_uri", "conn_extra")
POOL_FIELDS = ("pool_name", "pool_slot", "pool_description")
VARIABLE_FIELDS = ("variable_name", "variable_value")
SANDBOX_POOL_FIELDS = ("name", "slots", "description", "include_deferred")

_CONN_ID = re.compile(r"^[\w.-]{1,250}$")  # as sandbox.yaml's conn_id and variable names
_POOL_NAME_MAX = 256  # Airflow 3's PoolBody: name max_length
# `astro dev init` writes one connection with every field blank except this placeholder extra.
_TEMPLATE_EXTRA = {"example_extra_field": "example-value"}
_BLANK = (None, "", {}, [])


class AirflowSettingsError(ConfigError):
    """The settings file is not valid; `problems` lists each one ("file: field: what to do")."""

    what = "the Airflow settings file"


class PoolSeedError(RuntimeError):
    pass


@dataclass
class AirflowSettings:
    """The validated file, in the shapes of sandbox.yaml's `airflow.connections`, `.variables`, `.pools`."""

    path: Path
    connections: list[dict] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    pools: list[dict] = field(default_factory=list)


def load_airflow_settings(path: str | Path) -> AirflowSettings:
    """Reads and validates an astro `airflow_settings.yaml`; raises AirflowSettingsError listing every problem.

    An empty file, an `airflow:`-only file and astro's generated template all mean nothing to seed.
    """
    path = Path(path)
    raw = read_yaml(path, AirflowSettingsError, "give the project's airflow_settings.yaml or leave it out")
    return validate_airflow_settings(raw, path)


def validate_airflow_settings(raw: Any, path: Path) -> AirflowSettings:
    problems: list[str] = []

    def fail(where: str, message: str) -> None:
        problems.append(f"{path.name}: {where}: {message}")

    top = _mapping(raw, "(top level)", ("airflow",), fail)
    airflow = _mapping(top.get("airflow"), "airflow", ("connections", "pools", "variables"), fail)

    connections = [(where, _connection(entry, where, fail))
                   for where, entry in _entries(airflow.get("connections"), "airflow.connections",
                                                CONNECTION_FIELDS, fail)]
    _unique([(f"{w}.conn_id", c["conn_id"]) for w, c in connections], "conn_id", fail)

    variables: dict[str, str] = {}
    named = []
    for where, entry in _entries(airflow.get("variables"), "airflow.variables", VARIABLE_FIELDS, fail):
        name, value = _variable(entry, where, fail)
        if name is not None:
            named.append((f"{where}.variable_name", name))
            if value is not None:
                variables[name] = value
    _unique(named, "variable_name", fail)

    astro_names = dict(zip(SANDBOX_POOL_FIELDS[:3], POOL_FIELDS))
    pools = [(where, _pool(entry, where, astro_names, fail))
             for where, entry in _entries(airflow.get("pools"), "airflow.pools", POOL_FIELDS, fail)]
    _unique([(f"{w}.pool_name", p["name"]) for w, p in pools], "pool_name", fail)

    if problems:
        raise AirflowSettingsError(path, problems)
    return AirflowSettings(path=path, connections=[c for _, c in connections], variables=variables,
                           pools=[p for _, p in pools])


def validate_pools(value: Any, where: str, fail: Fail) -> list[dict]:
    """sandbox.yaml's `airflow.pools`: [{name, slots, description?, include_deferred?}].

    Reports through `fail(field path, message)` (the caller's checker) and returns the pools as
    {name, slots, description, include_deferred}, the shape `seed_pools` applies.
    """
    names = dict(zip(SANDBOX_POOL_FIELDS, SANDBOX_POOL_FIELDS))
    pools = [(w, _pool(entry, w, names, fail))
             for w, entry in _entries(value, where, SANDBOX_POOL_FIELDS, fail, skip_blank=False)]
    _unique([(f"{w}.name", p["name"]) for w, p in pools], "name", fail)
    return [p for _, p in pools]


# --- the checks -------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    return type(value).__name__


def _mapping(value: Any, where: str, known: tuple[str, ...], fail: Fail) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(where, f"expected a mapping with {', '.join(known)}, found {_kind(value)}")
        return {}
    for key in value:
        if key not in known:
            fail(f"{where}.{key}", f"unknown field; expected one of: {', '.join(known)}")
    return value


def _entries(value: Any, where: str, known: tuple[str, ...], fail: Fail,
             skip_blank: bool = True) -> list[tuple[str, dict]]:
    """The list's entries as (field path, mapping). With skip_blank, entries whose every value is
    empty (astro's generated template) are left out, as there is nothing in them to seed."""
    if value is None:
        return []
    if not isinstance(value, list):
        fail(where, f"expected a list of entries with {', '.join(known)}, found {_kind(value)}")
        return []
    entries = []
    for i, entry in enumerate(value):
        if skip_blank and (entry is None or isinstance(entry, dict) and _blank(entry)):
            continue
        if not isinstance(entry, dict):
            fail(f"{where}[{i}]", f"expected a mapping with {', '.join(known)}, found {_kind(entry)}")
            continue
        entries.append((f"{where}[{i}]", _mapping(entry, f"{where}[{i}]", known, fail)))
    return entries


def _blank(entry: dict) -> bool:
    return all(v in _BLANK or (k == "conn_extra" and v == _TEMPLATE_EXTRA) for k, v in entry.items())


def _unique(named: list[tuple[str, Any]], key: str, fail: Fail) -> None:
    seen = set()
    for where, name in named:
        if name is None:
            continue
        if name in seen:
            fail(where, f"duplicate {key} {name!r}; each must appear once (keep one entry, remove the others)")
        seen.add(name)


def _text(value: Any, where: str, fail: Fail) -> str | None:
    """Text, or None when blank. Numbers are refused rather than converted: YAML has already
    changed some of them (0123 is 83, 1.10 is 1.1), so only quotes keep what was written."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        fail(where, f"expected text, found {_kind(value)}; quote the value so YAML keeps it as written")
        return None
    return value


# The amazon provider takes keys from login/password or from these extras.
_AWS_KEY_EXTRAS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
STATIC_KEYS_REFUSED = ("an aws connection here acts as aws.airflow_role, as an MWAA environment's connections act "
                       "as its execution role: the emulator refuses static keys (`test` included) from Airflow. "
                       "Remove them (keep role_arn to act as another role)")


def static_aws_keys(conn: dict) -> list[str]:
    """The fields of an `aws` connection that carry static keys."""
    if conn.get("conn_type") != "aws":
        return []
    extra = conn.get("extra") if isinstance(conn.get("extra"), dict) else {}
    return [k for k in ("login", "password") if conn.get(k)] + [k for k in _AWS_KEY_EXTRAS if extra.get(k)]


def _connection(entry: dict, where: str, fail: Fail) -> dict:
    conn_id = _text(entry.get("conn_id"), f"{where}.conn_id", fail)
    if conn_id is None and entry.get("conn_id") in (None, ""):
        fail(f"{where}.conn_id", "required field is missing: every connection needs an id (letters, digits, . _ -)")
    elif conn_id is not None and not _CONN_ID.match(conn_id):
        fail(f"{where}.conn_id", f"{conn_id!r} is not valid: up to 250 letters, digits, . _ -")
    given = {key: _text(entry.get(f"conn_{key}"), f"{where}.conn_{key}", fail)
             for key in ("type", "host", "schema", "login", "password")}
    port = _port(entry.get("conn_port"), f"{where}.conn_port", fail)
    extra = _extra(entry.get("conn_extra"), f"{where}.conn_extra", fail)
    uri = _text(entry.get("conn_uri"), f"{where}.conn_uri", fail)

    conn: dict = {"conn_id": conn_id}
    if uri is not None:
        mixed = [f"conn_{k}" for k, v in given.items() if v is not None] + (["conn_port"] if port else [])
        if mixed:
            fail(f"{where}.conn_uri", f"give either conn_uri or {', '.join(mixed)}, not both (Airflow refuses "
                                      "the mix; astro silently ignores conn_uri then); remove one")
            return conn
        conn.update(_parse_uri(uri, f"{where}.conn_uri", fail))
        if conn.get("extra") and extra:
            fail(f"{where}.conn_extra", "conn_uri already carries extras in its query string; keep the extras "
                                        "in one place (conn_extra, or the URI's query)")
    else:
        if given["type"] is None and entry.get("conn_type") in (None, ""):
            fail(f"{where}.conn_type", "required field is missing: give the connection type (aws, postgres, "
                                       "http, ...) or a conn_uri")
        conn["conn_type"] = given["type"]
        for key in ("host", "schema", "login", "password"):
            if given[key] is not None:
                conn[key] = given[key]
        if port:
            conn["port"] = port
    if extra:
        conn["extra"] = extra
    for key in static_aws_keys(conn):
        fail(f"{where}.conn_{key}" if key in ("login", "password") else f"{where}.conn_extra.{key}",
             STATIC_KEYS_REFUSED)
    return conn


def _port(value: Any, where: str, fail: Fail) -> int | None:
    if value in (None, "", 0):  # 0 is what astro's export writes for a connection without a port
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        fail(where, f"expected an integer port from 1 to 65535, found {_kind(value)} {value!r}")
        return None
    return value


def _extra(value: Any, where: str, fail: Fail) -> dict:
    """conn_extra as a mapping (astro's template writes it so) or a JSON-object string (older astro
    templates told users to quote it); stored as JSON either way, so both round-trip."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            fail(where, f"is text but not JSON ({exc}); write the extras as a YAML mapping (key: value "
                        "lines under conn_extra) or as a JSON object string")
            return {}
        if not isinstance(parsed, dict):
            fail(where, f"is JSON but a {_kind(parsed)}, not an object; Airflow stores extras as a JSON object "
                        "of field: value")
            return {}
        return parsed
    if not isinstance(value, dict):
        fail(where, f"expected a mapping of extra fields or a JSON object string, found {_kind(value)}")
        return {}
    bad_keys = [k for k in value if not isinstance(k, str)]
    if bad_keys:
        fail(where, f"field names must be text, found {bad_keys!r}; quote them")
        return {}
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        fail(where, "has a value JSON cannot store (an unquoted date or time?); quote it")
        return {}
    return dict(value)


def _parse_uri(uri: str, where: str, fail: Fail) -> dict:
    """Splits a connection URI the way Airflow's Connection(uri=...) does (models/connection.py
    `_parse_from_uri`), so the stored connection is what `airflow connections add --conn-uri` makes."""
    usage = "expected <conn_type>://[login[:password]@]host[:port][/schema][?extra_field=value]"
    count = uri.count("://")
    if count not in (1, 2):
        fail(where, f"is not a connection URI: {usage}")  # the URI is not echoed: it may hold a password
        return {}
    with_protocol = count == 2  # e.g. http://https://host: the host keeps its own scheme
    scheme = urllib.parse.urlsplit(uri).scheme
    if not scheme:
        fail(where, f"has no connection type before ://: {usage}")
        return {}
    rest = uri.replace(f"{scheme}://", "" if with_protocol else "//")
    if with_protocol:
        first = rest.split("://", 1)[0]
        if "@" in first or ":" in first:
            fail(where, f"is not a connection URI: {usage}")
            return {}
    parts = urllib.parse.urlsplit(rest)
    try:
        port = parts.port
    except ValueError:
        fail(where, "has a port that is not a number from 0 to 65535")
        return {}
    host = _hostname(parts)
    if host and with_protocol:
        host = f"{parts.scheme}://{host}"
    conn_type = "postgres" if scheme == "postgresql" else scheme.replace("-", "_")
    conn = {"conn_type": conn_type, "host": host, "port": port,
            "login": urllib.parse.unquote(parts.username) if parts.username else None,
            "password": urllib.parse.unquote(parts.password) if parts.password else None,
            "schema": urllib.parse.unquote(parts.path[1:]) or None}
    conn = {k: v for k, v in conn.items() if v}
    if parts.query:
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        if "__extra__" in query:  # Airflow's form for extras that are not flat strings
            extra = _extra(query["__extra__"], f"{where} (__extra__)", fail)
        else:
            extra = query
        if extra:
            conn["extra"] = extra
    return conn


def _hostname(parts: urllib.parse.SplitResult) -> str:
    """As Airflow's _parse_netloc_to_hostname: a host with a path in it is taken from the netloc as is."""
    hostname = urllib.parse.unquote(parts.hostname or "")
    if "/" in hostname:
        hostname = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]
        hostname = urllib.parse.unquote(hostname)
    return hostname


def _variable(entry: dict, where: str, fail: Fail) -> tuple[str | None, str | None]:
    name, value = entry.get("variable_name"), entry.get("variable_value")
    if name in (None, ""):
        fail(f"{where}.variable_name", "required field is missing: the variable has a value but no name; "
                                       "name it or remove the entry")
        return None, None
    if not isinstance(name, str) or not _CONN_ID.match(name):
        fail(f"{where}.variable_name", f"{name!r} is not valid: variable names are letters, digits, . _ -")
        return None, None
    if value is None:
        fail(f"{where}.variable_value", "has no value; give one (quote '' for an empty one) or remove the variable")
        return name, None
    if isinstance(value, str):
        return name, value
    try:  # lists, numbers, mappings are stored as JSON, as Variable.get(deserialize_json=True) reads them
        return name, json.dumps(value)
    except (TypeError, ValueError):
        fail(f"{where}.variable_value", f"a {_kind(value)} cannot be stored as JSON; quote the value")
        return name, None


def _pool(entry: dict, where: str, names: dict[str, str], fail: Fail) -> dict:
    """One pool, whichever file it comes from: `names` maps name, slots, description and
    include_deferred to the file's own field names (astro has no include_deferred)."""
    def get(key: str) -> Any:
        return entry.get(names[key]) if key in names else None

    name, slots, description = get("name"), get("slots"), get("description")
    include_deferred = False if get("include_deferred") is None else get("include_deferred")
    if name in (None, ""):
        fail(f"{where}.{names['name']}", "required field is missing: every pool needs a name")
        name = None
    elif not isinstance(name, str) or len(name) > _POOL_NAME_MAX:
        fail(f"{where}.{names['name']}", f"expected a name of up to {_POOL_NAME_MAX} characters, "
                                         f"found {_kind(name)} {name!r}")
        name = None
    if slots in (None, ""):
        fail(f"{where}.{names['slots']}", "required field is missing: how many tasks the pool runs at once "
                                          "(-1 for unlimited)")
    elif isinstance(slots, bool) or not isinstance(slots, int) or slots < -1:
        fail(f"{where}.{names['slots']}", f"expected an integer of -1 (unlimited) or more, found "
                                          f"{_kind(slots)} {slots!r}")
    description = _text(description, f"{where}.{names['description']}", fail)
    if not isinstance(include_deferred, bool):
        fail(f"{where}.include_deferred", f"expected true or false, found {_kind(include_deferred)} "
                                          f"{include_deferred!r}")
    return {"name": name, "slots": slots, "description": description, "include_deferred": include_deferred}


# --- applying pools ---------------------------------------------------------------------------
def seed_pools(client: Any, pools: list[dict], report: Report) -> None:
    """Creates or updates each pool through the REST API v2, then reads it back.

    `client` needs only `request(method, path, ok=..., **requests kwargs)` and `get(path)` (AirflowClient).
    A pool that already matches is not written ("unchanged"). default_pool exists in every Airflow
    and cannot be created; on it Airflow changes only slots and include_deferred, and only when
    the request names them in `update_mask`.
    """
    for pool in pools:
        name = pool["name"]
        path = f"pools/{urllib.parse.quote(name, safe='')}"
        resp = client.request("GET", path, ok=(200, 404))
        current = resp.json() if resp.status_code == 200 else None
        if current is None:
            if name == DEFAULT_POOL:
                raise PoolSeedError(f"pool {DEFAULT_POOL!r} is missing from Airflow, which creates it when its "
                                    "database is migrated; check that `airflow db migrate` ran")
            client.request("POST", "pools", ok=(201, 200), json=_pool_body(pool))
            outcome = "created"
        elif not _pool_differences(current, pool):
            report("airflow pool", name, "unchanged")
            continue
        elif name == DEFAULT_POOL:
            if pool["description"] is not None and current.get("description") != pool["description"]:
                raise PoolSeedError(f"pool {DEFAULT_POOL!r}: Airflow lets only slots and include_deferred change "
                                    f"on it, but the description differs ({current.get('description')!r} stored, "
                                    f"{pool['description']!r} wanted); remove the description or set it to "
                                    f"{current.get('description')!r}")
            client.request("PATCH", path, params={"update_mask": ["slots", "include_deferred"]},
                           json={"slots": pool["slots"], "include_deferred": pool["include_deferred"]})
            outcome = "updated"
        else:
            client.request("PATCH", path, json=_pool_body(pool))
            outcome = "updated"
        differences = _pool_differences(client.get(path), pool)
        if differences:
            raise PoolSeedError(f"pool {name!r} did not round-trip: stored {'; '.join(differences)}")
        report("airflow pool", name, outcome)


def _pool_body(pool: dict) -> dict:
    return {"name": pool["name"], "slots": pool["slots"], "description": pool["description"],
            "include_deferred": pool["include_deferred"]}


def _pool_differences(stored: dict, pool: dict) -> list[str]:
    keys = ["slots", "include_deferred", "description"]
    if pool["name"] == DEFAULT_POOL and pool["description"] is None:
        keys.remove("description")  # default_pool keeps Airflow's own description unless one is given
    return [f"{key} {stored.get(key)!r}, expected {pool[key]!r}" for key in keys if stored.get(key) != pool[key]]
