"""The compose stack: up (with readiness and bootstrap), down, status, logs, and the summary."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time

from sandbox.core.airflow_api import AirflowClient
from sandbox.core.progress import Background, breakdown, info, step
from sandbox.core.poll import NotYet, wait_until
from sandbox.host import images, preflight, project_requirements, provenance
from sandbox.host.docker import DockerError, docker
from sandbox.host.report import MetricsService
from sandbox.host.project import PROJECT_AIRFLOW_DOCKERFILE, Project, load_project, prepare_mounts, selected_project
from sandbox.host.settings import ROOT, Settings, load_settings
from sandbox.seeding.bootstrap import load_seed

# The sandbox's own project's DAGs (its tests check them all).
EXPECTED_DAGS = ["poc_ecs_operator", "upload_file_to_s3", "ecs_failure_demo", "import_vcf", "poc_k8s_operator",
                 "k8s_failure_demo"]
KUBE_DIR = ROOT / ".build" / "kube"
# The cluster's admin kubeconfig for containers on the compose network; only bootstrap mounts it.
ADMIN_KUBECONFIG = KUBE_DIR / "admin.yaml"
# Which cluster provider `make up` used (and its API server), for the summary and `make down`.
CLUSTER_RECORD = KUBE_DIR / "cluster.json"
HOST_KUBECONFIG = KUBE_DIR / "host.yaml"
SDK_CONFIG = ROOT / ".build" / "aws" / "config"
HOST_SDK_CONFIG = ROOT / ".build" / "host-aws" / "config"  # mounted into no container: the host's own
LONG_RUNNING = ["postgres", "localstack", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                "airflow-triggerer", "metrics"]


# Set by compose on every container: the directory `docker compose` ran in, i.e. the checkout.
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"


class StackError(RuntimeError):
    pass


def compose(*args: str, check: bool = True, capture: bool = False, timeout: float | None = None
            ) -> subprocess.CompletedProcess:
    """`docker compose` in the checkout (its compose.yaml and .env, and the selected project's mounts
    and Airflow image); capture=False shows its progress."""
    env = {**os.environ, **selected_project(load_settings()).compose_env()}
    return docker("compose", *args, check=check, capture=capture, timeout=timeout, cwd=ROOT, env=env)


def compose_images() -> set[str]:
    """The images compose.yaml's services run, with the project's settings."""
    return set(compose("config", "--images", capture=True).stdout.split())


def seed_config(project: Project):
    """The project's sandbox.yaml with its airflow_settings.yaml merged in, checked as a whole."""
    return load_seed(project.config, project.root / "airflow_settings.yaml")


