"""The report pages (sandbox/metrics/charts.py): tables from the report dict, plotly charts, escaping."""
from __future__ import annotations

import copy
import html
import re

import plotly
import pytest

from sandbox.metrics.charts import NOT_MEASURED, comparison_json, comparison_page, fmt, run_page

pytestmark = pytest.mark.unit

FIELDS = ("wall_seconds", "cpu_seconds", "peak_memory_mib")


def cost(fargate, eks, mwaa):
    return {"fargate": {"usd": fargate, "formula": f"0.25 vCPU x h x 0.04048 = {fargate}"},
            "eks": {"usd": eks, "formula": "pod share of the node"},
            "mwaa": {"usd": mwaa, "formula": "environment hours"}}


def task(task_id, map_index=-1, try_number=1, *, backend="ecs", measured=True, start="2026-01-01T10:00:00Z",
         end="2026-01-01T10:01:00Z", wall=60.04, cpu=12.345, peak=200.26, usd=(0.000421, 0.0001234, 0.0123)):
    record = {
        "task_id": task_id, "map_index": map_index, "try_number": try_number, "state": "success",
        "operator": "EcsRunTaskOperator", "backend": backend, "resource": f"ecs task arn:{task_id}",
        "measured": measured, "started_at": start, "ended_at": end, "wall_seconds": wall,
        "cpu_seconds": cpu if measured else None, "peak_memory_mib": peak if measured else None,
        "mean_cpu_cores": 0.2 if measured else None,
        "requested": {"cpu_vcpu": 0.25, "memory_mib": 512}, "limits": None,
        "samples": {"t": [0, 5, 10], "cpu_cores": [0.1, 0.3, 0.2], "memory_mib": [100, 200.26, 150]}
        if measured else {"t": [], "cpu_cores": [], "memory_mib": []},
        "cost": cost(*usd),
        "right_size": {"text": "request 0.25 vCPU is fine"} if measured else None,
    }
    return record


def report(tasks, *, note="sampled every 5 s", dag_id="fanout", run_id="manual__2026-01-01T10:00:00+00:00"):
    return {
        "dag_id": dag_id, "run_id": run_id, "state": "success",
        "start": "2026-01-01T10:00:00Z", "end": "2026-01-01T10:03:00Z", "wall_seconds": 180.0,
        "sampler": {"interval_seconds": 5, "measured_tasks": sum(t["measured"] for t in tasks),
                    "unmeasured_tasks": sum(not t["measured"] for t in tasks), "note": note},
        "prices": {},
        "tasks": tasks,
        "cost": cost(0.0012, 0.0004, 0.0369),
    }


@pytest.fixture
def ecs_report():
    return report([
        task("split", wall=10.0, cpu=2.05, peak=64.0, start="2026-01-01T10:00:00Z", end="2026-01-01T10:00:10Z"),
        task("work", 0, wall=61.26, cpu=30.5, peak=300.04, usd=(0.0004, 0.0001, 0.012)),
        task("work", 1, measured=False, backend="k8s", wall=None, usd=(None, None, None)),
    ])


def rows(page, table_id):
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S).group(1)
    return re.findall(r"<tr ([^>]*)>(.*?)</tr>", table, re.S)


def cell(row_html, field, label=None):
    label_attr = rf'[^>]*data-label="{label}"' if label else ""
    match = re.search(rf'<td [^>]*data-field="{field}"{label_attr}[^>]*>([^<]*)</td>', row_html)
    return html.unescape(match.group(1))


def figure_cells(row_html):
    """The text of every figure cell of a row (every td with a data-field)."""
    return [html.unescape(t) for t in re.findall(r'<td [^>]*data-field="[^"]*"[^>]*>([^<]*)</td>', row_html)]


def row_for(page, table_id, task_id, map_index):
    for attrs, body in rows(page, table_id):
        if f'data-task-id="{task_id}"' in attrs and f'data-map-index="{map_index}"' in attrs:
            return attrs, body
    raise AssertionError(f"no row {task_id}[{map_index}] in table {table_id}")


def test_fmt_rounds_per_field_and_never_makes_zero_of_none():
    assert fmt(60.04, "wall_seconds") == "60.0"
    assert fmt(300.26, "peak_memory_mib") == "300.3"
    assert fmt(0.0, "cpu_seconds") == "0.0"  # a measured zero is a number
    assert fmt(0.0001234, "eks_usd") == "0.000123"
    assert fmt(None, "cpu_seconds") == NOT_MEASURED == "not measured"
    with pytest.raises(ValueError, match="no format for field 'nope'"):
        fmt(1, "nope")


