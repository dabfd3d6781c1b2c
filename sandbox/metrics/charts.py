"""HTML pages for DAG-run reports (the JSON in __init__.py): one run, or one run on several backends.

    html = run_page(report)                                        # self-contained, works offline
    html = run_page(report, plotly_js="/static/plotly.min.js")     # the server serves plotly.js once
    html = comparison_page({"ecs": report_a, "k8s": report_b})
    data = comparison_json({"ecs": report_a, "k8s": report_b})     # the numbers that page shows

Charts are plotly figures (plotly.graph_objects), each rendered with plotly.io.to_html without
plotly.js; the page includes plotly.js once in its head, inline or from a URL. Every number in a
table cell is `fmt(value, field)` of the report's value, so a test can compare a cell with the JSON.
A figure the sampler did not measure is None in the report and "not measured" here, never 0.
"""
from __future__ import annotations

import functools
import html
from datetime import datetime
from typing import Any, Iterable

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from sandbox.metrics.times import moment

__all__ = ["fmt", "run_page", "comparison_page", "comparison_json", "plotly_js_source", "NOT_MEASURED"]

NOT_MEASURED = "not measured"
PRICING = ("fargate", "eks", "mwaa")
PRICING_NAMES = {"fargate": "Fargate", "eks": "EKS", "mwaa": "MWAA"}
# Execution backends of a task try (report "backend"): None is a task that ran in the Airflow worker.
BACKEND_NAMES = {"ecs": "ECS task", "k8s": "Kubernetes pod", None: "Airflow worker"}
BACKEND_COLOURS = {"ecs": "#ff9900", "k8s": "#326ce5", None: "#9e9e9e"}
LABEL_COLOURS = ("#ff9900", "#326ce5", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
PRICING_COLOURS = {"fargate": "#ff9900", "eks": "#326ce5", "mwaa": "#2ca02c"}

# Decimals per field: what the tables show and what a test comparing them with the JSON rounds to.
_DECIMALS = {
    "wall_seconds": 1, "cpu_seconds": 1, "interval_seconds": 2,
    "peak_memory_mib": 1, "memory_mib": 1, "requested_memory_mib": 1,
    "mean_cpu_cores": 3, "peak_cpu_cores": 3, "cpu_vcpu": 3, "requested_cpu_vcpu": 3,
    "usd": 6, "fargate_usd": 6, "eks_usd": 6, "mwaa_usd": 6,
}


def fmt(value: float | int | None, field: str) -> str:
    """`value` of report field `field` as the pages show it: seconds and MiB with 1 decimal, cores
    with 3, US dollars with 6; None (not measured) is "not measured"."""
    try:
        decimals = _DECIMALS[field]
    except KeyError:
        raise ValueError(f"fmt: no format for field {field!r}; known fields: {', '.join(sorted(_DECIMALS))}") \
            from None
    if value is None:
        return NOT_MEASURED
    return f"{float(value):.{decimals}f}"


@functools.lru_cache(maxsize=1)
def plotly_js_source() -> str:
    """plotly.js as shipped in the plotly package (about 4.8 MB): for a server to serve once."""
    return get_plotlyjs()


# ---------------------------------------------------------------------------------------------
# Small helpers

def _e(value: Any) -> str:
    """A report string (or anything) escaped for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def _or(value: Any, default: str = "unknown") -> str:
    return default if value is None or value == "" else str(value)


def _mapped(map_index: Any) -> bool:
    # Airflow gives unmapped tasks map_index -1.
    return map_index is not None and map_index != -1


def _map_attr(map_index: Any) -> str:
    return "" if map_index is None else str(map_index)


def _case_label(task_id: Any, map_index: Any) -> str:
    return f"{task_id}[{map_index}]" if _mapped(map_index) else str(task_id)


def _try_labels(tasks: list[dict]) -> list[str]:
    """One distinct chart label per task try: task_id[map_index], with "#try" when a case ran twice."""
    bases = [_case_label(t.get("task_id"), t.get("map_index")) for t in tasks]
    repeated = {b for b in bases if bases.count(b) > 1}
    return [f"{b} #{t.get('try_number')}" if b in repeated else b for b, t in zip(bases, tasks)]


def _usd(cost: dict | None, model: str) -> float | None:
    entry = (cost or {}).get(model) or {}
    return entry.get("usd")


def _formula(cost: dict | None, model: str) -> str:
    entry = (cost or {}).get(model) or {}
    return entry.get("formula") or ""


def _requested(task: dict, key: str) -> Any:
    return (task.get("requested") or {}).get(key)


def _samples(task: dict) -> dict:
    return task.get("samples") or {}


def _peak_cpu_cores(task: dict) -> float | None:
    if task.get("peak_cpu_cores") is not None:
        return task["peak_cpu_cores"]
    cores = [c for c in _samples(task).get("cpu_cores") or [] if c is not None]
    return max(cores) if cores else None


def _plotly_time(moment: datetime) -> str:
    # plotly.js date axes have no time zones; the pages label the axis UTC and give naive UTC times.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _right_size_text(right_size: Any) -> str:
    """The right-sizing advice as one line: its text if it has one, else its fields."""
    if not right_size:
        return ""
    if isinstance(right_size, str):
        return right_size
    if not isinstance(right_size, dict):
        return str(right_size)
    for key in ("text", "summary", "advice", "recommendation", "message", "note"):
        if isinstance(right_size.get(key), str) and right_size[key]:
            return right_size[key]
    parts = []
    for key, value in right_size.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def _count(value: Any) -> str:
    """sampler.measured_tasks / unmeasured_tasks: a count or a list of what they were."""
    if isinstance(value, (list, tuple)):
        return f"{len(value)} ({', '.join(str(v) for v in value)})" if value else "0"
    return _or(value)


# ---------------------------------------------------------------------------------------------
# Page frame

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #1f2933; }
h1 { font-size: 1.4rem; margin-bottom: .3rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; margin: .5rem 0; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
.note { color: #52606d; }
.banner { background: #fff4e5; border: 1px solid #f0b429; padding: .8rem 1rem; margin: 1rem 0;
          font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85rem; }
th, td { border: 1px solid #d9e2ec; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f4f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nm { color: #9aa5b1; font-style: italic; }
tr[data-total] td { font-weight: 600; background: #f7f9fb; }
code { font-size: .8rem; }
.chart { margin: 1rem 0; }
"""


def _script_tag(plotly_js: str) -> str:
    if plotly_js == "inline":
        return f'<script type="text/javascript">{plotly_js_source()}</script>'
    if not plotly_js:
        raise ValueError('plotly_js: expected "inline" or the URL of plotly.min.js, got an empty value')
    return f'<script src="{_e(plotly_js)}" charset="utf-8"></script>'


def _page(title: str, body: Iterable[str], *, plotly_js: str, with_charts: bool) -> str:
    head_script = _script_tag(plotly_js) if with_charts else ""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        head_script,
        "</head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
        "",
    ])


