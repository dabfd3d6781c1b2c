"""IAM the way ECS applies it: a patch for MiniStack 1.5.33.

MiniStack evaluates IAM policies under ``AUTH=true``, but its ECS credentials
endpoint hands every task random keys for a made-up role, which that same
evaluator then refuses. This module makes a task act as its own role, and
makes RunTask check what ECS checks:

- the credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI``) issues STS
  session credentials for the task's role (``overrides.taskRoleArn`` or the
  definition's ``taskRoleArn``) named ``assumed-role/<role>/<task id>``, and
  only to a caller holding the task's authorization token; a task without a
  role gets no endpoint, as on ECS;
- RunTask refuses a task whose caller may not ``iam:PassRole`` its task or
  execution role, or whose role does not trust ``ecs-tasks.amazonaws.com``;
- RunTask is authorized on the task definition, not on the cluster;
- AccessDenied messages name the resource, as S3 and ECS do;
- Airflow's containers get credentials the same way, from the fixed id
  ``airflow`` (AIRFLOW_CREDENTIALS_ID) with the token in
  SANDBOX_AIRFLOW_CREDENTIALS_TOKEN, for the project's aws.airflow_role
  (SANDBOX_AIRFLOW_ROLE_ARN): Airflow acts as that role as an MWAA environment
  acts as its execution role, and holds no key of its own;
- STS sessions and task credentials are part of the saved state, so the
  credentials Airflow and running tasks hold stay valid across a restart.

``apply()`` must run after ``ecs_fidelity.apply()``: it wraps the RunTask that
patch installs.
"""

import contextvars
import json
import logging
import os
import threading
import time

logger = logging.getLogger("iam.fidelity")

ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"
# How long task credentials last, and how early they are renewed (the ECS agent rotates them too).
CREDENTIALS_SECONDS = 6 * 3600
RENEW_BEFORE_SECONDS = 15 * 60

# Services whose AccessDenied names the resource, and how they spell it.
_RESOURCE_NAMED = {"s3": '"{}"', "ecs": "{}", "ecr": "{}", "iam": "{}", "sts": "{}", "logs": "{}"}

_caller_key = contextvars.ContextVar("sandbox_ecs_caller_key", default="")
_credentials = {}   # credentials id -> {"role", "token", "task", "session": {...}}
_credentials_lock = threading.Lock()
_original = {}
_applied = False


# ── Pure rules ──────────────────────────────────────────────────────────────

def auth_enabled():
    return os.environ.get("AUTH", "false").strip().lower() == "true"


def task_roles(td, overrides=None):
    """{"task": arn, "execution": arn} a task runs with; RunTask overrides win over the definition."""
    overrides = overrides or {}
    roles = {"task": overrides.get("taskRoleArn") or td.get("taskRoleArn"),
             "execution": overrides.get("executionRoleArn") or td.get("executionRoleArn")}
    return {kind: arn for kind, arn in roles.items() if arn}


def role_name(role_arn):
    return role_arn.rsplit("/", 1)[-1]


def unable_to_assume(role_arn):
    """ECS's InvalidParameterException when a passed role does not trust ECS tasks."""
    return (f"ECS was unable to assume the role '{role_arn}' that was provided for this task. "
            "Please verify that the role being passed has the proper trust relationship and "
            "permissions and that your IAM user has permissions to pass this role.")


def denial_message(action, principal_arn, resource, explicit_deny):
    reason = ("with an explicit deny in an identity-based policy" if explicit_deny
              else f"because no identity-based policy allows the {action} action")
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {reason}"


def session_name(task_arn):
    """ECS names a task role session after the task id."""
    return task_arn.rsplit("/", 1)[-1]


def credentials_id(full_uri):
    return full_uri.rstrip("/").rsplit("/", 1)[-1]


# ── Runtime ─────────────────────────────────────────────────────────────────