def test_task_rows_carry_the_report_numbers(ecs_report):
    page = run_page(ecs_report, plotly_js="https://example.test/plotly.min.js")
    assert len(rows(page, "tasks")) == 3
    for record in ecs_report["tasks"]:
        attrs, body = row_for(page, "tasks", record["task_id"], record["map_index"])
        assert f'data-try-number="{record["try_number"]}"' in attrs
        for field in FIELDS:
            assert cell(body, field) == fmt(record[field], field)
        for model in ("fargate", "eks", "mwaa"):
            assert cell(body, f"{model}_usd") == fmt(record["cost"][model]["usd"], f"{model}_usd")
    _, body = row_for(page, "tasks", "work", 0)
    assert cell(body, "wall_seconds") == "61.3"
    assert cell(body, "fargate_usd") == "0.000400"
    assert "request 0.25 vCPU is fine" in body


def test_unmeasured_task_says_so_and_shows_no_zeros(ecs_report):
    page = run_page(ecs_report, plotly_js="https://example.test/plotly.min.js")
    attrs, body = row_for(page, "tasks", "work", 1)
    assert 'data-measured="0"' in attrs
    for field in (*FIELDS, "fargate_usd", "eks_usd", "mwaa_usd"):
        assert cell(body, field) == "not measured"
    assert not any(re.fullmatch(r"0(\.0*)?", text) for text in figure_cells(body)), figure_cells(body)
    assert "No measurements for this run" not in page  # other tasks were measured


def test_cost_summary_shows_each_total_with_its_formula(ecs_report):
    page = run_page(ecs_report, plotly_js="https://example.test/plotly.min.js")
    summary = dict(rows(page, "cost"))
    for model in ("fargate", "eks", "mwaa"):
        body = summary[f'data-pricing="{model}"']
        assert cell(body, f"{model}_usd") == fmt(ecs_report["cost"][model]["usd"], "usd")
        assert html.escape(ecs_report["cost"][model]["formula"]) in body


def test_a_run_without_measurements_gets_a_banner_not_usage_charts():
    tasks = [task("a", measured=False, wall=None), task("b", measured=False, wall=None)]
    page = run_page(report(tasks, note="the sampler could not reach the Docker socket"),
                    plotly_js="https://example.test/plotly.min.js")
    assert 'id="no-measurements"' in page
    assert "No measurements for this run: the sampler could not reach the Docker socket" in page
    assert "chart-usage" not in page and "chart-samples" not in page
    assert "chart-timeline" in page  # when tasks ran is Airflow's, not the sampler's
    _, body = row_for(page, "tasks", "a", -1)
    assert cell(body, "cpu_seconds") == cell(body, "peak_memory_mib") == "not measured"
    assert not any(re.fullmatch(r"0(\.0*)?", text) for text in figure_cells(body))


def test_inline_page_embeds_plotly_and_draws_the_charts(ecs_report):
    page = run_page(ecs_report)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert f"plotly.js v{plotly.offline.get_plotlyjs_version()}" in page
    assert "<script src=" not in page
    assert page.count("Plotly.newPlot(") == 4  # usage, timeline, cost, samples
    for chart in ("chart-usage", "chart-timeline", "chart-cost", "chart-samples"):
        assert f'id="{chart}"' in page


def test_url_page_references_plotly_once_and_does_not_embed_it(ecs_report):
    page = run_page(ecs_report, plotly_js="/static/plotly.min.js?v=1&x=2")
    assert page.count('<script src="/static/plotly.min.js?v=1&amp;x=2" charset="utf-8"></script>') == 1
    assert len(page) < 200_000
    assert "plotly.js v" not in page


def test_strings_from_the_report_are_escaped(ecs_report):
    evil = '<script>alert("x")</script>'
    hostile = copy.deepcopy(ecs_report)
    hostile["dag_id"] = evil
    hostile["sampler"]["note"] = evil
    hostile["tasks"][0]["task_id"] = 'a"><img src=x onerror=alert(1)>'
    hostile["tasks"][0]["right_size"] = {"text": evil}
    hostile["cost"]["fargate"]["formula"] = evil
    page = run_page(hostile, plotly_js="https://example.test/plotly.min.js")
    assert evil not in page
    assert "<img src=x" not in page
    assert html.escape(evil) in page
    assert 'data-task-id="a&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"' in page
    # the chart JSON escapes too (plotly writes < and > as \u003c / \u003e)
    assert page.count("<script>alert") == 0


