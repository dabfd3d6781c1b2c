"""`make bench`: measures the sandbox and writes bench/results/<timestamp>.json plus latest.json and
a short table (latest.md).

Figures: cold `make up` (no sandbox image built, base images included), warm `make up` (images
built, stack down), and trigger-to-success of poc_ecs_operator with count_to=5 (several runs).
Targets from the issue are recorded next to each figure; the script measures, it does not assert.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from datetime import datetime, timezone

from sandbox import host, images, stack
from sandbox.airflow_api import AirflowClient
from sandbox.settings import ROOT, load_settings

RESULTS = ROOT / "bench" / "results"
TARGETS = {"warm_up_s": 90, "poc_ecs_operator_s": 30}


def remove_sandbox_images(settings) -> int:
    tags = [i.tag for i in images.project_images(settings)] + [images.LOCAL_DEBIAN_BASE, images.LOCAL_PYTHON_BASE]
    tags += [f"localhost:{settings.get('LOCALSTACK_PORT', '4566')}/sandbox-task:1.0"]
    present = [t for t in tags if images.image_exists(t)]
    if present:
        subprocess.run(["docker", "rmi", "-f", *present], capture_output=True)
    subprocess.run(["docker", "image", "prune", "-f"], capture_output=True)
    return len(present)


def time_dag(client: AirflowClient, dag_id: str, conf: dict) -> float:
    started = time.monotonic()
    run_id = client.trigger_dag(dag_id, conf)
    run = client.wait_for_dag_run(dag_id, run_id, timeout=600)
    if run["state"] != "success":
        raise RuntimeError(f"{dag_id} run {run_id} ended {run['state']}: {client.task_states(dag_id, run_id)}")
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-cold", action="store_true", help="do not remove images for a cold start")
    parser.add_argument("--dag-runs", type=int, default=3)
    args = parser.parse_args(argv)
    settings = load_settings()
    host.preflight()
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
                     "targets": TARGETS}

    stack.down(settings)
    if not args.skip_cold:
        removed = remove_sandbox_images(settings)
        print(f"cold start: removed {removed} sandbox image(s)")
        results["cold_up_s"] = round(stack.up(settings), 1)
        stack.down(settings)
    results["warm_up_s"] = round(stack.up(settings), 1)

    client = AirflowClient(settings.airflow_url, *settings.admin)
    runs = [round(time_dag(client, "poc_ecs_operator", {"count_to": 5}), 1) for _ in range(args.dag_runs)]
    results["poc_ecs_operator_runs_s"] = runs
    results["poc_ecs_operator_s"] = round(statistics.median(runs), 1)
    stack.remove_task_containers()

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(results, indent=2)
    (RESULTS / f"{stamp}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    rows = [("cold make up (nothing built)", results.get("cold_up_s"), None),
            ("warm make up (images built)", results["warm_up_s"], TARGETS["warm_up_s"]),
            ("poc_ecs_operator count_to=5, median", results["poc_ecs_operator_s"], TARGETS["poc_ecs_operator_s"])]
    table = ["| measure | seconds | target |", "|---|---:|---:|"]
    table += [f"| {name} | {'-' if v is None else v} | {'-' if t is None else f'<= {t}'} |" for name, v, t in rows]
    (RESULTS / "latest.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"\nwritten: {RESULTS / (stamp + '.json')}; the sandbox is left running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
