"""The `metrics` service: the sampler, and the reports it serves over HTTP.

    GET /healthz                              the sampler's rounds and its own CPU, and what it cannot see
                                              now (its pod watch, ECS lookups, cgroups: "watches", "problems")
    GET /runs/<dag_id>/<run_id>[.json]        a DAG run's report, as a page or as JSON
    GET /compare/<dag_id>?runs=<a>,<b>[&format=json]   runs side by side, labelled by backend
    GET /compare-latest/<dag_id>[?format=json]         the newest run on each backend side by side
    GET /latest/<dag_id>                      the DAG's newest finished run (null: none yet), and its newest per backend
    GET /static/plotly.min.js                 the charts' library, served once for every page
Pages take ?plotly_js=<url> to load the library from elsewhere (`make report` writes it next to them).

`make report` and the Airflow UI view (airflow/plugins/sandbox_metrics) both read these.
"""
from __future__ import annotations

import html
import json
import logging
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sandbox.core.airflow_api import AirflowApiError, AirflowClient
from sandbox.core.root_keys import root_keys
from sandbox.metrics import pricing, report
from sandbox.metrics.cgroups import CgroupTree
from sandbox.metrics.health import WatchHealth, health_json
from sandbox.metrics.podwatch import KubeconfigFile, PodWatch
from sandbox.metrics.sampler import Sampler
from sandbox.metrics.store import Store
from sandbox.metrics.times import epoch

log = logging.getLogger("sandbox.metrics")
PORT = 8125


class Service:
    def __init__(self, env: dict[str, str]):
        self.interval = float(env.get("SANDBOX_METRICS_INTERVAL", "0.25"))
        self.store = Store(env.get("SANDBOX_METRICS_DIR", "/data/records"))
        self.config_path = Path(env.get("SANDBOX_CONFIG", "/project/sandbox.yaml"))
        self.airflow = AirflowClient(env.get("AIRFLOW_API_URL", "http://airflow-apiserver:8080"),
                                     env.get("AIRFLOW_ADMIN_USER", "admin"), env.get("AIRFLOW_ADMIN_PASSWORD", "admin"))
        self.stop = threading.Event()
        self._prices: tuple[float, pricing.Prices] | None = None
        import boto3
        import docker
        aws = dict(endpoint_url=env.get("SANDBOX_AWS_ENDPOINT", "http://localstack:4566"),
                   region_name=env.get("AWS_REGION", "us-east-1"), **root_keys(env))
        # Read again before every connection: `make up` rewrites it when it recreates the cluster.
        self.pods = PodWatch(KubeconfigFile(env.get("SANDBOX_KUBECONFIG", "/kube/admin.yaml")))
        self.sampler = Sampler(CgroupTree(env.get("SANDBOX_CGROUP_ROOT", "/host/cgroup")), self.store,
                               interval=self.interval, ecs_client=boto3.client("ecs", **aws),
                               cloudwatch=boto3.client("cloudwatch", **aws),
                               docker_client=docker.from_env(timeout=30), pods=self.pods)

    def start(self) -> None:
        threading.Thread(target=self.sampler.run, args=(self.stop,), name="sampler", daemon=True).start()
        threading.Thread(target=self.pods.run, args=(self.stop,), name="pods", daemon=True).start()
        threading.Thread(target=self._heartbeat, name="uptime", daemon=True).start()

    def _heartbeat(self) -> None:
        started = time.time()
        while not self.stop.is_set():
            self.store.mark_up(started, time.time())
            self.stop.wait(5)

    def prices(self) -> pricing.Prices:
        """The project's price table, read again whenever sandbox.yaml changes."""
        mtime = self.config_path.stat().st_mtime if self.config_path.exists() else 0.0
        if self._prices is None or self._prices[0] != mtime:
            prices = pricing.load_prices(self.config_path) if mtime else pricing.DEFAULT_PRICES
            self._prices = (mtime, prices)
        return self._prices[1]

    def report(self, dag_id: str, run_id: str) -> dict:
        q = AirflowClient.quote
        dag_run = self.airflow.get(f"dags/{q(dag_id)}/dagRuns/{q(run_id)}")
        tis = self.airflow.task_instances(dag_id, run_id)
        records = report.for_run(self.store.all(), dag_id, run_id)
        up = self.sampler.last_round is not None and time.time() - self.sampler.last_round < 30
        start, end = epoch(dag_run.get("start_date")), epoch(dag_run.get("end_date"))
        failures = [period for watch in self.watches().values()
                    for period in watch.during(start or 0.0, end or time.time())]
        return report.build(dag_run, tis, records, self.prices(), interval=self.interval, sampler_up=up,
                            failures=failures)

    def watches(self) -> dict[str, WatchHealth]:
        """What the figures depend on, each with its record of when it did not work."""
        return {"pods": self.pods.health, "ecs_lookup": self.sampler.ecs_lookup_health,
                "sampling": self.sampler.sampling_health}

    def latest(self, dag_id: str) -> tuple[str | None, dict[str, str]]:
        """The DAG's newest finished run, and its newest finished run on each backend (labelled by
        what the sampler saw it run: "ecs", "k8s", "ecs+k8s") among those the sampler watched from
        start to end: a run it partly missed would compare its measured tasks with all of another's."""
        runs = [r for r in self.airflow.get(f"dags/{AirflowClient.quote(dag_id)}/dagRuns", order_by="-start_date",
                                            limit=50)["dag_runs"] if r.get("state") in ("success", "failed")]
        mine = [r for r in self.store.all() if r.identity and r.identity.get("dag_id") == dag_id and len(r.samples) >= 2]
        per_backend: dict[str, str] = {}
        for run in runs:
            start, end = epoch(run.get("start_date")), epoch(run.get("end_date"))
            if start is None or end is None or not self.store.watched(start, end):
                continue
            label = "+".join(sorted({r.backend for r in report.for_run(mine, dag_id, run["dag_run_id"])}))
            if label and label not in per_backend:
                per_backend[label] = run["dag_run_id"]
        return (runs[0]["dag_run_id"] if runs else None), per_backend

    def health(self) -> dict:
        s = self.sampler
        return {"rounds": s.rounds, "last_round": s.last_round, "round_cpu_seconds": s.round_seconds,
                "tracked": len(s.tracked), "interval_seconds": self.interval, **health_json(self.watches())}


