"""`make bench`: measures the sandbox and writes bench/results/<timestamp>.json plus latest.json and
a short table (latest.md).

Figures:
- cold `make up` (no sandbox image built, base images and the offline cluster's binaries included),
  with its steps (when each began and took: the cluster's build runs beside the rest);
- warm `make up` (images built, stack and cluster down) and the cluster's warm start to Ready;
  with --only-startup: warm `make up` with its steps, the first poc_ecs_operator after it against
  the runs that follow, `make up` with nothing changed, and single AWS calls' round trips
  (RunTask, DescribeTasks, GetLogEvents as Airflow's role and as the root; AssumeRole);
- trigger-to-success of poc_ecs_operator (count_to=5) and of a one-pod DAG (poc_k8s_operator);
- import_vcf with 8 and 32 cases on each backend (median of --fanout-runs each), and the 32/8 ratio;
- projects: `make up` over the running sandbox with nothing changed (and how many images it rebuilt),
  switching to another project (a copy of examples/genomics) and back with images cached, and
  `make up` after editing only the project's requirements.txt / only a task image's context;
- the 64-task fan-out (import_vcf with 32 cases on ECS and 32 on Kubernetes, triggered together):
  wall time over the case tasks' own CPU floor (their CPU-seconds / cores), CPU-seconds and peak
  memory per sandbox component over the run (sandbox.host.usage), and each component's memory once
  the sandbox is idle after it; and the price of fidelity: the same fan-out with IAM enforced and
  the emulator's state written every few seconds (the defaults) against both off, runs alternating;
- the metrics sampler's own cost: the machine's CPU-seconds over a minute of the idle sandbox and
  over a 32-case fan-out on each backend, with the metrics service running and stopped (runs
  interleaved), and the service's own CPU from its cgroup.
Targets from the issues are recorded next to each figure; the script measures, it does not assert.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from datetime import datetime, timezone

from sandbox.core.airflow_api import AirflowClient
from sandbox.core.progress import step, timings_since
from sandbox.host import call_costs, images, preflight, stack, usage
from sandbox.host.docker import docker
from sandbox.host.project import load_project, selected_project
from sandbox.host.settings import ROOT, load_settings

RESULTS = ROOT / "bench" / "results"
TARGETS = {"warm_up_s": 30, "poc_ecs_operator_s": 30, "cluster_warm_ready_s": 60, "one_pod_dag_s": 30,
           "import_vcf_32_over_8": 3.0, "switch_project_s": 60, "unchanged_up_rebuilt_images": 0,
           "sampler_overhead_pct": 5, "fanout_over_floor": 3.0, "idle_after_fanout_mib": 1536,
           "fidelity_price_pct": 15, "unchanged_up_s": 5, "first_ecs_dag_over_steady": 1.2, "cold_up_s": 540}
EXAMPLE_PROJECT = ROOT / "examples" / "genomics"


def built_tags(settings) -> list[str]:
    from sandbox.seeding.config import load_images
    project = load_project(settings)
    return ([i["tag"] for i in load_images(images.SERVICE_IMAGES)]
            + [i["tag"] for i in stack.seed_config(project).images] + [project.airflow_image()])


def remove_sandbox_images(settings, include_cluster: bool) -> int:
    tags = built_tags(settings) + [images.LOCAL_DEBIAN_BASE, images.LOCAL_PYTHON_BASE]
    tags += [f"localhost:{settings.get('LOCALSTACK_PORT', '4566')}/sandbox-task:1.0"]
    if include_cluster:
        from sandbox.host.cluster.offline import BINARIES_IMAGE, NODE_IMAGE, NODE_PACKAGES_IMAGE
        tags += [BINARIES_IMAGE, NODE_IMAGE, NODE_PACKAGES_IMAGE]
    present = [t for t in tags if images.image_exists(t)]
    if present:
        docker("rmi", "-f", *present)
    docker("image", "prune", "-f")
    return len(present)


def time_dag(client: AirflowClient, dag_id: str, conf: dict) -> float:
    run_id, state, seconds = client.run_dag(dag_id, conf, timeout=1200)
    if state != "success":
        raise RuntimeError(f"{dag_id} run {run_id} ended {state}: {client.task_states(dag_id, run_id)}")
    return round(seconds, 1)


def time_cluster_start(settings) -> float | None:
    """Seconds from starting a stopped cluster to Ready (the node keeps its images and PKI)."""
    provider = stack.recorded_provider(settings)
    if provider is None or provider.name != "offline":
        return None
    docker("stop", "-t", "10", provider.node)
    started = time.monotonic()
    provider.provision(settings.network)
    provider.wait_ready(timeout=300)
    return round(time.monotonic() - started, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-cold", action="store_true", help="do not remove images for a cold start")
    parser.add_argument("--keep-cluster-images", action="store_true",
                        help="cold start without rebuilding the offline cluster's binaries (saves ~10 min)")
    parser.add_argument("--dag-runs", type=int, default=3, help="runs of each POC DAG (the median is reported)")
    parser.add_argument("--skip-projects", action="store_true", help="do not time project switches and rebuilds")
    parser.add_argument("--skip-versions", action="store_true",
                        help="do not time the first make up of examples/genomics on each MWAA version CI covers")
    parser.add_argument("--only-versions", action="store_true",
                        help="measure only examples/genomics' first make up and genomics_qc on each version")
    parser.add_argument("--sampler-runs", type=int, default=3,
                        help="runs of each with/without-sampler measurement (0: skip it)")
    parser.add_argument("--only-sampler", action="store_true",
                        help="measure only the sampler's cost, over the running sandbox")
    parser.add_argument("--only-fanout", action="store_true",
                        help="measure only the 64-task fan-out and its breakdown, over the running sandbox")
    parser.add_argument("--only-fidelity", action="store_true",
                        help="measure only the fan-out with IAM and durable state on against both off")
    parser.add_argument("--only-startup", action="store_true",
                        help="only warm `make up` from `make down` (with its steps), `make up` with nothing changed, "
                             "the first poc_ecs_operator against the next ones, and single AWS calls' costs")
    parser.add_argument("--fanout-runs", type=int, default=3,
                        help="runs of import_vcf with 8 and with 32 cases per backend (medians are reported)")
    args = parser.parse_args(argv)
    settings = load_settings()
    preflight.preflight()
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "targets": TARGETS}

    if args.only_sampler:
        stack.up(settings)
        sampler_cost(settings, AirflowClient(settings.airflow_url, *settings.admin), results, args.sampler_runs)
        write_results(results)
        return 0
    if args.only_fanout or args.only_fidelity:
        stack.up(settings)
        client = AirflowClient(settings.airflow_url, *settings.admin)
        if args.only_fanout:
            fanout_breakdown(settings, client, results, args.fanout_runs)
        if args.only_fidelity:
            fidelity_price(client, results, args.fanout_runs)
        write_results(results)
        return 0
    if args.only_startup:
        startup(settings, results, args.dag_runs)
        write_results(results)
        return 0
    if args.only_versions:
        time_versions(results)
        write_results(results)
        return 0
    stack.down(settings)
    if not args.skip_cold:
        removed = remove_sandbox_images(settings, include_cluster=not args.keep_cluster_images)
        print(f"cold start: removed {removed} sandbox image(s)")
        started = time.monotonic()
        results["cold_up_s"] = round(stack.up(settings), 1)
        results["cold_up_steps"] = steps_since(started)  # the cluster's build among them, side by side
        stack.down(settings)
    results["warm_up_s"] = round(stack.up(settings), 1)
    results["cluster_warm_ready_s"] = time_cluster_start(settings)

    client = AirflowClient(settings.airflow_url, *settings.admin)
    with step("Timing poc_ecs_operator (count_to=5)"):
        runs = [time_dag(client, "poc_ecs_operator", {"count_to": 5}) for _ in range(args.dag_runs)]
    results["poc_ecs_operator_runs_s"], results["poc_ecs_operator_s"] = runs, statistics.median(runs)
    if stack.recorded_provider(settings) is not None:  # `make up` set up a cluster
        with step("Timing poc_k8s_operator (one pod, plus its deferrable and TaskFlow twins)"):
            runs = [time_dag(client, "poc_k8s_operator", {}) for _ in range(args.dag_runs)]
        results["one_pod_dag_runs_s"], results["one_pod_dag_s"] = runs, statistics.median(runs)
        for backend in ("ecs", "k8s"):
            runs = {8: [], 32: []}
            for _ in range(args.fanout_runs):  # interleaved, so drift on the machine touches both sizes
                for cases in runs:
                    with step(f"Timing import_vcf backend={backend} max_cases={cases}"):
                        runs[cases].append(time_dag(client, "import_vcf", {"backend": backend, "max_cases": cases}))
            for cases, times in runs.items():
                results[f"import_vcf_{backend}_{cases}_runs_s"] = times
                results[f"import_vcf_{backend}_{cases}_s"] = statistics.median(times)
            results[f"import_vcf_{backend}_32_over_8"] = round(
                results[f"import_vcf_{backend}_32_s"] / results[f"import_vcf_{backend}_8_s"], 2)
        fanout_breakdown(settings, client, results, args.fanout_runs)
        fidelity_price(client, results, args.fanout_runs)
        if args.sampler_runs:
            sampler_cost(settings, client, results, args.sampler_runs)
    stack.remove_task_containers(settings)
    if not args.skip_projects:
        time_projects(results)
    if not args.skip_versions:
        time_versions(results)
    write_results(results)
    return 0


def steps_since(started: float) -> list[dict]:
    """`make up`'s steps since `started` (progress.step): when each began, relative to it, and took."""
    return [{"step": t.title, "began_s": round(t.started - started, 1), "took_s": round(t.seconds, 1)}
            for t in timings_since(started) if t.seconds >= 1]