def _chart(fig: go.Figure, div_id: str) -> str:
    height = fig.layout.height or 450
    fig.update_layout(margin=dict(l=60, r=30, t=60, b=60), template="plotly_white")
    div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                      default_height=f"{height}px", config={"displaylogo": False, "responsive": True})
    return f'<div class="chart">{div}</div>'


def _num_cell(value: Any, field: str, *, title: str = "", extra: str = "") -> str:
    text = fmt(value, field)
    css = "num nm" if value is None else "num"
    title_attr = f' title="{_e(title)}"' if title else ""
    return f'<td class="{css}" data-field="{field}"{extra}{title_attr}>{_e(text)}</td>'


# ---------------------------------------------------------------------------------------------
# One run

def run_page(report: dict, *, plotly_js: str = "inline", sample_tasks: int = 6) -> str:
    """The cost and metrics page of one DAG run's report: header, cost summary, a row per task try,
    and charts (usage against requests, timeline, cost, and CPU/memory over time for the
    `sample_tasks` busiest tasks). plotly_js="inline" embeds plotly.js (the page works offline);
    any other value is the URL of plotly.min.js. A run with no measured task gets a banner instead
    of usage charts, and no plotly.js at all when nothing is left to chart."""
    tasks = list(report.get("tasks") or [])
    sampler = report.get("sampler") or {}
    measured = [t for t in tasks if t.get("measured")]
    labels = _try_labels(tasks)

    body = [_run_header(report, sampler)]
    if not measured:
        note = sampler.get("note") or "the sampler recorded no samples for any task try of this run"
        body.append(f'<div class="banner" id="no-measurements">No measurements for this run: {_e(note)}</div>')

    body += ["<h2>Cost</h2>", _cost_summary(report.get("cost"))]
    body += ["<h2>Tasks</h2>", _task_table(tasks)]

    charts = []
    if measured:
        charts.append(_chart(_usage_figure(tasks, labels), "chart-usage"))
    if any(moment(t.get("started_at")) and moment(t.get("ended_at")) for t in tasks):
        charts.append(_chart(_timeline_figure(tasks, labels), "chart-timeline"))
    if any(_usd(report.get("cost"), m) is not None for m in PRICING):
        charts.append(_chart(_cost_figure(report.get("cost")), "chart-cost"))
    sampled = [(t, lab) for t, lab in zip(tasks, labels) if t.get("measured") and _samples(t).get("t")]
    if sampled and sample_tasks > 0:
        charts.append(_chart(_samples_figure(sampled, sample_tasks), "chart-samples"))
    if charts:
        body += ["<h2>Charts</h2>", *charts]

    title = f"{_or(report.get('dag_id'))} / {_or(report.get('run_id'))}: cost and metrics"
    return _page(title, body, plotly_js=plotly_js, with_charts=bool(charts))


