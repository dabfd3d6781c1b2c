"""Provider selection and the offline provider's pure helpers (no Docker)."""
from __future__ import annotations

import pytest
import yaml

from sandbox.host.cluster import ClusterError, select_provider
from sandbox.host.cluster.kind import kind_config
from sandbox.host.cluster.offline import (BINARIES_DOCKERFILE, NODE_DOCKERFILE, NODE_FILES, dockerignore_excludes,
                                          inputs_sha256, normalize_ref, parse_ctr_images)
from sandbox.host.settings import ROOT, Settings

pytestmark = pytest.mark.unit


class Fake:
    def __init__(self, name, ok, why):
        self.name, self._ok, self._why = name, ok, why
        self.asked = 0

    def available(self):
        self.asked += 1
        return self._ok, self._why


def factories(kind=(True, "kind v0.20.0 found"), offline=(True, "offline ok"), external=(False, "not set")):
    made = {}

    def factory(name, answer):
        def make(settings):
            made[name] = Fake(name, *answer)
            return made[name]
        return make
    return {"kind": factory("kind", kind), "offline": factory("offline", offline),
            "external": factory("external", external)}, made


def test_auto_prefers_kind_when_usable():
    f, _ = factories()
    provider, reason = select_provider(Settings({}), f)
    assert provider.name == "kind"
    assert "auto" in reason and "kind v0.20.0" in reason


def test_auto_falls_back_to_offline_and_says_why():
    f, _ = factories(kind=(False, "the kind CLI is not installed"))
    provider, reason = select_provider(Settings({"K8S_PROVIDER": "auto"}), f)
    assert provider.name == "offline"
    assert "the kind CLI is not installed" in reason and "offline ok" in reason


def test_auto_with_nothing_usable_points_at_external():
    f, _ = factories(kind=(False, "no kind"), offline=(False, "no docker"))
    with pytest.raises(ClusterError, match="K8S_EXTERNAL_KUBECONFIG"):
        select_provider(Settings({}), f)


@pytest.mark.parametrize("name", ["kind", "offline", "external", " Offline "])
def test_explicit_choice_is_taken_without_asking_the_others(name):
    f, made = factories(external=(True, "external cluster from x"))
    provider, reason = select_provider(Settings({"K8S_PROVIDER": name}), f)
    assert provider.name == name.strip().lower()
    assert list(made) == [provider.name]
    assert f"K8S_PROVIDER={provider.name}" in reason


def test_explicit_choice_that_cannot_work_raises_its_reason():
    f, _ = factories()
    with pytest.raises(ClusterError, match="not set"):
        select_provider(Settings({"K8S_PROVIDER": "external"}), f)


def test_unknown_provider_is_rejected():
    f, _ = factories()
    with pytest.raises(ClusterError, match="minikube"):
        select_provider(Settings({"K8S_PROVIDER": "minikube"}), f)


def test_external_available_reads_the_kubeconfig(tmp_path):
    from sandbox.host.cluster.external import ExternalProvider
    assert not ExternalProvider(Settings({})).available()[0]
    path = tmp_path / "config"
    assert "not a file" in ExternalProvider(Settings({"K8S_EXTERNAL_KUBECONFIG": str(path)})).available()[1]
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"}))
    ok, why = ExternalProvider(Settings({"K8S_EXTERNAL_KUBECONFIG": str(path)})).available()
    assert ok and "context x" in why


@pytest.mark.parametrize("tag,ref", [
    ("python:3.12", "docker.io/library/python:3.12"),
    ("sandbox-base/python:bookworm", "docker.io/sandbox-base/python:bookworm"),
    ("sandbox/task", "docker.io/sandbox/task:latest"),
    ("localhost:4566/sandbox-task:latest", "localhost:4566/sandbox-task:latest"),
    ("registry.example.com/a/b:1", "registry.example.com/a/b:1"),
    ("localhost/x", "localhost/x:latest"),
])
def test_normalize_ref_matches_containerd_names(tag, ref):
    assert normalize_ref(tag) == ref


def test_parse_ctr_images_reads_labels():
    out = ("REF                                     TYPE                                                 DIGEST  SIZE     PLATFORMS   LABELS\n"
           "docker.io/sandbox/task:latest           application/vnd.docker.distribution.manifest.v2+json sha256:ab 120.0 MiB linux/amd64 io.cri-containerd.image=managed,sandbox.docker-id=sha256:123\n"
           "sandbox.local/pause:3.4.1               application/vnd.docker.distribution.manifest.v2+json sha256:cd 300.0 KiB linux/amd64 -\n")
    images = parse_ctr_images(out)
    assert images["docker.io/sandbox/task:latest"]["sandbox.docker-id"] == "sha256:123"
    assert images["sandbox.local/pause:3.4.1"] == {}


def test_inputs_hash_changes_with_content_and_extras(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    a = inputs_sha256(["Dockerfile"], ["base:1"], root=tmp_path)
    assert a == inputs_sha256(["Dockerfile"], ["base:1"], root=tmp_path)
    assert a != inputs_sha256(["Dockerfile"], ["base:2"], root=tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM y\n")
    assert a != inputs_sha256(["Dockerfile"], ["base:1"], root=tmp_path)


def test_the_repo_files_the_offline_images_hash_exist():
    for rel in (BINARIES_DOCKERFILE, NODE_DOCKERFILE, *NODE_FILES):
        assert (ROOT / rel).is_file(), rel


@pytest.mark.parametrize("ignore,excluded", [
    ("*\n!airflow/\n", True),
    ("*\n!kind/\n", False),
    ("*\n!kind/offline/\n", False),
    ("*\n!kind/\nkind/offline/\n", True),
    ("**/__pycache__\n", False),
    ("", False),
])
def test_dockerignore_check(ignore, excluded):
    assert dockerignore_excludes("kind/offline/node-entrypoint.sh", ignore) is excluded


def test_kind_config_sets_the_api_port():
    config = kind_config(7443)
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["networking"]["apiServerPort"] == 7443
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    assert [n["role"] for n in config["nodes"]] == ["control-plane"]