def startup(settings, results: dict, dag_runs: int) -> None:
    """Warm `make up` from `make down` and where its time went; the first poc_ecs_operator after it
    against the runs that follow; `make up` with nothing changed; what single AWS calls cost."""
    stack.down(settings)
    started = time.monotonic()
    results["warm_up_s"] = round(stack.up(settings), 1)
    results["warm_up_steps"] = steps_since(started)
    client = AirflowClient(settings.airflow_url, *settings.admin)
    with step(f"Timing poc_ecs_operator (count_to=5) right after make up, then {dag_runs} more times"):
        runs = [time_dag(client, "poc_ecs_operator", {"count_to": 5}) for _ in range(dag_runs + 1)]
    steady = statistics.median(runs[1:])
    results.update({"poc_ecs_operator_first_s": runs[0], "poc_ecs_operator_steady_s": steady,
                    "first_ecs_dag_over_steady": round(runs[0] / steady, 2)})
    results["unchanged_up_s"] = round(stack.up(settings), 1)
    with step("Timing single AWS calls through the emulator (as Airflow's role and as the root)"):
        results["per_call_ms"] = call_costs.measure(settings)
    print("\n".join(call_costs.table(results["per_call_ms"])))


def container_cpu_seconds(service: str) -> float | None:
    """A compose service's container's CPU time so far, from its cgroup (None if it cannot be read)."""
    from sandbox.metrics.cgroups import CgroupTree
    tree = CgroupTree(usage.CGROUP_ROOT)
    cid = stack.compose("ps", "--quiet", service, capture=True).stdout.strip()
    rel = usage.container_cgroup(tree, cid) if cid else None
    return tree.read(rel).cpu_ns / 1e9 if rel else None


