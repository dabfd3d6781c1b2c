"""What each ECS task and pod of a DAG run used and would cost: the sampler, the report, the prices.

Runs in the `metrics` service (sampler.py, server.py) and on the host (`make report` asks that
service). The report of one DAG run is one JSON document, the same for the file, the HTML page and
the Airflow UI view:

    {"dag_id", "run_id", "state", "start", "end", "wall_seconds",
     "sampler": {"interval_seconds", "measured_tasks", "unmeasured_tasks",
                 "note"},   # how tries were measured, or why some were not: a watch failing or off
                            # during the run (the pod watch, ECS lookups, cgroups; health.py) when known
     "prices": {...the price table used (pricing.py)...},
     "tasks": [   # one record per task try that ran, ECS task or pod (or neither: backend null)
        {"task_id", "map_index", "try_number", "state", "operator",
         "backend": "ecs" | "k8s" | None, "resource": "ecs task <arn>" | "pod <ns>/<name>",
         "measured": bool,                         # False: no samples; figures are None, never 0
         "reason": str | None,                     # why not measured, when the service recorded it
         "final": bool,                            # the task has ended and its figures are complete
         "started_at", "ended_at", "wall_seconds",
         "cpu_seconds", "peak_memory_mib", "mean_cpu_cores",
         "requested": {"cpu_vcpu", "memory_mib"}, "limits": {"cpu_vcpu", "memory_mib"} | None,
         "samples": {"t": [s since started_at], "cpu_cores": [...], "memory_mib": [...]},
         "cost": {"fargate": {"usd", "formula"}, "eks": {...}, "mwaa": {...}},
         "right_size": {...}}],
     "cost": {"fargate": {"usd", "formula"}, "eks": {...}, "mwaa": {...}}}
"""
