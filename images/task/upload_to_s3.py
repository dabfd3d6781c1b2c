"""Writes one object to S3 with plain boto3 and no keys: credentials come from the default chain
(on ECS, the container credentials endpoint), exactly as production task code would get them.

Settings (environment): TARGET_BUCKET, TARGET_KEY, PAYLOAD. The last line printed is a JSON
summary, which EcsRunTaskOperator returns as its XCom.
"""
import hashlib
import json
import os

import boto3


def main() -> None:
    bucket = os.environ["TARGET_BUCKET"]
    key = os.environ.get("TARGET_KEY", "uploads/hello.txt")
    body = os.environ.get("PAYLOAD", "hello from an ECS task\n").encode()
    s3 = boto3.client("s3")
    print(f"uploading {len(body)} bytes to s3://{bucket}/{key}", flush=True)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    head = s3.head_object(Bucket=bucket, Key=key)
    print(json.dumps({"bucket": bucket, "key": key, "size": head["ContentLength"],
                      "sha256": hashlib.sha256(body).hexdigest()}), flush=True)


if __name__ == "__main__":
    main()
