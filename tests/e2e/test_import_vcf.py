"""import_vcf: one mapped task per case on each backend, checked against statistics computed here,
independently, from the seed files in S3."""
from __future__ import annotations

import collections
import gzip
import json
from datetime import datetime

import pytest

from sandbox.core.poll import wait_until

pytestmark = pytest.mark.e2e
BUCKET, CASES_PREFIX = "sandbox-data", "vcf/cases/"


def expected_statistics(s3, keys: list[str]) -> dict[str, dict]:
    """Per case: variant count, per-chromosome counts, genotype counts per sample — parsed here with
    plain string handling, sharing no code with the task image."""
    expected = {}
    for key in keys:
        text = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).decode()
        records = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
        header = next(line for line in text.splitlines() if line.startswith("#CHROM")).split("\t")
        samples = header[9:]
        expected[key.rsplit("/", 1)[-1][: -len(".vcf.gz")]] = {
            "variants": len(records),
            "variants_per_chromosome": dict(collections.Counter(r[0] for r in records)),
            "genotypes_per_sample": {s: dict(collections.Counter(r[9 + i] for r in records))
                                     for i, s in enumerate(samples)},
        }
    return expected


def max_concurrency(task_instances: list[dict]) -> int:
    events = []
    for ti in task_instances:
        start, end = (datetime.fromisoformat(ti[k].replace("Z", "+00:00")) for k in ("start_date", "end_date"))
        events += [(start, 1), (end, -1)]
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    return peak


def test_seed_cases_have_tabix_indexes(aws_session):
    s3 = aws_session.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=CASES_PREFIX)["Contents"]}
    cases = sorted(k for k in keys if k.endswith(".vcf.gz"))
    assert len(cases) == 32
    assert all(f"{k}.tbi" in keys for k in cases)
    tbi = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=f"{cases[0]}.tbi")["Body"].read())
    assert tbi[:4] == b"TBI\x01"  # a real tabix index


CASES = 32
RUNS: dict[str, object] = {}  # backend -> its run, for the comparison below


@pytest.mark.parametrize("backend", ["ecs", "k8s"])
def test_import_vcf_fans_out_one_task_per_case(airflow_api, aws_session, backend):
    run = airflow_api.run_dag("import_vcf", {"backend": backend, "max_cases": CASES}, timeout=600)
    run.assert_success()
    RUNS[backend] = run
    case_task = f"{backend}_case"
    mapped = [ti for ti in run.task_instances if ti["task_id"] == case_task]
    assert len(mapped) == CASES and all(ti["state"] == "success" for ti in mapped)
    other = "k8s_case" if backend == "ecs" else "ecs_case"
    assert set(run.states_of(other)) == {"skipped"}
    assert max_concurrency(mapped) >= 8, "the case tasks did not run side by side"

    s3 = aws_session.client("s3")
    summary = run.xcom("aggregate")
    listed = run.xcom("list_cases")
    expected = expected_statistics(s3, listed)
    assert summary["cases"] == CASES and summary["backend"] == backend
    assert summary["per_case"] == {case: stats["variants"] for case, stats in expected.items()}
    assert summary["variants"] == sum(s["variants"] for s in expected.values())
    per_chrom = collections.Counter()
    for stats in expected.values():
        per_chrom.update(stats["variants_per_chromosome"])
    assert summary["variants_per_chromosome"] == dict(per_chrom)
    # Each case's result JSON in S3 matches the independent computation.
    prefix = summary["summary_key"].rsplit("/", 1)[0] + "/"
    for case, stats in expected.items():
        result = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}{case}.json")["Body"].read())
        assert result["variants_per_chromosome"] == stats["variants_per_chromosome"]
        assert result["genotypes_per_sample"] == stats["genotypes_per_sample"]
    print(f"import_vcf backend={backend} {CASES} cases: {run.seconds:.1f}s")


def test_every_case_is_measured_and_the_backends_compare(sandbox, cost_report):
    """The cost report of each fan-out has every case task with CPU, memory and time, and the two
    runs side by side match case by case (the metrics service's comparison, what `make report`
    writes as reports/import_vcf/backends.*)."""
    import requests

    if set(RUNS) != {"ecs", "k8s"}:
        pytest.skip("needs the fan-out on both backends (the test above)")
    reports = {}
    for backend, run in RUNS.items():
        def final(run=run, backend=backend):
            report = cost_report(run.dag_id, run.run_id)
            cases = [t for t in report["tasks"] if t["task_id"] == f"{backend}_case"]
            return report if len(cases) == CASES and all(t["final"] for t in cases) else None
        reports[backend] = wait_until(final, timeout=60, what=f"final cost report of {run.run_id}")
        cases = [t for t in reports[backend]["tasks"] if t["task_id"] == f"{backend}_case"]
        assert sorted(t["map_index"] for t in cases) == list(range(CASES))
        for task in cases:
            assert task["measured"] and task["backend"] == backend
            assert task["cpu_seconds"] > 0 and task["peak_memory_mib"] > 0 and task["wall_seconds"] > 0, task
            assert all(task["cost"][m]["usd"] > 0 for m in ("fargate", "eks", "mwaa"))
    runs = ",".join(RUNS[b].run_id for b in ("ecs", "k8s"))
    comparison = requests.get(f"{sandbox.settings.metrics_url}/compare/import_vcf",
                              params={"runs": runs, "format": "json"}, timeout=120).json()
    assert set(comparison["labels"]) == {"ecs", "k8s"} and len(comparison["cases"]) == CASES
    for label in ("ecs", "k8s"):
        total = comparison["totals"][label]
        assert total["cases"] == CASES and not total["not_measured"]
        assert total["cpu_seconds"] == pytest.approx(sum(t["cpu_seconds"] for t in reports[label]["tasks"]
                                                         if t["task_id"] == f"{label}_case"))
