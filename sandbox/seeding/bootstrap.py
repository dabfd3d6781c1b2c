"""The one-shot bootstrap: validates sandbox.yaml, waits for the emulator and Airflow, then seeds.

Runs as the compose service `bootstrap` (`python -m sandbox.seeding.bootstrap`). Endpoints come from the
environment so the same code seeds from inside compose or from the host.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path
from typing import Callable

import requests

from sandbox.core.airflow_api import AirflowClient
from sandbox.core.poll import NotYet, wait_until
from sandbox.seeding import seed_airflow, seed_aws, seed_k8s
from sandbox.seeding.airflow_settings import load_airflow_settings, seed_pools
from sandbox.seeding.config import ConfigError, SeedConfig, load_config
from sandbox.seeding.stacks import StackError


def wait_for_emulator(endpoint: str, timeout: float = 120) -> None:
    def healthy() -> bool:
        try:
            res = requests.get(f"{endpoint}/_localstack/health", timeout=3)
        except requests.RequestException as exc:
            raise NotYet(str(exc)) from exc
        if not res.ok:
            raise NotYet(f"HTTP {res.status_code}")
        return True

    wait_until(healthy, timeout=timeout, interval=1, what=f"AWS emulator at {endpoint} answering /_localstack/health",
               error=RuntimeError)


def docker_push(local_image: str, remote_ref: str, aliases: tuple[str, ...] = ()) -> str:
    """Tags a local image into the emulator's registry and pushes it; returns the manifest digest.
    `aliases`: further local names for the image (repository:tag)."""
    import docker
    client = docker.from_env(timeout=300)
    repository, tag = remote_ref.rsplit(":", 1)
    try:
        image = client.images.get(local_image)
    except docker.errors.ImageNotFound:
        raise RuntimeError(f"image {local_image!r} (aws.ecr_repositories) is not built; run `make up` "
                           "to build the images first") from None
    image.tag(repository, tag)
    for alias in aliases:
        image.tag(*alias.rsplit(":", 1))
    digest = ""
    for event in client.images.push(repository, tag=tag, stream=True, decode=True):
        if event.get("error"):
            raise RuntimeError(f"pushing {remote_ref} failed: {event['error']}")
        digest = (event.get("aux") or {}).get("Digest", digest)
    return digest


def load_seed(config_path: str | Path, airflow_settings_path: str | Path | None = None) -> SeedConfig:
    """sandbox.yaml, with an astro `airflow_settings.yaml` (when it exists) merged into its Airflow
    objects. An id both files define is refused: which one wins would be a guess."""
    config = load_config(config_path)
    path = Path(airflow_settings_path) if airflow_settings_path else None
    if path is None or not path.exists():
        return config
    extra = load_airflow_settings(path)  # its AirflowSettingsError is a ConfigError
    clashes = sorted({c["conn_id"] for c in config.connections} & {c["conn_id"] for c in extra.connections})
    clashes += sorted(set(config.variables) & set(extra.variables))
    clashes += sorted({p["name"] for p in config.pools} & {p["name"] for p in extra.pools})
    if clashes:
        raise ConfigError(path, [f"{path.name}: {name!r} is also defined in {config.path.name}'s airflow section; "
                                 "keep it in one of the two files" for name in clashes])
    config.connections = [*config.connections, *extra.connections]
    config.variables = {**config.variables, **extra.variables}
    config.pools = [*config.pools, *extra.pools]
    return config


def run(config: SeedConfig, aws_endpoint: str, registry: str, airflow: AirflowClient | None,
        kubeconfig: dict | None = None) -> collections.Counter:
    counts: collections.Counter = collections.Counter()

    def report(kind: str, name: str, outcome: str) -> None:
        counts[outcome] += 1
        print(f"    {outcome:<9} {kind:<20} {name}", flush=True)

    clients = seed_aws.aws_clients(aws_endpoint, config.region)
    oidc_issuer = None
    if config.kubernetes and kubeconfig:
        from sandbox.core.kubeconfig import ApiClient
        with ApiClient(kubeconfig, timeout=30) as api:
            oidc_issuer = seed_k8s.service_account_issuer(api)
    print(f"==> Seeding AWS objects at {aws_endpoint}", flush=True)
    seed_aws.seed_aws_objects(config, clients, report, registry, docker_push, oidc_issuer)
    generated = seed_airflow.generated_connections(config)
    if config.kubernetes and kubeconfig:
        from sandbox.core.kubeconfig import ApiClient, current
        print(f"==> Seeding Kubernetes at {current(kubeconfig)[2]['server']}", flush=True)
        with ApiClient(kubeconfig, timeout=30) as api:
            token = seed_k8s.seed_kubernetes(api, config, report)
        sa_kubeconfig = seed_k8s.service_account_kubeconfig(kubeconfig, token, config)
        generated.append(seed_k8s.kubernetes_connection(sa_kubeconfig, config))
    elif config.kubernetes:
        print("==> No cluster kubeconfig given (K8S_PROVIDER=none?): Kubernetes seeding skipped", flush=True)
    if airflow is not None:
        # `make up` starts the bootstrap once the emulator and the cluster answer: the AWS and
        # Kubernetes seeding above overlap Airflow's start, which it waits for only here.
        airflow.wait_until_healthy()
        print(f"==> Seeding Airflow at {airflow.base_url}", flush=True)
        if config.kubernetes and not kubeconfig:
            # A connection generated for a cluster that is gone would send pods nowhere.
            conn_id = config.kubernetes["connection_id"]
            if airflow.delete_connection(conn_id):
                report("airflow connection", conn_id, "removed")
        seed_airflow.seed_connections(airflow, config, report, generated)
        seed_airflow.seed_variables(airflow, config, report)
        seed_pools(airflow, config.pools, report)
    return counts


def watch(config: SeedConfig, seed: Callable[[], collections.Counter], endpoint: str,
          interval: float = 5.0) -> None:
    """Seeds again whenever the emulator has lost what was seeded (its volume was removed or reset):
    nothing for a user to do. Runs until stopped (the `reseeder` service)."""
    clients = seed_aws.aws_clients(endpoint, config.region)
    print(f"==> Watching {endpoint}: seeding again if its seeded objects go missing", flush=True)
    while True:
        time.sleep(interval)
        try:
            missing = seed_aws.missing_objects(config, clients)
        except Exception as exc:  # the emulator restarting: ask again next time
            print(f"    emulator not answering ({type(exc).__name__}); checking again in {interval:.0f}s", flush=True)
            continue
        if missing:
            print(f"==> The emulator lost {len(missing)} seeded object(s) ({', '.join(missing[:5])}"
                  f"{', ...' if len(missing) > 5 else ''}): seeding again", flush=True)
            counts = seed()
            print(f"==> Seeded again: {', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="sandbox.yaml")
    parser.add_argument("--airflow-settings", help="an astro-format airflow_settings.yaml; applied if it exists")
    parser.add_argument("--validate-only", action="store_true", help="check the config and exit")
    parser.add_argument("--watch", action="store_true",
                        help="after seeding, keep checking the emulator and seed again if it lost the objects")
    args = parser.parse_args(argv)
    try:
        config = load_seed(args.config, args.airflow_settings)
    except ConfigError as exc:
        print(f"bootstrap: {exc}", file=sys.stderr)
        return 2
    if args.validate_only:
        print(f"{args.config}: valid")
        return 0
    started = time.monotonic()
    endpoint = os.environ.get("SANDBOX_AWS_ENDPOINT", "http://127.0.0.1:4566")
    registry = os.environ.get("SANDBOX_ECR_REGISTRY", "localhost:4566")
    wait_for_emulator(endpoint)
    airflow = AirflowClient(os.environ.get("AIRFLOW_API_URL", "http://127.0.0.1:8080"),
                            os.environ.get("AIRFLOW_ADMIN_USER", "admin"), os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin"))
    kubeconfig = None
    kubeconfig_path = os.environ.get("SANDBOX_KUBECONFIG")
    if kubeconfig_path and os.path.isfile(kubeconfig_path):
        from sandbox.core import kubeconfig as kc
        with open(kubeconfig_path) as fh:
            kubeconfig = kc.load(fh.read())
    if args.watch:  # the bootstrap has just seeded: only watch
        airflow.wait_until_healthy()
        watch(config, lambda: run(config, endpoint, registry, airflow, kubeconfig), endpoint)
        return 0
    try:
        counts = run(config, endpoint, registry, airflow, kubeconfig)
    except StackError as exc:
        print(f"bootstrap: {exc}\nbootstrap: fix the template ({config.path.name}'s aws.stacks) and run `make up` "
              "again; CloudFormation rolled back what the failed deployment created", file=sys.stderr, flush=True)
        return 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"==> Bootstrap done in {time.monotonic() - started:.1f}s: {summary}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
