"""A boto3 Session for the sandbox's AWS emulator.

A boto3 Session carries credentials and a region but no endpoint, so code handed a plain Session
would reach real AWS. EmulatorSession is still a boto3.Session (isinstance holds, code under test
takes it unchanged); its clients and resources reach the emulator unless given another endpoint_url.
"""
from __future__ import annotations

import boto3
from botocore.config import Config

# The emulator answers within a second (RunTask starts containers after it answers): a call that
# waits longer found it hung, and a test should fail in a minute and a half, not wait out botocore's
# 60 s read timeout five times. A client's own config wins field by field.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3})


class EmulatorSession(boto3.Session):
    """boto3.Session whose `.client(name)` and `.resource(name)` default `endpoint_url` to the emulator's."""

    def __init__(self, endpoint_url: str, region_name: str = "us-east-1", **session_kwargs):
        super().__init__(region_name=region_name, **session_kwargs)
        self.endpoint_url = endpoint_url

    def client(self, *args, **kwargs):
        # endpoint_url is Session.client's sixth parameter (service_name, region_name, api_version,
        # use_ssl, verify, endpoint_url); Session.resource calls client() with endpoint_url=None.
        if len(args) < 6 and kwargs.get("endpoint_url") is None:
            kwargs["endpoint_url"] = self.endpoint_url
        if len(args) < 10:  # config comes after endpoint_url and the three credential parameters
            kwargs["config"] = CLIENT_CONFIG.merge(kwargs["config"]) if kwargs.get("config") else CLIENT_CONFIG
        return super().client(*args, **kwargs)

    def __repr__(self) -> str:
        return f"EmulatorSession(endpoint_url={self.endpoint_url!r}, region_name={self.region_name!r})"
