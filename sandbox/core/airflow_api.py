"""A small client for Airflow's REST API: v2 on Airflow 3 (a JWT from POST /auth/token), v1 on Airflow 2
(basic auth). Which one is asked once, from the health endpoint each version has.

Bootstrap uses it to seed connections and variables; tests and the benchmark use it to trigger
DAG runs and read their outcome (states, XComs, task logs).
"""
from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import requests

from sandbox.core.poll import NotYet, wait_until

TERMINAL_RUN_STATES = {"success", "failed"}
DAGS_FOLDER = "/opt/airflow/dags"  # where compose.yaml mounts the project's dags/


@dataclass(frozen=True)
class ApiVersion:
    """What differs between Airflow's REST APIs, for what this client asks."""
    name: str
    prefix: str       # every path below it
    health: str       # answers without login on both
    jwt: bool         # v2: a bearer token from /auth/token; v1: basic auth (auth_backends basic_auth)


API_V2 = ApiVersion("v2", "/api/v2", "/api/v2/monitor/health", jwt=True)
API_V1 = ApiVersion("v1", "/api/v1", "/api/v1/health", jwt=False)


class AirflowApiError(RuntimeError):
    pass


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self.username, self.password = username, password
        self.timeout = timeout
        self.session = requests.Session()
        self._token: str | None = None
        self._api: ApiVersion | None = None

    @property
    def api(self) -> ApiVersion:
        """The API this Airflow speaks: v2 where its health endpoint answers, else v1."""
        if self._api is None:
            for api in (API_V2, API_V1):
                resp = self.session.get(f"{self.base_url}{api.health}", timeout=self.timeout)
                if resp.status_code != 404:
                    self._api = api
                    break
            else:
                raise AirflowApiError(f"{self.base_url} answers neither {API_V2.health} nor {API_V1.health}: "
                                      "not an Airflow API server")
            if not self._api.jwt:
                self.session.auth = (self.username, self.password)
        return self._api

    # --- plumbing -------------------------------------------------------------------------
    def _authenticate(self) -> None:
        resp = self.session.post(f"{self.base_url}/auth/token", timeout=self.timeout,
                                 json={"username": self.username, "password": self.password})
        if resp.status_code not in (200, 201):
            raise AirflowApiError(f"login as {self.username!r} at {self.base_url}/auth/token failed: "
                                  f"HTTP {resp.status_code} {resp.text[:300]} (check AIRFLOW_ADMIN_* in .env)")
        self._token = resp.json()["access_token"]

    def request(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kw) -> requests.Response:
        api = self.api
        if api.jwt and self._token is None:
            self._authenticate()
        url = f"{self.base_url}{api.prefix}/{path.lstrip('/')}"
        for attempt in (1, 2):
            headers = {**kw.pop("headers", {}), **({"Authorization": f"Bearer {self._token}"} if api.jwt else {})}
            resp = self.session.request(method, url, timeout=self.timeout, headers=headers, **kw)
            if resp.status_code == 401 and api.jwt and attempt == 1:  # token expired
                self._authenticate()
                continue
            break
        if resp.status_code not in ok:
            raise AirflowApiError(f"{method} {url}: HTTP {resp.status_code}: {resp.text[:500]}")
        return resp

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params or None).json()

    @staticmethod
    def quote(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    # --- readiness ------------------------------------------------------------------------
    def wait_until_healthy(self, timeout: float = 300) -> None:
        def healthy() -> bool:
            try:
                resp = self.session.get(f"{self.base_url}{self.api.health}", timeout=5)
                database = resp.json().get("metadatabase", {}).get("status") if resp.ok else None
            except requests.RequestException as exc:
                raise NotYet(str(exc)) from exc
            if database != "healthy":
                raise NotYet(resp.text[:200])
            return True

        wait_until(healthy, timeout=timeout, interval=2, what=f"Airflow at {self.base_url} healthy",
                   error=AirflowApiError)

    def warm_execution_api(self, timeout: float = 120) -> None:
        """Airflow 3 builds its Execution API's versioned routes (Cadwyn) on that API's first request:
        ~5 CPU-seconds, during which the api-server answers nothing. Asked once here, the first task's
        `/run` does not wait for it. Airflow 2 (API v1) has no Execution API."""
        if not self.api.jwt:
            return
        url = f"{self.base_url}/execution/health"
        try:
            self.session.get(url, timeout=timeout).raise_for_status()
        except requests.RequestException as exc:
            raise AirflowApiError(f"Airflow's Execution API ({url}), which tasks report to, does not answer: {exc}") from exc

    # --- connections and variables --------------------------------------------------------
    def get_connection(self, conn_id: str) -> dict | None:
        resp = self.request("GET", f"connections/{self.quote(conn_id)}", ok=(200, 404))
        return resp.json() if resp.status_code == 200 else None

    def put_connection(self, body: dict) -> str:
        """Creates or updates a connection; returns "created", "updated" or "unchanged"."""
        current = self.get_connection(body["connection_id"])
        if current is None:
            self.request("POST", "connections", ok=(201, 200), json=body)
            return "created"
        # The API masks passwords, so they cannot be compared; rewriting one that is equal changes nothing.
        same = all(_same_field(current.get(k), v) for k, v in body.items() if k != "password")
        if same and "password" not in body:
            return "unchanged"
        self.request("PATCH", f"connections/{self.quote(body['connection_id'])}", json=body)
        return "unchanged" if same else "updated"

    def delete_connection(self, conn_id: str) -> bool:
        """Removes a connection; False when there was none."""
        return self.request("DELETE", f"connections/{self.quote(conn_id)}", ok=(204, 404)).status_code == 204

    def get_variable(self, key: str) -> str | None:
        resp = self.request("GET", f"variables/{self.quote(key)}", ok=(200, 404))
        return resp.json()["value"] if resp.status_code == 200 else None

    def put_variable(self, key: str, value: str, description: str | None = None) -> str:
        current = self.get_variable(key)
        body = {"key": key, "value": value}
        if description is not None:  # v1 refuses a null description
            body["description"] = description
        if current is None:
            self.request("POST", "variables", ok=(201, 200), json=body)
            return "created"
        if current == value:
            return "unchanged"
        self.request("PATCH", f"variables/{self.quote(key)}", json=body)
        return "updated"

    # --- DAGs and runs --------------------------------------------------------------------
    def dag_ids(self) -> list[str]:
        return [d["dag_id"] for d in self.get("dags", limit=1000)["dags"]]

    def dag_files(self) -> set[str]:
        """The files (relative to the DAGs folder) of the DAGs Airflow lists as current: a deleted
        file's DAG is kept, as stale (v2) or inactive (v1), and not counted."""
        dags = self.get("dags", limit=1000)["dags"]
        if self.api.jwt:
            return {d["relative_fileloc"] for d in dags if d.get("is_stale") is not True}
        return {_in_dags_folder(d["fileloc"]) for d in dags if d.get("is_active", True)}

    def import_errors(self) -> list[dict]:
        """Each with `filename` relative to the DAGs folder (v1 gives the absolute path)."""
        errors = self.get("importErrors", limit=1000)["import_errors"]
        return [{**e, "filename": _in_dags_folder(e.get("filename") or "")} for e in errors]

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        def listed() -> bool:
            missing = sorted(set(dag_ids) - set(self.dag_ids()))
            if missing:
                raise NotYet(f"missing {missing}")
            return True

        def with_import_errors(message: str) -> AirflowApiError:
            errors = "; ".join(f"{e['filename']}: {e['stack_trace'][-300:]}" for e in self.import_errors())
            return AirflowApiError(f"{message}. Import errors: {errors or 'none'}")

        wait_until(listed, timeout=timeout, interval=2, what="DAGs listed", error=with_import_errors)

    def trigger_dag(self, dag_id: str, conf: dict | None = None) -> str:
        from datetime import datetime, timezone
        body = {"conf": conf or {}}
        if self.api.jwt:  # v2 needs it (None for no date); v1 sets now when it is left out
            body["logical_date"] = datetime.now(timezone.utc).isoformat()
        return self.request("POST", f"dags/{dag_id}/dagRuns", json=body).json()["dag_run_id"]

    def wait_for_dag_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        def finished() -> dict:
            run = self.get(f"dags/{dag_id}/dagRuns/{self.quote(run_id)}")
            if run["state"] not in TERMINAL_RUN_STATES:
                raise NotYet(f"still {run['state']}")
            return run

        def with_task_states(message: str) -> AirflowApiError:
            return AirflowApiError(f"{message}; tasks: {self.task_states(dag_id, run_id)}")

        return wait_until(finished, timeout=timeout, interval=1, what=f"{dag_id} run {run_id} finished",
                          error=with_task_states)

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 300) -> tuple[str, str, float]:
        """Triggers a run, waits for it to finish; returns (run_id, state, seconds from trigger)."""
        started = time.monotonic()
        run_id = self.trigger_dag(dag_id, conf)
        state = self.wait_for_dag_run(dag_id, run_id, timeout)["state"]
        return run_id, state, time.monotonic() - started

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of the run, mapped ones once per map_index (their `map_index` >= 0)."""
        path = f"dags/{dag_id}/dagRuns/{self.quote(run_id)}/taskInstances"
        items: list[dict] = []
        while True:  # Airflow caps a page at [api] maximum_page_limit (100): a wide fan-out needs several
            page = self.get(path, limit=100, offset=len(items))
            items += page["task_instances"]
            if not page["task_instances"] or len(items) >= page.get("total_entries", 0):
                return items

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {t["task_id"]: t["state"] for t in self.task_instances(dag_id, run_id)}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """One XCom of this run; `map_index` picks a mapped task's instance (-1: an unmapped task)."""
        # include_prior_dates defaults to true: without this, a value missing in this run would be
        # answered with an earlier run's.
        params = {"deserialize": "true", "map_index": map_index}
        if self.api.jwt:  # v1 answers this run's only, and refuses the parameter
            params["include_prior_dates"] = "false"
        else:  # v1 (Airflow 2: [api] enable_xcom_deserialize_support) gives repr() text unless told not to
            params["stringify"] = "false"
        return self.get(f"dags/{dag_id}/dagRuns/{self.quote(run_id)}/taskInstances/{task_id}/xcomEntries/{key}",
                        **params)["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None,
                 map_index: int = -1) -> str:
        """The task's log as text; by default its latest try's. `map_index` picks a mapped task's instance."""
        if try_number is None:
            try_number = max(1, next(ti["try_number"] for ti in self.task_instances(dag_id, run_id)
                                     if ti["task_id"] == task_id and ti.get("map_index", -1) == map_index))
        data = self.request("GET", f"dags/{dag_id}/dagRuns/{self.quote(run_id)}/taskInstances/{task_id}/logs/"
                                   f"{try_number}", params={"full_content": "true", "map_index": map_index},
                            headers={"Accept": "application/json"}).json()
        content = data.get("content")
        if isinstance(content, str):
            return _v1_log_text(content)
        if not isinstance(content, list):
            return str(content)
        lines = []
        for line in content:  # structured log lines; exceptions come as error_detail
            if not isinstance(line, dict):
                lines.append(str(line))
                continue
            lines.append(str(line.get("event", "")))
            for error in line.get("error_detail") or []:
                lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
        return "\n".join(lines)


def _in_dags_folder(path: str) -> str:
    return path.removeprefix(DAGS_FOLDER + "/")


def _v1_log_text(content: str) -> str:
    """Airflow 2's JSON log: the repr of [(host, text), ...] (one per log source), or plain text."""
    import ast
    if content.startswith("[("):
        try:
            return "\n".join(str(part[1]) for part in ast.literal_eval(content))
        except (ValueError, SyntaxError, IndexError, TypeError):
            pass
    return content


def _same_field(current: Any, desired: Any) -> bool:
    """Connection fields compare as Airflow returns them; `extra` is compared as parsed JSON."""
    import json
    if isinstance(desired, str) and isinstance(current, str) and desired.startswith("{"):
        try:
            return json.loads(current) == json.loads(desired)
        except ValueError:
            pass
    return current == desired
