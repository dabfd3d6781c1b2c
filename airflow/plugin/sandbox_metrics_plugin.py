"""The sandbox's view in the Airflow UI: a "Cost" tab on every DAG run and a "Backends" tab on
every DAG, showing the metrics service's pages (sandbox/metrics/server.py) inside Airflow.

Registered through the `airflow.plugins` entry point (the dist-info next to this file), so it loads
whatever plugins folder the project brings. The pages are proxied under /sandbox-metrics: the
browser stays on Airflow's origin and its login.
"""
from __future__ import annotations

import os
import urllib.parse

import httpx
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, Request
from fastapi.responses import Response

METRICS_URL = os.environ.get("SANDBOX_METRICS_URL", "http://metrics:8125").rstrip("/")
PREFIX = "/sandbox-metrics"

app = FastAPI(title="Sandbox metrics", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/{path:path}")
async def proxy(path: str, request: Request, user: GetUserDep) -> Response:
    """Only for a logged-in user (Airflow's own check), like every other page of the UI."""
    url = f"{METRICS_URL}/{urllib.parse.quote(path, safe='/')}"
    try:
        async with httpx.AsyncClient(timeout=120) as client:
            res = await client.get(url, params=request.query_params)
    except httpx.HTTPError as error:
        return Response(f"The sandbox's metrics service is not reachable ({error}); `make up` starts it.",
                        status_code=502, media_type="text/plain")
    return Response(res.content, status_code=res.status_code,
                    media_type=res.headers.get("content-type", "text/plain"))


class SandboxMetricsPlugin(AirflowPlugin):
    name = "sandbox_metrics"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "Sandbox metrics"}]
    external_views = [
        {"name": "Cost", "href": f"{PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}", "destination": "dag_run",
         "url_route": "cost"},
        {"name": "Backends", "href": f"{PREFIX}/compare-latest/{{DAG_ID}}", "destination": "dag",
         "url_route": "backends"},
    ]
