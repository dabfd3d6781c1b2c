"""The pytest plugin (sandbox/testing): DagRun results read through a fake Airflow client, the failure
message with each failed task's log tail, the AWS session's emulator endpoint, the cluster client,
and the plugin's registration (entry point, or conftest in a venv without the package)."""
from __future__ import annotations

import importlib.metadata
import sys
import textwrap
from pathlib import Path

import boto3
import pytest

from sandbox.core import kubeconfig as kc
from sandbox.host.settings import ROOT, Settings
from sandbox.testing.aws import EmulatorSession
from sandbox.testing.dag_runs import AirflowApi, DagRun
from sandbox.testing.kube import NoCluster, open_recorded_cluster
from sandbox.testing.plugin import Sandbox

pytestmark = pytest.mark.unit
pytest_plugins = ["pytester"]

FIXTURES = ("sandbox", "airflow_api", "aws_session", "kube_client")


class FakeAirflowClient:
    """What DagRun and AirflowApi use of AirflowClient, answering from dicts; records the calls."""

    def __init__(self, task_instances: list[dict], state: str = "success", xcoms: dict | None = None,
                 logs: dict | None = None):
        self.tis, self.state = task_instances, state
        self.xcoms, self.logs = xcoms or {}, logs or {}
        self.calls: list[tuple] = []

    def run_dag(self, dag_id, conf=None, timeout=300):
        self.calls.append(("run_dag", dag_id, conf, timeout))
        return "manual__2026-11-25T10:00:00+00:00", self.state, 12.5

    def task_instances(self, dag_id, run_id):
        return [dict(ti) for ti in self.tis]

    def xcom(self, dag_id, run_id, task_id, key="return_value", map_index=-1):
        self.calls.append(("xcom", task_id, key, map_index))
        return self.xcoms[(task_id, key, map_index)]

    def task_log(self, dag_id, run_id, task_id, try_number=None, map_index=-1):
        self.calls.append(("task_log", task_id, try_number, map_index))
        log = self.logs[(task_id, map_index)]
        if isinstance(log, Exception):
            raise log
        return log

    def get_connection(self, conn_id):
        return {"connection_id": conn_id, "conn_type": "aws"}


def ti(task_id: str, state: str, map_index: int = -1, try_number: int = 1) -> dict:
    return {"task_id": task_id, "state": state, "map_index": map_index, "try_number": try_number}


FAN_OUT = [ti("list_cases", "success"), ti("case", "success", 2), ti("case", "success", 0, try_number=2),
           ti("case", "success", 1), ti("other_case", "skipped"), ti("aggregate", "success")]


def run_of(client: FakeAirflowClient, dag_id: str = "import_vcf", conf: dict | None = None) -> DagRun:
    return AirflowApi(client).run_dag(dag_id, conf)


# --- DagRun -----------------------------------------------------------------------------------
def test_run_dag_returns_the_finished_run_with_mapped_instances_named_by_index():
    client = FakeAirflowClient(FAN_OUT)
    run = run_of(client, conf={"max_cases": 3})
    assert (run.dag_id, run.run_id, run.state, run.seconds, run.conf) == (
        "import_vcf", "manual__2026-11-25T10:00:00+00:00", "success", 12.5, {"max_cases": 3})
    assert client.calls == [("run_dag", "import_vcf", {"max_cases": 3}, 300)]
    assert run.task_states == {"aggregate": "success", "case[0]": "success", "case[1]": "success",
                               "case[2]": "success", "list_cases": "success", "other_case": "skipped"}
    assert run.map_indexes("case") == [0, 1, 2] and run.map_indexes("list_cases") == []
    assert run.states_of("other_case") == ["skipped"]
    assert [t["map_index"] for t in run.instances_of("case")] == [0, 1, 2]


def test_xcom_of_a_mapped_task_is_each_instances_value_by_map_index():
    xcoms = {("case", "return_value", i): {"case": f"c{i}"} for i in range(3)}
    xcoms[("list_cases", "return_value", -1)] = ["c0", "c1", "c2"]
    xcoms[("case", "result_key", 1)] = "results/c1.json"
    run = run_of(FakeAirflowClient(FAN_OUT, xcoms=xcoms))
    assert run.xcom("list_cases") == ["c0", "c1", "c2"]
    assert run.xcom("case") == [{"case": "c0"}, {"case": "c1"}, {"case": "c2"}]
    assert run.xcom("case", map_index=1) == {"case": "c1"}
    assert run.xcom("case", key="result_key", map_index=1) == "results/c1.json"
    assert ("xcom", "list_cases", "return_value", -1) in run.client.calls