def sampler_cost(settings, client: AirflowClient, results: dict, runs: int) -> None:
    """The machine's CPU with the metrics service running and stopped, idle and during a 32-case
    fan-out per backend; the service's own CPU while it ran. Runs alternate on and off."""
    def measure(window) -> tuple[float, float | None]:
        own0, machine0 = container_cpu_seconds("metrics"), usage.machine_cpu_seconds()
        window()
        own1, machine1 = container_cpu_seconds("metrics"), usage.machine_cpu_seconds()
        return machine1 - machine0, (own1 - own0) if own0 is not None and own1 is not None else None

    windows = {"idle_60s": lambda: time.sleep(60)}
    if stack.recorded_provider(settings) is not None:
        for backend in ("ecs", "k8s"):
            windows[f"import_vcf_{backend}_32"] = (
                lambda backend=backend: time_dag(client, "import_vcf", {"backend": backend, "max_cases": 32}))
    figures: dict = {}
    for name, window in windows.items():
        on, off, own = [], [], []
        for _ in range(runs):
            for sampling in (True, False):
                stack.compose("up" if sampling else "stop", *(["--detach", "--wait"] if sampling else []),
                              "metrics", capture=True)
                time.sleep(5)  # settle: the service's start (or the last run's tasks) out of the window
                with step(f"Sampler cost: {name} with the sampler {'on' if sampling else 'off'}"):
                    machine, mine = measure(window)
                (on if sampling else off).append(machine)
                if sampling and mine is not None:
                    own.append(mine)
        stack.compose("up", "--detach", "--wait", "metrics", capture=True)
        on_s, off_s = statistics.median(on), statistics.median(off)
        figures[name] = {"machine_cpu_s_on": [round(v, 2) for v in on], "machine_cpu_s_off": [round(v, 2) for v in off],
                         "machine_overhead_pct": round((on_s - off_s) / off_s * 100, 1),
                         "sampler_own_cpu_s": [round(v, 2) for v in own],
                         "sampler_own_pct": round(statistics.median(own) / on_s * 100, 1) if own else None}
    results["sampler_cost"] = figures
    results["sampler_overhead_pct"] = max(f["sampler_own_pct"] or 0 for f in figures.values())


