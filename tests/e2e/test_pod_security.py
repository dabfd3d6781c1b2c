"""The right to create a pod in the task namespace is not root on the host: privileged, host-network,
host-PID and hostPath pods are refused at admission, for the cluster admin too."""
from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.e2e

REFUSAL_WORDS = ("PodSecurityPolicy: unable to admit pod", "violates PodSecurity", "disallowed by cluster policy")
REFUSED = {
    "privileged": ({"securityContext": {"privileged": True}}, {}),
    "host-network": ({}, {"hostNetwork": True}),
    "host-pid": ({}, {"hostPID": True}),
    "host-path": ({"volumeMounts": [{"name": "root", "mountPath": "/host"}]},
                  {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_pods_that_reach_into_the_host_are_refused(kube_client, kind):
    container_extra, spec_extra = REFUSED[kind]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"refused-{kind}"},
           "spec": {"containers": [{"name": "c", "image": "sandbox/task:1.0", "command": ["true"], **container_extra}],
                    "restartPolicy": "Never", **spec_extra}}
    with pytest.raises(ApiException) as refused:
        kube_client.core_v1.create_namespaced_pod(kube_client.namespace, pod)
    # 403 from admission (PodSecurityPolicy on the offline 1.20 node, Pod Security on newer clusters);
    # a privileged container may meet --allow-privileged=false's 422 first.
    assert refused.value.status in (403, 422), refused.value.body
    assert any(words in refused.value.body for words in REFUSAL_WORDS), refused.value.body