def services() -> list[dict]:
    res = compose("ps", "--all", "--format", "json", capture=True)
    out = res.stdout.strip()
    if not out:
        return []
    if out.startswith("["):
        return json.loads(out)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def up(settings: Settings, build: bool = True) -> float:
    """Preflight, build, start, wait healthy, bootstrap. Returns the seconds it took."""
    started = time.monotonic()
    settings.iam_enforced, settings.state_save_seconds  # a bad value stops us before anything changes
    project = load_project(settings)  # a bad project or config stops us before anything changes
    config = seed_config(project)
    info(f"project: {project.name}; Airflow: {project.airflow_version()}"
         + (f" (AIRFLOW_VERSION={project.version_override})" if project.version_override else ""))
    for notice in project.notices():
        info(f"note: {notice}")
    preflight.preflight()
    verdict = judge_running(settings)
    if verdict.action == "reuse":
        stale = not_reusable(settings, config)
        if stale is None:
            reseed_running(settings, project, verdict)
            return time.monotonic() - started
        info(f"{stale}: bringing it up again")
    if verdict.action == "replace":
        info(f"{verdict.reason}: replacing it with this checkout's")
        down(settings)
    elif verdict.action == "update":
        info(verdict.reason)
    elif verdict.action == "start":
        check_engine_is_free(settings)
    provider = select_cluster(settings, config)
    remove_replaced_cluster(settings, provider)
    KUBE_DIR.mkdir(parents=True, exist_ok=True)
    # The cluster needs only the Debian base and the compose network. Its images (the offline
    # provider's first build: a Go build of ~7 min on 2 cores) are built beside the other images and
    # the services' start, at a low CPU share; the node starts (and takes the task images) while the
    # services become healthy.
    network, seedable = threading.Event(), threading.Event()
    cluster = Background("cluster")
    if build:
        build_images(settings, project, config, debian_ready=lambda base: cluster.start(
            cluster_path, provider, config, settings, network, seedable))
    if not cluster.started:
        cluster.start(cluster_path, provider, config, settings, network, seedable)
    elif cluster.done():
        cluster.result()  # the cluster's build failed while the other images were built: say so now
    prepare_mounts()
    write_sdk_config(config, settings)
    # The running reseeder holds the previous sandbox.yaml: left running while the emulator is replaced
    # (another project's, a reset one) it would seed the previous project's objects into it. It is
    # started again, with this config, after the bootstrap.
    compose("rm", "--stop", "--force", "reseeder", capture=True)
    compose("create", "--quiet-pull", "--remove-orphans", *LONG_RUNNING, capture=True)
    network.set()
    # Recorded as soon as the containers exist, so a later failure leaves them known as this checkout's.
    provenance.write_record(container_ids(), settings)
    services = Background("services")
    services.start(start_services)
    # Beside the bootstrap: the DAG files are parsed while it seeds.
    dags = Background("dag files")
    dags.start(wait_for_dag_files_once_up, services, settings, project)
    # The bootstrap needs the cluster's kubeconfig; the emulator and Airflow it waits for itself, so
    # seeding AWS (an image push among it) and the cluster overlaps Airflow's start.
    seedable.wait()
    if cluster.done():
        cluster.result()  # the cluster's path failed before its kubeconfig was written
    try:
        with step(f"Bootstrapping ({project.root.name}/sandbox.yaml -> AWS emulator, cluster and Airflow)"):
            # `up` (not `run`) so the one-shot shows in `docker compose ps` with its exit code.
            compose("up", "--no-deps", "--force-recreate", "--exit-code-from", "bootstrap", "--attach", "bootstrap",
                    "bootstrap")
    except DockerError:
        services.result()  # a service that never became healthy stopped the bootstrap: that error first
        raise
    services.result()
    # Beside the cluster's last step (the task images' load), not in the services' healthcheck:
    # there it held the api-server unhealthy for 15-20 s of a loaded start.
    warm = Background("execution api")
    warm.start(lambda: AirflowClient(settings.airflow_url, *settings.admin).warm_execution_api())
    cluster.result_as_step("Waiting for the cluster (its steps are the [cluster] lines)")  # raises what failed in it
    compose("up", "--detach", "--no-deps", "--force-recreate", "reseeder", capture=True)
    dags.result_as_step("Waiting for the project's DAG files to be parsed")
    warm.result_as_step("Waiting for Airflow's Execution API to build its routes")
    return time.monotonic() - started


def not_reusable(settings: Settings, config) -> str | None:
    """Why a running sandbox that judge_running() would reuse still needs `make up`'s full path, or
    None: the reseeder is not running, or the cluster is not the one the last `make up` provisioned
    (another provider is chosen now, or it was recreated or stopped under the sandbox)."""
    reseeder = next((s for s in services() if s.get("Service") == "reseeder"), {})
    if reseeder.get("State") != "running":
        return "the reseeder is not running"
    provider, _ = cluster_provider(settings)
    wanted = provider.name if provider is not None and config.kubernetes else None
    recorded = recorded_cluster()
    if recorded.get("provider") != wanted:
        return f"the cluster provider is now {wanted or 'none'} (was {recorded.get('provider') or 'none'})"
    if wanted is None:
        return None
    from sandbox.core import kubeconfig as kc
    from sandbox.host.cluster.base import not_ready_reason
    try:  # the recorded kubeconfig, not the provider's current one: a recreated node has a new CA
        missing = not_ready_reason(kc.load(HOST_KUBECONFIG.read_text()))
    except Exception as exc:  # no kubeconfig, refused, TLS
        return f"the {wanted} cluster does not answer as recorded ({type(exc).__name__})"
    return None if missing is None else f"the {wanted} cluster is not ready ({missing})"


