"""`make up` on a sandbox that is running, this checkout's and unchanged restarts nothing: it runs
the bootstrap again, which seeds back what was removed by hand and says so. When the cluster under
it stopped, `make up` says that and starts it, and pods run again."""
from __future__ import annotations

import re

import pytest

from sandbox.host import stack

pytestmark = pytest.mark.e2e

SEEDED_OBJECT = ("sandbox-data", "seed/README.txt")
SEEDED_VARIABLE = "data_bucket"


def test_make_up_on_an_unchanged_sandbox_seeds_back_what_was_removed_and_restarts_nothing(
        sandbox, airflow_api, aws_session, capfd):
    s3 = aws_session.client("s3")
    bucket, key = SEEDED_OBJECT
    s3.delete_object(Bucket=bucket, Key=key)
    airflow_api.request("DELETE", f"variables/{SEEDED_VARIABLE}", ok=(204,))
    containers = stack.container_ids()
    capfd.readouterr()

    stack.up(sandbox.settings)

    out = capfd.readouterr().out
    assert "reusing the running sandbox" in out
    assert re.search(rf"created\s+s3 object\s+s3://{bucket}/{key}\n", out), out
    assert re.search(rf"created\s+airflow variable\s+{SEEDED_VARIABLE}\n", out), out
    assert re.search(r"Bootstrap done in [\d.]+s: 2 created, \d+ unchanged", out), out
    assert "Starting services" not in out and "Building" not in out
    assert stack.container_ids() == containers  # the same containers: nothing was recreated
    assert s3.get_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    assert airflow_api.get_variable(SEEDED_VARIABLE) == bucket


@pytest.mark.replaces_sandbox  # it stops the cluster node under the running sandbox
def test_make_up_notices_the_cluster_stopped_under_it_and_starts_it(sandbox, airflow_api, capfd):
    provider = stack.recorded_provider(sandbox.settings)
    if provider is None or provider.name != "offline":
        pytest.skip("needs the sandbox's own offline cluster, which it can stop")
    provider.stop()
    capfd.readouterr()

    stack.up(sandbox.settings)

    out = capfd.readouterr().out
    assert "the offline cluster does not answer as recorded" in out, out
    assert "Starting the Kubernetes node" in out
    airflow_api.run_dag("poc_k8s_operator").assert_success()