FANOUT_CASES = 32
IDLE_SETTLE_S = 90  # past the executor's quiet minute, after which it ends its idle workers
IDLE_CPU_S = 60  # the idle sandbox's CPU over this long, after the settling: what each component spends anyway


def fanout(settings, client: AirflowClient, cases: int = FANOUT_CASES) -> dict:
    """import_vcf with `cases` cases on each backend, triggered together, metered per component.
    Efficiency is the wall time over the floor the case tasks' own CPU sets on this machine's cores."""
    meter = usage.UsageMeter(settings).start()
    started = time.monotonic()
    runs = {backend: client.trigger_dag("import_vcf", {"backend": backend, "max_cases": cases})
            for backend in ("ecs", "k8s")}
    for backend, run_id in runs.items():
        state = client.wait_for_dag_run("import_vcf", run_id, timeout=1800)["state"]
        if state != "success":
            raise RuntimeError(f"import_vcf {backend} run {run_id} ended {state}: "
                               f"{client.task_states('import_vcf', run_id)}")
    wall = time.monotonic() - started
    used = meter.stop()
    floor = used.tasks_cpu_s() / used.cores
    return {"wall_s": round(wall, 1), "tasks_cpu_s": round(used.tasks_cpu_s(), 1), "floor_s": round(floor, 1),
            "over_floor": round(wall / floor, 2) if floor else None, "usage": used.as_dict(), "meter": used,
            "table": used.table(f"import_vcf {cases} ECS + {cases} pod cases at once")}