def test_log_reads_one_instance_by_map_index_and_its_last_try():
    logs = {("case", 0): "case 0 log", ("list_cases", -1): "listed 3 cases"}
    run = run_of(FakeAirflowClient(FAN_OUT, logs=logs))
    assert run.log("list_cases") == "listed 3 cases"
    assert run.log("case", map_index=0) == "case 0 log"
    assert run.client.calls[-1] == ("task_log", "case", 2, 0)  # case[0] is on its second try
    run.log("case", map_index=0, try_number=1)
    assert run.client.calls[-1] == ("task_log", "case", 1, 0)
    with pytest.raises(ValueError, match=r"case is mapped .*: pass map_index= one of \[0, 1, 2\]"):
        run.log("case")
    with pytest.raises(ValueError, match=r"no task 'nope'; its tasks: \['aggregate', 'case', 'list_cases'"):
        run.log("nope")


def test_a_failed_run_fails_its_assertion_with_each_failed_tasks_log_tail():
    tis = [ti("count", "failed", try_number=2), ti("case", "success", 0), ti("case", "failed", 1),
           ti("aggregate", "upstream_failed", try_number=0)]
    logs = {("count", -1): "\n".join(f"count line {n:03}" for n in range(1, 101)),
            ("case", 1): "reading case c1\nValueError: c1.vcf.gz is not bgzipped"}
    run = run_of(FakeAirflowClient(tis, state="failed", logs=logs), "poc_ecs_operator", {"count_to": 3})
    with pytest.raises(AssertionError) as failure:
        run.assert_success()
    message = str(failure.value)
    assert message.startswith("poc_ecs_operator run manual__2026-11-25T10:00:00+00:00 ended 'failed' after 12.5s "
                              "(conf {'count_to': 3})")
    assert "'aggregate': 'upstream_failed'" in message and "'case[0]': 'success'" in message
    assert "--- count failed; the last 40 lines of its log (try 2):" in message
    assert "count line 061" in message and "count line 100" in message and "count line 060" not in message
    assert "--- case[1] failed; the last 2 lines of its log (try 1):\nreading case c1\n" \
           "ValueError: c1.vcf.gz is not bgzipped" in message
    assert "aggregate failed" not in message  # upstream_failed tasks never ran: no log to show
    assert "failed=['case[1]', 'count']" in repr(run)


def test_an_unreadable_log_is_reported_not_raised():
    client = FakeAirflowClient([ti("count", "failed")], state="failed",
                               logs={("count", -1): RuntimeError("HTTP 404: TaskInstance not found")})
    with pytest.raises(AssertionError, match="count failed; its log could not be read: HTTP 404"):
        run_of(client).assert_success()


def test_a_successful_run_passes_its_assertion_and_is_returned():
    run = run_of(FakeAirflowClient(FAN_OUT))
    assert run.assert_success() is run


def test_airflow_api_records_timings_and_offers_the_clients_methods():
    timings: list = []
    api = AirflowApi(FakeAirflowClient(FAN_OUT), timings=timings)
    api.run_dag("import_vcf", {"backend": "k8s"}, timeout=600)
    assert timings == [("import_vcf", "{'backend': 'k8s'}", "success", 12.5)]
    assert api.get_connection("aws_default")["conn_type"] == "aws"


# --- aws_session ------------------------------------------------------------------------------
def test_aws_session_clients_default_to_the_emulator_endpoint():
    session = EmulatorSession("http://127.0.0.1:4566", aws_access_key_id="AKIAROOT", aws_secret_access_key="s")
    assert isinstance(session, boto3.Session)
    assert session.region_name == "us-east-1"
    assert session.get_credentials().access_key == "AKIAROOT"
    for service in ("s3", "ecs", "logs"):
        assert session.client(service).meta.endpoint_url == "http://127.0.0.1:4566"
    assert session.resource("s3").meta.client.meta.endpoint_url == "http://127.0.0.1:4566"
    other = session.client("s3", endpoint_url="http://127.0.0.1:9000")
    assert other.meta.endpoint_url == "http://127.0.0.1:9000"
    assert session.client("s3", region_name="eu-west-1").meta.region_name == "eu-west-1"


