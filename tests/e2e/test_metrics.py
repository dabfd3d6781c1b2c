"""What the metrics service measures and what the cost report says, checked against truths known
here: a load that uses a known amount of CPU and memory on both backends, the ECS figures in AWS's
Container Insights shape in the emulator's CloudWatch, costs recomputed from sandbox.yaml's price
table without the project's pricing code, a run the sampler missed, and the Airflow UI's Cost tab in
a real browser (Debian's headless Chromium)."""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

import pytest
import requests
import yaml

from sandbox.core.airflow_api import AirflowClient
from sandbox.core.poll import NotYet, wait_until
from sandbox.host.report import MetricsService
from sandbox.host.settings import ROOT

pytestmark = pytest.mark.e2e
quote = AirflowClient.quote
CPU_SECONDS, MEMORY_MIB, TOLERANCE = 3.0, 200, 0.15
LOAD_TASKS = {"ecs": "ecs_load", "k8s": "k8s_load"}
# Fargate's task sizes for 1 vCPU (GiB), from AWS's task-size table.
FARGATE_1_VCPU_GB = range(2, 9)


def row(report: dict, task_id: str, map_index: int = -1) -> dict:
    return next(t for t in report["tasks"] if t["task_id"] == task_id and t["map_index"] == map_index)


@pytest.fixture(scope="module")
def known_load(sandbox, airflow_api):
    run = airflow_api.run_dag("known_load", {"cpu_seconds": CPU_SECONDS, "memory_mib": MEMORY_MIB}).assert_success()
    # The report once the sampler has finished both tasks (it ends an ECS task 2 s after it exits).
    return run, MetricsService(sandbox.settings.metrics_url).final_report(run.dag_id, run.run_id,
                                                                          set(LOAD_TASKS.values()))


@pytest.mark.parametrize("backend", ["ecs", "k8s"])
def test_known_load_is_measured_within_15_percent(known_load, backend):
    run, report = known_load
    task = row(report, LOAD_TASKS[backend])
    assert task["backend"] == backend and task["measured"]
    # What the load itself says it used (getrusage), next to what it was asked to use.
    used = float(re.search(r"known load: used ([\d.]+) CPU-s", run.log(LOAD_TASKS[backend])).group(1))
    assert used >= CPU_SECONDS
    assert abs(task["cpu_seconds"] - used) / used <= TOLERANCE, (task["cpu_seconds"], used)
    assert abs(task["peak_memory_mib"] - MEMORY_MIB) / MEMORY_MIB <= TOLERANCE, task["peak_memory_mib"]
    assert task["wall_seconds"] >= 1 and task["requested"] == {"cpu_vcpu": 1.0, "memory_mib": 2048.0}
    assert len(task["samples"]["t"]) >= 4 and max(task["samples"]["cpu_cores"]) > 0.5


def test_ecs_task_is_published_as_container_insights(known_load, aws_session):
    _, report = known_load
    task = row(report, "ecs_load")
    task_id = task["resource"].rsplit("/", 1)[-1]
    start = datetime.fromisoformat(task["started_at"]) - timedelta(seconds=5)
    end = datetime.fromisoformat(task["ended_at"]) + timedelta(seconds=5)
    dims = [{"Name": "ClusterName", "Value": "sandbox"}, {"Name": "TaskDefinitionFamily", "Value": "known-load"},
            {"Name": "TaskId", "Value": task_id}]
    query = lambda name, stat: {"Id": name.lower(), "ReturnData": True, "MetricStat": {  # noqa: E731
        "Metric": {"Namespace": "ECS/ContainerInsights", "MetricName": name, "Dimensions": dims},
        "Period": 1, "Stat": stat}}
    data = aws_session.client("cloudwatch").get_metric_data(
        MetricDataQueries=[query("CpuUtilized", "Average"), query("MemoryUtilized", "Maximum")],
        StartTime=start, EndTime=end)["MetricDataResults"]
    cpu, memory = (next(r["Values"] for r in data if r["Id"] == i) for i in ("cpuutilized", "memoryutilized"))
    assert cpu and memory
    # CpuUtilized is in CPU units (1024 per vCPU), averaged over each 1-second period.
    assert abs(sum(cpu) / 1024 - task["cpu_seconds"]) / task["cpu_seconds"] <= TOLERANCE
    assert abs(max(memory) - task["peak_memory_mib"]) / task["peak_memory_mib"] <= TOLERANCE