def fanout_breakdown(settings, client: AirflowClient, results: dict, runs: int) -> None:
    """The fan-out `runs` times (the median by wall time is reported with its breakdown), then each
    component's memory once the sandbox has been idle IDLE_SETTLE_S seconds."""
    if stack.recorded_provider(settings) is None:
        return  # no cluster: half the fan-out cannot run
    measured = []
    for i in range(max(1, runs)):
        with step(f"Fan-out {i + 1}/{max(1, runs)}: import_vcf {FANOUT_CASES} ECS + {FANOUT_CASES} pod cases at once"):
            measured.append(fanout(settings, client))
    measured.sort(key=lambda m: m["wall_s"])
    median = measured[len(measured) // 2]
    time.sleep(IDLE_SETTLE_S)
    idle = usage.memory_now(settings)
    with step(f"The idle sandbox's CPU over {IDLE_CPU_S} s"):
        meter = usage.UsageMeter(settings).start()
        time.sleep(IDLE_CPU_S)
        idle_cpu = meter.stop()
    # The machine is busy throughout a fan-out, so the wall time is what all of this costs on its cores:
    # the idle sandbox's share runs whatever the tasks do; the added share is paid per task.
    run, tasks = median["meter"], 2 * FANOUT_CASES
    added = usage.work_added(run, idle_cpu, tasks)
    added_s = sum(r["added_cpu_s"] for r in added)
    keep = ("table", "meter")
    results["fanout"] = {"runs": [{k: v for k, v in m.items() if k not in keep} for m in measured],
                         "median": {k: v for k, v in median.items() if k not in keep},
                         "table": median["table"] + ["", *usage.work_added_table(added, run, tasks)],
                         "idle_mib": {k: round(v) for k, v in idle.items()},
                         "idle_total_mib": round(sum(idle.values())), "work_added": added,
                         "idle_cpu_s_per_min": round(sum(idle_cpu.cpu_s.values()) / idle_cpu.seconds * 60, 1),
                         # the ratio were the idle sandbox free: only the work the tasks added, on every core
                         "over_floor_without_idle": round(added_s / run.cores / median["floor_s"], 2)
                         if median["floor_s"] else None}
    results["fanout_over_floor"] = median["over_floor"]
    results["idle_after_fanout_mib"] = round(sum(idle.values()))


FIDELITY_OFF = {"AWS_IAM_ENFORCED": "false", "AWS_STATE_SAVE_SECONDS": "0"}


def fidelity_price(client: AirflowClient, results: dict, runs: int) -> None:
    """The fan-out with IAM enforced and durable state (the settings as they are) against both off:
    `make up` with FIDELITY_OFF in the environment, runs alternating, medians compared."""
    if stack.recorded_provider(load_settings()) is None:
        return
    walls: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for i in range(max(1, runs)):
            for mode in ("on", "off"):
                for key, value in FIDELITY_OFF.items():
                    if mode == "off":
                        os.environ[key] = value
                    else:
                        os.environ.pop(key, None)
                settings = load_settings()
                stack.up(settings)
                with step(f"Fidelity {mode} ({i + 1}/{max(1, runs)}): the fan-out"):
                    walls[mode].append(fanout(settings, client)["wall_s"])
    finally:
        for key in FIDELITY_OFF:
            os.environ.pop(key, None)
        stack.up(load_settings())
    on, off = statistics.median(walls["on"]), statistics.median(walls["off"])
    results["fidelity"] = {"wall_s_on": walls["on"], "wall_s_off": walls["off"], "off_settings": FIDELITY_OFF}
    results["fidelity_price_pct"] = round((on - off) / off * 100, 1)


def image_ids(tags: list[str]) -> dict[str, str]:
    return {t: docker("image", "inspect", "--format", "{{.Id}}", t).stdout.strip() for t in tags}


def use_project(path: Path | None):
    """The settings with SANDBOX_PROJECT set (None: the checkout's own), as `make up` would read them."""
    if path is None:
        os.environ.pop("SANDBOX_PROJECT", None)
    else:
        os.environ["SANDBOX_PROJECT"] = str(path)
    return load_settings()


def time_projects(results: dict) -> None:
    """Over the running sandbox (the checkout's own project): an unchanged `make up`, then switches to a
    copy of examples/genomics and back, and rebuilds after editing one input of the copy."""
    own = use_project(None)
    before = image_ids(built_tags(own))
    results["unchanged_up_s"] = round(stack.up(own), 1)
    results["unchanged_up_rebuilt_images"] = sum(1 for t, i in image_ids(list(before)).items() if before[t] != i)
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        copy = Path(tmp) / "genomics"
        shutil.copytree(EXAMPLE_PROJECT, copy)
        with step("Switching to a copy of examples/genomics (first time: its images are built)"):
            results["switch_project_first_s"] = round(stack.up(use_project(copy)), 1)
        results["switch_back_s"] = round(stack.up(use_project(None)), 1)
        results["switch_project_s"] = round(stack.up(use_project(copy)), 1)
        with (copy / "requirements.txt").open("a") as fh:
            fh.write("tabulate==0.10.0\n")  # in Airflow's constraints already: the layer, not pip, is timed
        results["requirements_edit_up_s"] = round(stack.up(use_project(copy)), 1)
        with (copy / "images" / "qc" / "qc.py").open("a") as fh:
            fh.write("# edited\n")
        results["task_image_edit_up_s"] = round(stack.up(use_project(copy)), 1)
        stack.up(use_project(None))  # the checkout's own project again, before the copy goes away


BENCH_VERSIONS = ("mwaa-2.10.3", "mwaa-2.11.2", "mwaa-3.0.6")


def time_versions(results: dict) -> None:
    """A copy of examples/genomics on each version: its first `make up` (that version's Airflow image
    and the project's on it built from nothing but the base), then one genomics_qc run."""
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        copy = Path(tmp) / "genomics"
        shutil.copytree(EXAMPLE_PROJECT, copy)
        for key in BENCH_VERSIONS:
            os.environ["AIRFLOW_VERSION"] = key
            settings = use_project(copy)
            project = selected_project(settings)
            stack.remove_task_containers(settings)
            stack.compose("down", "--remove-orphans", capture=True)  # keeps volumes: only images go
            docker("rmi", "--force", project.airflow_image(), project.airflow_version().image)
            with step(f"First make up of examples/genomics on {project.airflow_version()} (its images built)"):
                results[f"first_up_{key}_s"] = round(stack.up(settings), 1)
            client = AirflowClient(settings.airflow_url, *settings.admin)
            results[f"genomics_qc_{key}_s"] = round(time_dag(client, "genomics_qc", {}), 1)
        os.environ.pop("AIRFLOW_VERSION", None)
        stack.up(use_project(None))  # the checkout's own project again, before the copy goes away


def write_results(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(results, indent=2)
    (RESULTS / f"{stamp}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    t = TARGETS
    rows = [("cold make up (nothing built)", results.get("cold_up_s"), t["cold_up_s"]),
            ("warm make up (images built)", results.get("warm_up_s"), t["warm_up_s"]),
            ("first poc_ecs_operator after make up over the next runs' median (ratio)",
             results.get("first_ecs_dag_over_steady"), t["first_ecs_dag_over_steady"]),
            ("offline cluster warm start to Ready", results.get("cluster_warm_ready_s"), t["cluster_warm_ready_s"]),
            ("poc_ecs_operator count_to=5, median", results.get("poc_ecs_operator_s"), t["poc_ecs_operator_s"]),
            ("poc_k8s_operator (one-pod DAG), median", results.get("one_pod_dag_s"), t["one_pod_dag_s"]),
            ("make up over a running sandbox, nothing changed", results.get("unchanged_up_s"), t["unchanged_up_s"]),
            ("... images it rebuilt (count)", results.get("unchanged_up_rebuilt_images"),
             t["unchanged_up_rebuilt_images"]),
            ("switch to another project, first time (its images built)", results.get("switch_project_first_s"), None),
            ("switch back to the checkout's project (images cached)", results.get("switch_back_s"), None),
            ("switch to another project (images cached)", results.get("switch_project_s"), t["switch_project_s"]),
            ("make up after editing only requirements.txt", results.get("requirements_edit_up_s"), None),
            ("make up after editing only a task image's context", results.get("task_image_edit_up_s"), None)]
    for key in BENCH_VERSIONS:
        rows.append((f"first make up of examples/genomics on {key} (its Airflow images built)",
                     results.get(f"first_up_{key}_s"), None))
        rows.append((f"... then genomics_qc on {key}", results.get(f"genomics_qc_{key}_s"), None))
    for backend in ("ecs", "k8s"):
        for cases in (8, 32):
            rows.append((f"import_vcf {backend}, {cases} cases, median", results.get(f"import_vcf_{backend}_{cases}_s"), None))
        rows.append((f"import_vcf {backend}, 32 / 8 cases (ratio)", results.get(f"import_vcf_{backend}_32_over_8"),
                     t["import_vcf_32_over_8"]))
    if results.get("fanout"):
        f = results["fanout"]["median"]
        rows.append((f"fan-out: import_vcf {FANOUT_CASES} ECS + {FANOUT_CASES} pod cases at once, wall (median)",
                     f["wall_s"], None))
        rows.append(("... the case tasks' own CPU-seconds / cores (floor)", f["floor_s"], None))
        rows.append(("... wall over floor (ratio)", f["over_floor"], t["fanout_over_floor"]))
        rows.append(("... the idle sandbox's CPU (CPU-s a minute)", results["fanout"].get("idle_cpu_s_per_min"), None))
        rows.append(("... the CPU the tasks added, on every core, over the floor (ratio: the idle sandbox's "
                     "share taken out)", results["fanout"].get("over_floor_without_idle"), None))
        rows.append(("whole sandbox idle after the fan-out (MiB)", results["idle_after_fanout_mib"],
                     t["idle_after_fanout_mib"]))
    if results.get("fidelity"):
        f = results["fidelity"]
        rows.append(("fan-out with IAM enforced and durable state, wall (median)", statistics.median(f["wall_s_on"]), None))
        rows.append(("... with both off, wall (median)", statistics.median(f["wall_s_off"]), None))
        rows.append(("... the price of fidelity (% slower)", results["fidelity_price_pct"], t["fidelity_price_pct"]))
    for name, f in (results.get("sampler_cost") or {}).items():
        rows.append((f"sampler's own CPU during {name} (% of the machine's)", f["sampler_own_pct"],
                     t["sampler_overhead_pct"]))
        rows.append((f"machine CPU during {name}, sampler on vs off (% more)", f["machine_overhead_pct"], None))
    table = ["| measure | figure | target |", "|---|---:|---:|"]
    table += [f"| {name} | {'-' if v is None else v} | {'-' if tgt is None else f'<= {tgt}'} |"
              for name, v, tgt in rows]
    if results.get("fanout"):
        idle = results["fanout"]["idle_mib"]
        table += ["", *results["fanout"]["table"], "", "Idle after the fan-out:",
                  "| component | MiB |", "|---|---:|"]
        table += [f"| {name} | {idle[name]} |" for name in sorted(idle, key=lambda n: -idle[n])]
    for key, title in (("cold_up_steps", "Cold make up, step by step"), ("warm_up_steps", "Warm make up, step by step")):
        if results.get(key):
            table += ["", f"{title} (steps side by side overlap):", "| began at (s) | took (s) | step |", "|---:|---:|---|"]
            table += [f"| {s['began_s']} | {s['took_s']} | {s['step']} |" for s in results[key]]
    if results.get("per_call_ms"):
        table += ["", "Single AWS calls through the emulator (ms):", "| call | median | p90 |", "|---|---:|---:|"]
        table += [f"| {name} | {f['median_ms']} | {f['p90_ms']} |" for name, f in results["per_call_ms"].items()]
    (RESULTS / "latest.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"\nwritten: {RESULTS / (stamp + '.json')}; the sandbox is left running")


if __name__ == "__main__":
    raise SystemExit(main())