def _run_header(report: dict, sampler: dict) -> str:
    wall = report.get("wall_seconds")
    facts = [
        ("DAG", report.get("dag_id")),
        ("Run", report.get("run_id")),
        ("State", report.get("state")),
        ("Wall time", "unknown" if wall is None else f"{fmt(wall, 'wall_seconds')} s"),
        ("Start", report.get("start")),
        ("End", report.get("end")),
    ]
    interval = sampler.get("interval_seconds")
    sampler_line = (f"every {fmt(interval, 'interval_seconds')} s" if interval is not None else "interval unknown") \
        + f"; measured task tries: {_count(sampler.get('measured_tasks'))}" \
        + f"; unmeasured: {_count(sampler.get('unmeasured_tasks'))}"
    facts.append(("Sampler", sampler_line))
    rows = "".join(f'<dt>{_e(k)}</dt><dd data-fact="{_e(k.lower())}">{_e(_or(v))}</dd>' for k, v in facts)
    note = sampler.get("note")
    note_html = f'<p class="note" id="sampler-note">{_e(note)}</p>' if note else ""
    return (f"<h1>{_e(_or(report.get('dag_id')))} <span class=\"note\">run</span> {_e(_or(report.get('run_id')))}</h1>"
            f'<dl class="facts">{rows}</dl>{note_html}')


