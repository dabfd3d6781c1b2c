"""Kubeconfig generation and rewriting for the cluster providers (pure functions, no Docker)."""
from __future__ import annotations

import base64

import pytest
import yaml

from sandbox.core import kubeconfig as kc
from sandbox.host.cluster.external import internal_from_external

pytestmark = pytest.mark.unit

CA = "-----BEGIN CERTIFICATE-----\nMIIca\n-----END CERTIFICATE-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIcert\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIkey\n-----END RSA PRIVATE KEY-----\n"


def _external(server="https://127.0.0.1:51234", **cluster_extra):
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "minikube",
        "clusters": [{"name": "minikube", "cluster": {"server": server, "certificate-authority-data": kc.b64(CA),
                                                      **cluster_extra}},
                     {"name": "other", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "minikube", "user": {"client-certificate-data": kc.b64(CERT),
                                                "client-key-data": kc.b64(KEY)}},
                  {"name": "other", "user": {"token": "t"}}],
        "contexts": [{"name": "minikube", "context": {"cluster": "minikube", "user": "minikube"}},
                     {"name": "other", "context": {"cluster": "other", "user": "other"}}],
    }


def test_make_kubeconfig_embeds_everything_and_verifies_tls():
    doc = kc.make_kubeconfig("https://kubernetes:6443", CA, CERT, KEY, cluster="node")
    name, ctx, cluster, user = kc.current(doc)
    assert cluster["server"] == "https://kubernetes:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == CA
    assert base64.b64decode(user["client-key-data"]).decode() == KEY
    assert "insecure-skip-tls-verify" not in cluster
    kc.check_verified(doc)
    assert kc.load(kc.dump(doc)) == doc  # survives YAML


def test_make_kubeconfig_refuses_a_non_pem_ca():
    with pytest.raises(kc.KubeconfigError):
        kc.make_kubeconfig("https://x:6443", "not a cert", CERT, KEY)


@pytest.mark.parametrize("server,expected,sni", [
    ("https://127.0.0.1:51234", "https://host.docker.internal:51234", "127.0.0.1"),
    ("https://localhost:6443", "https://host.docker.internal:6443", "localhost"),
    ("https://[::1]:6443", "https://host.docker.internal:6443", "::1"),
    ("https://0.0.0.0:6443", "https://host.docker.internal:6443", "localhost"),
])
def test_loopback_servers_are_rewritten_with_tls_server_name(server, expected, sni):
    doc = kc.rewrite_server_for_containers(_external(server))
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == expected
    assert cluster["tls-server-name"] == sni
    assert "insecure-skip-tls-verify" not in cluster


def test_other_servers_are_left_alone_and_input_is_not_mutated():
    original = _external("https://api.example.internal:6443")
    doc = kc.rewrite_server_for_containers(original)
    assert doc["clusters"][0]["cluster"] == original["clusters"][0]["cluster"]
    loop = _external()
    kc.rewrite_server_for_containers(loop)
    assert loop["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:51234"


def test_an_existing_tls_server_name_is_kept():
    doc = kc.rewrite_server_for_containers(_external(**{"tls-server-name": "minikube"}))
    assert doc["clusters"][0]["cluster"]["tls-server-name"] == "minikube"


def test_insecure_kubeconfigs_are_refused():
    with pytest.raises(kc.KubeconfigError, match="insecure"):
        kc.rewrite_server_for_containers(_external(**{"insecure-skip-tls-verify": True}))


def test_minify_keeps_only_the_current_context():
    doc = kc.minify(_external())
    assert [c["name"] for c in doc["clusters"]] == ["minikube"]
    assert [u["name"] for u in doc["users"]] == ["minikube"]
    assert doc["current-context"] == "minikube"
    assert kc.minify(_external(), "other")["users"][0]["user"] == {"token": "t"}


def test_inline_files_reads_relative_paths_against_the_kubeconfig_dir(tmp_path):
    (tmp_path / "ca.crt").write_text(CA)
    (tmp_path / "client.crt").write_text(CERT)
    (tmp_path / "client.key").write_text(KEY)
    doc = _external()
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    del cluster["certificate-authority-data"], user["client-certificate-data"], user["client-key-data"]
    cluster["certificate-authority"] = "ca.crt"
    user["client-certificate"] = str(tmp_path / "client.crt")
    user["client-key"] = "client.key"
    out = kc.inline_files(doc, tmp_path)
    c, u = out["clusters"][0]["cluster"], out["users"][0]["user"]
    assert base64.b64decode(c["certificate-authority-data"]).decode() == CA
    assert base64.b64decode(u["client-key-data"]).decode() == KEY
    assert "certificate-authority" not in c and "client-key" not in u


def test_inline_files_names_a_missing_file(tmp_path):
    doc = _external()
    doc["clusters"][0]["cluster"]["certificate-authority"] = "nope.crt"
    with pytest.raises(kc.KubeconfigError, match="nope.crt"):
        kc.inline_files(doc, tmp_path)


def test_internal_from_external_is_minified_rewritten_and_verified(tmp_path):
    doc = internal_from_external(_external(), tmp_path)
    assert len(doc["clusters"]) == 1
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == "https://host.docker.internal:51234"
    assert cluster["tls-server-name"] == "127.0.0.1"
    assert yaml.safe_load(kc.dump(doc)) == doc


def test_internal_from_external_with_an_explicit_server(tmp_path):
    doc = internal_from_external(_external(), tmp_path, server="https://192.168.49.2:8443")
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == "https://192.168.49.2:8443"
    assert cluster["tls-server-name"] == "127.0.0.1"


def test_check_verified_wants_ca_data():
    doc = _external()
    del doc["clusters"][0]["cluster"]["certificate-authority-data"]
    with pytest.raises(kc.KubeconfigError, match="certificate-authority-data"):
        kc.check_verified(kc.minify(doc))


def test_node_ready_reads_conditions():
    assert kc.node_ready({"items": []}) == (False, "no node registered yet")
    body = {"items": [{"metadata": {"name": "n"}, "status": {"conditions": [
        {"type": "Ready", "status": "False", "message": "container runtime network not ready"}]}}]}
    ready, text = kc.node_ready(body)
    assert not ready and "network not ready" in text
    body["items"][0]["status"]["conditions"][0]["status"] = "True"
    assert kc.node_ready(body)[0]


def test_parse_time_handles_docker_and_kubernetes_formats():
    from datetime import datetime, timezone
    assert kc.parse_time("2025-11-23T01:05:07.123456789Z") == datetime(2025, 11, 23, 1, 5, 7, tzinfo=timezone.utc)
    assert kc.parse_time("2025-11-23T01:05:07Z") == datetime(2025, 11, 23, 1, 5, 7, tzinfo=timezone.utc)
    assert kc.parse_time("2025-11-23T02:05:07+01:00") == datetime(2025, 11, 23, 1, 5, 7, tzinfo=timezone.utc)


def test_a_ready_condition_from_before_a_restart_does_not_count():
    body = {"items": [{"metadata": {"name": "n"}, "status": {"conditions": [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": "2025-11-23T01:00:00Z"}]}}]}
    restarted = kc.parse_time("2025-11-23T01:05:07.5Z")
    ready, text = kc.node_ready(body, since=restarted)
    assert not ready and "since the start" in text
    body["items"][0]["status"]["conditions"][0]["lastHeartbeatTime"] = "2025-11-23T01:05:07Z"
    assert kc.node_ready(body, since=restarted)[0]  # same second counts