def _labels(reports: list[dict]) -> list[str]:
    """Each report's backends ("ecs", "k8s", "ecs+k8s"); the run id's end where two would be the same."""
    labels = ["+".join(sorted({t["backend"] for t in r["tasks"] if t["backend"]})) or "airflow" for r in reports]
    return [f"{label} ({r['run_id'][-8:]})" if labels.count(label) > 1 else label for label, r in zip(labels, reports)]


class Handler(BaseHTTPRequestHandler):
    service: Service

    def log_message(self, fmt, *args):  # the access log is noise next to the sampler's lines
        return

    def _send(self, status: int, body: str | bytes, content_type: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, value) -> None:
        self._send(status, json.dumps(value, indent=1), "application/json")

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        from sandbox.metrics import charts
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        query = dict(urllib.parse.parse_qsl(url.query))
        # Pages link the library relative to themselves, so they also work behind Airflow's proxy.
        static = query.get("plotly_js") or "../" * (len(parts) - 1) + "static/plotly.min.js"
        try:
            if parts == ["healthz"]:
                return self._json(200, self.service.health())
            if parts == ["static", "plotly.min.js"]:
                return self._send(200, charts.plotly_js_source(), "application/javascript")
            if len(parts) == 3 and parts[0] == "runs":
                dag_id, run_id = parts[1], parts[2]
                as_json = run_id.endswith(".json") or query.get("format") == "json"
                rep = self.service.report(dag_id, run_id.removesuffix(".json") if as_json else run_id)
                if as_json:
                    return self._json(200, rep)
                return self._send(200, charts.run_page(rep, plotly_js=static), "text/html; charset=utf-8")
            if len(parts) == 2 and parts[0] == "latest":
                latest, per_backend = self.service.latest(parts[1])
                return self._json(200, {"dag_id": parts[1], "latest": latest, "per_backend": per_backend})
            if len(parts) == 2 and parts[0] in ("compare", "compare-latest"):
                if parts[0] == "compare":
                    run_ids = [r for r in query.get("runs", "").split(",") if r]
                    labels = None
                else:  # the newest run on each single backend
                    chosen = {label: r for label, r in self.service.latest(parts[1])[1].items() if "+" not in label}
                    labels, run_ids = list(chosen), list(chosen.values())
                if len(run_ids) < 2:
                    message = (f"Nothing to compare for {parts[1]}: it needs finished runs on two backends "
                               "(for import_vcf: trigger it with backend=ecs and with backend=k8s).")
                    problems = health_json(self.service.watches())["problems"]
                    if problems:  # a backend whose runs go unmeasured never has a run to compare
                        message += f" The metrics service cannot measure everything now: {'; '.join(problems)}."
                    return self._json(404, {"error": message}) if query.get("format") == "json" else \
                        self._send(404, f"<p>{html.escape(message)}</p>", "text/html; charset=utf-8")
                reports = [self.service.report(parts[1], r) for r in run_ids]
                labelled = dict(zip(labels or _labels(reports), reports))
                if query.get("format") == "json":
                    return self._json(200, charts.comparison_json(labelled))
                return self._send(200, charts.comparison_page(labelled, plotly_js=static), "text/html; charset=utf-8")
            return self._json(404, {"error": f"no such page: {url.path}"})
        except AirflowApiError as error:
            return self._json(404 if "HTTP 404" in str(error) else 502, {"error": str(error)})
        except Exception as error:
            log.exception("GET %s failed", self.path)
            return self._json(500, {"error": f"{type(error).__name__}: {error}"})


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    service = Service(dict(os.environ))
    service.start()
    Handler.service = service
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    log.info("sampling every %g s; reports on port %d", service.interval, PORT)
    server.serve_forever()


if __name__ == "__main__":
    main()
