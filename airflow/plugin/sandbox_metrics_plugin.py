"""The sandbox's view in the Airflow UI: the metrics service's pages (sandbox/metrics/server.py) inside
Airflow, for its logged-in users.

Registered through the `airflow.plugins` entry point (the dist-info next to this file), so it loads
whatever plugins folder the project brings. The pages are proxied under /sandbox-metrics: the
browser stays on Airflow's origin and its login. /sandbox-metrics/ itself lists the newest DAG runs
with links to their pages.

Where they appear depends on the UI:
- Airflow >= 3.1: a "Cost" tab on every DAG run and a "Backends" tab on every DAG (`external_views`).
- Airflow 3.0: its UI has no way for a plugin to add tabs (it ignores `external_views`): a
  "Plugins" -> "Sandbox" -> "Cost reports" menu entry opens /sandbox-metrics/ in a new browser tab.
- Airflow 2 (Flask UI): a "Sandbox" -> "Cost reports" menu entry opening /sandbox-metrics/.
"""
from __future__ import annotations

import html
import os
import urllib.parse

import httpx
from airflow.plugins_manager import AirflowPlugin

METRICS_URL = os.environ.get("SANDBOX_METRICS_URL", "http://metrics:8125").rstrip("/")
PREFIX = "/sandbox-metrics"
NEWEST_RUNS = 50
UNREACHABLE = "The sandbox's metrics service is not reachable ({error}); `make up` starts it."


def metrics_url(path: str) -> str:
    return f"{METRICS_URL}/{urllib.parse.quote(path, safe='/')}"


def newest_runs(dag_ids: set[str] | None) -> list:
    """The newest DAG runs of these DAGs (all DAGs for None), newest first, from Airflow's DB."""
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    query = select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.start_date).order_by(DagRun.id.desc())
    if dag_ids is not None:
        query = query.where(DagRun.dag_id.in_(dag_ids))
    with create_session() as session:
        return session.execute(query.limit(NEWEST_RUNS)).all()


