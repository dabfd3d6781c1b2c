"""Run ECS tasks the way ECS does: a patch for MiniStack 1.5.33.

MiniStack starts real containers for RunTask, but 1.5.33 starts them from the
image's own entrypoint with only the definition's ``command``, stops them with
a fixed 5 s grace and a made-up exit code 0, and ignores the parts of a
container definition that decide how a task lives and dies. This module
replaces the few functions of ``ministack.services.ecs`` that matter:

- ``entryPoint``, ``workingDirectory``, ``user``, ``cpu``/``memory``/
  ``memoryReservation`` (container and task level), ``healthCheck`` and
  ``linuxParameters.initProcessEnabled`` reach ``docker run``;
- containers start in ``dependsOn`` order (START, COMPLETE, SUCCESS, HEALTHY);
- an essential exit stops the task and its other containers, a non-essential
  one does not; an OOM kill is reported as ECS reports it;
- StopTask (and every other stop) sends SIGTERM, waits the container's
  ``stopTimeout``, then SIGKILLs, and records the real exit codes;
- an image that is neither local nor pullable fails the task with
  ``CannotPullContainerError``;
- awslogs events carry the time Docker logged each line (MiniStack stamps
  them when its forwarder reads them), lines joined and split as the awslogs
  driver does; all are stored before the task reports STOPPED;
- a running task's containers are watched through one ``docker events``
  stream: MiniStack inspects each of them every 0.1 s, which kept dockerd
  busier than the tasks themselves in a fan-out;
- stdout and stderr interleave as written: each container's command runs under
  ``ecs-stdio`` (``ecs_stdio.c``, from a read-only volume), which puts its
  stderr on its stdout pipe; a command that cannot be executed fails the task
  to start with ECS's ``CannotStartContainerError``, as Docker's refusal did.

Everything else (awslogs stream naming, metadata and credentials endpoints,
network detection, services) is MiniStack's own code, called unchanged.
``apply()`` refuses any MiniStack other than ``PINNED_VERSION``: the replaced
functions are written against that version's internals.
"""

import calendar
import importlib.metadata
import logging
import os
import queue
import re
import shutil
import struct
import threading
import time

try:  # in the emulator's image, sandbox/core/ecs_rules.py is copied next to this file
    import ecs_rules
except ImportError:  # in the checkout (unit tests)
    from sandbox.core import ecs_rules

PINNED_VERSION = "1.5.33"

logger = logging.getLogger("ecs.fidelity")

# ECS defaults and limits (container definition reference).
DEFAULT_STOP_TIMEOUT = 30
MAX_STOP_TIMEOUT = 120
DEFAULT_START_TIMEOUT = 180

ESSENTIAL_EXITED = "Essential container in task exited"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
# The ECS agent's exit code for a container it never started because a
# dependency can no longer be met (amazon-ecs-agent #3218).
DEPENDENCY_EXIT_CODE = 143

WAIT, MET, FAILED = "WAIT", "MET", "FAILED"

_POLL_SECONDS = 0.2
# How long a stopped task waits for its awslogs forwarders to drain, so that
# a client reading the logs once the task is STOPPED sees its last lines.
_LOG_DRAIN_SECONDS = 5
# A forwarder stores what Docker sent once Docker has been quiet this long (or after the longest wait),
# each batch in the order written (settled_batches).
_LOG_SETTLE_SECONDS = 0.1
_LOG_BATCH_SECONDS = 1.0
# A running task's watcher inspects its containers when Docker reports one of them dying, being
# OOM-killed or changing health, and at the latest after this long (an event missed while the
# stream reconnects).
_WATCH_FALLBACK_SECONDS = 2.0


# ── Pure translation: container definition -> Docker ──────────────────────

def task_cpu_units(td):
    """Task-level cpu as units ("512", 512, "0.5 vCPU"), or None: the sandbox's one size parser."""
    return None if td.get("cpu") in (None, "") else ecs_rules.parse_cpu(td["cpu"])


def task_memory_mib(td):
    """Task-level memory as MiB ("1024", "1 GB"), or None."""
    return None if td.get("memory") in (None, "") else ecs_rules.parse_memory(td["memory"])


def healthcheck_options(health_check):
    """ECS ``healthCheck`` (seconds) -> docker-py ``healthcheck`` (nanoseconds)."""
    if not health_check or not health_check.get("command"):
        return None
    ns = 1_000_000_000
    return {
        "test": list(health_check["command"]),
        "interval": int(health_check.get("interval", 30)) * ns,
        "timeout": int(health_check.get("timeout", 5)) * ns,
        "retries": int(health_check.get("retries", 3)),
        "start_period": int(health_check.get("startPeriod", 0)) * ns,
    }


def docker_run_options(cdef, td, host_cpus=None):
    """The ``docker run`` options ECS derives from a container definition.

    MiniStack already passes command, environment, ports, mounts, labels,
    ``privileged``, ``capabilities.add``, pidMode host and networkMode host;
    these are the ones it leaves out.
    """
    opts = {}
    # An explicit entryPoint replaces the image's ENTRYPOINT; Docker then runs
    # it with the definition's command (or none), as the ECS agent does.
    if cdef.get("entryPoint"):
        opts["entrypoint"] = list(cdef["entryPoint"])
    if cdef.get("workingDirectory"):
        opts["working_dir"] = cdef["workingDirectory"]
    if cdef.get("user"):
        opts["user"] = str(cdef["user"])

    linux = cdef.get("linuxParameters") or {}
    # A container's hard limit is its own `memory`; without one it may use
    # the whole task's memory, which is the task's hard limit.
    hard = cdef.get("memory") or task_memory_mib(td)
    if hard:
        opts["mem_limit"] = f"{int(hard)}m"
        # No swap unless the definition grants some (maxSwap), as on Fargate:
        # otherwise an over-limit container would swap instead of being killed.
        opts["memswap_limit"] = f"{int(hard) + int(linux.get('maxSwap') or 0)}m"
    if cdef.get("memoryReservation"):
        opts["mem_reservation"] = f"{int(cdef['memoryReservation'])}m"

    # Container cpu units are a relative weight (cpu shares, minimum 2); the
    # task's cpu is a ceiling no container can exceed.
    if cdef.get("cpu"):
        opts["cpu_shares"] = max(2, int(cdef["cpu"]))
    task_cpu = task_cpu_units(td)
    if task_cpu and (host_cpus is None or task_cpu < host_cpus * 1024):
        opts["nano_cpus"] = task_cpu * 1_000_000_000 // 1024

    health = healthcheck_options(cdef.get("healthCheck"))
    if health:
        opts["healthcheck"] = health
    if linux.get("initProcessEnabled"):
        opts["init"] = True
    opts.update(host_options(cdef, td))
    return opts


DEVICE_PERMISSIONS = (("read", "r"), ("write", "w"), ("mknod", "m"))