def reseed_running(settings: Settings, project: Project, verdict: provenance.Verdict) -> None:
    """`make up` on a current, healthy sandbox: its bootstrap runs again (seeding is idempotent: what
    was removed by hand comes back, and the counts say so) and the DAG files are checked parsed."""
    info(verdict.reason)
    boot = next((s["ID"] for s in services() if s.get("Service") == "bootstrap"), None)
    with step(f"Bootstrapping again ({project.root.name}/sandbox.yaml: what is missing is seeded)"):
        res = docker("start", "--attach", boot, capture=False)
        if res.returncode != 0:
            raise StackError(f"bootstrap exited {res.returncode} (its output is above; "
                             "`docker compose logs bootstrap` shows it again)")
    wait_for_dag_files(AirflowClient(settings.airflow_url, *settings.admin), project)


def parse_dags(settings: Settings) -> int:
    """`make parse`: the project's DAG files imported in its Airflow image, as the dag-processor
    would, in a throwaway container; prints the DAGs and each import error as file:line."""
    project = selected_project(settings)
    prepare_mounts()
    with step(f"Parsing the DAG files in {project.dags}"):
        # Through the entrypoint, so the project's startup.sh runs first, as before the dag-processor.
        res = compose("run", "--rm", "--no-deps", "--quiet-pull", "--entrypoint", "/opt/sandbox/entrypoint.sh",
                      "airflow-dag-processor", "python", "/opt/sandbox/parse_dags.py", check=False, capture=True)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    for line in lines:
        info(line)
    if res.returncode != 0 and not any(ln.startswith("ERROR ") for ln in lines):
        info(res.stderr.strip()[-2000:])
    return res.returncode


def write_sdk_config(config, settings: Settings) -> None:
    """Two AWS SDK config files. .build/aws/config, for the Airflow services (AWS_CONFIG_FILE): the
    region and retries, and no keys: they act as aws.airflow_role through the emulator's credentials
    endpoint, as an MWAA environment acts as its execution role. .build/host-aws/config, for this
    machine: profile `sandbox`, the account root (accepted from the host only) at the emulator."""
    lines = ["# Written by `make up` from the project's sandbox.yaml; read by the AWS SDK in Airflow.",
             # As the aws connections' config_kwargs: ride out an emulator restart (seed_airflow).
             "[default]", f"region = {config.region}", "retry_mode = standard", "max_attempts = 10"]
    SDK_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    SDK_CONFIG.write_text("\n".join(lines) + "\n")
    SDK_CONFIG.chmod(0o644)  # Airflow's user reads it through the mount
    keys = settings.root_keys
    HOST_SDK_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    HOST_SDK_CONFIG.write_text("\n".join([
        "# Written by `make up`: the AWS emulator as its account root, from this machine only.",
        "#   AWS_CONFIG_FILE=.build/host-aws/config aws --profile sandbox s3 ls",
        "[profile sandbox]", f"region = {config.region}", f"endpoint_url = {settings.aws_endpoint}",
        f"aws_access_key_id = {keys['aws_access_key_id']}",
        f"aws_secret_access_key = {keys['aws_secret_access_key']}"]) + "\n")
    HOST_SDK_CONFIG.chmod(0o600)


def build_images(settings: Settings, project: Project, config=None, debian_ready=None) -> None:
    """Every image the project's sandbox runs: the services', its Airflow version's (with its
    requirements.txt on top) and its task images. `debian_ready`: see images.resolve_bases."""
    config = config or seed_config(project)
    images.build_all(settings, compose_images(), project.airflow_version(), config.images, debian_ready)
    build_project_airflow(project)


def cluster_path(provider, config, settings: Settings, network: threading.Event, seedable: threading.Event) -> None:
    """The cluster's part of `make up`: its images (built once), then, once the compose network
    exists, the node, its kubeconfigs (`seedable` is set then, or when this fails) and the task
    images in it (provision_cluster)."""
    try:
        if provider is not None:
            provider.prepare()
        network.wait()
        provision_cluster(provider, config, settings.network, seedable)
    finally:
        seedable.set()


