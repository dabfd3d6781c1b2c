"""What the patches in this folder rely on in MiniStack, checked against the installed MiniStack.

ecs_fidelity.py, iam_fidelity.py, root_access.py, durability.py and cfn_fidelity.py call, wrap and replace
private functions of MiniStack, and ecs_fidelity.py carries a copy of one (``_start_task_worker``). Nothing in MiniStack
promises to keep them, so this file pins them: every name, the parameters of every function (names,
order, kinds, defaults; annotations left out: a caller does not see them), the few values the
patches build on, and a hash of the source of the functions they copy or depend on the body of.

    python /opt/localstack/contract.py     # in the emulator image: prints what broke, exit 1 if anything

Upgrading MiniStack: install the new version, run this, and work through what it prints (README:
"Upgrading MiniStack"). The functions ecs_fidelity replaces are its own ``_REPLACED`` list; this
file holds their signatures.
"""

import hashlib
import importlib
import importlib.metadata
import inspect
import re
import sys

try:  # in the emulator's image, the patch modules are copied next to this file
    import ecs_fidelity
except ImportError:  # in the checkout (unit tests)
    from localstack import ecs_fidelity

ECS = "ministack.services.ecs"
NO_SIGNATURE = "(no signature recorded)"
_MISSING = object()

# module -> name -> expectation. A dotted name is an attribute of an attribute (``_tasks.get``).
#   "(a, b=None)"        a function or class whose parameters read so; "async (...)" a coroutine
#   "module", "class", "dict", ...   what else the name must be
#   any other value      the value the name must have; a dict: the entries it must have (a function
#                        entry given by its name)
CONTRACT = {
    ECS: {
        # Replaced by ecs_fidelity (its _REPLACED) ...
        "_register_task_definition": "(data)",
        "_run_task": "(data)",
        "_build_run_kwargs": ("(cdef, td, env, port_bindings, ecs_network, host_mode, task_id, task_arn, "
                              "ministack_net_ip, cluster_arn)"),
        "_start_task_worker": "(task, td, container_overrides, docker_client)",
        "_start_awslogs_forwarder": "(container, cdef, task_id)",
        "_maybe_mark_stopped": "(task, docker_client=None)",
        "_watch_task_lifecycle": "(task, docker_client, account_id, region)",
        "_mark_task_stopped": "(task_arn, task, reason, stop_code, exit_code=None)",
        "_cleanup_task_resources": "(task, docker_client, extra_container=None)",
        "_stop_task": "(data)",
        "_forward_awslogs": "(container, config, account_id, region)",
        # ... and in the action table, which holds the functions themselves (ecs_fidelity, iam_fidelity).
        "_ACTION_MAP": {"RegisterTaskDefinition": "_register_task_definition", "RunTask": "_run_task",
                        "StopTask": "_stop_task"},
        # Wrapped by iam_fidelity and durability.
        "handle_request": "async (method, path, headers, body, query_params)",
        "_register_metadata": ("(task_arn, cluster_arn, td, cdef, launch_type, env, host_mode, "
                               "ministack_net_ip)"),
        "_restore_state": "(data)",
        # Called by the replacements.
        "_attach_started_container": "(task, container, index, metadata_token, ecs_network)",
        "_awslogs_config": "(cdef, task_id, container_id)",
        "_bump_task_version": "(task)",
        "_cluster_name_from_arn": "(arn)",
        "_schedule_service_deployment_completion": "(cluster_name, svc_key, account_id, region, healthy_task=None)",
        "_container_override_for": "(container_overrides, container_name)",
        "_ensure_awslogs_stream": "(config)",
        "_get_docker": "()",
        "_image_repository": "(image)",
        "_iso": "()",
        "_mark_task_activating": "(task_arn, task)",
        "_mark_task_pending": "(task_arn, task)",
        "_mark_task_running": "(task_arn, task)",
        "_prepare_service_images": "(task, td, docker_client)",
        "_record_service_task_failure": "(task, digest_resolution_failed=False)",
        "_recount_cluster": "(cluster_name)",
        "_refresh_service_state": "(cluster_name, group)",
        "_remove_docker_container": "(docker_client, container_or_id)",
        "_resolve_cluster_name": "(ref)",
        "_resolve_container_secrets": "(cdef)",
        "_resolve_repository_credentials": "(cdef)",
        "_resolve_task": "(ref, cluster_name='default')",
        "_resolve_td_key": "(ref)",
        "_run_docker_container": ("(docker_client, cdef, run_kwargs, *, refresh_image=False, allow_cached=True, "
                                  "cache_image=None, fallback_image=None, auth_config=None)"),
        "_sanitize": "(obj)",
        "_task_is_active": "(task_arn, task)",
        "error_response_json": ("(code, message, status=400, extra=None, *, message_key='message', "
                                "content_type='application/x-amz-json-1.0')"),
        "json_response": "(data, status=200, *, content_type='application/x-amz-json-1.0')",
        "request_scope": "(account_id, region)",
        "resource_lock": "(scope, key)",
        "spawn_background": "(fn, *args, thread_name='ministack-background', **kwargs)",
        # Read by the replacements. A stop replays _STOP_SEQUENCE[2:] (DEPROVISIONING, STOPPED) after
        # reporting STOPPING itself; a pull failure raises _ImagePullError for MiniStack's task worker.
        "_STOP_SEQUENCE": (("DEACTIVATING", False), ("STOPPING", False), ("DEPROVISIONING", True),
                           ("STOPPED", True)),
        "_ImagePullError": "class",
        "_tasks.get": "(key, default=None)",
        "_task_defs.get": "(key, default=None)",
        "ecs_metadata": "module",
    },
    # Where the awslogs forwarder stores a batch of events, in the order the container wrote them.
    "ministack.services.cloudwatch_logs": {
        "_put_log_events": "(data)",
    },
    "ministack.services.ecs_metadata": {
        "set_all_container_status": "(task_arn, known_status)",
        "set_task_status": "(task_arn, known_status=None, desired_status=None)",
        "unregister_token": "(token)",
    },
    # iam_fidelity: task role credentials, PassRole, AccessDenied messages, saved STS sessions.
    "ministack.services.iam": {
        "_gen_secret": "()",
        "_gen_session_access_key": "()",
        "_gen_session_token": "()",
        "_roles.get_scoped": "(account_id, region, key, default=None)",
    },
    "ministack.services.sts": {
        "_role_id": "(role_arn)",
        "_sessions": "dict",
        "register_session": "(access_key, session)",
        "get_state": "()",
        "load_persisted_state": "(data)",
    },
    "ministack.services.imds": {
        "handle_request": "async (method, path, headers, body, query_params)",
        "get_state": "()",
        "load_persisted_state": "(data)",
    },
    "ministack.core.iam_actions": {
        "access_denied_response": ("(service, action, principal_arn, request_id, *, error_code='', message='', "
                                   "headers=None, resource_arn='*', explicit_deny=False, resource_policy_arn='')"),
        "extract_resource_arn": "(service, method, path, headers, body, query_params, region, account_id)",
        # root_access: what S3 answers an unknown key, with why after it.
        "_auth_failure": "(service, code, message, headers)",
    },
    "ministack.core.iam_evaluator": {
        "AuthError": "(code, message, details=<factory>)",
        # root_access replaces these, here and where they were imported by name (its _IMPORTERS).
        "is_root_access_key": "(access_key_id)",
        "resolve_credential": "(access_key_id, account_id=None, session_token=<object>)",
        "CredentialResolutionError": "(code, message)",
        # root_access: an anonymous request of an action AWS serves unsigned passes without a key.
        "_anonymous": "ContextVar",
        "_served_unsigned": "(service, iam_action)",
        "enforce": "(access_key_id, iam_action, service, region, resource_arn='*', service_context=None)",
        # What enforce returns on a denial: iam_fidelity reads its decision and principal_arn.
        "EvalResult": "(decision, principal_arn='', matched_sid='', reason='', resource_policy_arn='')",
    },
    "ministack.core.responses": {
        "error_response_json": ("(code, message, status=400, extra=None, *, message_key='message', "
                                "content_type='application/x-amz-json-1.0')"),
        "get_region": "()",
    },
    "ministack.core.router": {
        "extract_access_key_id": "(headers, query_params=None)",
    },
    # durability: state written while it changes, tasks of a crashed emulator stopped.
    "ministack.core.persistence": {
        "PERSIST_STATE": "bool",
        "save_state": "(service, data)",
        "_json_default": "(obj)",
    },
    "ministack.services.s3": {
        # root_access: S3's refusal of an unknown key names it.
        "_error": "(code, message, status, resource='', extra=None, headers=None)",
    },
    "ministack.app": {
        # root_access wraps the ASGI application; main() serves the module's `app` when it starts.
        "app": "async (scope, receive, send)",
        "_build_persistence_save_dict": "()",
        "_load_persisted_state": "()",
        # The services whose state is saved and loaded through the get_state/load_persisted_state the
        # patches replace (sts, imds) or fingerprint (ecr) or restore (ecs).
        "_state_map": {"ecs": "ecs", "ecr": "ecr", "sts": "sts", "imds": "imds"},
    },
    "ministack.services.ecr": {
        "_images.all_items": "()",
    },
    # durability fingerprints CloudWatch's state by the sizes of these (each a scoped dict's _data).
    "ministack.services.cloudwatch": {
        f"{name}._data": "dict" for name in ("_metrics", "_alarms", "_composite_alarms", "_composite_triggers",
                                             "_alarm_history", "_dashboards", "_resource_tags")
    },
    # cfn_fidelity: a template's task definition registered through (patched) RegisterTaskDefinition.
    "ministack.services.cloudformation": {
        "provisioners": "module",
    },
    "ministack.services.cloudformation.provisioners": {
        "_ecs_task_def_create": "(logical_id, props, stack_name)",
        "_ecs_task_def_update": "(physical_id, old_props, new_props, stack_name, logical_id=None)",
        "_RESOURCE_HANDLERS": "dict",
    },
}

