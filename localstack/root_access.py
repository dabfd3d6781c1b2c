"""The account root answers only to the sandbox's own administration.

MiniStack takes as the account root a request with no key, the key ``test``, any 12-digit key and
its configured AWS_ACCESS_KEY_ID, from anywhere. A task image carrying the LocalStack convention
``AWS_ACCESS_KEY_ID=test`` then passed every IAM check here and failed on AWS. With this patch:

- only AWS_ACCESS_KEY_ID is the root key: a secret made per checkout into ``.env`` by ``make up``
  (SANDBOX_ROOT_ACCESS_KEY_ID); ``test``, 12-digit keys and unsigned requests are unknown keys;
- it is root only from where the sandbox administers itself: the emulator's own loopback, the host
  (through the published port, the network's gateway) and this compose project's admin services
  (SANDBOX_ADMIN_SERVICES: bootstrap, the reseeder, the metrics service). From a task container, a
  pod or Airflow it is refused as AWS refuses an unknown key, and the refusal names the key.

The client address comes from the ASGI scope (a contextvar set around each request); the emulator's
own threads run outside a request and keep the root.
"""

import contextvars
import logging
import os
import socket
import struct
import threading
import time

logger = logging.getLogger("root.access")

# Outside a request (None): the emulator's own work. In one: the client's address ("" if unknown).
_client_address = contextvars.ContextVar("sandbox_client_address", default=None)
# The key this request was refused for and why: S3 writes its own error document afterwards.
_refused = contextvars.ContextVar("sandbox_refused_key", default=None)
# Set while an action AWS serves unsigned is checked (sts:AssumeRoleWithWebIdentity: a pod's token is
# its credential): MiniStack passes it as a caller without a key, which must still pass.
_unsigned_action = contextvars.ContextVar("sandbox_unsigned_action", default=False)
_original = {}
ADMIN_CACHE_SECONDS = 2.0  # the admin services' addresses, looked up again at most this often
UNKNOWN_KEY_CODES = ("UnrecognizedClientException", "InvalidClientTokenId")


# ── Pure rules ──────────────────────────────────────────────────────────────

def is_loopback(address):
    return address == "::1" or address.startswith("127.")


def is_root(key, address, root_key, admin_addresses):
    """Whether a request with this access key, from this address, acts as the account root. No key
    (unsigned) is root only where the root key would be."""
    if key not in ("", root_key) or not root_key:
        return False
    return address is None or is_loopback(address) or address in admin_addresses


def refusal(key, address, root_key):
    """Why a key is not accepted, said after AWS's own message."""
    if not key:
        return "The request is not signed; tasks, pods and Airflow get their role's credentials."
    if key == root_key:
        return (f"Access key {key} is the sandbox's account root, which acts only from the host and the "
                f"sandbox's own services, not from {address}: give the task a role instead.")
    return (f"Access key {key} is not a key of this sandbox: tasks, pods and Airflow get their role's "
            "credentials (taskRoleArn, kubernetes.aws_role, aws.airflow_role); remove static keys from "
            "the image, the task definition or the connection.")


def default_gateway(route_table):
    """The default route's gateway in /proc/net/route's format, or None."""
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
    return None


def service_addresses(containers, project, services):
    """The addresses of this compose project's containers of the given services."""
    found = set()
    for container in containers:
        labels = container.get("Labels") or {}
        if labels.get("com.docker.compose.project") == project and labels.get("com.docker.compose.service") in services:
            for network in ((container.get("NetworkSettings") or {}).get("Networks") or {}).values():
                if network.get("IPAddress"):
                    found.add(network["IPAddress"])
    return found


# ── Who administers ─────────────────────────────────────────────────────────

_admin = {"addresses": frozenset(), "at": 0.0}
_admin_lock = threading.Lock()


def _lookup_admin_addresses():
    """The host (the default gateway) and the admin services' containers, as Docker reports them now."""
    found = set()
    try:
        with open("/proc/net/route") as routes:
            gateway = default_gateway(routes.read())
        if gateway:
            found.add(gateway)
    except OSError as exc:
        logger.warning("root access: cannot read the default route: %s", exc)
    services = {s.strip() for s in os.environ.get("SANDBOX_ADMIN_SERVICES", "").split(",") if s.strip()}
    project = os.environ.get("SANDBOX_COMPOSE_PROJECT", "")
    if services and project:
        try:
            from ministack.services import ecs
            containers = ecs._get_docker().api.containers(
                filters={"label": [f"com.docker.compose.project={project}"]})
            found |= service_addresses(containers, project, services)
        except Exception as exc:  # no Docker: only the host and loopback administer
            logger.warning("root access: cannot list the admin services' containers: %s", exc)
    return frozenset(found)


def admin_addresses(address):
    """The admin addresses, looked up again when stale or when `address` is not among them (a
    service just restarted with a new address); never more often than ADMIN_CACHE_SECONDS."""
    with _admin_lock:
        stale = time.monotonic() - _admin["at"] > ADMIN_CACHE_SECONDS
        if stale or (address not in _admin["addresses"] and time.monotonic() - _admin["at"] > 0.2):
            _admin.update(addresses=_lookup_admin_addresses(), at=time.monotonic())
        return _admin["addresses"]