def start_services() -> None:
    """Starts the long-running services and waits for their healthchecks (300 s at most)."""
    with step("Starting services and waiting for their healthchecks"):
        try:
            compose("up", "--detach", "--wait", "--wait-timeout", "300", "--remove-orphans", *LONG_RUNNING,
                    capture=True)
        except DockerError:
            compose("stop", "bootstrap", check=False, capture=True)  # it would wait minutes for Airflow
            raise


def build_project_airflow(project: Project) -> None:
    """The Airflow image with the project's requirements.txt, from a context holding only that file,
    the files it includes and the constraints its Airflow's flavour installs it under."""
    version = project.airflow_version()
    if project.airflow_image(version) == version.image:
        return
    context = ROOT / ".build" / "airflow-project"
    project_requirements.prepare(project.root / "requirements.txt", version, context)
    with step(f"Building {project.airflow_image(version)} ({version} + {project.root.name}/requirements.txt)"):
        images.docker_build(project.airflow_image(version), PROJECT_AIRFLOW_DOCKERFILE,
                            {"AIRFLOW_IMAGE": version.image}, {images.AIRFLOW_VERSION_LABEL: version.key},
                            context=context)


def dag_files(project: Project) -> list[str]:
    """The project's DAG files as the dag-processor sees them (relative to dags/): .py files that
    mention both "airflow" and "dag", Airflow's own test for which files to parse."""
    found = []
    for path in sorted(project.dags.rglob("*.py")):
        text = path.read_bytes().lower()
        if "__pycache__" not in path.parts and b"airflow" in text and b"dag" in text:
            found.append(str(path.relative_to(project.dags)))
    return found


def wait_for_dag_files_once_up(services: Background, settings: Settings, project: Project) -> None:
    try:
        services.result()
    except BaseException:
        return  # the services' own failure is what `make up` reports
    wait_for_dag_files(AirflowClient(settings.airflow_url, *settings.admin), project)


def wait_for_dag_files(client: AirflowClient, project: Project, timeout: float = 180) -> None:
    """Until every DAG file of the project is either listed as a DAG's file or as an import error,
    so a DAG a user triggers right after `make up` is this project's current version. Import errors
    are printed, not fatal: the sandbox is up and the UI shows them too."""
    wanted = set(dag_files(project))

    def parsed():
        errors = client.import_errors()
        seen = client.dag_files() | {e.get("filename") for e in errors}
        missing = wanted - seen
        if missing:
            raise NotYet(f"not parsed yet: {', '.join(sorted(missing))}")
        return ([e for e in errors if e.get("filename") in wanted],)  # a tuple: truthy with no errors too

    (errors,) = wait_until(parsed, timeout=timeout, interval=2, what="the DAG files in dags/ to be parsed")
    for error in errors:
        info(f"import error in dags/{error.get('filename')}: {(error.get('stack_trace') or '').strip()[-600:]}")


def up_with_summary(settings: Settings) -> None:
    """What `make up` does and prints: URLs, login, services, and how long it took."""
    started = time.monotonic()
    seconds = up(settings)
    print(summary(settings))
    steps = breakdown(started)
    if steps:
        print("\n  where the time went (began at, took, step):\n" + "\n".join(steps))
    print(f"\n  make up took {seconds:.0f}s", flush=True)


@contextlib.contextmanager
def running(settings: Settings):
    """The sandbox for the duration of a block. A running one is reused only when it is this checkout's
    and its inputs did not change (provenance); otherwise it is updated or replaced by `make up`'s code
    path, with progress and the summary. What was brought up here is taken down at the end, unless
    SANDBOX_KEEP=1. ECS task containers are removed either way, so no containers are left behind."""
    verdict = judge_running(settings)
    stale = not_reusable(settings, seed_config(selected_project(settings))) if verdict.action == "reuse" else None
    if verdict.action == "reuse" and stale is None:
        print(verdict.reason, flush=True)
    else:
        if stale:
            print(f"{stale}: bringing it up again", flush=True)
        up_with_summary(settings)
    # An updated sandbox was running before: it stays, like a reused one.
    started_here = verdict.action in ("start", "replace")
    try:
        yield settings
    finally:
        if started_here and os.environ.get("SANDBOX_KEEP") != "1":
            down(settings)
        else:
            remove_task_containers(settings)