def device_option(device):
    """An ECS ``linuxParameters.devices`` entry as Docker's ``host:container:perms`` (the container path
    defaults to the host's, the permissions to all three, as on EC2)."""
    permissions = device.get("permissions") or [name for name, _ in DEVICE_PERMISSIONS]
    flags = "".join(flag for name, flag in DEVICE_PERMISSIONS if name in permissions)
    return f"{device['hostPath']}:{device.get('containerPath') or device['hostPath']}:{flags or 'rwm'}"


def host_options(cdef, td):
    """The Linux and namespace options of a container that MiniStack leaves out: ``capabilities.drop``,
    ``devices``, ``dockerSecurityOptions`` (passed as they are, as the ECS agent does),
    ``systemControls`` and ipcMode host / none. Those that reach into the host only get here when
    ECS_ALLOW_HOST_ACCESS=true let their definition register (refusal)."""
    linux = cdef.get("linuxParameters") or {}
    opts = {}
    drop = (linux.get("capabilities") or {}).get("drop")
    if drop:
        opts["cap_drop"] = [str(name) for name in drop]
    devices = [device_option(d) for d in linux.get("devices") or [] if isinstance(d, dict) and d.get("hostPath")]
    if devices:
        opts["devices"] = devices
    if cdef.get("dockerSecurityOptions"):
        opts["security_opt"] = [str(option) for option in cdef["dockerSecurityOptions"]]
    sysctls = {c["namespace"]: str(c.get("value", "")) for c in cdef.get("systemControls") or []
               if isinstance(c, dict) and c.get("namespace")}
    if sysctls:
        opts["sysctls"] = sysctls
    # "task" (one IPC namespace for the task's containers) needs a container to share from; Docker's
    # default (a namespace of the container's own) stands in for it, as for pidMode "task".
    if td.get("ipcMode") in ("host", "none"):
        opts["ipc_mode"] = td["ipcMode"]
    return opts


def stop_timeout(cdef):
    """Seconds between SIGTERM and SIGKILL when the container is stopped."""
    value = cdef.get("stopTimeout")
    if value is None:
        return DEFAULT_STOP_TIMEOUT
    return max(0, min(int(value), MAX_STOP_TIMEOUT))


def start_timeout(cdef):
    """Seconds a container waits for its dependencies before giving up."""
    value = cdef.get("startTimeout")
    return DEFAULT_START_TIMEOUT if value is None else max(0, int(value))


def is_essential(cdef):
    return cdef.get("essential", True) is not False


def start_order(cdefs):
    """Indexes of ``cdefs`` with every container after its dependencies.

    Definition order is kept where dependencies allow. A cycle cannot start
    at all (ECS rejects it at registration), so it raises ValueError.
    """
    names = {c["name"] for c in cdefs}
    order, placed = [], set()
    while len(order) < len(cdefs):
        ready = [
            i for i, c in enumerate(cdefs)
            if i not in order and all(
                d.get("containerName") in placed
                for d in c.get("dependsOn") or []
                if d.get("containerName") in names)
        ]
        if not ready:
            raise ValueError("dependsOn cycle among containers: "
                             + ", ".join(sorted(names - placed)))
        order.append(ready[0])
        placed.add(cdefs[ready[0]]["name"])
    return order


def dependency_state(condition, state):
    """Is a ``dependsOn`` condition MET, still to WAIT for, or FAILED for good?

    ``state`` is the dependency's Docker ``State``, None if it never started.
    """
    if state is None:
        return FAILED
    exited = state.get("Status") in ("exited", "dead")
    condition = (condition or "START").upper()
    if condition == "START":
        return MET
    if condition == "COMPLETE":
        return MET if exited else WAIT
    if condition == "SUCCESS":
        if not exited:
            return WAIT
        return MET if state.get("ExitCode") == 0 else FAILED
    if condition == "HEALTHY":
        if (state.get("Health") or {}).get("Status") == "healthy":
            return MET
        return FAILED if exited else WAIT
    raise ValueError(f"unknown dependsOn condition {condition!r}")


def dependency_failure_reason(dependency, target, condition):
    # The agent's wording for a terminal ordering error.
    why = {"SUCCESS": "did not exit successfully",
           "HEALTHY": "did not become healthy"}.get(
        (condition or "").upper(), "did not start")
    return ("CannotStartContainerError: dependency graph: failed to resolve "
            f"container ordering dependency [{dependency}] for target "
            f"[{target}] as dependency {why}.")


def container_outcome(state):
    """(exitCode, reason) that ECS reports for an exited container."""
    exit_code = state.get("ExitCode")
    if state.get("OOMKilled"):
        return 137 if exit_code in (None, 0) else exit_code, OOM_REASON
    return exit_code, None


def health_status(state):
    return {"healthy": "HEALTHY", "unhealthy": "UNHEALTHY"}.get(
        (state.get("Health") or {}).get("Status"), "UNKNOWN")


def task_health_status(container_health):
    """Task health from its essential containers that define a health check."""
    statuses = list(container_health)
    if "UNHEALTHY" in statuses:
        return "UNHEALTHY"
    if statuses and all(s == "HEALTHY" for s in statuses):
        return "HEALTHY"
    return "UNKNOWN"


def pull_failure_reason(exc):
    explanation = getattr(exc, "explanation", None) or str(exc)
    return f"Error response from daemon: {explanation}"


# ── Pure translation: a container's Docker log -> awslogs events ───────────

# Stream types in Docker's multiplexed log stream (an 8-byte header before each frame).
STDOUT, STDERR = 1, 2
# The awslogs driver asks Docker for lines of up to 256 KiB less CloudWatch's 26 bytes of per-event
# overhead (its BufSize); Docker hands it a longer line in pieces of that size, and each piece is an
# event. The default json-file driver these containers log to splits at 16 KiB instead.
MAX_EVENT_BYTES = 262144 - 26

_DOCKER_TIMESTAMP = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")


def parse_docker_log_line(raw):
    """One frame of ``docker logs --timestamps`` -> (nanoseconds since the epoch, the line).

    ``b"2024-05-01T12:00:00.123456789Z hello\\n"`` -> ``(1714564800123456789, b"hello\\n")``. The
    line keeps its newline: a frame without one is a piece of a longer line.
    """
    match = _DOCKER_TIMESTAMP.match(raw)
    if not match:
        raise ValueError(f"no Docker timestamp at the start of {raw[:48]!r}")
    *fields, fraction, zone = match.groups()
    seconds = calendar.timegm(tuple(int(f) for f in fields))
    if zone != b"Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[:1] == b"+" else -offset
    nanos = int((fraction or b"0").ljust(9, b"0"))
    return seconds * 1_000_000_000 + nanos, raw[match.end():]