def test_the_sandbox_object_carries_urls_and_the_seeded_region(tmp_path):
    config = tmp_path / "sandbox.yaml"
    config.write_text("aws:\n  region: eu-central-1\n")
    sandbox = Sandbox.from_settings(Settings({"AIRFLOW_PORT": "8081", "LOCALSTACK_PORT": "4599"}), config)
    assert (sandbox.airflow_url, sandbox.aws_endpoint) == ("http://127.0.0.1:8081", "http://127.0.0.1:4599")
    assert sandbox.admin == ("admin", "admin") and sandbox.region == "eu-central-1"
    assert Sandbox.from_settings(Settings({}), tmp_path / "missing.yaml").region == "us-east-1"


def test_the_aws_session_fixture_uses_the_sandbox_endpoint_and_region(pytester):
    """The real fixture, on a `sandbox` overridden so that nothing starts."""
    load_plugin(pytester, """
        from sandbox.host.settings import ROOT, Settings
        from sandbox.testing.plugin import Sandbox

        @pytest.fixture(scope="session")
        def sandbox(tmp_path_factory):
            config = tmp_path_factory.mktemp("cfg") / "sandbox.yaml"
            config.write_text("aws:\\n  region: eu-west-1\\n")
            return Sandbox.from_settings(Settings({"LOCALSTACK_PORT": "4599", "SANDBOX_ROOT_ACCESS_KEY_ID": "AKIAROOT",
                                                   "SANDBOX_ROOT_SECRET_ACCESS_KEY": "s"}), config)
    """)
    pytester.makepyfile("""
        import boto3

        def test_session(aws_session):
            assert isinstance(aws_session, boto3.Session) and aws_session.region_name == "eu-west-1"
            assert aws_session.client("s3").meta.endpoint_url == "http://127.0.0.1:4599"
            assert aws_session.get_credentials().access_key == "AKIAROOT"  # the checkout's account root
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


# --- kube_client ------------------------------------------------------------------------------
def test_no_recorded_cluster_says_why():
    with pytest.raises(NoCluster, match=r"no Kubernetes cluster \(K8S_PROVIDER=none; `make up` recorded none\)"):
        open_recorded_cluster({}, Path("/nonexistent"), "none")
    with pytest.raises(NoCluster, match="host kubeconfig /nonexistent/host.yaml is missing"):
        open_recorded_cluster({"provider": "kind", "server": "https://127.0.0.1:6443"},
                              Path("/nonexistent/host.yaml"))


def test_the_recorded_cluster_opens_a_kubernetes_api_client(tmp_path):
    kubernetes = pytest.importorskip("kubernetes")
    pem = "-----BEGIN CERTIFICATE-----\nMIIBsandbox\n-----END CERTIFICATE-----\n"
    path = tmp_path / "host.yaml"
    path.write_text(kc.dump(kc.make_kubeconfig("https://127.0.0.1:6443", pem, pem, "key")))
    record = {"provider": "offline", "server": "https://127.0.0.1:6443", "namespace": "airflow-tasks"}
    with open_recorded_cluster(record, path) as kube:  # nothing is contacted before the first request
        assert isinstance(kube.api_client, kubernetes.client.ApiClient)
        assert kube.api_client.configuration.host == "https://127.0.0.1:6443"
        assert kube.api_client.configuration.verify_ssl is True
        assert isinstance(kube.core_v1, kubernetes.client.CoreV1Api) and kube.core_v1.api_client is kube.api_client
        assert (kube.namespace, kube.provider) == ("airflow-tasks", "offline")


# --- registration -----------------------------------------------------------------------------
def load_plugin(pytester, conftest_body: str = "") -> None:
    """A conftest like tests/conftest.py: registers the plugin unless the entry point did."""
    pytester.makeconftest("import pytest\nfrom sandbox.testing.plugin import ensure_registered\n\n"
                          "def pytest_configure(config):\n    ensure_registered(config)\n    ensure_registered(config)\n"
                          + textwrap.dedent(conftest_body))


def fixture_names(output: str) -> set[str]:
    return {name for name in FIXTURES if f"{name} [session scope]" in output}


def test_the_plugin_provides_its_fixtures_once_and_can_be_blocked(pytester):
    load_plugin(pytester)
    shown = pytester.runpytest("--fixtures", "-v").stdout.str()
    assert all(shown.count(f"{name} [session scope]") == 1 for name in FIXTURES), shown
    # Each fixture's docstring carries its example.
    for example in ("def test_airflow_answers(sandbox):", 'run = airflow_api.run_dag("poc_ecs_operator"',
                    's3 = aws_session.client("s3")', "kube_client.core_v1.list_namespaced_pod("):
        assert example in shown
    blocked = pytester.runpytest("--fixtures", "-p", "no:sandbox")
    assert fixture_names(blocked.stdout.str()) == set()


def test_the_dag_run_summary_lists_every_run(pytester):
    load_plugin(pytester)
    pytester.makepyfile("""
        from sandbox.testing.dag_runs import AirflowApi
        from sandbox.testing.plugin import DAG_RUN_TIMINGS

        class Client:
            def run_dag(self, dag_id, conf, timeout):
                return "manual__1", "success", 4.25

            def task_instances(self, dag_id, run_id):
                return []

        def test_run(pytestconfig):
            AirflowApi(Client(), timings=pytestconfig.stash[DAG_RUN_TIMINGS]).run_dag("poc_ecs_operator", {"count_to": 3})
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*DAG runs (trigger to finish)*",
                                 "poc_ecs_operator*{'count_to': 3}*success*4.2s"])


