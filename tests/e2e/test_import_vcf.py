"""import_vcf: one mapped task per case on each backend, checked against statistics computed here,
independently, from the seed files in S3."""
from __future__ import annotations

import collections
import gzip
import json
from datetime import datetime

import pytest

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


@pytest.mark.parametrize("backend", ["ecs", "k8s"])
def test_import_vcf_fans_out_one_task_per_case(airflow_api, aws_session, backend):
    run = airflow_api.run_dag("import_vcf", {"backend": backend, "max_cases": 8}, timeout=600)
    run.assert_success()
    case_task = f"{backend}_case"
    mapped = [ti for ti in run.task_instances if ti["task_id"] == case_task]
    assert len(mapped) == 8 and all(ti["state"] == "success" for ti in mapped)
    other = "k8s_case" if backend == "ecs" else "ecs_case"
    assert set(run.states_of(other)) == {"skipped"}
    assert max_concurrency(mapped) >= 8, "the 8 case tasks did not all run at the same time"

    s3 = aws_session.client("s3")
    summary = run.xcom("aggregate")
    listed = run.xcom("list_cases")
    expected = expected_statistics(s3, listed)
    assert summary["cases"] == 8 and summary["backend"] == backend
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
    print(f"import_vcf backend={backend} 8 cases: {run.seconds:.1f}s")