# module -> function -> (sha256 of its source in the pinned MiniStack, why its body matters).
SOURCES = {
    ECS: {
        "_start_task_worker": (
            "73e133e6afaa6b01b01c455763ed2ec683eca9c35263543739b8cb706a4d8eba",
            "ecs_fidelity's _start_task_worker and _launch_container are a copy of it; carry the change over"),
        "_start_awslogs_forwarder": (
            "bc9330496ce7fe7e776a68cb66e519bfc2f6e7ad65fb2187ae5299b00a11baa6",
            "its thread runs ecs_fidelity's _forward_awslogs (looked up in the module when it starts), "
            "and ecs_fidelity finds that thread by its name"),
        "_build_run_kwargs": (
            "25f7593b8823a519b55a59f953c8664a6b05ba72fd4a670d9ad4ea3b74cd602d",
            "ecs_fidelity's _build_run_kwargs keeps what it returns and changes it: it runs its `command` "
            "(the definition's, overridden) under ecs-stdio and adds a bind to its `volumes`, a list of "
            "\"source:target:mode\" strings"),
    },
    "ministack.services.cloudformation.provisioners": {
        "_ecs_task_def_update": (
            "3e1fa12a50c11b2d8a7e11b66bcfb57b41a498715f2342ad325ce0b235518f6d",
            "a changed definition's next revision comes from the module's _ecs_task_def_create, looked up "
            "when it runs, which cfn_fidelity replaces"),
    },
}