def runs_table(runs: list) -> str:
    """The runs with links to their pages, relative to /sandbox-metrics/ (the page they are on)."""
    if not runs:
        return "<p>No DAG runs yet.</p>"
    rows = []
    for dag_id, run_id, state, start_date in runs:
        dag, run = urllib.parse.quote(dag_id, safe=""), urllib.parse.quote(run_id, safe="")
        started = f"{start_date:%Y-%m-%d %H:%M:%S} UTC" if start_date else ""
        rows.append(f"<tr><td>{html.escape(dag_id)}</td><td>{html.escape(run_id)}</td>"
                    f"<td>{html.escape(str(state or ''))}</td><td>{started}</td>"
                    f'<td><a href="runs/{dag}/{run}">Cost</a></td>'
                    f'<td><a href="compare-latest/{dag}">Backends</a></td></tr>')
    return ('<table class="table table-striped table-bordered"><thead><tr><th>DAG</th><th>Run</th><th>State</th>'
            f"<th>Started</th><th>Cost of the run</th><th>DAG by backend</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


try:
    from airflow.api_fastapi.core_api.security import GetUserDep
except ImportError:  # Airflow 2
    GetUserDep = None

if GetUserDep is not None:  # ---- Airflow 3: a FastAPI app mounted by the api-server ----------------
    import importlib.util
    import inspect

    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api import security
    from fastapi import FastAPI, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import HTMLResponse, Response
    from starlette.exceptions import HTTPException
    from starlette.requests import HTTPConnection

    LOGIN_COOKIE = "sandbox_metrics_token"
    # Airflow 3.0's UI keeps its login token in localStorage and sends it as a header, which a page
    # load does not: this page hands the token over once as a cookie of /sandbox-metrics.
    LOGIN_PAGE = f"""<!doctype html><meta charset="utf-8"><title>Sandbox metrics</title>
<p id="message">Opening the page with your Airflow login…</p>
<script>
  const token = localStorage.getItem("token"), cookie = "{LOGIN_COOKIE}=" + token;
  if (token && !document.cookie.split("; ").includes(cookie)) {{
    document.cookie = cookie + "; path={PREFIX}; SameSite=Strict";
    location.reload();
  }} else {{
    document.getElementById("message").innerHTML =
      'Log in to <a href="/" target="_top">Airflow</a>, then reload this page.';
  }}
</script>"""

    class LoginCookieAsBearer:
        """Airflow 3.0's user check reads the Authorization header only: give it the cookie's token."""

        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http":
                conn = HTTPConnection(scope)
                token = conn.cookies.get(LOGIN_COOKIE)
                if token and "authorization" not in conn.headers:
                    scope = {**scope, "headers": [*scope["headers"], (b"authorization", f"Bearer {token}".encode())]}
            await self.app(scope, receive, send)

    app = FastAPI(title="Sandbox metrics", docs_url=None, redoc_url=None, openapi_url=None)
    if "request" not in inspect.signature(security.get_user).parameters:  # 3.0: no login cookie read
        app.add_middleware(LoginCookieAsBearer)

    @app.exception_handler(HTTPException)
    async def login_first(request: Request, error: HTTPException) -> Response:
        if error.status_code in (401, 403) and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(LOGIN_PAGE, status_code=error.status_code)
        return await http_exception_handler(request, error)

    @app.get("/", response_class=HTMLResponse)
    def cost_reports(user: GetUserDep) -> HTMLResponse:
        dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
        return HTMLResponse(f"""<!doctype html><meta charset="utf-8"><title>Cost reports</title>
<style>body {{ font-family: sans-serif }} td, th {{ padding: 2px 8px; text-align: left }}</style>
<h2>Cost reports: the newest DAG runs</h2>{runs_table(newest_runs(dag_ids))}""")

    @app.get("/{path:path}")
    async def proxy(path: str, request: Request, user: GetUserDep) -> Response:
        try:
            async with httpx.AsyncClient(timeout=120) as client:
                res = await client.get(metrics_url(path), params=request.query_params.multi_items())
        except httpx.HTTPError as error:
            return Response(UNREACHABLE.format(error=error), status_code=502, media_type="text/plain")
        return Response(res.content, status_code=res.status_code,
                        media_type=res.headers.get("content-type", "text/plain"))

    class SandboxMetricsPlugin(AirflowPlugin):
        name = "sandbox_metrics"
        fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "Sandbox metrics"}]
        external_views = [  # Airflow >= 3.1; 3.0 ignores the attribute
            {"name": "Cost", "href": f"{PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}", "destination": "dag_run",
             "url_route": "cost"},
            {"name": "Backends", "href": f"{PREFIX}/compare-latest/{{DAG_ID}}", "destination": "dag",
             "url_route": "backends"},
        ]
        if not hasattr(AirflowPlugin, "external_views") and importlib.util.find_spec("airflow.providers.fab"):
            # Airflow 3.0: its "Plugins" menu lists these links. Any such link makes the api-server
            # mount the FAB provider's Flask app too (at /pluginsv2), and fail to start without it.
            appbuilder_menu_items = [{"name": "Cost reports", "href": f"{PREFIX}/", "category": "Sandbox"}]

else:  # ---- Airflow 2: a Flask-AppBuilder view of the webserver ------------------------------------
    from airflow.www.auth import has_access_view
    from airflow.www.extensions.init_auth_manager import get_auth_manager
    from flask import Response, g, render_template_string, request
    from flask_appbuilder import BaseView, expose
    from markupsafe import Markup

    COST_REPORTS_PAGE = """{% extends base_template %}
{% block content %}<h2>Cost reports: the newest DAG runs</h2>{{ table }}{% endblock %}"""

    class SandboxMetricsView(BaseView):
        route_base = PREFIX
        default_view = "cost_reports"

        @expose("/")
        @has_access_view()  # logged in, with access to the UI: the check of Airflow's own pages
        def cost_reports(self):
            dag_ids = get_auth_manager().get_permitted_dag_ids(methods=["GET"], user=g.user)
            return render_template_string(COST_REPORTS_PAGE, base_template=self.appbuilder.base_template,
                                          appbuilder=self.appbuilder, title="Cost reports",
                                          table=Markup(runs_table(newest_runs(dag_ids))))

        @expose("/<path:path>")
        @has_access_view()
        def proxy(self, path: str):
            try:
                res = httpx.get(metrics_url(path), params=list(request.args.items(multi=True)), timeout=120)
            except httpx.HTTPError as error:
                return Response(UNREACHABLE.format(error=error), status=502, mimetype="text/plain")
            return Response(res.content, status=res.status_code,
                            content_type=res.headers.get("content-type", "text/plain"))

    class SandboxMetricsPlugin(AirflowPlugin):
        name = "sandbox_metrics"
        appbuilder_views = [{"name": "Cost reports", "category": "Sandbox", "view": SandboxMetricsView()}]
