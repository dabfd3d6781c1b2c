"""The AWS emulator's account root as the sandbox's own services hold it.

`make up` generates the key pair into .env (SANDBOX_ROOT_ACCESS_KEY_ID / SANDBOX_ROOT_SECRET_ACCESS_KEY)
and compose hands it to bootstrap, the reseeder and the metrics service; the emulator accepts it from
them and from the host only (localstack/root_access.py). Nothing else holds it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

ROOT_KEY_ID = "SANDBOX_ROOT_ACCESS_KEY_ID"
ROOT_SECRET = "SANDBOX_ROOT_SECRET_ACCESS_KEY"


class MissingRootKey(RuntimeError):
    pass


def root_keys(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """boto3's keyword arguments for the account root, from the environment."""
    key, secret = env.get(ROOT_KEY_ID, ""), env.get(ROOT_SECRET, "")
    if not key or not secret:
        raise MissingRootKey(f"{ROOT_KEY_ID} and {ROOT_SECRET} are not set: `make up` generates them into .env "
                             "and compose passes them to the sandbox's own services")
    return {"aws_access_key_id": key, "aws_secret_access_key": secret}