def cluster_provider(settings: Settings):
    """The configured Kubernetes provider and why it was chosen, or (None, reason) for K8S_PROVIDER=none."""
    if settings.get("K8S_PROVIDER", "auto").strip().lower() == "none":
        return None, "K8S_PROVIDER=none: no Kubernetes cluster"
    from sandbox.host.cluster import select_provider
    return select_provider(settings)


def select_cluster(settings: Settings, config):
    """The provider `make up` uses (saying which and why), or None without a `kubernetes` section."""
    provider, reason = cluster_provider(settings)
    info(reason)
    return provider if config.kubernetes else None


def remove_replaced_cluster(settings: Settings, provider) -> None:
    """The cluster an earlier `make up` made goes when the provider changed (K8S_PROVIDER, from .env
    or the environment) or no cluster is wanted any more, so what runs is what the settings say."""
    previous = recorded_provider(settings)
    if previous is None or (provider is not None and provider.name == previous.name):
        return
    now = f"K8S_PROVIDER is now {provider.name}" if provider is not None else "no cluster is wanted now"
    with step(f"Removing the {previous.name} cluster an earlier `make up` made ({now})"):
        previous.delete()
        forget_cluster()


def provision_cluster(provider, config, network: str, seedable: threading.Event | None = None) -> None:
    """Starts (or reuses) the cluster on the compose network, writes the kubeconfig bootstrap uses to
    seed RBAC and Airflow's connection (then sets `seedable`) and loads the task images into it."""
    from sandbox.core import kubeconfig as kc
    if provider is None:
        forget_cluster()
        return
    # Recorded first, so `make down` finds the cluster even if a later step fails.
    CLUSTER_RECORD.write_text(json.dumps({"provider": provider.name}))
    provider.provision(network)
    with step(f"Waiting for the {provider.name} cluster to be ready"):
        provider.wait_ready(timeout=300)
    host = provider.host_kubeconfig()
    for path, kubeconfig in ((ADMIN_KUBECONFIG, provider.internal_kubeconfig()), (HOST_KUBECONFIG, host)):
        path.write_text(kc.dump(kubeconfig))
        path.chmod(0o600)
    CLUSTER_RECORD.write_text(json.dumps({"provider": provider.name, "server": host["clusters"][0]["cluster"]["server"],
                                          "namespace": config.kubernetes.get("namespace")}))
    if seedable is not None:
        seedable.set()
    with step("Making the task images available to the cluster"):
        loaded = provider.load_images(config.kubernetes.get("images") or [])
        info(f"loaded: {', '.join(loaded) or 'none (already there)'}")


def summary(settings: Settings) -> str:
    user, password = settings.admin
    project = selected_project(settings)
    svcs = services()
    lines = [
        "",
        "Airflow sandbox is up.",
        f"  Project               : {project.name}",
        f"  Airflow               : {airflow_running(project, svcs)}",
        f"  Airflow UI / REST API : {settings.airflow_url}   (login {user} / {password})",
        f"  Cost reports          : the Cost tab of a DAG run in the UI, or `make report`   ({settings.metrics_url})",
        f"  AWS emulator          : {settings.aws_endpoint}   (region us-east-1; "
        + ("IAM enforced; the account root, from this machine only: "
           "AWS_CONFIG_FILE=.build/host-aws/config aws --profile sandbox)" if settings.iam_enforced
           else "IAM off: any access key does anything)"),
        "",
        "  service                 state",
    ]
    # The metrics service stays healthy (serving) while it cannot see pods or ECS tasks: say so.
    metrics_problems = MetricsService(settings.metrics_url).problems()
    for svc in svcs:
        state = svc.get("State", "")
        health = svc.get("Health") or ""
        if svc.get("Service") == "bootstrap":
            health = f"exit {svc.get('ExitCode')}"
        if svc.get("Service") == "metrics" and state == "running" and metrics_problems:
            health += " — " + "; ".join(metrics_problems)
        lines.append(f"  {svc.get('Service', ''):<23} {state} {health}".rstrip())
    cluster = recorded_cluster()
    if cluster.get("server"):
        lines += ["", f"  Kubernetes ({cluster['provider']}) : {cluster['server']}   "
                      f"(KUBECONFIG={HOST_KUBECONFIG.relative_to(ROOT)}; pods run in namespace {cluster.get('namespace')})"]
    try_dag = "poc_ecs_operator" if selected_project(settings).is_default else "one of the project's DAGs"
    lines += ["", f"  Try: trigger {try_dag} in the UI, or `make test`. Stop: `make down`."]
    return "\n".join(lines)


