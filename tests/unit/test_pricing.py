"""Pricing: Fargate size rounding, each backend's cost against a hand-computed figure, a small run's
costs, and the `prices:` section of sandbox.yaml (defaults, and errors that name the field)."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from sandbox.metrics.pricing import (DEFAULT_PRICES, Prices, eks_task_cost, fargate_cost, fargate_size,
                                     mwaa_task_cost, run_costs)
from sandbox.seeding.config import ConfigError, load_config, validate_config

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
P = DEFAULT_PRICES


@pytest.mark.parametrize("cpu, memory, eks, size", [
    (0.1, 100, False, (0.25, 512)),
    (0.25, 600, False, (0.25, 1024)),
    (0.25, 512, True, (0.25, 1024)),    # 512 + 256 MiB EKS overhead
    (0.3, 512, False, (0.5, 1024)),     # more cpu than 0.25: 0.5 vCPU's smallest memory
    (0.25, 3000, False, (0.5, 3072)),   # more memory than 0.25 vCPU takes
    (1.0, 2048, True, (1.0, 3072)),
    (4, 8192, False, (4.0, 8192)),      # an exact size stays
])
def test_fargate_size_rounds_up_to_a_valid_size(cpu, memory, eks, size):
    assert fargate_size(cpu, memory, eks_overhead=eks) == size


def test_fargate_size_too_big():
    with pytest.raises(ValueError, match="no Fargate task size has 17 vCPU"):
        fargate_size(17, 1024)


def test_fargate_bills_a_minute_at_least():
    cost = fargate_cost(0.25, 512, 12.3, P)
    assert cost["usd"] == pytest.approx(60 * (0.25 * 0.04048 + 0.5 * 0.004445) / 3600)
    assert cost["formula"] == ("max(60 s, ⌈12.3 s⌉) = 60 s × (0.25 vCPU × $0.04048/h + 0.5 GB × $0.004445/h) "
                               "/ 3600 = $0.000206")


def test_fargate_bills_per_started_second():
    assert fargate_cost(1, 2048, 90.2, P)["usd"] == pytest.approx(91 * (0.04048 + 2 * 0.004445) / 3600)


def test_eks_share_is_the_larger_fraction_of_the_node():
    # 0.25 vCPU of 2 is 1/8; 4 GiB of 8 is 1/2: memory decides.
    cost = eks_task_cost(0.25, 4096, 1800, P)
    assert cost["usd"] == pytest.approx(0.5 * 0.096 * 1800 / 3600) == pytest.approx(0.024)
    assert "= 0.5 of a m5.large × $0.096/h × 1800 s / 3600 = $0.024" in cost["formula"]
    assert eks_task_cost(0.5, 1024, 3600, P)["usd"] == pytest.approx(0.25 * 0.096)


def test_mwaa_task_is_one_worker_slot():
    cost = mwaa_task_cost(360, P)
    assert cost["usd"] == pytest.approx(0.055 / 5 * 360 / 3600) == pytest.approx(0.0011)
    assert cost["formula"] == "$0.055/h mw1.small worker / 5 tasks × 360 s / 3600 = $0.00110"


def at(seconds: float) -> str:
    return f"2025-06-01T12:{int(seconds // 60):02d}:{seconds % 60:02.0f}+00:00"


def task(task_id, backend, cpu, memory, start, end, mean=None, peak=None):
    return {"task_id": task_id, "backend": backend, "measured": mean is not None,
            "requested": {"cpu_vcpu": cpu, "memory_mib": memory}, "started_at": at(start), "ended_at": at(end),
            "wall_seconds": end - start, "mean_cpu_cores": mean, "peak_memory_mib": peak}


@pytest.fixture
def report():
    """2 ECS tasks and 2 pods, three running at once from 110 s to 120 s; a 600-s run."""
    return {"start": at(0), "end": at(600), "wall_seconds": 600, "tasks": [
        task("ecs_a", "ecs", 0.5, 1024, 0, 120, mean=0.1, peak=300),
        task("ecs_b", "ecs", 0.25, 512, 60, 90),
        task("pod_a", "k8s", 0.25, 512, 100, 400, mean=0.12, peak=400),
        task("pod_b", "k8s", 1.0, 2048, 110, 170)]}


def test_run_costs(report):
    prices = dataclasses.replace(P, mwaa=dataclasses.replace(P.mwaa, tasks_per_worker=2))
    run_costs(report, prices)
    ecs_a, ecs_b, pod_a, pod_b = report["tasks"]

    fargate = {"ecs_a": 120 * (0.5 * 0.04048 + 1 * 0.004445) / 3600,
               "ecs_b": 60 * (0.25 * 0.04048 + 0.5 * 0.004445) / 3600,   # 30 s billed as 60
               "pod_a": 300 * (0.25 * 0.04048 + 1 * 0.004445) / 3600,   # 512 + 256 MiB -> 0.25 vCPU / 1 GB
               "pod_b": 60 * (1 * 0.04048 + 3 * 0.004445) / 3600}       # 2048 + 256 MiB -> 1 vCPU / 3 GB
    eks = {"ecs_a": 0.25 * 0.096 * 120 / 3600, "ecs_b": 0.125 * 0.096 * 30 / 3600,
           "pod_a": 0.125 * 0.096 * 300 / 3600, "pod_b": 0.5 * 0.096 * 60 / 3600}
    for t in report["tasks"]:
        assert t["cost"]["fargate"]["usd"] == pytest.approx(fargate[t["task_id"]])
        assert t["cost"]["eks"]["usd"] == pytest.approx(eks[t["task_id"]])
        assert t["cost"]["mwaa"]["usd"] == pytest.approx(0.055 / 2 * t["wall_seconds"] / 3600)

    assert ecs_b["right_size"] is None and pod_b["right_size"] is None  # not measured
    right = ecs_a["right_size"]
    assert (right["fargate"]["vcpu"], right["fargate"]["memory_mib"]) == (0.25, 512)
    assert right["fargate"]["saving_usd"] == pytest.approx(fargate["ecs_a"] - 120 * 0.0123425 / 3600)
    assert "eks" not in right and right["text"].startswith("requested 0.5 vCPU / 1024 MiB")
    right = pod_a["right_size"]
    assert (right["eks"]["cpu_vcpu"], right["eks"]["memory_mib"]) == (0.15, 480)  # 0.12 -> 150m; 400 × 1.2 = 480
    assert right["eks"]["usd"] == pytest.approx(0.075 * 0.096 * 300 / 3600)
    assert right["fargate"]["saving_usd"] == pytest.approx(0)  # already the smallest size
    assert ("Fargate 0.25 vCPU / 1024 MiB saves nothing (the size it has); requests cpu: 150m, memory: 480Mi saves"
            in right["text"])

    cost = report["cost"]
    assert cost["fargate"]["usd"] == pytest.approx(sum(fargate.values()))
    assert cost["eks"]["usd"] == pytest.approx(0.10 * 600 / 3600 + sum(eks.values()))
    # Three at once, two per worker: two workers, one more than included.
    assert cost["mwaa"]["usd"] == pytest.approx(0.49 * 600 / 3600 + 1 * 0.055 * 600 / 3600)
    assert "⌈3 tasks at once / 2 per worker⌉ − 1 included) = 1 extra workers" in cost["mwaa"]["formula"]
    assert report["prices"]["mwaa"]["tasks_per_worker"] == 2


def test_run_costs_reads_the_reports_prices(report):
    report["prices"] = dataclasses.asdict(dataclasses.replace(P, eks=dataclasses.replace(P.eks, cluster_hour=0)))
    run_costs(report)
    shares = sum(t["cost"]["eks"]["usd"] for t in report["tasks"])
    assert report["cost"]["eks"]["usd"] == pytest.approx(shares)
    assert report["cost"]["mwaa"]["usd"] == pytest.approx(0.49 * 600 / 3600)  # 3 at once fit 1 worker of 5


def test_missing_figures_are_not_counted_as_zero(report):
    airflow_only = {"task_id": "branch", "backend": None, "measured": False, "requested": None,
                    "started_at": at(0), "ended_at": at(6), "wall_seconds": 6}
    no_size = {**report["tasks"][3], "task_id": "pod_c", "requested": {"cpu_vcpu": None, "memory_mib": None}}
    no_times = {"task_id": "ecs_c", "backend": "ecs", "measured": False, "started_at": None, "ended_at": None,
                "requested": {"cpu_vcpu": 1, "memory_mib": 2048}, "wall_seconds": None}
    report["tasks"] += [airflow_only, no_size, no_times]
    run_costs(report)
    assert airflow_only["cost"]["fargate"] is None and airflow_only["cost"]["eks"] is None
    assert airflow_only["cost"]["mwaa"]["usd"] == pytest.approx(0.055 / 5 * 6 / 3600)
    assert no_size["cost"]["fargate"] is None and no_size["cost"]["mwaa"] is not None
    assert no_times["cost"] == {"fargate": None, "eks": None, "mwaa": None} and no_times["right_size"] is None
    assert "(2 without a size or wall time not counted)" in report["cost"]["fargate"]["formula"]
    assert "(1 tasks without start and end not counted at once)" in report["cost"]["mwaa"]["formula"]


# --- sandbox.yaml's prices: ---------------------------------------------------------------------
@pytest.fixture
def raw():
    return yaml.safe_load((ROOT / "sandbox.yaml").read_text())


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, ROOT / "sandbox.yaml")
    return exc.value.problems


@pytest.mark.parametrize("path", [ROOT / "sandbox.yaml", *sorted(ROOT.glob("examples/*/sandbox.yaml"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_files_price_at_the_defaults(path):
    assert load_config(path).prices == DEFAULT_PRICES


def test_keys_left_out_keep_their_defaults(raw):
    raw["prices"] = {"fargate": {"vcpu_hour": 0.05}, "mwaa": {"tasks_per_worker": 10}}
    prices = validate_config(raw, ROOT / "sandbox.yaml").prices
    assert prices == dataclasses.replace(P, fargate=dataclasses.replace(P.fargate, vcpu_hour=0.05),
                                         mwaa=dataclasses.replace(P.mwaa, tasks_per_worker=10))
    assert isinstance(prices, Prices)


@pytest.mark.parametrize("section, key, value, message", [
    ("fargate", "vcpu_hour", -0.1, "prices.fargate.vcpu_hour: expected a non-negative number (USD per vCPU-hour), "
                                   "found number -0.1"),
    ("eks", "node_hour", "0.096", "prices.eks.node_hour: expected a non-negative number (USD per node-hour "
                                  "(EC2 on-demand)), found text '0.096'; write it without quotes"),
    ("fargate", "vcpu_hours", 0.04, "prices.fargate.vcpu_hours: unknown field; did you mean vcpu_hour?"),
    ("mwaa", "tasks_per_worker", 2.5, "prices.mwaa.tasks_per_worker: expected a whole number of at least 1"),
    ("mwaa", "tasks_per_worker", 0, "prices.mwaa.tasks_per_worker: expected a whole number of at least 1"),
    ("eks", "node_type", 5, "prices.eks.node_type: expected the EC2 instance type"),
    ("fargate", "gb_hour", True, "prices.fargate.gb_hour: expected a non-negative number"),
])
def test_a_bad_price_is_named(raw, section, key, value, message):
    raw["prices"][section][key] = value
    found = problems(raw)
    assert any(p.startswith(f"sandbox.yaml: {message}") for p in found), found


def test_a_bad_section_or_currency_is_named(raw):
    bad = copy.deepcopy(raw)
    bad["prices"].update(eks=[1], currency="EUR", fargat={})
    found = "\n".join(problems(bad))
    assert "prices.eks: expected a mapping of cluster_hour" in found
    assert "prices.currency: expected USD" in found
    assert "prices.fargat: unknown field; did you mean fargate?" in found


def test_load_prices_reads_only_the_price_table(tmp_path):
    from sandbox.metrics.pricing import DEFAULT_PRICES, load_prices
    config = tmp_path / "sandbox.yaml"
    config.write_text("aws: {region: us-east-1}\n")  # no prices: the defaults
    assert load_prices(config) == DEFAULT_PRICES
    config.write_text("prices:\n  fargate: {vcpu_hour: 0.05}\n")
    assert load_prices(config).fargate.vcpu_hour == 0.05
    config.write_text("prices:\n  fargate: {vcpu_hour: -1}\n")
    with pytest.raises(ValueError, match=r"prices\.fargate\.vcpu_hour"):
        load_prices(config)
