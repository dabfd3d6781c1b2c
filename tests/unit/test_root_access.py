"""Unit tests of who the emulator takes as the account root (localstack/root_access.py; no MiniStack needed)."""

import pytest

from localstack import root_access  # the checkout's folder (pytest's pythonpath); MiniStack is imported only by apply()

pytestmark = pytest.mark.unit

ROOT_KEY = "AKIAROOTROOTROOTROOT"
ADMIN = frozenset({"169.254.170.1", "169.254.170.130"})


@pytest.mark.parametrize("key, address, root", [
    (ROOT_KEY, "169.254.170.1", True),     # the host, through the published port
    (ROOT_KEY, "169.254.170.130", True),   # bootstrap, the reseeder, the metrics service
    (ROOT_KEY, "127.0.0.1", True),         # the emulator itself
    (ROOT_KEY, None, True),                # no request: the emulator's own threads
    ("", "169.254.170.1", True),           # unsigned from the host (curl)
    (ROOT_KEY, "169.254.170.140", False),  # a task container, a pod's node, Airflow
    ("", "169.254.170.140", False),        # unsigned from a task: anonymous, not root
    ("test", "169.254.170.1", False),      # LocalStack's convention is no key here, from anywhere
    ("test", "127.0.0.1", False),
    ("000000000000", "169.254.170.1", False),  # MiniStack's account-id keys neither
    ("AKIAOTHER", "169.254.170.1", False),
])
def test_only_the_root_key_from_an_admin_address_is_root(key, address, root):
    assert root_access.is_root(key, address, ROOT_KEY, ADMIN) is root


def test_without_a_configured_root_key_nothing_is_root():
    assert not root_access.is_root("", "127.0.0.1", "", ADMIN)


def test_refusals_name_the_key_and_say_what_to_do():
    assert "Access key test is not a key of this sandbox" in root_access.refusal("test", "169.254.170.140", ROOT_KEY)
    assert "taskRoleArn" in root_access.refusal("test", "169.254.170.140", ROOT_KEY)
    said = root_access.refusal(ROOT_KEY, "169.254.170.140", ROOT_KEY)
    assert f"Access key {ROOT_KEY} is the sandbox's account root" in said and "not from 169.254.170.140" in said
    assert "not signed" in root_access.refusal("", "169.254.170.140", ROOT_KEY)


def test_the_host_is_the_default_gateway():
    routes = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
              "eth0\t00000000\t01AAFEA9\t0003\t0\t0\t0\t00000000\n"
              "eth0\t00AAFEA9\t00000000\t0001\t0\t0\t0\t00FFFFFF\n")
    assert root_access.default_gateway(routes) == "169.254.170.1"
    assert root_access.default_gateway("Iface\tDestination\tGateway\n") is None


def test_admin_services_are_this_projects_by_compose_labels():
    def container(project, service, *addresses):
        return {"Labels": {"com.docker.compose.project": project, "com.docker.compose.service": service},
                "NetworkSettings": {"Networks": {f"n{i}": {"IPAddress": a} for i, a in enumerate(addresses)}}}
    containers = [container("airflow-sandbox", "bootstrap", "169.254.170.130"),
                  container("airflow-sandbox", "metrics", "169.254.170.131", "172.18.0.5"),
                  container("airflow-sandbox", "airflow-scheduler", "169.254.170.132"),
                  container("other-checkout", "bootstrap", "169.254.171.130"),
                  {"Labels": {}, "NetworkSettings": {"Networks": {"n": {"IPAddress": "169.254.170.140"}}}}]
    assert root_access.service_addresses(containers, "airflow-sandbox", {"bootstrap", "reseeder", "metrics"}) == {
        "169.254.170.130", "169.254.170.131", "172.18.0.5"}


def test_the_metadata_endpoints_are_asked_unsigned_and_everything_else_by_address():
    assert root_access.request_address({"type": "http", "path": "/v2/credentials/abc", "client": ("169.254.170.140", 1)}) is None
    assert root_access.request_address({"type": "http", "path": "/v4/token/task", "client": ("169.254.170.140", 1)}) is None
    assert root_access.request_address({"type": "http", "path": "/", "client": ("169.254.170.140", 1)}) == "169.254.170.140"
    assert root_access.request_address({"type": "http", "path": "/sandbox-data/v2/credentials/x",
                                        "client": ("169.254.170.140", 1)}) == "169.254.170.140"
    assert root_access.request_address({"type": "http", "path": "/", "client": None}) == ""
    assert root_access.request_address({"type": "lifespan"}) is None