def airflow_running(project: Project, svcs: list[dict]) -> str:
    """The Airflow the API server's container runs (its image's label), and the project's choice
    when that differs (a `make up` switches)."""
    wanted = project.airflow_version()
    source = "AIRFLOW_VERSION" if project.version_override else "sandbox.yaml"
    running = next((s for s in svcs if s.get("Service") == "airflow-apiserver"), None)
    if running is None:
        return f"{wanted} (not running)"
    key = images.image_label(running.get("Image", ""), images.AIRFLOW_VERSION_LABEL) or ""
    if key == wanted.key:
        return f"{wanted}" + (f"   (from {source})" if not wanted.is_default else "")
    return (f"{key or 'an image without a version label'} runs; {source} names {wanted}: `make up` switches "
            f"(each version keeps its own Airflow database)")


def stop(settings: Settings) -> None:
    """`make stop`: every container stops and keeps its state (Airflow's DB and logs, the emulator's
    objects, S3 data and ECR images on its volume, the cluster's node); `make up` resumes it."""
    with step("Stopping the sandbox (everything is kept; `make up` resumes it, `make down` wipes it)"):
        remove_task_containers(settings)  # the emulator does not adopt tasks across its restart
        provider = recorded_provider(settings)
        if provider is not None:
            provider.stop()
        # The emulator writes its state to its volume on SIGTERM: give it time to.
        compose("stop", "--timeout", "60")


def down(settings: Settings, volumes: bool = True) -> None:
    with step("Removing the sandbox" + (": its Airflow history, logs, S3 data and emulator state go too "
                                        "(`make stop` keeps them)" if volumes else "")):
        # ECS task containers and the cluster node first: while they are attached to the compose
        # network, `compose down` cannot remove it.
        remove_task_containers(settings)
        provider = recorded_provider(settings) or cluster_provider(settings)[0]
        if provider is not None:
            provider.delete()
        forget_cluster()
        provenance.forget_record()
        args = ["down", "--remove-orphans", "--timeout", "10"]
        if volumes:
            args.append("--volumes")
        try:
            compose(*args)
        except DockerError:
            if not only_a_stale_network_left(settings.network):
                raise
            info(f"Docker kept the network {settings.network}: no container is attached to it, yet the engine still "
                 "counts an endpoint on it (a Docker 20.10 bug, seen after ECS task containers were removed). "
                 "The next `make up` uses it again; restarting the Docker engine removes it")


def only_a_stale_network_left(network: str) -> bool:
    """After a failed `compose down`: every container of the project is gone and the network that is
    left has none attached. Docker 20.10 sometimes keeps counting an endpoint of a removed container
    (moby/moby#43286: about one `compose down` in 30-50; only an engine restart clears it)."""
    attached = docker("network", "inspect", "--format", "{{len .Containers}}", network)
    return (attached.returncode == 0 and attached.stdout.strip() == "0"
            and compose("ps", "--all", "--quiet", check=False, capture=True).stdout.strip() == "")


def recorded_cluster() -> dict:
    try:
        return json.loads(CLUSTER_RECORD.read_text())
    except (OSError, ValueError):
        return {}


def recorded_provider(settings: Settings):
    """The provider `make up` used, or None: unlike select_provider, no availability probe (for kind
    that starts a privileged container)."""
    name = recorded_cluster().get("provider")
    if not name:
        return None
    from sandbox.host.cluster import make_provider
    return make_provider(name, settings)


