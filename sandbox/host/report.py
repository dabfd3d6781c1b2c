"""`make report`: each DAG run's cost report as files under reports/, from the metrics service.

    make report                       the newest finished run of every DAG
    make report DAG=import_vcf        that DAG's newest run
    make report DAG=import_vcf RUN=…  that run

Writes reports/<dag>/<run>.json (one record per task try) and .html (charts), and for a DAG whose
newest runs used different backends, reports/<dag>/backends.json and .html side by side.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import requests

from sandbox.core.airflow_api import AirflowClient
from sandbox.core.poll import NotYet, wait_until
from sandbox.core.progress import info
from sandbox.host.settings import ROOT, Settings

quote = AirflowClient.quote

REPORTS = ROOT / "reports"
PLOTLY = "plotly.min.js"


class ReportError(RuntimeError):
    pass


def file_name(run_id: str) -> str:
    """A run id as a file name that every file system and browser takes as is."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id)


class MetricsService:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def get(self, path: str, **params) -> requests.Response:
        try:
            res = requests.get(f"{self.url}/{path}", params=params or None, timeout=300)
        except requests.ConnectionError as error:
            raise ReportError(f"the metrics service at {self.url} is not reachable ({error.__class__.__name__}); "
                              "is the sandbox up? `make up` starts it") from None
        if res.status_code == 404:
            raise ReportError(res.json().get("error", res.text))
        if res.status_code != 200:
            raise ReportError(f"{self.url}/{path}: HTTP {res.status_code}: {res.text[:500]}")
        return res

    def report(self, dag_id: str, run_id: str) -> dict:
        """The run's cost report (sandbox/metrics/__init__.py has its schema)."""
        return self.get(f"runs/{quote(dag_id)}/{quote(run_id)}.json").json()

    def problems(self) -> list[str]:
        """What the service says it cannot see (/healthz `problems`); [] when it does not answer, as
        `make status` must not wait on it."""
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).json().get("problems") or []
        except (requests.RequestException, ValueError, AttributeError):
            return []

    def final_report(self, dag_id: str, run_id: str, task_ids: set[str], timeout: float = 60) -> dict:
        """The run's report once the sampler has finished every instance of `task_ids` (it ends an
        ECS task 2 s after its containers exit)."""
        def ready() -> dict:
            report = self.report(dag_id, run_id)
            rows = [t for t in report["tasks"] if t["task_id"] in task_ids]
            pending = sorted({t["task_id"] for t in rows if not t["final"]})
            if {t["task_id"] for t in rows} != task_ids or pending:
                raise NotYet(f"not final yet: {pending or sorted(task_ids - {t['task_id'] for t in rows})}")
            return report
        return wait_until(ready, timeout=timeout, interval=1, what=f"the cost report of {dag_id} {run_id}")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def write(settings: Settings, dag_id: str | None = None, run_id: str | None = None,
          out: Path = REPORTS) -> list[Path]:
    service = MetricsService(settings.metrics_url)
    if run_id and not dag_id:
        raise ReportError("RUN needs DAG: make report DAG=<dag_id> RUN=<run_id>")
    dag_ids = [dag_id] if dag_id else AirflowClient(settings.airflow_url, *settings.admin).dag_ids()
    out.mkdir(parents=True, exist_ok=True)
    (out / PLOTLY).write_bytes(service.get(f"static/{PLOTLY}").content)
    written: list[Path] = []
    for dag in dag_ids:
        latest = service.get(f"latest/{quote(dag)}").json() if not run_id else None
        if latest is not None and not latest.get("latest"):
            if dag_id:
                raise ReportError(f"{dag} has no finished run yet; trigger it, then `make report DAG={dag}`")
            continue
        run = run_id or latest["latest"]
        folder = out / dag
        folder.mkdir(exist_ok=True)
        rep = service.report(dag, run)
        json_file, html_file = folder / f"{file_name(run)}.json", folder / f"{file_name(run)}.html"
        json_file.write_text(json.dumps(rep, indent=1))
        html_file.write_text(service.get(f"runs/{quote(dag)}/{quote(run)}", plotly_js=f"../{PLOTLY}").text)
        written += [json_file, html_file]
        s, cost = rep["sampler"], rep["cost"]
        info(f"{dag} {run}: {s['measured_tasks']} task tries measured, {s['unmeasured_tasks']} not; "
             + ", ".join(f"{name} ${c['usd']:.6f}" for name, c in cost.items() if c and c.get("usd") is not None)
             + f" -> {_shown(html_file)}")
        if latest is not None and len([k for k in latest.get("per_backend", {}) if "+" not in k]) >= 2:
            json_file, html_file = folder / "backends.json", folder / "backends.html"
            json_file.write_text(json.dumps(service.get(f"compare-latest/{quote(dag)}", format="json").json(),
                                            indent=1))
            html_file.write_text(service.get(f"compare-latest/{quote(dag)}", plotly_js=f"../{PLOTLY}").text)
            written += [json_file, html_file]
            info(f"{dag}: backends side by side -> {_shown(html_file)}")
    return written
