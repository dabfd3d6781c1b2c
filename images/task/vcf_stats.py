"""Per-case statistics of one bgzipped VCF in S3: variant counts per chromosome and genotype counts
per sample. Writes the result JSON next to the other results and prints a summary as its last line
(the XCom on ECS); under KubernetesPodOperator it also writes /airflow/xcom/return.json.

Settings (environment): DATA_BUCKET, CASE_KEY (…/<case>.vcf.gz, its .tbi beside it), RESULT_PREFIX.
Credentials and endpoint come from boto3's default chain, as in production.
"""
import collections
import gzip
import io
import json
import os

import boto3


def vcf_statistics(lines) -> dict:
    samples: list[str] = []
    per_chrom: collections.Counter = collections.Counter()
    genotypes: dict[str, collections.Counter] = {}
    for line in lines:
        if line.startswith("##"):
            continue
        fields = line.rstrip("\n").split("\t")
        if line.startswith("#"):
            samples = fields[9:]
            genotypes = {s: collections.Counter() for s in samples}
            continue
        per_chrom[fields[0]] += 1
        gt_index = fields[8].split(":").index("GT")
        for sample, value in zip(samples, fields[9:]):
            genotypes[sample][value.split(":")[gt_index]] += 1
    return {"variants": sum(per_chrom.values()), "variants_per_chromosome": dict(sorted(per_chrom.items())),
            "genotypes_per_sample": {s: dict(sorted(c.items())) for s, c in genotypes.items()}}


def main() -> None:
    bucket, key = os.environ["DATA_BUCKET"], os.environ["CASE_KEY"]
    prefix = os.environ.get("RESULT_PREFIX", "results/")
    case = key.rsplit("/", 1)[-1].removesuffix(".vcf.gz")
    s3 = boto3.client("s3")
    index_size = s3.head_object(Bucket=bucket, Key=f"{key}.tbi")["ContentLength"]  # tabix index must be there
    print(f"{case}: reading s3://{bucket}/{key}", flush=True)
    raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with gzip.open(io.BytesIO(raw), "rt") as text:  # BGZF is multi-member gzip
        stats = vcf_statistics(text)
    result = {"case": case, "source": f"s3://{bucket}/{key}", "index_bytes": index_size, **stats}
    result_key = f"{prefix}{case}.json"
    s3.put_object(Bucket=bucket, Key=result_key, Body=json.dumps(result, indent=2).encode(),
                  ContentType="application/json")
    summary = {"case": case, "variants": stats["variants"], "result_key": result_key}
    if os.path.isdir("/airflow/xcom"):
        with open("/airflow/xcom/return.json", "w") as f:
            json.dump(summary, f)
    print(f"{case}: {stats['variants']} variants, per chromosome {stats['variants_per_chromosome']}", flush=True)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
