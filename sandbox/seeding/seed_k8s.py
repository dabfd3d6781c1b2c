"""Applies the `kubernetes:` section of the seed config to the cluster, and generates the kubeconfig
Airflow's `kubernetes_default` connection uses.

That kubeconfig authenticates as a namespaced service account whose Role allows only what
KubernetesPodOperator needs, and verifies the API server's certificate: no cluster-admin
credentials reach Airflow, and no insecure-skip-tls-verify.
"""
from __future__ import annotations

import base64
import json

from sandbox.core.kubeconfig import ApiClient, current
from sandbox.core.poll import NotYet, wait_until
from sandbox.seeding.config import SeedConfig
from sandbox.seeding.seed_aws import Report


class KubernetesSeedError(RuntimeError):
    pass


def _ensure(api: ApiClient, collection: str, name: str, body: dict, compare: tuple[str, ...] = ()) -> str:
    """Creates `body` under `collection` unless `name` exists; replaces it when a compared field differs."""
    res = api.request("GET", f"{collection}/{name}")
    if res.status_code == 404:
        created = api.request("POST", collection, json=body)
        if created.status_code not in (200, 201):
            raise KubernetesSeedError(f"POST {collection} ({name}): HTTP {created.status_code} {created.text[:300]}")
        return "created"
    if res.status_code != 200:
        raise KubernetesSeedError(f"GET {collection}/{name}: HTTP {res.status_code} {res.text[:300]}")
    current_obj = res.json()
    if all(current_obj.get(field) == body.get(field) for field in compare):
        return "unchanged"
    body = {**body, "metadata": {**body["metadata"], "resourceVersion": current_obj["metadata"]["resourceVersion"]}}
    replaced = api.request("PUT", f"{collection}/{name}", json=body)
    if replaced.status_code != 200:
        raise KubernetesSeedError(f"PUT {collection}/{name}: HTTP {replaced.status_code} {replaced.text[:300]}")
    return "updated"


# The task namespace admits only Pod Security's "baseline" pods (no privileged containers, host
# namespaces or hostPath volumes) where the cluster has Pod Security admission (1.23+); the offline
# 1.20 node enforces the same through a PodSecurityPolicy (kind/offline/node-entrypoint.sh).
POD_SECURITY = {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "baseline"}


def _label_namespace(api: ApiClient, ns: str) -> str:
    """Adds POD_SECURITY's labels to a namespace made without them (an older sandbox's)."""
    current = api.request("GET", f"/api/v1/namespaces/{ns}").json()
    labels = current["metadata"].get("labels") or {}
    if all(labels.get(k) == v for k, v in POD_SECURITY.items()):
        return "unchanged"
    current["metadata"]["labels"] = {**labels, **POD_SECURITY}
    replaced = api.request("PUT", f"/api/v1/namespaces/{ns}", json=current)
    if replaced.status_code != 200:
        raise KubernetesSeedError(f"PUT namespace {ns}: HTTP {replaced.status_code} {replaced.text[:300]}")
    return "updated"


def _b64_values(values: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())}


