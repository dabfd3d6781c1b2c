"""`aws.s3_buckets`: buckets with the objects they start with (inline, from files, or generated)."""
from __future__ import annotations

import collections
import hashlib
import re
from typing import Any

from botocore.exceptions import ClientError

from sandbox.seeding import vcf
from sandbox.seeding.checker import found, is_file, shown
from sandbox.seeding.objects.base import Checks, ObjectType, Seeding, error_code

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3Buckets(ObjectType):
    section = "s3_buckets"
    kind = "s3 bucket"
    service = "s3"
    cfn_type, cfn_name = "AWS::S3::Bucket", "BucketName"
    fields = frozenset({"name", "objects", "generated"})

    def check_entry(self, checks: Checks, bucket: dict, where: str) -> None:
        c = checks.c
        name = c.text(bucket.get("name"), f"{where}.name", _BUCKET_NAME,
                      "3-63 lowercase letters, digits, . and -, starting and ending with a letter or digit")
        if name and ".." in name:
            c.fail(f"{where}.name", f"{name!r} is not valid: no two adjacent periods")
        objects = c.items(bucket.get("objects"), f"{where}.objects")
        for j, obj in enumerate(objects):
            owhere = f"{where}.objects[{j}]"
            obj = c.mapping(obj, owhere, {"key", "content", "file", "content_type"}, {"key"})
            key = c.text(obj.get("key"), f"{owhere}.key")
            if key and len(key.encode()) > 1024:
                c.fail(f"{owhere}.key", f"is {len(key.encode())} bytes long; S3 keys are at most 1024 bytes (UTF-8)")
            c.text(obj.get("content_type"), f"{owhere}.content_type", optional=True)
            if ("content" in obj) == ("file" in obj):
                c.fail(owhere, "give exactly one of `content` (inline text) or `file` (path relative to the config)")
            elif "file" in obj:
                file = c.text(obj["file"], f"{owhere}.file")
                if file and not is_file(checks.path.parent / file):
                    c.fail(f"{owhere}.file", f"{shown(file)} not found next to {checks.path.name}")
            elif not isinstance(obj["content"], str):
                c.fail(f"{owhere}.content", f"expected text, found {found(obj['content'])}; quote it")
        c.unique(objects, "key", f"{where}.objects")
        for j, gen in enumerate(c.items(bucket.get("generated"), f"{where}.generated")):
            gwhere = f"{where}.generated[{j}]"
            gen = c.mapping(gen, gwhere, {"kind", "prefix", "count", "samples", "variants"},
                            {"kind", "prefix", "count"})
            if "kind" in gen and gen["kind"] != "vcf_cases":
                c.fail(f"{gwhere}.kind", f"{shown(gen['kind'])} is not a generator; the one there is: vcf_cases")
            c.text(gen.get("prefix"), f"{gwhere}.prefix")
            for key, low, high in (("count", 1, 500), ("samples", 1, 50), ("variants", 1, 100_000)):
                if key in gen:
                    c.integer(gen[key], f"{gwhere}.{key}", low, high)

    def seed(self, seeding: Seeding, entries: list[dict]) -> None:
        s3, config, report = seeding.clients[self.service], seeding.config, seeding.report
        for bucket in entries:
            name = bucket["name"]
            try:
                s3.head_bucket(Bucket=name)
                report(self.kind, name, "unchanged")
            except ClientError as exc:
                if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                kwargs = {} if config.region == "us-east-1" else {
                    "CreateBucketConfiguration": {"LocationConstraint": config.region}}
                s3.create_bucket(Bucket=name, **kwargs)
                report(self.kind, name, "created")
            for obj in bucket.get("objects") or []:
                extra = {"ContentType": obj["content_type"]} if obj.get("content_type") else {}
                report("s3 object", f"s3://{name}/{obj['key']}",
                       put_object_if_changed(s3, name, obj["key"], config.object_body(obj), **extra))
            for gen in bucket.get("generated") or []:
                objects = vcf.vcf_case_objects(gen["prefix"], gen["count"], gen.get("samples", 3),
                                               gen.get("variants", 300))
                outcomes = collections.Counter(put_object_if_changed(s3, name, key, body) for key, body in objects)
                for outcome, n in sorted(outcomes.items()):
                    report("s3 objects", f"s3://{name}/{gen['prefix']}* ({n} {gen['kind']} files)", outcome)

    def to_cfn(self, export, bucket: dict) -> None:
        """The bucket; its seed objects are data, not infrastructure, and stay in sandbox.yaml."""
        export.add(self.section, bucket["name"], "Bucket",
                   {"Type": self.cfn_type, "Properties": {"BucketName": bucket["name"]}})

    def live_names(self, s3: Any) -> set[str]:
        return {b["Name"] for b in s3.list_buckets()["Buckets"]}

    def missing(self, s3: Any, entries: list[dict]) -> list[str]:
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        return [b["name"] for b in entries if b["name"] not in buckets]


def put_object_if_changed(s3, bucket: str, key: str, body: bytes, **extra) -> str:
    """Writes the object unless one with the same content (sha256 in its metadata) is there."""
    digest = hashlib.sha256(body).hexdigest()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sandbox-sha256") == digest:
            return "unchanged"
        outcome = "updated"
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
        outcome = "created"
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sandbox-sha256": digest}, **extra)
    return outcome