def awslogs_events(frames):
    """The events Docker's awslogs driver makes of a container's output, as (timestamp_ns, message).

    ``frames`` are (stream type, frame) in the order Docker logged them, each frame one line or one
    piece of a line, with its timestamp (Docker gives a line's pieces the first one's). As the driver:
    a message is a line without its newline, pieces are joined up to MAX_EVENT_BYTES, an empty line
    is no event, and the line a container leaves without a newline is one at the end. Yielded in
    Docker's order, which can differ from the timestamps' across stdout and stderr.
    """
    pending = {}  # stream type -> (timestamp, bytes) of a line still arriving in pieces
    timestamp = None
    for stream, raw in frames:
        if stream not in (STDOUT, STDERR):
            continue  # Docker's own "Error grabbing logs" notes, not the container's output
        try:
            timestamp, line = parse_docker_log_line(raw)
        except ValueError:  # never seen with timestamps=1; keep the line, in its place
            timestamp, line = timestamp or time.time_ns(), raw
        complete = line.endswith(b"\n")
        body = line[:-1] if complete else line
        if stream in pending:
            timestamp, head = pending.pop(stream)
            body = head + body
        while len(body) >= MAX_EVENT_BYTES:
            yield timestamp, body[:MAX_EVENT_BYTES].decode("utf-8", errors="replace")
            body = body[MAX_EVENT_BYTES:]
        if not complete:
            pending[stream] = (timestamp, body)
        elif body:
            yield timestamp, body.decode("utf-8", errors="replace")
    for timestamp, body in sorted(pending.values()):
        if body:
            yield timestamp, body.decode("utf-8", errors="replace")