def _cost_summary(cost: dict | None) -> str:
    rows = []
    for model in PRICING:
        usd = _usd(cost, model)
        rows.append(f'<tr data-pricing="{model}"><th>{PRICING_NAMES[model]}</th>'
                    f'{_num_cell(usd, f"{model}_usd")}'
                    f"<td><code>{_e(_formula(cost, model))}</code></td></tr>")
    return ('<div class="scroll"><table id="cost"><thead><tr><th>Pricing model</th><th>Total USD</th>'
            f'<th>Formula</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _task_table(tasks: list[dict]) -> str:
    head = ("<tr><th>Task</th><th>Map index</th><th>Try</th><th>Backend</th><th>State</th>"
            "<th>Wall s</th><th>CPU s</th><th>Peak MiB</th><th>Requested vCPU</th><th>Requested MiB</th>"
            + "".join(f"<th>{PRICING_NAMES[m]} USD</th>" for m in PRICING)
            + "<th>Right-sizing</th></tr>")
    rows = []
    for task in tasks:
        cost, backend = task.get("cost"), task.get("backend")
        req_cpu, req_mem = _requested(task, "cpu_vcpu"), _requested(task, "memory_mib")
        limits = task.get("limits") or {}
        limit_note = (f"limits: {_or(limits.get('cpu_vcpu'), 'none')} vCPU, "
                      f"{_or(limits.get('memory_mib'), 'none')} MiB") if limits else ""
        cells = [
            f"<td>{_e(task.get('task_id'))}</td>",
            f"<td>{_e(task.get('map_index') if _mapped(task.get('map_index')) else '')}</td>",
            f"<td>{_e(task.get('try_number'))}</td>",
            f'<td title="{_e(task.get("resource"))}">{_e(BACKEND_NAMES.get(backend, backend))}</td>',
            f"<td>{_e(task.get('state'))}</td>",
            _num_cell(task.get("wall_seconds"), "wall_seconds"),
            _num_cell(task.get("cpu_seconds"), "cpu_seconds"),
            _num_cell(task.get("peak_memory_mib"), "peak_memory_mib"),
            _request_cell(req_cpu, "requested_cpu_vcpu", limit_note),
            _request_cell(req_mem, "requested_memory_mib", limit_note),
            *(_num_cell(_usd(cost, m), f"{m}_usd", title=_formula(cost, m)) for m in PRICING),
            f"<td>{_e(_right_size_text(task.get('right_size')))}</td>",
        ]
        measured = "1" if task.get("measured") else "0"
        rows.append(f'<tr data-task-id="{_e(task.get("task_id"))}"'
                    f' data-map-index="{_e(_map_attr(task.get("map_index")))}"'
                    f' data-try-number="{_e(task.get("try_number"))}" data-measured="{measured}">'
                    + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table id="tasks"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'


def _request_cell(value: Any, field: str, title: str) -> str:
    if value is None:  # a request is configuration, not a measurement: absent means none was set
        return f'<td class="num nm" data-field="{field}">not set</td>'
    return _num_cell(value, field, title=title)


def _usage_figure(tasks: list[dict], labels: list[str]) -> go.Figure:
    rows = [(t, lab) for t, lab in zip(tasks, labels) if t.get("measured")]
    x = [lab for _, lab in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("CPU (cores)", "Memory (MiB)"), horizontal_spacing=0.08)
    fig.add_trace(go.Bar(name="mean CPU cores", x=x, y=[t.get("mean_cpu_cores") for t, _ in rows],
                         marker_color="#7fb3f5", legendgroup="cpu"), row=1, col=1)
    fig.add_trace(go.Bar(name="peak CPU cores", x=x, y=[_peak_cpu_cores(t) for t, _ in rows],
                         marker_color="#326ce5", legendgroup="cpu"), row=1, col=1)
    fig.add_trace(go.Scatter(name="requested vCPU", x=x, y=[_requested(t, "cpu_vcpu") for t, _ in rows],
                             mode="markers", legendgroup="req",
                             marker=dict(symbol="line-ew-open", size=40, line=dict(width=3, color="#d62728"))),
                  row=1, col=1)
    fig.add_trace(go.Bar(name="peak memory MiB", x=x, y=[t.get("peak_memory_mib") for t, _ in rows],
                         marker_color="#2ca02c", legendgroup="mem"), row=1, col=2)
    fig.add_trace(go.Scatter(name="requested memory MiB", x=x, y=[_requested(t, "memory_mib") for t, _ in rows],
                             mode="markers", legendgroup="req",
                             marker=dict(symbol="line-ew-open", size=40, line=dict(width=3, color="#9467bd"))),
                  row=1, col=2)
    unmeasured = len(tasks) - len(rows)
    title = "Usage against requests (lines: requested)"
    if unmeasured:
        title += f"; {unmeasured} unmeasured task tr{'y' if unmeasured == 1 else 'ies'} not shown"
    fig.update_layout(title=title, barmode="group", height=450,
                      legend=dict(orientation="h", yanchor="top", y=-0.25))
    return fig


def _timeline_figure(tasks: list[dict], labels: list[str]) -> go.Figure:
    spans = []
    for task, label in zip(tasks, labels):
        start, end = moment(task.get("started_at")), moment(task.get("ended_at"))
        if start and end:
            spans.append((start, end, task, label))
    spans.sort(key=lambda s: s[0])
    fig = go.Figure()
    for backend in sorted({s[2].get("backend") for s in spans}, key=lambda b: (b is None, str(b))):
        mine = [s for s in spans if s[2].get("backend") == backend]
        fig.add_trace(go.Bar(
            name=BACKEND_NAMES.get(backend, str(backend)), orientation="h",
            y=[s[3] for s in mine],
            base=[_plotly_time(s[0]) for s in mine],
            x=[(s[1] - s[0]).total_seconds() * 1000 for s in mine],  # a date axis counts milliseconds
            marker_color=BACKEND_COLOURS.get(backend, "#8c564b"),
            customdata=[[s[2].get("state") or "", fmt(s[2].get("wall_seconds"), "wall_seconds"),
                         _plotly_time(s[0]), _plotly_time(s[1])] for s in mine],
            hovertemplate="%{y}<br>state %{customdata[0]}<br>%{customdata[2]} → %{customdata[3]} UTC"
                          "<br>wall %{customdata[1]} s<extra>%{fullData.name}</extra>",
        ))
    order = [s[3] for s in spans]
    fig.update_layout(title="Timeline of the task tries (UTC)", barmode="overlay",
                      height=max(300, 24 * len(order) + 140),
                      xaxis=dict(type="date", title="UTC"),
                      yaxis=dict(categoryorder="array", categoryarray=order, autorange="reversed"))
    return fig


def _cost_figure(cost: dict | None) -> go.Figure:
    models = [m for m in PRICING if _usd(cost, m) is not None]
    values = [_usd(cost, m) for m in models]
    fig = go.Figure(go.Bar(
        x=[PRICING_NAMES[m] for m in models], y=values, text=[f"${fmt(v, 'usd')}" for v in values],
        marker_color=[PRICING_COLOURS[m] for m in models], hovertext=[_formula(cost, m) for m in models],
        hovertemplate="%{x}: $%{y:.6f}<br>%{hovertext}<extra></extra>", showlegend=False))
    fig.update_layout(title="Run cost by pricing model (USD)", yaxis=dict(title="USD", tickformat="$.6f"), height=380)
    return fig


def _samples_figure(sampled: list[tuple[dict, str]], limit: int) -> go.Figure:
    busiest = sorted(sampled, key=lambda s: s[0].get("cpu_seconds") or 0, reverse=True)[:limit]
    shown = [s for s in sampled if any(s is b for b in busiest)]  # keep the report's order
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("CPU (cores)", "Memory (MiB)"))
    palette = LABEL_COLOURS + ("#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
    for i, (task, label) in enumerate(shown):
        samples, colour = _samples(task), palette[i % len(palette)]
        fig.add_trace(go.Scatter(name=label, x=samples.get("t"), y=samples.get("cpu_cores"), mode="lines",
                                 line=dict(color=colour), legendgroup=label), row=1, col=1)
        fig.add_trace(go.Scatter(name=label, x=samples.get("t"), y=samples.get("memory_mib"), mode="lines",
                                 line=dict(color=colour), legendgroup=label, showlegend=False), row=2, col=1)
    title = "CPU and memory over time"
    if len(sampled) > len(shown):
        title += f" (the {len(shown)} busiest of {len(sampled)} sampled task tries)"
    fig.update_layout(title=title, height=560)
    fig.update_xaxes(title_text="seconds since the task started", row=2, col=1)
    return fig


# ---------------------------------------------------------------------------------------------
# One run on several backends

_CASE_FIELDS = ("wall_seconds", "cpu_seconds", "peak_memory_mib")


def comparison_json(reports: dict[str, dict]) -> dict:
    """The numbers of comparison_page: ECS tasks and pods matched case by case, each case's last try
    per label, and per-label totals over the cases (sums; the peak memory total is the largest
    peak). A total counts only the measured cases and says in "not_measured" how many it left out.

        {"labels": [...], "pricing": ["fargate", "eks", "mwaa"],
         "runs": {label: {"dag_id", "run_id", "state", "wall_seconds", "note", "run_cost": {model: usd}}},
         "cases": [{"task_id", "map_index", "by_label": {label: None | {"try_number", "backend", "state",
                    "measured", "wall_seconds", "cpu_seconds", "peak_memory_mib", "cost": {model: usd}}}}],
         "totals": {label: {"wall_seconds", "cpu_seconds", "peak_memory_mib", "cost": {model: usd},
                            "cases": n, "not_measured": {field: n}}}}
    """
    labels = list(reports)
    # Cases are the tasks that ran on a backend (ECS tasks, pods); tasks run inside Airflow are the
    # same on every backend. When each run has one such task (import_vcf's ecs_case / k8s_case, mapped),
    # cases are matched by map index; otherwise by task id and map index.
    runtime = {label: [t for t in report.get("tasks") or [] if t.get("backend")] for label, report in reports.items()}
    by_index = all(len({t.get("task_id") for t in tasks}) == 1 for tasks in runtime.values())
    last_tries: dict[str, dict[tuple, dict]] = {}
    case_order: list[tuple] = []
    for label, tasks in runtime.items():
        mine: dict[tuple, dict] = {}
        for task in sorted(tasks, key=lambda t: (str(t.get("task_id")), t.get("map_index") or -1)):
            key = (None if by_index else task.get("task_id"), task.get("map_index"))
            if key not in case_order:
                case_order.append(key)
            if key not in mine or (task.get("try_number") or 0) >= (mine[key].get("try_number") or 0):
                mine[key] = task
        last_tries[label] = mine

    cases = []
    for key in case_order:
        by_label = {}
        for label in labels:
            task = last_tries[label].get(key)
            by_label[label] = None if task is None else {
                "task_id": task.get("task_id"), "try_number": task.get("try_number"), "backend": task.get("backend"),
                "state": task.get("state"), "measured": bool(task.get("measured")),
                **{field: task.get(field) for field in _CASE_FIELDS},
                "cost": {m: _usd(task.get("cost"), m) for m in PRICING},
            }
        task_ids = sorted({v["task_id"] for v in by_label.values() if v})
        cases.append({"task_id": " / ".join(map(str, task_ids)), "map_index": key[1], "by_label": by_label})

    totals = {}
    for label in labels:
        present = [c["by_label"][label] for c in cases if c["by_label"][label] is not None]
        not_measured: dict[str, int] = {}

        def known(values: list, field: str) -> list:
            missing = sum(v is None for v in values)
            if missing:
                not_measured[field] = missing
            return [v for v in values if v is not None]

        total: dict[str, Any] = {}
        for field in ("wall_seconds", "cpu_seconds"):
            values = known([p[field] for p in present], field)
            total[field] = sum(values) if values else None
        peaks = known([p["peak_memory_mib"] for p in present], "peak_memory_mib")
        total["peak_memory_mib"] = max(peaks) if peaks else None
        total["cost"] = {}
        for model in PRICING:
            values = known([p["cost"][model] for p in present], f"{model}_usd")
            total["cost"][model] = sum(values) if values else None
        total["cases"] = len(present)
        total["not_measured"] = not_measured
        totals[label] = total

    runs = {}
    for label, report in reports.items():
        runs[label] = {
            "dag_id": report.get("dag_id"), "run_id": report.get("run_id"), "state": report.get("state"),
            "wall_seconds": report.get("wall_seconds"), "note": (report.get("sampler") or {}).get("note"),
            "measured": any(t.get("measured") for t in report.get("tasks") or []),
            "run_cost": {m: _usd(report.get("cost"), m) for m in PRICING},
        }
    return {"labels": labels, "pricing": list(PRICING), "runs": runs, "cases": cases, "totals": totals}


def comparison_page(reports: dict[str, dict], *, plotly_js: str = "inline") -> str:
    """One DAG run on several backends, side by side: reports keyed by label ({"ecs": ..., "k8s": ...}).
    Rendered from comparison_json(reports); plotly_js as for run_page."""
    if not reports:
        raise ValueError("comparison_page: expected reports keyed by label, e.g. {'ecs': ..., 'k8s': ...}; got none")
    data = comparison_json(reports)
    labels = data["labels"]
    dag_ids = sorted({_or(r["dag_id"]) for r in data["runs"].values()})

    body = [f"<h1>{_e(', '.join(dag_ids))} <span class=\"note\">on</span> {_e(' / '.join(labels))}</h1>",
            _comparison_runs(data)]
    body += ["<h2>Per task</h2>", _comparison_table(data)]
    charts = []
    if data["cases"]:
        charts.append(_chart(_comparison_usage_figure(data), "chart-compare-usage"))
    if any(v is not None for t in data["totals"].values() for v in t["cost"].values()):
        charts.append(_chart(_comparison_cost_figure(data), "chart-compare-cost"))
    if charts:
        body += ["<h2>Charts</h2>", *charts]
    return _page(f"{', '.join(dag_ids)}: {' vs '.join(labels)}", body, plotly_js=plotly_js, with_charts=bool(charts))


def _comparison_runs(data: dict) -> str:
    head = ("<tr><th>Label</th><th>Run</th><th>State</th><th>Run wall s</th>"
            + "".join(f"<th>Run {PRICING_NAMES[m]} USD (all tries)</th>" for m in PRICING)
            + "<th>Sampler note</th></tr>")
    rows = []
    for label, run in data["runs"].items():
        note = run["note"] or ""
        if not run["measured"]:
            note = f"No measurements for this run: {note}" if note else "No measurements for this run"
        rows.append(f'<tr data-label="{_e(label)}"><th>{_e(label)}</th><td>{_e(run["run_id"])}</td>'
                    f'<td>{_e(run["state"])}</td>{_num_cell(run["wall_seconds"], "wall_seconds")}'
                    + "".join(_num_cell(run["run_cost"][m], f"{m}_usd") for m in PRICING)
                    + f"<td>{_e(note)}</td></tr>")
    return f'<div class="scroll"><table id="runs"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'


def _comparison_table(data: dict) -> str:
    labels = data["labels"]
    fields = [(f, h) for f, h in zip(_CASE_FIELDS, ("Wall s", "CPU s", "Peak MiB"))] \
        + [(f"{m}_usd", f"{PRICING_NAMES[m]} USD") for m in PRICING]
    head = ('<tr><th rowspan="2">Task</th><th rowspan="2">Map index</th>'
            + "".join(f'<th colspan="{len(fields)}">{_e(label)}</th>' for label in labels) + "</tr><tr>"
            + "".join(f"<th>{h}</th>" for _ in labels for _, h in fields) + "</tr>")

    def value(record: dict, field: str) -> Any:
        return record["cost"][field[:-4]] if field.endswith("_usd") else record[field]

    rows = []
    for case in data["cases"]:
        cells = [f"<td>{_e(case['task_id'])}</td>",
                 f"<td>{_e(case['map_index'] if _mapped(case['map_index']) else '')}</td>"]
        for label in labels:
            record = case["by_label"][label]
            for field, _ in fields:
                attrs = f' data-label="{_e(label)}"'
                if record is None:
                    cells.append(f'<td class="num nm" data-field="{field}"{attrs}>did not run</td>')
                else:
                    attrs += f' data-try-number="{_e(record["try_number"])}"'
                    cells.append(_num_cell(value(record, field), field, extra=attrs))
        rows.append(f'<tr data-task-id="{_e(case["task_id"])}" data-map-index="{_e(_map_attr(case["map_index"]))}">'
                    + "".join(cells) + "</tr>")

    cells = ['<th colspan="2">Total (peak MiB: largest)</th>']
    for label in labels:
        total = data["totals"][label]
        for field, _ in fields:
            aggregate = "max" if field == "peak_memory_mib" else "sum"
            missing = total["not_measured"].get(field, 0)
            title = f"{aggregate} over {total['cases'] - missing} measured cases" \
                + (f"; {missing} not measured, left out" if missing else "")
            attrs = f' data-label="{_e(label)}" data-aggregate="{aggregate}" data-missing="{missing}"'
            cells.append(_num_cell(value(total, field), field, title=title, extra=attrs))
    rows.append('<tr data-total="1">' + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table id="comparison"><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _comparison_usage_figure(data: dict) -> go.Figure:
    x = [_case_label(c["task_id"], c["map_index"]) for c in data["cases"]]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("Wall time per task (s)", "CPU time per task (s)"))
    for i, label in enumerate(data["labels"]):
        colour = LABEL_COLOURS[i % len(LABEL_COLOURS)]
        records = [c["by_label"][label] or {} for c in data["cases"]]
        fig.add_trace(go.Bar(name=label, x=x, y=[r.get("wall_seconds") for r in records], marker_color=colour,
                             legendgroup=label), row=1, col=1)
        fig.add_trace(go.Bar(name=label, x=x, y=[r.get("cpu_seconds") for r in records], marker_color=colour,
                             legendgroup=label, showlegend=False), row=2, col=1)
    fig.update_layout(title="Per task, side by side per backend", barmode="group", height=600)
    return fig


def _comparison_cost_figure(data: dict) -> go.Figure:
    x = [PRICING_NAMES[m] for m in PRICING]
    fig = go.Figure()
    for i, label in enumerate(data["labels"]):
        cost = data["totals"][label]["cost"]
        fig.add_trace(go.Bar(name=label, x=x, y=[cost[m] for m in PRICING],
                             marker_color=LABEL_COLOURS[i % len(LABEL_COLOURS)],
                             text=["" if cost[m] is None else f"${fmt(cost[m], 'usd')}" for m in PRICING],
                             hovertemplate="%{x}: $%{y:.6f}<extra>%{fullData.name}</extra>"))
    fig.update_layout(title="Total cost of the tasks per backend and pricing model (USD, last tries)",
                      barmode="group", yaxis=dict(title="USD", tickformat="$.6f"), height=420)
    return fig