def test_costs_match_the_price_table(known_load):
    """Every cost figure of the run, recomputed from sandbox.yaml's prices and the report's own
    measurements (sizes, wall times) with AWS's billing rules, sharing no code with the report."""
    _, report = known_load
    prices = yaml.safe_load((ROOT / "sandbox.yaml").read_text())["prices"]
    fargate, eks, mwaa = prices["fargate"], prices["eks"], prices["mwaa"]
    ecs, pod = row(report, "ecs_load"), row(report, "k8s_load")

    def on_fargate(vcpu, gb, wall):
        return max(fargate["minimum_seconds"], math.ceil(wall)) * (vcpu * fargate["vcpu_hour"] + gb * fargate["gb_hour"]) / 3600

    # ECS bills the task definition's size; EKS on Fargate rounds the pod's requests plus 256 MiB up
    # to the next size: 1 vCPU and 2 GiB + 256 MiB is 1 vCPU with 3 GB.
    pod_gb = min(gb for gb in FARGATE_1_VCPU_GB if gb * 1024 >= 2048 + 256)
    assert ecs["cost"]["fargate"]["usd"] == pytest.approx(on_fargate(1, 2, ecs["wall_seconds"]), rel=1e-6)
    assert pod["cost"]["fargate"]["usd"] == pytest.approx(on_fargate(1, pod_gb, pod["wall_seconds"]), rel=1e-6)
    share = max(1 / eks["node_vcpu"], 2 / eks["node_memory_gib"])  # 1 vCPU / 2 GiB of the node type
    for task in (ecs, pod):
        assert task["cost"]["eks"]["usd"] == pytest.approx(share * eks["node_hour"] * task["wall_seconds"] / 3600, rel=1e-6)
        assert task["cost"]["mwaa"]["usd"] == pytest.approx(
            mwaa["worker_hour"] / mwaa["tasks_per_worker"] * task["wall_seconds"] / 3600, rel=1e-6)
    run_hours = report["wall_seconds"] / 3600
    assert report["cost"]["fargate"]["usd"] == pytest.approx(ecs["cost"]["fargate"]["usd"] + pod["cost"]["fargate"]["usd"], rel=1e-6)
    assert report["cost"]["eks"]["usd"] == pytest.approx(
        eks["cluster_hour"] * run_hours + ecs["cost"]["eks"]["usd"] + pod["cost"]["eks"]["usd"], rel=1e-6)
    # Two tasks at once fit in the environment's one worker: no extra worker.
    assert report["cost"]["mwaa"]["usd"] == pytest.approx(mwaa["environment_hour"] * run_hours, rel=1e-6)
    for figure in [report["cost"], ecs["cost"], pod["cost"]]:
        assert all(c["formula"] and "$" in c["formula"] for c in figure.values())


@pytest.mark.faults
def test_a_run_the_sampler_missed_says_so(sandbox, airflow_api, cost_report, fault_figure):
    from sandbox.host.stack import compose
    compose("stop", "metrics", capture=True)
    try:
        run = airflow_api.run_dag("known_load", {"cpu_seconds": 0.5, "memory_mib": 20}).assert_success()
    finally:
        compose("up", "--detach", "--wait", "metrics", capture=True)
    report = cost_report(run.dag_id, run.run_id)
    for task_id in LOAD_TASKS.values():
        task = row(report, task_id)
        assert task["measured"] is False
        assert task["cpu_seconds"] is None and task["peak_memory_mib"] is None  # not 0
    assert report["sampler"]["measured_tasks"] == 0 and report["sampler"]["unmeasured_tasks"] == 2
    assert "no ECS task or pod of this run was measured" in report["sampler"]["note"]
    page = requests.get(f"{sandbox.settings.metrics_url}/runs/known_load/{quote(run.run_id)}", timeout=60).text
    assert "No measurements for this run" in page
    fault_figure("run while the metrics service was stopped: tasks reported", "not measured (no zeros)")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from sandbox.host.preflight import ensure_chromium
    chromium, chromedriver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1200"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    yield driver
    driver.quit()


