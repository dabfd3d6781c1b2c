"""The genomics project's end-to-end tests, written with the sandbox's pytest plugin fixtures
(`make test` with SANDBOX_PROJECT=examples/genomics runs them against the sandbox)."""
import json

EXPECTED = {"samples": ["sample-a", "sample-b", "sample-c"], "bases": 66, "gc": 35, "gc_fraction": 0.5303}


def test_qc_runs_on_ecs_and_kubernetes_and_both_agree(airflow_api, aws_session):
    run = airflow_api.run_dag("genomics_qc", timeout=600).assert_success()
    # Plain boto3 with no connection reached the emulator, as the project's aws.airflow_role.
    assert run.xcom("whoami").startswith("arn:aws:sts::000000000000:assumed-role/genomics-airflow/")
    samples = run.xcom("list_samples")
    assert [s["name"] for s in samples] == EXPECTED["samples"]
    # report: include/ code and the extra PyPI package (humanfriendly) ran in the Airflow task.
    summary = run.xcom("report")
    assert {k: summary[k] for k in EXPECTED} == EXPECTED
    assert summary["bases_text"] == "66"
    assert summary["stage"] == "sandbox"  # exported by the project's startup.sh before Airflow started
    assert "GC fraction 0.5303 over 66 bases" in run.log("report")
    # Every sample ran once as an ECS task and once as a pod, from the same image.
    assert run.states_of("qc_on_ecs") == ["success"] * 3
    assert run.states_of("qc_on_k8s") == ["success"] * 3
    assert '"sample": "sample-b"' in run.log("qc_on_ecs", map_index=1)
    assert '"sample": "sample-b"' in run.log("qc_on_k8s", map_index=1)
    # The task containers wrote their results to S3 themselves.
    s3 = aws_session.client("s3")
    for backend in ("ecs", "k8s"):
        body = s3.get_object(Bucket="genomics-lab", Key=f"qc/{run.run_id}/{backend}/sample-a.json")["Body"].read()
        assert json.loads(body) == {"sample": "sample-a", "bases": 26, "gc": 16}


def test_astro_settings_were_applied_with_their_extras(airflow_api):
    conn = airflow_api.get_connection("lims_api")
    assert (conn["conn_type"], conn["host"], json.loads(conn["extra"])) == (
        "http", "lims.example.internal", {"timeout": 30, "verify": True})
    # Not declared by the project: generated, acting as this project's aws.airflow_role.
    conn = airflow_api.get_connection("aws_default")
    # config_kwargs added too: botocore retries refused connections (an emulator restarting).
    assert json.loads(conn["extra"]) == {"region_name": "us-east-1", "endpoint_url": "http://localstack:4566",
                                         "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 10},
                                                           "connect_timeout": 5}}
    assert airflow_api.get_variable("genomics_bucket") == "genomics-lab"
    pool = airflow_api.get("pools/genomics_qc")
    assert (pool["slots"], pool["description"]) == (4, "QC tasks at once")


def test_pods_run_in_the_project_namespace(kube_client):
    assert kube_client.namespace == "genomics"
    accounts = kube_client.core_v1.list_namespaced_service_account("genomics").items
    assert "genomics-runner" in [a.metadata.name for a in accounts]