@pytest.fixture
def k8s_report():
    return report([
        task("split", backend="k8s", wall=12.0, cpu=2.5, peak=70.0),
        task("work", 0, backend="k8s", wall=40.0, cpu=20.0, peak=250.0, usd=(0.0003, 0.00009, 0.008)),
        task("work", 1, backend="k8s", try_number=1, wall=30.0, cpu=9.0, peak=900.0, usd=(0.9, 0.9, 0.9)),
        task("work", 1, backend="k8s", try_number=2, wall=33.0, cpu=11.0, peak=220.0, usd=(0.0002, 0.00008, 0.007)),
    ])


def test_comparison_matches_cases_on_their_last_try(ecs_report, k8s_report):
    data = comparison_json({"ecs": ecs_report, "k8s": k8s_report})
    assert data["labels"] == ["ecs", "k8s"]
    assert [(c["task_id"], c["map_index"]) for c in data["cases"]] == [("split", -1), ("work", 0), ("work", 1)]
    work1 = data["cases"][2]["by_label"]
    assert work1["k8s"]["try_number"] == 2 and work1["k8s"]["cpu_seconds"] == 11.0
    assert work1["ecs"]["measured"] is False and work1["ecs"]["cpu_seconds"] is None


def test_comparison_totals_are_the_sums_of_the_cases(ecs_report, k8s_report):
    data = comparison_json({"ecs": ecs_report, "k8s": k8s_report})
    for label in ("ecs", "k8s"):
        records = [c["by_label"][label] for c in data["cases"]]
        total = data["totals"][label]
        for field in ("wall_seconds", "cpu_seconds"):
            assert total[field] == pytest.approx(sum(r[field] for r in records if r[field] is not None))
        assert total["peak_memory_mib"] == max(r["peak_memory_mib"] for r in records if r["peak_memory_mib"])
        for model in ("fargate", "eks", "mwaa"):
            assert total["cost"][model] == pytest.approx(
                sum(r["cost"][model] for r in records if r["cost"][model] is not None))
    assert data["totals"]["k8s"]["cpu_seconds"] == pytest.approx(2.5 + 20.0 + 11.0)  # not the first try's 9.0
    assert data["totals"]["ecs"]["not_measured"]["cpu_seconds"] == 1


def test_comparison_page_renders_the_json(ecs_report, k8s_report):
    reports = {"ecs": ecs_report, "k8s": k8s_report}
    data = comparison_json(reports)
    page = comparison_page(reports, plotly_js="https://example.test/plotly.min.js")
    fields = ("wall_seconds", "cpu_seconds", "peak_memory_mib")
    for case in data["cases"]:
        _, body = row_for(page, "comparison", case["task_id"], case["map_index"])
        for label, record in case["by_label"].items():
            for field in fields:
                assert cell(body, field, label) == fmt(record[field], field)
            for model in data["pricing"]:
                assert cell(body, f"{model}_usd", label) == fmt(record["cost"][model], f"{model}_usd")
    totals = [body for attrs, body in rows(page, "comparison") if 'data-total="1"' in attrs]
    assert len(totals) == 1
    for label, total in data["totals"].items():
        for field in fields:
            assert cell(totals[0], field, label) == fmt(total[field], field)
        for model in data["pricing"]:
            assert cell(totals[0], f"{model}_usd", label) == fmt(total["cost"][model], f"{model}_usd")
    assert cell(totals[0], "cpu_seconds", "k8s") == "33.5"
    assert page.count("Plotly.newPlot(") == 2


def test_comparison_page_escapes_labels(ecs_report, k8s_report):
    page = comparison_page({"<b>ecs</b>": ecs_report, "k8s": k8s_report}, plotly_js="inline")
    assert "<b>ecs</b>" not in page.split("</head>")[1].split("<script")[0]
    assert "&lt;b&gt;ecs&lt;/b&gt;" in page
    assert f"plotly.js v{plotly.offline.get_plotlyjs_version()}" in page