def login(browser, sandbox) -> None:
    """Logged in as the UI's login page leaves a user: Airflow's JWT in its `_token` cookie."""
    user, password = sandbox.admin
    token = requests.post(f"{sandbox.airflow_url}/auth/token", json={"username": user, "password": password},
                          timeout=30).json()["access_token"]
    browser.get(f"{sandbox.airflow_url}/auth/token")  # any page of Airflow's origin, to set its cookie
    browser.add_cookie({"name": "_token", "value": token, "path": "/"})


def test_cost_tab_in_the_airflow_ui_matches_the_report(sandbox, known_load, browser):
    """The run's "Cost" tab, as a user opens it: logged in to Airflow, the DAG run page, the tab's
    page in its frame; each task's figures as the JSON report has them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from sandbox.metrics.charts import fmt
    run, report = known_load
    login(browser, sandbox)
    browser.get(f"{sandbox.airflow_url}/dags/{run.dag_id}/runs/{quote(run.run_id)}/plugin/cost")
    wait = WebDriverWait(browser, 60)
    frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe")))
    assert "/sandbox-metrics/runs/known_load/" in frame.get_attribute("src")
    browser.switch_to.frame(frame)
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "table#tasks tr[data-task-id]"))
    shown = {r.get_attribute("data-task-id"): r for r in rows}
    assert set(LOAD_TASKS.values()) <= set(shown)
    for task_id in LOAD_TASKS.values():
        task = row(report, task_id)
        expected = {"wall_seconds": task["wall_seconds"], "cpu_seconds": task["cpu_seconds"],
                    "peak_memory_mib": task["peak_memory_mib"],
                    **{f"{m}_usd": task["cost"][m]["usd"] for m in ("fargate", "eks", "mwaa")}}
        for field, value in expected.items():
            cell = shown[task_id].find_element(By.CSS_SELECTOR, f'[data-field="{field}"]')
            assert cell.text.strip() == fmt(value, field), (task_id, field)
    # The charts drew (plotly renders into SVG once its script has run).
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg"))
    browser.switch_to.default_content()
    browser.save_screenshot(str(ROOT / ".build" / "ui-cost-tab.png"))


def test_backends_tab_shows_the_newest_run_on_each_backend(sandbox, airflow_api, browser):
    """import_vcf's "Backends" tab: its newest ECS and Kubernetes runs, case by case, with the totals
    of the comparison JSON."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from sandbox.metrics.charts import fmt
    latest = requests.get(f"{sandbox.settings.metrics_url}/latest/import_vcf", timeout=60).json()["per_backend"]
    if not {"ecs", "k8s"} <= set(latest):  # test_import_vcf runs both; alone, run a small pair here
        for backend in ("ecs", "k8s"):
            airflow_api.run_dag("import_vcf", {"backend": backend, "max_cases": 2}).assert_success()

    def compared():
        res = requests.get(f"{sandbox.settings.metrics_url}/compare-latest/import_vcf", params={"format": "json"},
                           timeout=120)
        data = res.json() if res.status_code == 200 else {}
        if set(data.get("labels", [])) != {"ecs", "k8s"} or any(t["not_measured"] for t in data["totals"].values()):
            raise NotYet(f"comparison not ready: HTTP {res.status_code}")
        return data
    expected = wait_until(compared, timeout=60, what="import_vcf measured on both backends")
    login(browser, sandbox)
    browser.get(f"{sandbox.airflow_url}/dags/import_vcf/plugin/backends")
    wait = WebDriverWait(browser, 60)
    browser.switch_to.frame(wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "iframe")))
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "table#comparison tr[data-map-index]"))
    assert len(rows) == len(expected["cases"])
    total = browser.find_element(By.CSS_SELECTOR, 'table#comparison tr[data-total="1"]')
    for label in ("ecs", "k8s"):
        cell = total.find_element(By.CSS_SELECTOR, f'[data-label="{label}"][data-field="cpu_seconds"]')
        assert cell.text.strip() == fmt(expected["totals"][label]["cpu_seconds"], "cpu_seconds")
    browser.switch_to.default_content()