# Where the kubelet mounts a pod's service-account token (the projected, issuer-signed one).
POD_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def service_account_issuer(api: ApiClient) -> str:
    """The `iss` of the service-account tokens this cluster mints (its OIDC issuer), read from a
    token requested for default/default: the same claim AWS STS matches a role's trust against."""
    res = api.request("POST", "/api/v1/namespaces/default/serviceaccounts/default/token", json={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}})
    if res.status_code not in (200, 201):
        raise KubernetesSeedError(f"could not request a service-account token to read the cluster's issuer: "
                                  f"HTTP {res.status_code} {res.text[:300]}")
    payload = res.json()["status"]["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims["iss"]


def secret_values(config: SeedConfig, name: str) -> dict[str, str]:
    """A secret's declared values; the pods' AWS secret also gets the role to assume with the pod's token."""
    k = config.kubernetes
    values = dict((k.get("secrets") or {}).get(name) or {})
    pod_role = k.get("aws_role")
    if pod_role and pod_role["secret"] == name:
        values["AWS_ROLE_ARN"] = config.role_arn(pod_role["role"])
        values["AWS_WEB_IDENTITY_TOKEN_FILE"] = POD_TOKEN_FILE
    return values


def seed_kubernetes(api: ApiClient, config: SeedConfig, report: Report) -> str:
    """Namespace, service account, Role/RoleBinding, secrets, and the service account's token.
    Returns that token."""
    k = config.kubernetes
    ns, sa = k["namespace"], k["service_account"]
    base = f"/api/v1/namespaces/{ns}"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
    outcome = _ensure(api, "/api/v1/namespaces", ns, {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": ns, "labels": POD_SECURITY}})
    report("k8s namespace", ns, outcome if outcome != "unchanged" else _label_namespace(api, ns))
    report("k8s serviceaccount", f"{ns}/{sa}", _ensure(api, f"{base}/serviceaccounts", sa, {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}}))
    report("k8s role", f"{ns}/{sa}", _ensure(api, f"{rbac}/roles", sa, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": sa, "namespace": ns}, "rules": k["rules"]}, compare=("rules",)))
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": sa, "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
               "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}
    report("k8s rolebinding", f"{ns}/{sa}", _ensure(api, f"{rbac}/rolebindings", sa, binding,
                                                     compare=("roleRef", "subjects")))
    for name in k.get("secrets") or {}:
        report("k8s secret", f"{ns}/{name}", _ensure(api, f"{base}/secrets", name, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": ns},
            "data": _b64_values(secret_values(config, name))}, compare=("data",)))
    # An explicit token Secret: the token controller fills it on every Kubernetes version
    # (1.24+ no longer creates one per service account by itself).
    token_name = f"{sa}-token"
    report("k8s token secret", f"{ns}/{token_name}", _ensure(api, f"{base}/secrets", token_name, {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": token_name, "namespace": ns,
                     "annotations": {"kubernetes.io/service-account.name": sa}}}))

    def token() -> str:
        res = api.request("GET", f"{base}/secrets/{token_name}")
        value = ((res.json() if res.status_code == 200 else {}).get("data") or {}).get("token")
        if not value:
            raise NotYet("no token in it yet (is kube-controller-manager running with a service-account key?)")
        return base64.b64decode(value).decode()

    return wait_until(token, timeout=60, interval=1, what=f"the token controller filling secret {ns}/{token_name}",
                      error=KubernetesSeedError)


def service_account_kubeconfig(admin_kubeconfig: dict, token: str, config: SeedConfig) -> dict:
    """A kubeconfig for the service account, against the same API server and CA as the admin one."""
    _, _, cluster, _ = current(admin_kubeconfig)
    if not cluster.get("certificate-authority-data") or cluster.get("insecure-skip-tls-verify"):
        raise KubernetesSeedError("the cluster's kubeconfig has no CA data to verify the API server with")
    k = config.kubernetes
    name = "sandbox"
    entry = {"server": cluster["server"], "certificate-authority-data": cluster["certificate-authority-data"]}
    if cluster.get("tls-server-name"):
        entry["tls-server-name"] = cluster["tls-server-name"]
    return {"apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": entry}],
            "users": [{"name": k["service_account"], "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": k["service_account"],
                                                    "namespace": k["namespace"]}}]}


def kubernetes_connection(kubeconfig: dict, config: SeedConfig) -> dict:
    """The `kubernetes_default` connection, in the seed config's connection shape."""
    k = config.kubernetes
    return {"conn_id": k["connection_id"], "conn_type": "kubernetes",
            "description": f"Generated by bootstrap: service account {k['namespace']}/{k['service_account']}",
            "extra": {"kube_config": json.dumps(kubeconfig, sort_keys=True), "namespace": k["namespace"],
                      "xcom_sidecar_container_image": k["xcom_sidecar_image"], "in_cluster": False}}