def forget_cluster() -> None:
    for path in (CLUSTER_RECORD, HOST_KUBECONFIG, ADMIN_KUBECONFIG):
        path.unlink(missing_ok=True)


def remove_task_containers(settings: Settings) -> None:
    """ECS task containers are started by the emulator, not compose; remove the ones it left. Only
    this sandbox's: its emulator labels them with the compose project (localstack/ecs_fidelity.py)."""
    ids = docker("ps", "-aq", "--filter", "label=com.amazonaws.ecs.task-arn",
                 "--filter", f"label=sandbox.compose-project={settings.project}").stdout.split()
    if ids:
        docker("rm", "-f", *ids)
        info(f"removed {len(ids)} ECS task container(s)")


def is_up(settings: Settings) -> bool:
    """True when every long-running service is healthy and bootstrap exited 0."""
    try:
        return healthy(services())
    except (DockerError, FileNotFoundError, ValueError):
        return False


def healthy(svcs: list[dict]) -> bool:
    by_name = {s["Service"]: s for s in svcs}
    boot = by_name.get("bootstrap", {})
    return (all(by_name.get(n, {}).get("Health") == "healthy" for n in LONG_RUNNING)
            and boot.get("State") == "exited" and boot.get("ExitCode") == 0)


def _label(svc: dict, key: str) -> str:
    """One label from `compose ps --format json`, whose Labels is "k=v,k=v"."""
    for pair in (svc.get("Labels") or "").split(","):
        name, _, value = pair.partition("=")
        if name == key:
            return value
    return ""


def container_ids() -> dict[str, str]:
    return {s["Service"]: s["ID"] for s in services() if s.get("Service") in LONG_RUNNING}


def judge_running(settings: Settings) -> provenance.Verdict:
    """Whether the sandbox of this compose project is this checkout's and current (provenance.judge)."""
    try:
        svcs = services()
    except (DockerError, FileNotFoundError, ValueError):
        svcs = []
    running = {s["Service"]: {"ID": s.get("ID"), "working_dir": _label(s, WORKING_DIR_LABEL)}
               for s in svcs if s.get("Service") in LONG_RUNNING}
    return provenance.judge(running, healthy(svcs), provenance.read_record(), provenance.inputs(settings))


def check_engine_is_free(settings: Settings) -> None:
    """Before a first start: another sandbox (another COMPOSE_PROJECT_NAME) or another program holding
    what this one needs fails here, with what to change, instead of halfway through `compose up`."""
    cfg = json.loads(compose("config", "--format", "json", capture=True).stdout)
    subnets = {c.get("subnet") for c in ((cfg.get("networks") or {}).get("default", {}).get("ipam") or {}).get("config", [])}
    ids = docker("network", "ls", "--quiet").stdout.split()
    if subnets and ids:
        nets = json.loads(docker("network", "inspect", *ids).stdout or "[]")
        for net in nets:
            held = {c.get("Subnet") for c in ((net.get("IPAM") or {}).get("Config") or [])}
            owner = (net.get("Labels") or {}).get("com.docker.compose.project", "")
            if subnets & held and owner != settings.project:
                raise StackError(
                    f"the Docker network {net.get('Name')!r} (compose project {owner or '?'}) already uses "
                    f"{', '.join(sorted(subnets & held))}. Two sandboxes cannot run side by side on one engine: "
                    "each needs its emulator at 169.254.170.2, the only address besides loopback that botocore "
                    "takes ECS container credentials from. Stop the other one (`make down` in its checkout, or "
                    f"`docker compose -p {owner or '<project>'} down`), or give this checkout the same "
                    "COMPOSE_PROJECT_NAME in .env so `make up` replaces it.")
    for name, svc in (cfg.get("services") or {}).items():
        for port in svc.get("ports") or []:
            address, published = port.get("host_ip") or "0.0.0.0", port.get("published")
            if published and not _port_free(address, int(published)):
                raise StackError(f"port {address}:{published} (service {name}) is in use by another program; "
                                 "set AIRFLOW_PORT / LOCALSTACK_PORT / METRICS_PORT in .env to free ports, then `make up`.")


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True
