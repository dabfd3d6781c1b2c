# The offline Kubernetes node: one container running etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd and kubelet, like a kind node, from Debian bookworm packages plus the
# binaries built by binaries.Dockerfile. Started by sandbox/cluster/offline.py (see kind/README.md
# for the `docker run` flags it needs: no --privileged on these machines).
ARG BASE_IMAGE=debian:bookworm-slim
ARG BINARIES_IMAGE=sandbox/k8s-binaries:1.20.2

# The node's Debian packages, a stage of its own: `make up` builds it (--target node-packages) while
# the binaries are still compiling, so the node image's build after them is only the COPYs below.
FROM ${BASE_IMAGE} AS node-packages
ENV DEBIAN_FRONTEND=noninteractive
# etcd 3.4, containerd 1.6, runc, CNI plugins (/usr/lib/cni) and kubectl (kubernetes-client, built
# from the same Debian source as binaries.Dockerfile's) from bookworm; what kubelet shells out
# to (iptables, mount, nsenter, conntrack, socat for port-forward); dnsmasq gives pods a resolver;
# tini reaps zombies as PID 1.
RUN set -eux; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends \
        etcd-server containerd runc containernetworking-plugins kubernetes-client \
        iptables iproute2 conntrack socat ethtool util-linux mount kmod \
        dnsmasq-base openssl procps ca-certificates tini >/dev/null; \
    rm -rf /var/lib/apt/lists/*; \
    etcd --version | head -1; containerd --version; runc --version | head -1; kubectl version --client --short

FROM ${BINARIES_IMAGE} AS binaries

FROM node-packages
COPY --from=binaries /out/kube-apiserver /out/kube-controller-manager /out/kube-scheduler \
     /out/kubelet /usr/local/bin/
COPY --from=binaries /out/pause-image.tar /usr/local/share/sandbox/pause-image.tar
COPY kind/offline/node-entrypoint.sh /usr/local/bin/node-entrypoint

# So that `docker exec <node> kubectl ...` and `docker exec <node> ctr images ls` just work.
ENV KUBECONFIG=/etc/kubernetes/admin.conf \
    CONTAINERD_ADDRESS=/run/containerd/containerd.sock CONTAINERD_NAMESPACE=k8s.io

# containerd's content and snapshots live on a volume (no overlay on overlay): /var/lib/containerd.
VOLUME ["/var/lib/containerd"]
EXPOSE 6443
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/node-entrypoint"]