def log_events_in_written_order(events):
    """PutLogEvents ``logEvents`` for (timestamp_ns, message) pairs, in the order of Docker's stamps.

    Docker copies stdout and stderr in two goroutines that stamp a line when they read it and then
    queue for the log file, so a stderr line can be logged after stdout lines stamped later (moby
    issue 31706); equal stamps keep Docker's order. The stamps are when Docker read a line, not when
    it was written, so across the two streams even they can be out of order: ecs-stdio puts both on
    one pipe. Timestamps are whole milliseconds, as the awslogs driver sends them.
    """
    return [{"timestamp": ns // 1_000_000, "message": message}
            for ns, message in sorted(events, key=lambda event: event[0])]


def read_frames(read):
    """(stream type, frame) for each frame of Docker's multiplexed stream; ``read(n)`` gives at most
    n bytes, b"" at the end. docker-py's own reader drops the stream type."""
    def exactly(size):
        data = b""
        while len(data) < size:
            chunk = read(size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    while True:
        header = exactly(8)
        if len(header) < 8:
            return
        stream, size = struct.unpack(">BxxxL", header)
        frame = exactly(size)
        if len(frame) < size:
            return
        if frame:
            yield stream, frame


def settled_batches(events, settle, longest):
    """Lists of what the queue ``events`` receives (None ends it), each handed on once nothing more
    has arrived for ``settle`` seconds, or ``longest`` seconds after its first event.

    A line Docker logs late (see log_events_in_written_order) arrives with the lines it raced, so
    waiting for a quiet moment lets it be stored in its place rather than after them.
    """
    while True:
        event = events.get()
        if event is None:
            return
        batch, deadline = [event], time.monotonic() + longest
        while True:
            wait = min(settle, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                event = events.get(timeout=wait)
            except queue.Empty:
                break
            if event is None:
                yield batch
                return
            batch.append(event)
        yield batch


# ── Pure translation: stdout and stderr on one pipe (ecs_stdio.c) ──────────

# Docker stamps a stderr line when its own goroutine reads it, which across the two streams is not
# the order written, even to the nanosecond (log_events_in_written_order sorts what it can). So each
# container's command runs under ecs-stdio, which gives it one pipe for both. The emulator runs in a
# container of its own and starts task containers on the host's engine: ecs-stdio reaches them in a
# Docker volume (compose.yaml's ecs-tools, named in ECS_TOOLS_VOLUME), which the emulator fills from
# its image at start-up and every task container mounts read-only.
ECS_STDIO_BUILT = "/opt/localstack/bin/ecs-stdio"   # in the emulator's image (localstack/Dockerfile)
ECS_TOOLS_DIR = "/var/lib/ecs-tools"                # the volume, in the emulator's container
ECS_TOOLS_MOUNT = "/.ecs-sandbox"                   # the volume, in a task container
ECS_STDIO = ECS_TOOLS_MOUNT + "/ecs-stdio"


def ecs_tools_volume():
    """The Docker volume that holds ecs-stdio (ECS_TOOLS_VOLUME), or None: then commands run as they
    are, and a stderr line may be logged after stdout lines written later."""
    return os.environ.get("ECS_TOOLS_VOLUME", "").strip() or None


def merged_stdio_argv(entry_point, command, image_entrypoint, image_cmd):
    """The argv Docker runs for a container, as it merges a definition with its image: an
    ``entryPoint`` replaces the image's ENTRYPOINT and drops its CMD too (Docker's rule for any
    entrypoint given at create, which the ECS agent relies on); ``command`` (the override's, else the
    definition's) replaces the CMD. An empty list counts as none given."""
    if entry_point:
        return [*entry_point, *(command or [])]
    return [*(image_entrypoint or []), *(command or image_cmd or [])]


def merged_stdio_options(cdef, image_config, volume, binds=None):
    """docker-py options that run ``cdef``'s command under ecs-stdio, or {} to run it as it is.

    ``cdef`` is the effective definition (a command override applied); ``image_config`` its image's
    ``Config`` (Entrypoint, Cmd), None when it is not known (not pulled yet): without an entryPoint
    the argv cannot be known then. An argv that is empty stays unwrapped, for Docker to refuse as
    before. ``binds``: the ``volumes`` MiniStack already passes (the definition's mountPoints).
    """
    if not cdef.get("entryPoint") and image_config is None:
        return {}
    image_config = image_config or {}
    argv = merged_stdio_argv(cdef.get("entryPoint"), cdef.get("command"),
                             image_config.get("Entrypoint"), image_config.get("Cmd"))
    if not argv:
        return {}
    return {"entrypoint": [ECS_STDIO], "command": argv,
            "volumes": [*(binds or []), f"{volume}:{ECS_TOOLS_MOUNT}:ro"]}


def merges_stdio(attrs):
    """Whether a container (its ``docker inspect``) runs its command under ecs-stdio."""
    return ((attrs or {}).get("Config") or {}).get("Entrypoint") == [ECS_STDIO]


def exec_failure(frames):
    """What ecs-stdio said when it could not execute a container's command, or None.

    ``frames``: the container's stderr stream (timestamped frames). Under ecs-stdio everything the
    command writes goes to stdout, so that stream holds only ecs-stdio's one line, in Docker's words:
    ``exec: "X": executable file not found in $PATH``.
    """
    text = b"".join(parse_docker_log_line(raw)[1] for stream, raw in frames if stream == STDERR)
    message = text.decode("utf-8", errors="replace").strip()
    return message if message.startswith('exec: "') and "\n" not in message else None


def start_failure_reason(message):
    """The reason ECS gives (container and task, stop code TaskFailedToStart) when Docker refuses to
    start a container whose command it cannot execute."""
    return ("CannotStartContainerError: Error response from daemon: failed to create task for "
            "container: failed to create shim task: OCI runtime create failed: runc create failed: "
            f"unable to start container process: {message}: unknown")


# ── Runtime: replacements for ministack.services.ecs functions ─────────────

ecs = None          # ministack.services.ecs, once apply() ran
_original = {}
_log_threads = {}   # task id -> awslogs forwarder threads
_log_threads_lock = threading.Lock()
# Lines each awslogs stream has received from its forwarder, and streams completed at stop.
_emitted = {}       # (group, stream) -> count
_completed = set()
_emit_lock = threading.Lock()
_host_cpus = None


def _lock(task):
    return ecs.resource_lock("ecs-task", task.get("taskArn", ""))


def _cdefs(task):
    return task.get("_fidelity_cdefs") or {}


def _container_record(task, name):
    for container in task.get("containers", []):
        if container.get("name") == name:
            return container
    return None


def _settled(state, inspect):
    """dockerd may record a container's exit before the kernel's OOM event for it, so a SIGKILL
    exit (137) without OOMKilled is inspected again for up to a second before it counts as such."""
    for _ in range(10):
        if not (state.get("Status") == "exited" and state.get("ExitCode") == 137
                and not state.get("OOMKilled")):
            break
        time.sleep(0.1)
        state = inspect() or state
    return state


def _docker_state(docker_client, docker_id):
    def inspect():
        return docker_client.containers.get(docker_id).attrs.get("State") or {}
    try:
        return _settled(inspect(), inspect)
    except Exception:
        return None


def _daemon_cpus(docker_client):
    global _host_cpus
    if _host_cpus is None:
        try:
            _host_cpus = int(docker_client.info().get("NCPU") or 0) or None
        except Exception:
            return None
    return _host_cpus


# Task containers carry the compose project of the sandbox that started them, so its teardown
# removes its own and never another project's.
PROJECT_LABEL = "sandbox.compose-project"


def task_cgroup_parent(task_id, cgroup_driver):
    """The task's own cgroup, as the ECS agent makes one (/ecs/<task id>): every container of the
    task under it, so the task's CPU and memory can be read as one, also after its containers exit
    (the sandbox's metrics service samples it). Docker's systemd driver takes only slice names."""
    if cgroup_driver != "cgroupfs":
        return None
    return f"/ecs/{task_id}"


def _cgroup_driver(docker_client):
    global _cgroup_driver_name
    if _cgroup_driver_name is None:
        try:
            _cgroup_driver_name = docker_client.info().get("CgroupDriver") or ""
        except Exception:
            return ""
    return _cgroup_driver_name


_cgroup_driver_name = None


def _build_run_kwargs(cdef, td, env, port_bindings, network, host_mode, task_id, *args, **kwargs):
    run_kwargs = _original["_build_run_kwargs"](
        cdef, td, env, port_bindings, network, host_mode, task_id, *args, **kwargs)
    docker_client = ecs._get_docker()
    run_kwargs.update(docker_run_options(
        cdef, td, host_cpus=_daemon_cpus(docker_client)))
    parent = task_cgroup_parent(task_id, _cgroup_driver(docker_client))
    if parent:
        run_kwargs["cgroup_parent"] = parent
    project = os.environ.get("SANDBOX_COMPOSE_PROJECT")
    if project:
        run_kwargs["labels"] = {**(run_kwargs.get("labels") or {}), PROJECT_LABEL: project}
    volume = ecs_tools_volume()
    if volume:
        image_config = None if cdef.get("entryPoint") else _image_config(docker_client, cdef["image"])
        run_kwargs.update(merged_stdio_options(cdef, image_config, volume, run_kwargs.get("volumes")))
    return run_kwargs


def _image_config(docker_client, image):
    """The image's Config (Entrypoint, Cmd), or None if it is not local: a service's image pinned to a
    digest is pulled only when its container is created."""
    try:
        return docker_client.images.get(image).attrs.get("Config") or {}
    except Exception as exc:
        logger.info("ECS: %s is not local (%s): its container's stdout and stderr are logged as "
                    "Docker reads them", image, exc)
        return None


def install_ecs_stdio(source=ECS_STDIO_BUILT, directory=ECS_TOOLS_DIR):
    """Copy ecs-stdio from this image into the volume task containers mount. The copy replaces the
    one an earlier emulator left by a rename, so a task still running that one keeps its file."""
    target = os.path.join(directory, "ecs-stdio")
    partial = f"{target}.{os.getpid()}.partial"
    try:
        shutil.copyfile(source, partial)
        os.chmod(partial, 0o755)
        os.chmod(directory, 0o755)  # a task's `user` may be anyone
        os.replace(partial, target)
    except OSError as exc:
        raise RuntimeError(
            f"cannot put ecs-stdio ({source}) into {directory}, where the {ecs_tools_volume()} volume "
            f"(ECS_TOOLS_VOLUME) should be mounted: {exc}. compose.yaml's localstack service mounts it "
            "there; outside compose, mount a volume there or unset ECS_TOOLS_VOLUME.") from exc


def _ensure_images(task, td, docker_client):
    """Pull what is not cached before any container starts (ACTIVATING).

    Local images are used as they are, like the agent's prefer-cached pull
    behaviour: this emulator usually has no registry to ask.
    """
    from docker.errors import ImageNotFound

    for cdef in td.get("containerDefinitions", []):
        image = cdef["image"]
        try:
            docker_client.images.get(image)
            continue
        except ImageNotFound:
            pass
        try:
            docker_client.images.pull(image)
        except Exception as exc:
            reason = pull_failure_reason(exc)
            with _lock(task):
                record = _container_record(task, cdef["name"])
                if record is not None:
                    record["reason"] = "CannotPullContainerError: " + reason
            raise ecs._ImagePullError(reason) from exc


def _detect_network(docker_client):
    """MiniStack's own Docker network and address, when it runs in a container."""
    try:
        me = docker_client.containers.get(os.environ.get("HOSTNAME", ""))
        nets = me.attrs["NetworkSettings"]["Networks"]
        if nets:
            name = next(iter(nets))
            return name, nets[name].get("IPAddress") or None
    except Exception:
        logger.debug("ECS: could not detect Ministack network, using default")
    return None, None


def _start_task_worker(task, td, container_overrides, docker_client):
    """MiniStack's task start, with images pulled first and dependsOn honoured."""
    task_arn = task["taskArn"]
    if not ecs._mark_task_pending(task_arn, task):
        return
    if not ecs._mark_task_activating(task_arn, task):
        return
    cdefs = td.get("containerDefinitions", [])
    with _lock(task):
        task["_fidelity_cdefs"] = {c["name"]: c for c in cdefs}
        task["_fidelity_ids"] = {}

    deployment = ecs._prepare_service_images(task, td, docker_client)
    if deployment is None:
        _ensure_images(task, td, docker_client)
    network, net_ip = _detect_network(docker_client)

    for index in start_order(cdefs):
        cdef = cdefs[index]
        failure = _await_dependencies(task, cdef, docker_client)
        with _lock(task):
            active = ecs._task_is_active(task_arn, task)
        if not active:
            ecs._cleanup_task_resources(task, docker_client)
            return
        if failure:
            # The container never starts; an essential one takes its task down.
            with _lock(task):
                record = task["containers"][index]
                record.update(lastStatus="STOPPED", exitCode=DEPENDENCY_EXIT_CODE,
                              reason=failure)
            if is_essential(cdef):
                ecs._mark_task_stopped(task_arn, task, ESSENTIAL_EXITED,
                                       "EssentialContainerExited")
                ecs._cleanup_task_resources(task, docker_client)
                return
            continue
        if not _launch_container(task, td, index, cdef, container_overrides,
                                 docker_client, deployment, network, net_ip):
            return

    if not ecs._mark_task_running(task_arn, task):
        ecs._cleanup_task_resources(task, docker_client)


def _launch_container(task, td, index, cdef, container_overrides,
                      docker_client, deployment, network, net_ip):
    """Start one container. This is MiniStack's own per-container start."""
    task_arn = task["taskArn"]
    task_id = task_arn.rsplit("/", 1)[-1]
    override = ecs._container_override_for(container_overrides, cdef["name"])
    env = {e["name"]: e["value"] for e in cdef.get("environment", [])}
    env.update(ecs._resolve_container_secrets(cdef))
    env.update({e["name"]: e["value"] for e in override.get("environment", [])})

    effective = dict(cdef)
    digest = (deployment.get("_image_digests", {}).get(cdef["name"])
              if deployment else None)
    if deployment and "@" in cdef["image"]:
        digest = cdef["image"].split("@", 1)[1]
    if digest:
        effective["image"] = f"{ecs._image_repository(cdef['image'])}@{digest}"
        with _lock(task):
            if ecs._task_is_active(task_arn, task):
                task["containers"][index]["imageDigest"] = digest
    if "command" in override:
        effective["command"] = override["command"]

    port_bindings = {}
    if td.get("networkMode") != "awsvpc":
        for pm in cdef.get("portMappings", []):
            port_bindings[f"{pm['containerPort']}/tcp"] = pm.get(
                "hostPort", pm.get("containerPort"))

    host_mode = td.get("networkMode") == "host"
    token = ecs._register_metadata(
        task_arn, task["clusterArn"], td, cdef, task.get("launchType", "EC2"),
        env, host_mode, net_ip)
    with _lock(task):
        active = ecs._task_is_active(task_arn, task)
        if active:
            task.setdefault("_metadata_tokens", []).append(token)
    if not active:
        ecs.ecs_metadata.unregister_token(token)
        ecs._cleanup_task_resources(task, docker_client)
        return False

    run_kwargs = ecs._build_run_kwargs(
        effective, td, env, port_bindings, network, host_mode, task_id,
        task_arn, net_ip, task["clusterArn"])
    container = ecs._run_docker_container(
        docker_client, effective, run_kwargs,
        refresh_image=deployment is not None,
        cache_image=(cdef["image"] if digest and "@" not in cdef["image"]
                     and cdef["name"] in task.get("_image_resolution_containers", [])
                     else None),
        fallback_image=(cdef["image"] if digest and "@" not in cdef["image"]
                        else None),
        auth_config=(ecs._resolve_repository_credentials(cdef)
                     if deployment else None),
    )
    with _lock(task):
        task["_fidelity_ids"][cdef["name"]] = container.id
    if not ecs._attach_started_container(task, container, index, token, network):
        ecs._cleanup_task_resources(task, docker_client, container)
        return False
    ecs._start_awslogs_forwarder(container, effective, task_id)
    return True


def _await_dependencies(task, cdef, docker_client):
    """Block until ``cdef``'s dependsOn conditions hold.

    Returns None when they do (or the task stopped meanwhile), else the
    reason the container can never start.
    """
    deps = [d for d in cdef.get("dependsOn") or []
            if d.get("containerName") in _cdefs(task)]
    deadline = time.monotonic() + start_timeout(cdef)
    while deps:
        # An essential container exiting while others wait stops the task.
        ecs._maybe_mark_stopped(task, docker_client)
        with _lock(task):
            if not ecs._task_is_active(task["taskArn"], task):
                return None
            ids = dict(task["_fidelity_ids"])
        waiting = []
        for dep in deps:
            name, condition = dep["containerName"], dep.get("condition", "START")
            state = _docker_state(docker_client, ids[name]) if name in ids else None
            verdict = dependency_state(condition, state)
            if verdict == FAILED:
                return dependency_failure_reason(name, cdef["name"], condition)
            if verdict == WAIT:
                waiting.append(dep)
        deps = waiting
        if deps and time.monotonic() >= deadline:
            return ("CannotStartContainerError: dependency graph: timed out "
                    f"after {start_timeout(cdef)}s waiting for "
                    f"[{deps[0]['containerName']}] to reach "
                    f"{deps[0].get('condition', 'START')} for target "
                    f"[{cdef['name']}].")
        if deps:
            time.sleep(_POLL_SECONDS)
    return None


def _start_awslogs_forwarder(container, cdef, task_id):
    """MiniStack's forwarder start (its thread runs _forward_awslogs), remembered so a stop can wait
    for it to drain."""
    _original["_start_awslogs_forwarder"](container, cdef, task_id)
    name = f"ministack-ecs-awslogs-{task_id[:8]}-{cdef.get('name', 'container')}"
    started = [t for t in threading.enumerate() if t.name == name]
    with _log_threads_lock:
        _log_threads.setdefault(task_id, []).extend(started)


def _docker_log_frames(api, docker_id, follow, stdout=True, stderr=True):
    """A container's Docker log with timestamps, as (stream type, frame); docker-py's
    ``container.logs`` would drop the stream type. Task containers have no TTY: the stream is
    multiplexed."""
    response = api._get(api._url("/containers/{0}/logs", docker_id), stream=True, params={
        "stdout": int(stdout), "stderr": int(stderr), "timestamps": 1, "follow": int(follow),
        "tail": "all"})
    try:
        api._raise_for_status(response)
        if follow:  # a container may print nothing for longer than the client's timeout
            api._disable_socket_timeout(api._get_raw_response_socket(response))
        yield from read_frames(response.raw.read)
    finally:
        response.close()


def _output_streams(attrs):
    """The streams of a container's log that are its command's output: not the stderr of one that
    runs under ecs-stdio, which holds only ecs-stdio's start failure (ECS logs no line for it)."""
    return {"stdout": True, "stderr": not merges_stdio(attrs)}


def _read_awslogs(container, events):
    try:
        frames = _docker_log_frames(container.client.api, container.id, follow=True,
                                    **_output_streams(container.attrs))
        for event in awslogs_events(frames):
            events.put(event)
    except Exception as exc:
        # A line still arriving in pieces is left to _complete_awslogs, which reads it whole.
        logger.debug("ECS: awslogs forwarding stopped: %s", exc)
    finally:
        events.put(None)


def _forward_awslogs(container, config, account_id, region):
    """MiniStack's forwarder thread, storing each line with the time Docker logged it (MiniStack
    stamps it when the forwarder reads it) and in the order written."""
    with ecs.request_scope(account_id, region):
        if not ecs._ensure_awslogs_stream(config):
            return
        key = (config["group"], config["stream"])
        events = queue.Queue()
        threading.Thread(target=_read_awslogs, args=(container, events), daemon=True,
                         name=threading.current_thread().name + "-read").start()
        try:
            for batch in settled_batches(events, _LOG_SETTLE_SECONDS, _LOG_BATCH_SECONDS):
                with _emit_lock:
                    if key in _completed:  # the stop already stored the container's whole output
                        return
                    _put_awslogs_events(config, batch)
                    # Batches are taken in Docker's order, so what is stored is always a first part
                    # of what _complete_awslogs reads: it adds the rest.
                    _emitted[key] = _emitted.get(key, 0) + len(batch)
        except Exception as exc:
            logger.debug("ECS: awslogs forwarding stopped: %s", exc)


def _put_awslogs_events(config, events):
    from ministack.services import cloudwatch_logs

    # The Logs store keeps each stream sorted by timestamp, merging a batch that arrives late after
    # the events of the same millisecond it already has: (timestamp, write order) across batches.
    cloudwatch_logs._put_log_events({
        "logGroupName": config["group"],
        "logStreamName": config["stream"],
        "logEvents": log_events_in_written_order(events),
    })


def _complete_awslogs(task_arn, ids, cdefs, docker_client):
    """ECS delivers a container's whole output before its task reports STOPPED. A forwarder that
    attached late (or was still streaming when the drain wait ended) can miss lines, so the
    container's log, read once more from Docker, fills in the rest."""
    _, _, _, region, account_id, _ = task_arn.split(":", 5)
    task_id = task_arn.rsplit("/", 1)[-1]
    for name, docker_id in ids.items():
        config = ecs._awslogs_config(cdefs.get(name, {}), task_id, docker_id)
        if not config:
            continue
        try:
            streams = _output_streams(docker_client.containers.get(docker_id).attrs)
            events = list(awslogs_events(_docker_log_frames(docker_client.api, docker_id, follow=False,
                                                            **streams)))
        except Exception as exc:
            logger.debug("ECS: reading %s's log for completion failed: %s", name, exc)
            continue
        key = (config["group"], config["stream"])
        with ecs.request_scope(account_id, config["region"] or region), _emit_lock:
            missing = events[_emitted.pop(key, 0):]
            _completed.add(key)
            if missing and ecs._ensure_awslogs_stream(config):
                _put_awslogs_events(config, missing)


class ContainerEvents:
    """One ``docker events`` stream for the emulator, waking the watcher of each container it names."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiters = {}       # docker id -> threading.Event of the task watching it
        self._thread = None

    def watch(self, docker_ids, woken, docker_client):
        with self._lock:
            for docker_id in docker_ids:
                self._waiters[docker_id] = woken
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(docker_client,), daemon=True,
                                                name="ecs-container-events")
                self._thread.start()

    def forget(self, docker_ids):
        with self._lock:
            for docker_id in docker_ids:
                self._waiters.pop(docker_id, None)

    def wake(self, event):
        if event.get("Type") != "container":
            return
        with self._lock:
            woken = self._waiters.get(event.get("id") or event.get("Actor", {}).get("ID", ""))
        if woken is not None:
            woken.set()

    def _run(self, docker_client):
        while True:
            try:
                for event in docker_client.api.events(decode=True, filters={"type": "container"}):
                    self.wake(event)
            except Exception as exc:  # dockerd restarted: watchers fall back to their timeout meanwhile
                logger.warning("ECS: docker events stream ended (%s); reconnecting", exc)
            with self._lock:  # wake everyone: an event may have been missed
                for woken in self._waiters.values():
                    woken.set()
            time.sleep(1)


_CONTAINER_EVENTS = ContainerEvents()


def _watch_task_lifecycle(task, docker_client, account_id, region):
    """MiniStack's watcher of a running task, woken by Docker's events instead of inspecting every
    0.1 s; a task of a service still reports its deployment as MiniStack's does."""
    task_arn = task["taskArn"]

    def watch():
        woken, watched = threading.Event(), set()
        with ecs.request_scope(account_id, region):
            try:
                while ecs._task_is_active(task_arn, task):
                    with _lock(task):
                        ids = set((task.get("_fidelity_ids") or {}).values())
                    if ids - watched:
                        _CONTAINER_EVENTS.watch(ids - watched, woken, docker_client)
                        watched |= ids
                    woken.clear()  # before the inspect: an event after it wakes the next wait
                    _maybe_mark_stopped(task, docker_client)
                    if task.get("lastStatus") == "STOPPED":
                        return
                    woken.wait(_WATCH_FALLBACK_SECONDS)
            finally:
                _CONTAINER_EVENTS.forget(watched)

    ecs.spawn_background(watch, thread_name=f"ministack-ecs-watch-{task_arn.rsplit('/', 1)[-1][:8]}")
    group = task.get("group", "")
    cluster_name = ecs._cluster_name_from_arn(task.get("clusterArn", ""))
    if cluster_name and group.startswith("service:"):
        ecs._schedule_service_deployment_completion(
            cluster_name, f"{cluster_name}/{group.split(':', 1)[1]}", account_id, region, healthy_task=task)


def _maybe_mark_stopped(task, docker_client=None):
    """Reflect container exits in the task, as the ECS agent does.

    Called by MiniStack's lifecycle watcher and on DescribeTasks/ListTasks;
    it never blocks on a stop: that runs in the background.
    """
    task_arn = task.get("taskArn", "")
    with _lock(task):
        if (not ecs._task_is_active(task_arn, task)
                or task.get("lastStatus") not in ("ACTIVATING", "RUNNING")):
            return
        ids = dict(task.get("_fidelity_ids") or {})
        running = task.get("lastStatus") == "RUNNING"
    docker_client = docker_client or ecs._get_docker()
    if not ids or not docker_client:
        return

    cdefs = _cdefs(task)
    essential_exited, all_exited, health, start_failure = False, True, {}, None
    for name, docker_id in ids.items():
        state = _docker_state(docker_client, docker_id)
        if state is None:
            # A failed inspect is no evidence that the process exited.
            all_exited = False
            continue
        cdef = cdefs.get(name, {})
        failure = _start_failure(task, name, docker_client, docker_id, state)
        with _lock(task):
            record = _container_record(task, name)
            if failure:
                # Never started, as far as ECS can tell: a reason and no exit code.
                record.update(lastStatus="STOPPED", reason=failure)
                record.pop("exitCode", None)
                start_failure = start_failure or failure
            elif state.get("Status") in ("exited", "dead"):
                exit_code, reason = container_outcome(state)
                record.update(lastStatus="STOPPED", exitCode=exit_code)
                if reason:
                    record["reason"] = reason
                essential_exited = essential_exited or is_essential(cdef)
            else:
                all_exited = False
                if cdef.get("healthCheck"):
                    record["healthStatus"] = health_status(state)
            if cdef.get("healthCheck") and is_essential(cdef):
                health[name] = record.get("healthStatus", "UNKNOWN")
    with _lock(task):
        task["healthStatus"] = task_health_status(health.values())

    # A container Docker would not have started fails its task, whether essential or not: as a
    # refused start did before its command ran under ecs-stdio.
    if start_failure:
        _stop_in_background(task, start_failure, "TaskFailedToStart")
    # Before RUNNING, an exited container may just be a finished dependency.
    elif essential_exited or (running and all_exited):
        _stop_in_background(task, ESSENTIAL_EXITED, "EssentialContainerExited")


def _start_failure(task, name, docker_client, docker_id, state):
    """ECS's reason for an exited container whose command ecs-stdio could not execute (exit 127 or
    126, and its report on stderr), or None. Read once per container: its task's record keeps it."""
    if state.get("Status") not in ("exited", "dead") or state.get("ExitCode") not in (126, 127):
        return None
    with _lock(task):
        known = task.get("_fidelity_start_failures") or {}
        if name in known:
            return known[name]
    try:
        failure = None
        if merges_stdio(docker_client.containers.get(docker_id).attrs):
            message = exec_failure(list(_docker_log_frames(docker_client.api, docker_id, follow=False,
                                                           stdout=False)))
            failure = start_failure_reason(message) if message else None
    except Exception as exc:  # asked again at the next look
        logger.debug("ECS: reading %s's stderr failed: %s", docker_id[:12], exc)
        return None
    with _lock(task):
        task.setdefault("_fidelity_start_failures", {})[name] = failure
    return failure


def _begin_stop(task_arn, task, reason, stop_code):
    """desiredStatus STOPPED and the reason, before any container is touched."""
    with _lock(task):
        if not ecs._task_is_active(task_arn, task):
            return False
        ecs._bump_task_version(task)
        task.update(desiredStatus="STOPPED", stoppedReason=reason,
                    stopCode=stop_code, _fidelity_stopping=True,
                    stoppingAt=task.get("stoppingAt") or ecs._iso())
        # DEACTIVATING and STOPPING pass without an event, as in MiniStack.
        task["lastStatus"] = "STOPPING"
    ecs.ecs_metadata.set_task_status(task_arn, known_status="STOPPING",
                                     desired_status="STOPPED")
    cluster_name = ecs._cluster_name_from_arn(task.get("clusterArn", ""))
    if cluster_name:
        ecs._recount_cluster(cluster_name)
        ecs._refresh_service_state(cluster_name, task.get("group", ""))
    return True


def _stop_container(docker_client, docker_id, timeout):
    """SIGTERM, SIGKILL after ``timeout`` s; the Docker State after the exit."""
    try:
        container = docker_client.containers.get(docker_id)
        if container.status in ("running", "restarting", "paused"):
            container.stop(timeout=timeout)   # returns once it has exited
            container.reload()

        def inspect():
            container.reload()
            return container.attrs.get("State") or {}
        return _settled(container.attrs.get("State") or {}, inspect)
    except Exception as exc:
        logger.warning("ECS: stopping container %s failed: %s", docker_id[:12], exc)
        return None


def _finish_stop(task_arn, task, exit_code=None):
    """Stop the containers, record how they exited, then report STOPPED."""
    docker_client = ecs._get_docker()
    with _lock(task):
        ids = dict(task.get("_fidelity_ids") or {})
    cdefs = _cdefs(task)
    states = {}
    if ids and docker_client:
        def stop(name, docker_id):
            states[name] = _stop_container(
                docker_client, docker_id, stop_timeout(cdefs.get(name, {})))
        threads = [threading.Thread(target=stop, args=item, daemon=True)
                   for item in ids.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with _log_threads_lock:
        forwarders = _log_threads.pop(task_arn.rsplit("/", 1)[-1], [])
    for thread in forwarders:
        thread.join(_LOG_DRAIN_SECONDS)
    if ids and docker_client:
        _complete_awslogs(task_arn, ids, cdefs, docker_client)

    with _lock(task):
        if ecs._tasks.get(task_arn) is not task or task.get("lastStatus") == "STOPPED":
            return False
        for state_name, counts in ecs._STOP_SEQUENCE[2:]:
            if counts:
                ecs._bump_task_version(task)
            task["lastStatus"] = state_name
        now = ecs._iso()
        task["stoppedAt"] = now
        task["executionStoppedAt"] = task.get("executionStoppedAt") or now
        task.pop("_fidelity_stopping", None)
        never_started = {n for n, failure in (task.get("_fidelity_start_failures") or {}).items() if failure}
        for container in task.get("containers", []):
            container["lastStatus"] = "STOPPED"
            if container.get("name") in never_started:
                continue
            state = states.get(container.get("name"))
            if state:
                code, reason = container_outcome(state)
                container["exitCode"] = code
                if reason:
                    container["reason"] = reason
            elif not ids and exit_code is not None and container.get("exitCode") is None:
                container["exitCode"] = exit_code   # a task without containers
        stop_code = task.get("stopCode")
    ecs.ecs_metadata.set_task_status(task_arn, known_status="STOPPED",
                                     desired_status="STOPPED")
    ecs.ecs_metadata.set_all_container_status(task_arn, "STOPPED")
    cluster_name = ecs._cluster_name_from_arn(task.get("clusterArn", ""))
    if cluster_name:
        ecs._recount_cluster(cluster_name)
        ecs._refresh_service_state(cluster_name, task.get("group", ""))
    if stop_code in ("EssentialContainerExited", "TaskFailedToStart"):
        ecs._record_service_task_failure(task)
    return True


def _mark_task_stopped(task_arn, task, reason, stop_code, exit_code=None):
    """MiniStack's synchronous stop, now graceful and with real exit codes."""
    if not _begin_stop(task_arn, task, reason, stop_code):
        return False
    return _finish_stop(task_arn, task, exit_code)


def _stop_in_background(task, reason, stop_code):
    task_arn = task["taskArn"]
    if not _begin_stop(task_arn, task, reason, stop_code):
        return False

    def finish():
        _finish_stop(task_arn, task)
        ecs._cleanup_task_resources(task, ecs._get_docker())

    ecs.spawn_background(finish, thread_name=(
        f"ministack-ecs-stop-{task_arn.rsplit('/', 1)[-1][:8]}"))
    return True


def _cleanup_task_resources(task, docker_client, extra_container=None):
    """Leave a stopping task's containers to the stop, which cleans up after."""
    with _lock(task):
        stopping = task.get("_fidelity_stopping")
    if not stopping:
        return _original["_cleanup_task_resources"](task, docker_client, extra_container)
    if extra_container is not None:
        ecs._remove_docker_container(docker_client, extra_container)


def _stop_task(data):
    """StopTask answers at once; SIGTERM/SIGKILL happen in the background."""
    cluster_name = ecs._resolve_cluster_name(data.get("cluster", "default"))
    if cluster_name is None:
        return ecs.error_response_json(
            "ClusterNotFoundException", "Cluster not found.", 400)
    task = ecs._resolve_task(data.get("task", ""), cluster_name)
    if not task:
        return ecs.error_response_json(
            "InvalidParameterException", "The referenced task was not found.", 400)
    _stop_in_background(task, data.get("reason", "Task stopped by user"),
                        "UserInitiated")
    with _lock(task):
        return ecs.json_response({"task": ecs._sanitize(task)})


_REPLACED = (
    "_register_task_definition",
    "_run_task",
    "_build_run_kwargs", "_start_task_worker", "_start_awslogs_forwarder",
    "_maybe_mark_stopped", "_watch_task_lifecycle", "_mark_task_stopped", "_cleanup_task_resources",
    "_stop_task", "_forward_awslogs",
)


def installed_version():
    try:
        return importlib.metadata.version("ministack")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_version(version=None):
    version = installed_version() if version is None else version
    if version != PINNED_VERSION:
        raise RuntimeError(
            f"{__file__} patches ministack=={PINNED_VERSION} internals, but "
            f"ministack {version or '(not installed)'} is installed. Install "
            f"ministack=={PINNED_VERSION} (localstack/requirements.txt) or "
            "re-check this patch against the new version.")


# ── What the emulator refuses: Fargate's rules, and access to the host ──────

def host_access_allowed():
    """ECS_ALLOW_HOST_ACCESS=true (.env) lets tasks reach into the host (ecs_rules.HOST_ACCESS_RULES);
    nothing else does: the emulator holds the Docker socket, so such a task is root on the machine."""
    return ecs_rules.allows_host_access(os.environ.get(ecs_rules.HOST_ACCESS_SETTING))


def refusal(td, launch_type=None):
    """The ClientException message for a definition this emulator must refuse, or None.

    A Fargate definition (or launch) gets Fargate's own refusals in ECS's words; what else reaches
    into the host (for Fargate, what Fargate's refusals do not already name) gets the sandbox's.
    """
    messages, named = [], set()
    if ecs_rules.is_fargate(td) or launch_type == "FARGATE":
        for where, message in ecs_rules.fargate_refusals(td):
            messages.append(message)
            named.add(where)
    if not host_access_allowed():
        found = [what for where, what in ecs_rules.host_access(td) if where not in named]
        if found:
            messages.append(host_access_refusal(found))
    return " ".join(messages) or None


def host_access_refusal(found):
    return ("This sandbox's emulator does not start tasks that reach into the host: " + "; ".join(found)
            + f". Set {ecs_rules.HOST_ACCESS_SETTING}=true in .env to allow it (unsafe: such a task is "
            "root on this machine).")


def is_ecr_image(image):
    """Images ECR serves: an account's registry on AWS, and the emulator's own as the sandbox pushes to it."""
    host = image.split("/", 1)[0] if "/" in image else ""
    own = os.environ.get("SANDBOX_ECR_REGISTRY", "localhost:4566")
    return bool(ecs_rules.ECR_HOST.match(host)) or host == own


def registration_refusal(data):
    """The ClientException message for a RegisterTaskDefinition request ECS (or this emulator) refuses,
    or None: ECS's own rules first, then Fargate's and the host's."""
    messages = [message for _, message in ecs_rules.register_refusals(data, is_ecr_image)]
    other = refusal(data)
    return " ".join(messages + ([other] if other else [])) or None


def _register_task_definition(data):
    # The definition alone decides whether its tasks reach into the host: refused here, on any
    # launch type, so it never becomes a revision anything can run.
    message = registration_refusal(data)
    if message:
        return ecs.error_response_json("ClientException", message, 400)
    return _original["_register_task_definition"](data)


def _run_task(data):
    # Checked again: a definition registered while ECS_ALLOW_HOST_ACCESS was true (kept in the
    # emulator's state) must not run once it is false; a FARGATE launch of an EC2 definition gets
    # Fargate's refusals. Services start their tasks through here too. RunTask's overrides cannot add
    # host access (containerOverrides: command, environment(Files), cpu, memory(Reservation),
    # resourceRequirements; the task's cpu, memory, roles, ephemeralStorage; volumeConfigurations:
    # managed EBS volumes), so the stored definition is all there is to check.
    td = ecs._task_defs.get(ecs._resolve_td_key(data.get("taskDefinition", ""))) or {}
    launch_type = data.get("launchType") or ("FARGATE" if data.get("capacityProviderStrategy") is None
                                             and ecs_rules.is_fargate(td) else "EC2")
    invalid = ecs_rules.run_task_refusals(td, data, launch_type) if td else []
    if invalid:
        return ecs.error_response_json("InvalidParameterException", invalid[0], 400)
    message = refusal(td, launch_type) if td else None
    if message:
        return ecs.error_response_json("ClientException", message, 400)
    return _original["_run_task"](data)


def apply():
    """Install the replacements into ministack.services.ecs (idempotent)."""
    global ecs
    check_version()
    if ecs_tools_volume():
        install_ecs_stdio()
    else:
        logger.warning("ECS_TOOLS_VOLUME is not set: task containers' stderr lines may be logged after "
                       "stdout lines they preceded")
    from ministack.services import ecs as module

    if ecs is module:
        return
    ecs = module
    for name in _REPLACED:
        _original[name] = getattr(module, name)
        setattr(module, name, globals()[name])
    # The dispatch table holds the functions themselves, not their names.
    module._ACTION_MAP["StopTask"] = _stop_task
    module._ACTION_MAP["RegisterTaskDefinition"] = _register_task_definition
    module._ACTION_MAP["RunTask"] = _run_task
    logger.info("ECS fidelity patch applied to ministack %s", PINNED_VERSION)