# ── Replacements ────────────────────────────────────────────────────────────

def _root_key():
    return os.environ.get("AWS_ACCESS_KEY_ID", "")


def _is_root_access_key(access_key_id):
    address = _client_address.get()
    key = access_key_id or ""
    if not key and _unsigned_action.get():
        return True
    if key not in ("", _root_key()):
        return False
    return is_root(key, address, _root_key(), frozenset() if address is None else admin_addresses(address))


def _resolve_credential(access_key_id, *args, **kwargs):
    from ministack.core.iam_evaluator import CredentialResolutionError

    result = _original["resolve_credential"](access_key_id, *args, **kwargs)
    if isinstance(result, CredentialResolutionError) and result.code in UNKNOWN_KEY_CODES:
        reason = refusal(access_key_id or "", _client_address.get(), _root_key())
        logger.info("root access: refused from %s: %s", _client_address.get(), reason)
        _refused.set((access_key_id or "", reason))
        return CredentialResolutionError(result.code, f"{result.message} {reason}")
    return result


def _auth_failure(service, code, message, headers):
    """S3's answer to an unknown key is its own fixed message: say why after it there too."""
    failure = _original["_auth_failure"](service, code, message, headers)
    refused = _refused.get()
    if service == "s3" and failure[0] == "InvalidAccessKeyId" and refused:
        return failure[0], failure[1], f"{failure[2]} {refused[1]}"
    return failure


def _s3_error(code, message, status, resource="", extra=None, headers=None):
    """S3's InvalidAccessKeyId (its own signature checks: presigned URLs, POST forms) names the key
    (<AWSAccessKeyId>, as AWS's does) and says why."""
    refused = _refused.get()
    if code == "InvalidAccessKeyId" and refused and refused[1] not in message:
        message, extra = f"{message} {refused[1]}", {**(extra or {}), "AWSAccessKeyId": refused[0]}
    return _original["s3._error"](code, message, status, resource, extra, headers)


# The endpoints a task or a pod asks without signing, as on AWS (the ECS agent's credentials and
# metadata, EC2's instance metadata): MiniStack authorizes them as an unsigned request, which must
# pass; each checks its own token (the task's).
UNSIGNED_PATHS = ("/v2/credentials/", "/v4/", "/latest/")


def request_address(scope):
    """The address a request counts as coming from: None for the emulator's own work and the
    metadata endpoints, else the client's ("" when the server does not say)."""
    if scope.get("type") == "lifespan" or str(scope.get("path", "")).startswith(UNSIGNED_PATHS):
        return None
    return (scope.get("client") or ("",))[0] or ""


def _enforce(access_key_id, iam_action, service, *args, **kwargs):
    from ministack.core import iam_evaluator

    token = None
    if not access_key_id and iam_evaluator._anonymous.get() and iam_evaluator._served_unsigned(service, iam_action):
        token = _unsigned_action.set(True)
    try:
        return _original["enforce"](access_key_id, iam_action, service, *args, **kwargs)
    finally:
        if token is not None:
            _unsigned_action.reset(token)


async def _app(scope, receive, send):
    token = _client_address.set(request_address(scope))
    try:
        await _original["app"](scope, receive, send)
    finally:
        _client_address.reset(token)


# Modules that import these names from iam_evaluator, so hold their own reference.
_IMPORTERS = ("ministack.services.sts", "ministack.services.s3", "ministack.services.eks",
              "ministack.services.s3_object_lambda", "ministack.core.rds_iam")


def apply():
    """Install the replacements (idempotent). Needs AWS_ACCESS_KEY_ID: without it nothing is root."""
    import importlib

    from ministack import app
    from ministack.core import iam_actions, iam_evaluator
    from ministack.services import s3

    if _original:
        return
    if not _root_key() or _root_key() == "test":
        raise RuntimeError("AWS_ACCESS_KEY_ID must be the sandbox's own root key (SANDBOX_ROOT_ACCESS_KEY_ID "
                           "in .env, made by `make up`), not empty or `test`")
    _original["resolve_credential"] = iam_evaluator.resolve_credential
    _original["enforce"] = iam_evaluator.enforce
    iam_evaluator.enforce = _enforce
    _original["app"] = app.app
    _original["s3._error"] = s3._error
    s3._error = _s3_error
    _original["_auth_failure"] = iam_actions._auth_failure
    iam_actions._auth_failure = _auth_failure
    for module in [iam_evaluator, *(importlib.import_module(name) for name in _IMPORTERS)]:
        if hasattr(module, "is_root_access_key"):
            module.is_root_access_key = _is_root_access_key
        if hasattr(module, "resolve_credential"):
            module.resolve_credential = _resolve_credential
    app.app = _app
    logger.info("root access: the account root acts only from the host and %s",
                os.environ.get("SANDBOX_ADMIN_SERVICES", "") or "nowhere else")