def _json(status, payload):
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def trusts_service(trust_doc, service):
    """Does a trust policy let an AWS service (a Service principal) assume the role?"""
    if isinstance(trust_doc, str):
        try:
            trust_doc = json.loads(trust_doc)
        except ValueError:
            return False
    statements = (trust_doc or {}).get("Statement", []) if isinstance(trust_doc, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for stmt in statements:
        if not isinstance(stmt, dict):
            continue
        principal = stmt.get("Principal")
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        actions = stmt.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if principal != "*" and service not in services:
            continue
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        if stmt.get("Effect") == "Deny":
            return False
        allowed = allowed or stmt.get("Effect") == "Allow"
    return allowed


def _trusts_ecs_tasks(role):
    return trusts_service(role.get("AssumeRolePolicyDocument", "{}"), ECS_TASKS_SERVICE)


def _stored_role(role_arn):
    from ministack.services import iam as iam_svc

    try:
        return iam_svc._roles.get_scoped(role_arn.split(":")[4], None, role_name(role_arn))
    except Exception:
        return None


def pass_role_refusal(td, overrides):
    """The error response RunTask gives for the roles of this task, or None (AUTH=true only)."""
    from ministack.core.iam_evaluator import AuthError, enforce
    from ministack.core.responses import error_response_json, get_region

    if not auth_enabled():
        return None
    caller = _caller_key.get()
    for kind, arn in task_roles(td, overrides).items():
        if caller:   # RunTask called by MiniStack itself (services) has no caller to check
            denied = enforce(caller, "iam:PassRole", "iam", get_region(), resource_arn=arn,
                             service_context={"iam:PassedToService": ECS_TASKS_SERVICE})
            if isinstance(denied, AuthError):
                return error_response_json(denied.code, denied.message, 400)
            if denied is not None:
                return error_response_json("AccessDeniedException", denial_message(
                    "iam:PassRole", denied.principal_arn, arn, denied.decision == "Deny"), 400)
        role = _stored_role(arn)
        if role is None or not _trusts_ecs_tasks(role):
            return error_response_json("InvalidParameterException", unable_to_assume(arn), 400)
    return None


def _run_task(data):
    from ministack.services import ecs

    td = ecs._task_defs.get(ecs._resolve_td_key(data.get("taskDefinition", ""))) or {}
    if td:
        refused = pass_role_refusal(td, data.get("overrides") or {})
        if refused:
            return refused
    return _original["RunTask"](data)


async def _ecs_handle_request(method, path, headers, body, query_params):
    from ministack.core.router import extract_access_key_id

    token = _caller_key.set(extract_access_key_id(headers, query_params) or "")
    try:
        return await _original["ecs.handle_request"](method, path, headers, body, query_params)
    finally:
        _caller_key.reset(token)


def _register_metadata(task_arn, cluster_arn, td, cdef, launch_type, env, host_mode, ministack_net_ip):
    result = _original["_register_metadata"](task_arn, cluster_arn, td, cdef, launch_type, env,
                                             host_mode, ministack_net_ip)
    from ministack.services import ecs

    # Fargate sets the task's region for the SDK (platform 1.4); a definition's own value wins.
    region = task_arn.split(":")[3]
    env.setdefault("AWS_REGION", region)
    env.setdefault("AWS_DEFAULT_REGION", region)
    task = ecs._tasks.get(task_arn) or {}
    role = task_roles(td, task.get("overrides") or {}).get("task")
    uri = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not role:
        # No task role, no credentials endpoint: the SDK finds no credentials, as on ECS.
        env.pop("AWS_CONTAINER_CREDENTIALS_FULL_URI", None)
        env.pop("AWS_CONTAINER_AUTHORIZATION_TOKEN", None)
    elif uri:
        with _credentials_lock:
            _credentials[credentials_id(uri)] = {
                "role": role, "token": env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", ""), "task": task_arn}
    return result


def _fresh(session):
    return session is not None and session["expires"] - time.time() > RENEW_BEFORE_SECONDS


def _new_session(role_arn, task_arn):
    """Registers STS session credentials for the role, named after the task (as the ECS agent does)."""
    from ministack.services import iam as iam_svc
    from ministack.services import sts

    account = role_arn.split(":")[4]
    assumed_arn = f"arn:aws:sts::{account}:assumed-role/{role_name(role_arn)}/{session_name(task_arn)}"
    access_key = iam_svc._gen_session_access_key()
    expires = time.time() + CREDENTIALS_SECONDS
    session = {"AccessKeyId": access_key, "SecretAccessKey": iam_svc._gen_secret(),
               "Token": iam_svc._gen_session_token(), "expires": expires, "role": role_arn}
    sts.register_session(access_key, {
        "Arn": assumed_arn,
        "UserId": f"{sts._role_id(role_arn)}:{session_name(task_arn)}",
        "SecretAccessKey": session["SecretAccessKey"],
        "SessionToken": session["Token"],
        "Expiration": expires,
        "AccountId": account,
        "PrincipalType": "AssumedRole",
        "SourceAccessKeyId": "",
        "SourcePrincipalArn": f"arn:aws:iam::{account}:root",
        "SessionTags": [],
        "SessionPolicies": None,
    })
    return session


AIRFLOW_CREDENTIALS_ID = "airflow"


def no_airflow_role():
    return (f"{AIRFLOW_CREDENTIALS_ID}: the project's sandbox.yaml sets no aws.airflow_role, so Airflow has no AWS "
            "identity (as an MWAA environment without an execution role): set it to one of aws.iam_roles")


def _airflow_entry():
    """Airflow's entry, from the emulator's environment (`make up` sets it per project); None without a token."""
    token = os.environ.get("SANDBOX_AIRFLOW_CREDENTIALS_TOKEN", "")
    if not token:
        return None
    entry = _credentials.setdefault(AIRFLOW_CREDENTIALS_ID, {"task": AIRFLOW_CREDENTIALS_ID})
    entry.update(role=os.environ.get("SANDBOX_AIRFLOW_ROLE_ARN", ""), token=token, service=None)
    return entry


def task_credentials(cred_id, authorization):
    """The ECS agent's answer to GET /v2/credentials/<id>: (status, document).

    The credentials lock guards the table only. Registering a session writes the saved state (the
    durability patch), and the state saver reads this table under its own lock: calling out with
    the lock held deadlocked the emulator's event loop."""
    with _credentials_lock:
        entry = _airflow_entry() if cred_id == AIRFLOW_CREDENTIALS_ID else _credentials.get(cred_id)
        if entry is None:
            return 400, {"code": "InvalidIdInRequest",
                         "message": "CredentialsV2Request: Credentials not found"}
        if authorization != entry["token"]:
            return 400, {"code": "InvalidAuthorizationToken",
                         "message": "CredentialsV2Request: Authorization header does not match the task"}
        role_arn, task_arn, session = entry["role"], entry["task"], entry.get("session")
        service = entry.get("service", ECS_TASKS_SERVICE)
    if not role_arn:
        return 500, {"code": "InternalServerError", "message": no_airflow_role()}
    if auth_enabled():
        role = _stored_role(role_arn)
        # Airflow's role is not checked for a service trust: the sandbox's roles trust the account.
        if role is None and not service:
            return 500, {"code": "InternalServerError", "message": f"Airflow's role {role_arn} does not exist in "
                         "the emulator (yet): bootstrap creates it from aws.iam_roles"}
        if role is None or (service and not trusts_service(role.get("AssumeRolePolicyDocument", "{}"), service)):
            return 500, {"code": "InternalServerError", "message": unable_to_assume(role_arn)}
    if not _fresh(session) or session.get("role", role_arn) != role_arn:
        session = _new_session(role_arn, task_arn)
        with _credentials_lock:
            entry["session"] = session
    return 200, {
        "AccessKeyId": session["AccessKeyId"],
        "SecretAccessKey": session["SecretAccessKey"],
        "Token": session["Token"],
        "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session["expires"])),
        "RoleArn": role_arn,
    }


async def _imds_handle_request(method, path, headers, body, query_params):
    if path.startswith("/v2/credentials/") and method.upper() == "GET":
        status, document = task_credentials(credentials_id(path), headers.get("authorization", ""))
        return _json(status, document)
    return await _original["imds.handle_request"](method, path, headers, body, query_params)


def _extract_resource_arn(service, method, path, headers, body, query_params, region, account_id):
    """RunTask and StartTask are authorized on the task definition they start (ECS's resource)."""
    target = (headers or {}).get("x-amz-target", "")
    if service == "ecs" and target.rsplit(".", 1)[-1] in ("RunTask", "StartTask"):
        from ministack.services import ecs
        try:
            ref = json.loads(body or b"{}").get("taskDefinition", "")
        except (ValueError, AttributeError):
            ref = ""
        td = ecs._task_defs.get(ecs._resolve_td_key(ref)) if ref else None
        if td:
            return td["taskDefinitionArn"]
        if ref:
            return ref if ref.startswith("arn:") else f"arn:aws:ecs:{region}:{account_id}:task-definition/{ref}"
    return _original["extract_resource_arn"](service, method, path, headers, body, query_params,
                                             region, account_id)


def _access_denied_response(service, action, principal_arn, request_id, *, error_code="", message="",
                            headers=None, resource_arn="*", explicit_deny=False, resource_policy_arn=""):
    if not message and not error_code and not resource_policy_arn and service in _RESOURCE_NAMED:
        message = denial_message(action, principal_arn, _RESOURCE_NAMED[service].format(resource_arn),
                                 explicit_deny)
    return _original["access_denied_response"](
        service, action, principal_arn, request_id, error_code=error_code, message=message,
        headers=headers, resource_arn=resource_arn, explicit_deny=explicit_deny,
        resource_policy_arn=resource_policy_arn)


# Saved state: STS sessions (MiniStack keeps them in memory only) and the task credentials.

def _sts_state():
    from ministack.services import sts
    return {"sessions": dict(sts._sessions)}


def _load_sts_state(data):
    from ministack.services import sts
    sts._sessions.update((data or {}).get("sessions") or {})


def _imds_state():
    with _credentials_lock:
        return {"task_credentials": {k: dict(v) for k, v in _credentials.items()}}


def _load_imds_state(data):
    with _credentials_lock:
        _credentials.update((data or {}).get("task_credentials") or {})


def apply():
    """Install the replacements (idempotent). Call after ecs_fidelity.apply()."""
    global _applied
    if _applied:
        return
    from ministack.core import iam_actions
    from ministack.services import ecs, imds, sts

    _original["RunTask"] = ecs._ACTION_MAP["RunTask"]
    ecs._ACTION_MAP["RunTask"] = _run_task
    _original["ecs.handle_request"] = ecs.handle_request
    ecs.handle_request = _ecs_handle_request
    _original["_register_metadata"] = ecs._register_metadata
    ecs._register_metadata = _register_metadata
    _original["imds.handle_request"] = imds.handle_request
    imds.handle_request = _imds_handle_request
    _original["extract_resource_arn"] = iam_actions.extract_resource_arn
    iam_actions.extract_resource_arn = _extract_resource_arn
    _original["access_denied_response"] = iam_actions.access_denied_response
    iam_actions.access_denied_response = _access_denied_response
    sts.get_state, sts.load_persisted_state = _sts_state, _load_sts_state
    imds.get_state, imds.load_persisted_state = _imds_state, _load_imds_state
    _applied = True
    logger.info("IAM fidelity patch applied (AUTH=%s)", auth_enabled())
