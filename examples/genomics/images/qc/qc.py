"""GC content of one FASTA object in S3: `python qc.py s3://bucket/key s3://bucket/result-key`.

Plain boto3 with no keys or endpoint: on ECS the task role and region come from the environment,
on Kubernetes from the pod's environment (here a Secret; IRSA on EKS).
"""
import json
import sys
from urllib.parse import urlparse

import boto3


def split(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.lstrip("/")


def main(source: str, target: str) -> None:
    s3 = boto3.client("s3")
    bucket, key = split(source)
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    sequence = "".join(line.strip() for line in text.splitlines() if not line.startswith(">")).upper()
    result = {"sample": key.rsplit("/", 1)[-1].split(".")[0], "bases": len(sequence),
              "gc": sequence.count("G") + sequence.count("C")}
    out_bucket, out_key = split(target)
    s3.put_object(Bucket=out_bucket, Key=out_key, Body=json.dumps(result).encode(),
                  ContentType="application/json")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