def installed_entry_point():
    """The `sandbox` pytest11 entry point of the package installed in this venv. Not the checkout's own
    metadata: `pip install -e .` leaves an .egg-info in the checkout, which sys.path (the checkout, for
    `python -m pytest` there) also shows, but a project elsewhere would not see."""
    elsewhere = [p for p in sys.path if p and Path(p).resolve() != ROOT]
    for dist in importlib.metadata.distributions(path=elsewhere):
        for entry_point in dist.entry_points:
            if entry_point.group == "pytest11" and entry_point.name == "sandbox":
                return entry_point
    return None


@pytest.mark.skipif(installed_entry_point() is None,
                    reason="the package is not installed in this venv (pip install --no-deps -e .)")
def test_the_installed_entry_point_loads_the_plugin_and_the_conftest_does_not_load_it_again(pytester):
    assert installed_entry_point().value == "sandbox.testing.plugin"
    plain = pytester.runpytest_subprocess("--fixtures")  # no conftest: the entry point alone
    assert fixture_names(plain.stdout.str()) == set(FIXTURES), plain.stdout.str()
    load_plugin(pytester)  # and tests/conftest.py's way on top of it: no double registration
    both = pytester.runpytest_subprocess("--fixtures")
    assert both.ret == 0, both.stderr.str()
    assert all(both.stdout.str().count(f"{name} [session scope]") == 1 for name in FIXTURES), both.stdout.str()


# --- a sandbox that stops answering -------------------------------------------------------------
def test_aws_session_clients_give_up_on_a_hung_emulator_in_seconds_not_minutes():
    session = EmulatorSession("http://127.0.0.1:4566")
    config = session.client("ecs").meta.config
    assert (config.connect_timeout, config.read_timeout) == (5, 30)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    from botocore.config import Config
    own = session.client("ecs", config=Config(read_timeout=300)).meta.config
    assert (own.read_timeout, own.connect_timeout) == (300, 5)


@pytest.fixture
def services(monkeypatch):
    """An emulator port that accepts connections and never answers (hung), and one that answers."""
    import http.server
    import socket
    import threading

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Ok", (http.server.BaseHTTPRequestHandler,), {
        "do_GET": lambda self: (self.send_response(200), self.end_headers()),
        "log_message": lambda self, *a: None}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr("sandbox.testing.plugin.PROBE_TIMEOUT_SECONDS", 1)
    yield {"hung": hung.getsockname()[1], "answering": server.server_address[1]}
    server.shutdown()
    hung.close()


@pytest.mark.parametrize("emulator, outcomes", [
    ("hung", {"failed": 1}),                    # the session stops: test_b would only wait
    ("answering", {"failed": 1, "passed": 1}),  # an ordinary failure: the session goes on
])
def test_a_failure_with_the_sandbox_not_answering_stops_the_session(pytester, services, emulator, outcomes):
    load_plugin(pytester, f"""
        from sandbox.host.settings import Settings
        from sandbox.testing.plugin import ACTIVE_SANDBOX, Sandbox

        @pytest.fixture(scope="session")
        def sandbox(pytestconfig, tmp_path_factory):
            settings = Settings({{"LOCALSTACK_PORT": "{services[emulator]}",
                                  "AIRFLOW_PORT": "{services['answering']}"}})
            box = Sandbox.from_settings(settings, tmp_path_factory.mktemp("cfg") / "sandbox.yaml")
            pytestconfig.stash[ACTIVE_SANDBOX] = box
            return box
    """)
    pytester.makepyfile("""
        def test_a(sandbox):
            assert False, "the emulator's call timed out"

        def test_b(sandbox):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(**outcomes)
    stopped = "the sandbox stopped answering after test_a_failure" in result.stdout.str()
    assert stopped is (emulator == "hung")