def expected():
    """CONTRACT, plus every function ecs_fidelity replaces that it has no signature for yet."""
    contract = {module: dict(names) for module, names in CONTRACT.items()}
    for name in ecs_fidelity._REPLACED:
        contract[ECS].setdefault(name, NO_SIGNATURE)
    return contract


def kind(obj):
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if inspect.iscoroutinefunction(obj):
        return "async function"
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return "function"
    return type(obj).__name__


def signature_text(obj):
    """``(a, b=None)``, ``async (...)`` for a coroutine function; None if it has no signature."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    plain = sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
                        return_annotation=sig.empty)
    # A sentinel default (`object()`) prints with its address, which differs on every run.
    text = re.sub(r"<object object at 0x[0-9a-f]+>", "<object>", str(plain))
    return ("async " if inspect.iscoroutinefunction(obj) else "") + text


def _shown(value):
    return getattr(value, "__name__", None) if callable(value) else value


def _broken(where, found, expectation):
    """The sentences for one name that does not meet its expectation (none if it does)."""
    if isinstance(expectation, dict):
        if not isinstance(found, dict):
            return [f"{where}: dict expected, found {kind(found)}"]
        return [f"{where}[{key!r}]: {value!r} expected, found {_shown(found.get(key))!r}"
                for key, value in expectation.items() if _shown(found.get(key)) != value]
    if not isinstance(expectation, str):
        return [] if found == expectation else [f"{where}: value {expectation!r} expected, found {found!r}"]
    if expectation == NO_SIGNATURE:
        return [f"{where}: replaced by ecs_fidelity.py, but contract.py records no signature for it; "
                f"found {signature_text(found) or kind(found)}: add it to CONTRACT"]
    if expectation.startswith(("(", "async (")):
        text = signature_text(found) if callable(found) else None
        return [] if text == expectation else [
            f"{where}: signature {expectation} expected, found {text or kind(found)}"]
    return [] if kind(found) == expectation else [f"{where}: {expectation} expected, found {kind(found)}"]


def _source_hash(obj):
    try:
        return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()
    except (OSError, TypeError):
        return None


def check(contract=None, sources=None, import_module=importlib.import_module):
    """One sentence for each expectation the installed MiniStack breaks; empty when it keeps them all.

    Run it before the patches are applied: once they are, the replaced names are the patches' own.
    """
    contract = expected() if contract is None else contract
    sources = SOURCES if sources is None else sources
    broken = []
    for module_name in sorted(set(contract) | set(sources)):
        try:
            module = import_module(module_name)
        except ImportError as exc:
            broken.append(f"{module_name}: cannot be imported ({exc})")
            continue
        for name, expectation in contract.get(module_name, {}).items():
            where, found = f"{module_name}.{name}", module
            for part in name.split("."):
                found = getattr(found, part, _MISSING)
            if found is _MISSING:
                broken.append(f"{where}: missing")
            else:
                broken.extend(_broken(where, found, expectation))
        for name, (digest, why) in sources.get(module_name, {}).items():
            found = getattr(module, name, _MISSING)
            actual = None if found is _MISSING else _source_hash(found)
            if actual != digest:
                now = f"sha256 now {actual}" if actual else "no source"
                broken.append(f"{module_name}.{name}: source changed ({now}): {why}")
    return broken


def pinned_count(contract=None, sources=None):
    contract = expected() if contract is None else contract
    sources = SOURCES if sources is None else sources
    return sum(map(len, contract.values())) + sum(map(len, sources.values()))


def main():
    try:
        version = importlib.metadata.version("ministack")
    except importlib.metadata.PackageNotFoundError:
        version = "(not installed)"
    broken = check()
    if not broken:
        print(f"ministack {version} keeps all {pinned_count()} expectations of the patches in localstack/.")
        return 0
    print(f"ministack {version} (the patches were written for {ecs_fidelity.PINNED_VERSION}) breaks "
          f"{len(broken)} expectation(s) of the patches in localstack/:")
    for sentence in broken:
        print(f"  - {sentence}")
    print("Read each in MiniStack's source, adapt the patch that uses it, then record the new signature, "
          "value or hash in localstack/contract.py (README: Upgrading MiniStack).")
    return 1


if __name__ == "__main__":
    sys.exit(main())
