# Kubernetes 1.20.2 server binaries + a static pause binary, built from Debian bookworm's own
# `kubernetes` source package (full upstream source with vendor/) with Debian's Go 1.19.
# No container registry and no GitHub are needed: only Debian's archive.
#
# Output, in /out:
#   kube-apiserver kube-controller-manager kube-scheduler kubelet   (static, CGO off; kubectl is
#                                                                    Debian's kubernetes-client)
#   pause                                                                    (gcc -static)
#   pause-image.tar   a docker-archive image holding only /pause, for `ctr images import`
#
# Built by sandbox/cluster/offline.py as sandbox/k8s-binaries:1.20.2 (about 6-10 min on 2 cores,
# once: the image carries a label with the sha256 of this file and is not rebuilt while it matches).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

# The exact Debian source version (bookworm, security-updated). `apt-get source` fails loudly if
# the archive moved on; update it together with the tag in sandbox/cluster/offline.py.
ARG KUBERNETES_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
ARG KUBERNETES_VERSION=v1.20.2
ARG PAUSE_VERSION=3.4.1
ENV DEBIAN_FRONTEND=noninteractive

# deb-src next to the image's own deb lines: deb822 (debian.sources) or the legacy sources.list.
RUN set -eux; \
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then \
        sed -i -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources; \
    fi; \
    if [ -f /etc/apt/sources.list ] && grep -qE '^deb[[:space:]]' /etc/apt/sources.list; then \
        grep -E '^deb[[:space:]]' /etc/apt/sources.list | sed -E 's/^deb([[:space:]])/deb-src\1/' \
            > /etc/apt/sources.list.d/sandbox-deb-src.list; \
    fi; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends \
        dpkg-dev golang-go make rsync gcc libc6-dev ca-certificates >/dev/null; \
    rm -rf /var/lib/apt/lists/*

WORKDIR /src
RUN set -eux; \
    apt-get update -qq; \
    apt-get source -qq "kubernetes=${KUBERNETES_DEB_VERSION}"; \
    rm -rf /var/lib/apt/lists/* kubernetes_*; \
    mv kubernetes-* kubernetes

# As debian/rules does: GOPATH inside the tree, the tree symlinked in as k8s.io/kubernetes.
# Only what the node runs, and only the one generated file the tree does not ship (the API server's
# OpenAPI definitions; `make`'s other generators rewrite files the source already has, identical).
# GOGC=400: the Go compiler collects garbage less often (more memory, less CPU on 2 cores).
WORKDIR /src/kubernetes
ENV GOPATH=/src/kubernetes/.go CGO_ENABLED=0 HOME=/tmp/home GOGC=400 \
    KUBE_GIT_VERSION=${KUBERNETES_VERSION} KUBE_GIT_COMMIT=debian-${KUBERNETES_DEB_VERSION} \
    KUBE_GIT_TREE_STATE=clean
RUN set -eux; \
    mkdir -p .go/src/k8s.io "$HOME"; \
    [ -L .go/src/k8s.io/kubernetes ] || ln -s ../../.. .go/src/k8s.io/kubernetes; \
    make gen_openapi; \
    hack/make-rules/build.sh cmd/kube-apiserver cmd/kubelet cmd/kube-controller-manager cmd/kube-scheduler; \
    mkdir -p /out; \
    cp _output/bin/kube-apiserver _output/bin/kube-controller-manager _output/bin/kube-scheduler \
       _output/bin/kubelet /out/; \
    rm -rf _output .go/pkg /tmp/home/.cache

# The pod sandbox ("pause") binary from the same tree, and a one-layer image of it in docker-archive
# form (what `docker save` writes), made reproducibly with tar + sha256sum: no registry, no daemon.
RUN set -eux; \
    gcc -Os -Wall -Werror -static -DVERSION="v${PAUSE_VERSION}-sandbox" -o /out/pause build/pause/linux/pause.c; \
    /out/pause -v; \
    work=$(mktemp -d); mkdir -p "$work/rootfs" "$work/archive"; \
    cp /out/pause "$work/rootfs/pause"; \
    tar -C "$work/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/layer.tar" pause; \
    layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1); \
    mkdir "$work/archive/$layer"; mv "$work/layer.tar" "$work/archive/$layer/layer.tar"; \
    printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"kind/offline/binaries.Dockerfile"}]}' \
        "$(dpkg --print-architecture)" "$layer" > "$work/config.json"; \
    config=$(sha256sum "$work/config.json" | cut -d' ' -f1); \
    mv "$work/config.json" "$work/archive/$config.json"; \
    printf '[{"Config":"%s.json","RepoTags":["sandbox.local/pause:%s"],"Layers":["%s/layer.tar"]}]' \
        "$config" "$PAUSE_VERSION" "$layer" > "$work/archive/manifest.json"; \
    tar -C "$work/archive" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf /out/pause-image.tar .; \
    rm -rf "$work"; \
    ls -la /out

LABEL org.opencontainers.image.title="sandbox Kubernetes ${KUBERNETES_VERSION} binaries (Debian source ${KUBERNETES_DEB_VERSION})"
