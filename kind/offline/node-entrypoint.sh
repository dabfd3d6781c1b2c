#!/bin/bash
# Entrypoint of the offline Kubernetes node (kind/offline/node.Dockerfile), run under tini.
#
# On every start: PKI (made once with openssl; the serving certs are re-issued so they name the
# current IPs), containerd (own config, CRI, CNI bridge), the pause image, etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, a DNS forwarder for pods, kubelet. Component logs go to
# /var/log/kubernetes/<name>.log; this script's own lines are the container's log. If a component
# exits, the script stops the others and exits non-zero, so `docker ps` shows the node as down.
#
# Environment (set by sandbox/cluster/offline.py):
#   NODE_NAME   node name (default: the container's hostname)
#   API_SANS    extra DNS names for the apiserver certificate, comma separated (network alias,
#               container name)
set -Eeuo pipefail

NODE_NAME=${NODE_NAME:-$(hostname)}
NODE_NAME=$(echo "$NODE_NAME" | tr '[:upper:]_' '[:lower:]-')
API_SANS=${API_SANS:-kubernetes}
SERVICE_CIDR=10.96.0.0/16
FIRST_SERVICE_IP=10.96.0.1
POD_SUBNET=10.244.0.0/24
POD_GATEWAY=10.244.0.1
PAUSE_IMAGE=sandbox.local/pause:3.4.1
K=/etc/kubernetes
PKI=$K/pki
LOGS=/var/log/kubernetes
SOCK=/run/containerd/containerd.sock
export KUBECONFIG=$K/admin.conf CONTAINERD_ADDRESS=$SOCK CONTAINERD_NAMESPACE=k8s.io

log() { echo "[node $(date -u +%H:%M:%S)] $*"; }
die() { log "FATAL: $*"; exit 1; }

mkdir -p "$PKI" "$LOGS" /etc/containerd /etc/cni/net.d /var/lib/kubelet /var/lib/etcd

# --- the container as a machine --------------------------------------------------------------
[ -s /etc/machine-id ] || tr -d - </proc/sys/kernel/random/uuid >/etc/machine-id
mount --make-rshared / || log "warning: cannot make / rshared (mount propagation for pods)"
sysctl -qw net.ipv4.ip_forward=1 || true
# The pod bridge exists before the first pod: its gateway address is the node IP (below) and where
# the DNS forwarder for pods listens.
if ! ip link show cni0 >/dev/null 2>&1; then
    ip link add cni0 type bridge
    ip addr add "$POD_GATEWAY/24" dev cni0
fi
# A fixed MAC: a bridge otherwise takes the lowest MAC of its ports, so each pod deleted or added
# can change the gateway's MAC under running pods, whose ARP entries then point nowhere; their
# connections (e.g. to S3) stalled for a minute until the entry expired.
ip link set cni0 address 02:42:0a:f4:00:01
ip link set cni0 up
CONTAINER_IPS=$(ip -4 -o addr show scope global | awk '$2 != "cni0" {print $4}' | cut -d/ -f1 | sort -u | tr '\n' ' ')
[ -n "$CONTAINER_IPS" ] || die "the container has no IPv4 address"
# The node's own address (kubelet --node-ip, apiserver --advertise-address) is the pod bridge's
# gateway, not the container's: Kubernetes refuses link-local node IPs and endpoints, and the
# sandbox's networks are 169.254.x (the ECS credentials address). It is stable across restarts too.
NODE_IP=$POD_GATEWAY
log "node $NODE_NAME, node IP $NODE_IP, container IPs: $CONTAINER_IPS"

# Pod cgroups go under this container's own cgroup (/sys/fs/cgroup is the host's, mounted rw): two
# nodes on one host never share a /kubepods tree, and removing the container removes them.
CGROUP_ROOT=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
if [ -z "$CGROUP_ROOT" ] || [ "$CGROUP_ROOT" = / ] || [ ! -d "/sys/fs/cgroup/memory$CGROUP_ROOT" ]; then
    CGROUP_ROOT=/sandbox-k8s-$NODE_NAME  # cgroup namespace or unusual layout: a root of our own
    for hierarchy in /sys/fs/cgroup/*/; do
        [ -L "${hierarchy%/}" ] || mkdir -p "$hierarchy${CGROUP_ROOT#/}"
    done
fi
log "pod cgroups under $CGROUP_ROOT"

# --- PKI ---------------------------------------------------------------------------------------
# issue NAME CN ORG(or "") EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
issue() {
    local name=$1 cn=$2 org=$3 eku=$4 sans=${5:-} subj ext
    subj="/CN=$cn"; [ -z "$org" ] || subj="/O=$org$subj"
    ext=$(mktemp)
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$eku"
        echo "subjectKeyIdentifier=hash"
        echo "authorityKeyIdentifier=keyid,issuer"
        [ -z "$sans" ] || echo "subjectAltName=$sans"
    } >"$ext"
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
    openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -CAserial "$PKI/ca.srl" -days 3650 -sha256 -extfile "$ext" \
        -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$ext" "$PKI/$name.csr"
    chmod 600 "$PKI/$name.key"
}

# kubeconfig FILE USER CERT_NAME SERVER
kubeconfig() {
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster:
    server: $4
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$3.crt")
    client-key-data: $(base64 -w0 "$PKI/$3.key")
contexts:
- name: $2@sandbox
  context: {cluster: sandbox, user: $2}
current-context: $2@sandbox
EOF
    chmod 600 "$1"
}

if [ ! -s "$PKI/ca.crt" ]; then
    log "generating the cluster PKI"
    # P-256 keys: RSA 2048 took about 3 s of every fresh node's start for ten keys on 2 cores. The
    # service-account signing key stays RSA (RS256), what OIDC token consumers expect first.
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=sandbox-kubernetes-ca" -days 3650 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -addext "subjectKeyIdentifier=hash" -out "$PKI/ca.crt" 2>/dev/null
    chmod 600 "$PKI/ca.key"
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    issue admin kubernetes-admin system:masters clientAuth
    issue apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
    issue kubelet-client "system:node:$NODE_NAME" system:nodes clientAuth
    issue controller-manager system:kube-controller-manager "" clientAuth
    issue scheduler system:kube-scheduler "" clientAuth
fi

# Serving certificates name the current addresses, so they are re-issued on every start.
sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sans+=",DNS:localhost,DNS:$NODE_NAME,IP:127.0.0.1,IP:$FIRST_SERVICE_IP"
for name in ${API_SANS//,/ }; do sans+=",DNS:$name"; done
sans+=",IP:$NODE_IP"
for ip in $CONTAINER_IPS; do sans+=",IP:$ip"; done
issue apiserver kube-apiserver "" serverAuth "$sans"
issue kubelet-serving "system:node:$NODE_NAME" system:nodes serverAuth "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"

kubeconfig "$K/admin.conf" kubernetes-admin admin https://127.0.0.1:6443
kubeconfig "$K/kubelet.conf" "system:node:$NODE_NAME" kubelet-client https://127.0.0.1:6443
kubeconfig "$K/controller-manager.conf" system:kube-controller-manager controller-manager https://127.0.0.1:6443
kubeconfig "$K/scheduler.conf" system:kube-scheduler scheduler https://127.0.0.1:6443

# --- process supervision -----------------------------------------------------------------------
declare -A NAMES=()
PIDS=()
start() {  # start NAME COMMAND...
    local name=$1; shift
    "$@" >>"$LOGS/$name.log" 2>&1 &
    NAMES[$!]=$name
    PIDS+=("$!")
    log "started $name (pid $!)"
}
stop_all() {  # TERM in reverse start order, KILL whatever is left after 10 s
    local i n
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
    for ((n = 0; n < 20; n++)); do
        kill -0 "${PIDS[@]}" 2>/dev/null || break
        sleep 0.5
    done
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then log "${NAMES[$pid]} did not stop in 10s: killed"; kill -KILL "$pid" 2>/dev/null || true; fi
    done
    wait || true
}
on_term() { log "stopping"; trap - TERM INT; stop_all; exit 0; }
trap on_term TERM INT

wait_for() {  # wait_for WHAT SECONDS COMMAND...
    local what=$1 deadline=$((SECONDS + $2)); shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { log "$what not ready after ${deadline}s"; return 1; }
        sleep 0.5
    done
}

# --- containerd ---------------------------------------------------------------------------------
cat >/etc/containerd/config.toml <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # runc cannot lower oom_score_adj without CAP_SYS_RESOURCE (not grantable on these machines):
  # without this every pod sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
EOF
cat >/etc/cni/net.d/10-sandbox-bridge.conflist <<EOF
{
  "cniVersion": "0.4.0",
  "name": "sandbox-pods",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "/run/cni-ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF

# Pods reach the Docker network (the AWS emulator, the API server) with the node's address: one
# rule for the whole pod subnet, instead of the bridge plugin's ipMasq and the portmap plugin
# (hostPort, unused here), which add and remove iptables chains for every pod.
iptables -t nat -C POSTROUTING -s "$POD_SUBNET" ! -d "$POD_SUBNET" -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "$POD_SUBNET" ! -d "$POD_SUBNET" -j MASQUERADE \
    || die "cannot masquerade the pod subnet $POD_SUBNET (iptables)"

# No kube-proxy: the one Service that matters to pods, `kubernetes` (10.96.0.1:443, what in-cluster
# clients use), is forwarded to the API server here.
iptables -t nat -C PREROUTING -d "$FIRST_SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$NODE_IP:6443" 2>/dev/null \
    || iptables -t nat -A PREROUTING -d "$FIRST_SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$NODE_IP:6443" \
    || log "warning: cannot forward $FIRST_SERVICE_IP:443 to the API server (iptables)"

start containerd containerd --config /etc/containerd/config.toml
wait_for containerd 60 ctr version || die "containerd did not start; see $LOGS/containerd.log"
if ! ctr images ls -q "name==$PAUSE_IMAGE" | grep -q .; then
    ctr images import /usr/local/share/sandbox/pause-image.tar >/dev/null
    log "imported $PAUSE_IMAGE"
fi

# --- DNS for pods ----------------------------------------------------------------------------------
# No cluster DNS (CoreDNS needs an image). Pods get this node's resolver, forwarded from the pod
# bridge: on a Docker network that is Docker's DNS (127.0.0.11, unreachable from a pod's network
# namespace directly), so pods resolve the network's container names (e.g. `localstack`).
echo "nameserver $POD_GATEWAY" >$K/pod-resolv.conf
start dnsmasq dnsmasq --keep-in-foreground --no-hosts --bind-interfaces --listen-address="$POD_GATEWAY" \
    --resolv-file=/etc/resolv.conf --user=nobody --group=nogroup --log-facility=-

# --- control plane ---------------------------------------------------------------------------------
start etcd etcd --name "$NODE_NAME" --data-dir /var/lib/etcd \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:2380"

# Pods get issuer-signed, projected service-account tokens (the default from 1.21 on), as on EKS:
# kubernetes.aws_role exchanges them with AWS STS, which trusts the issuer they name.
TOKEN_GATES=BoundServiceAccountTokenVolume=true

# GOGC=50: its heap grows to 1.5x what is live, not 2x: the node idled at 460 MiB, not 560, after a
# 64-task fan-out, for no CPU the fan-out showed (28.5 CPU-s of the node against 28.6).
start kube-apiserver env GOGC=50 kube-apiserver \
    --advertise-address="$NODE_IP" --bind-address=0.0.0.0 --secure-port=6443 \
    --etcd-servers=http://127.0.0.1:2379 \
    --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-signing-key-file="$PKI/sa.key" --service-account-key-file="$PKI/sa.pub" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction,PodSecurityPolicy \
    --allow-privileged=false --feature-gates="$TOKEN_GATES" --v=1

wait_for kube-apiserver 120 kubectl get --raw /readyz || die "kube-apiserver did not become ready; see $LOGS/kube-apiserver.log"
log "kube-apiserver ready"

# Pod security: the right to create a pod must not be root on this machine. Kubernetes 1.20 has no
# Pod Security admission, so PodSecurityPolicy admission (on above) admits only pods this policy
# allows - Pod Security's "baseline": no privileged containers, host namespaces, host ports,
# hostPath volumes or added capabilities - for every user, cluster admins included.
kubectl apply -f - >/dev/null <<'POLICY' || die "could not create the pod security policy"
apiVersion: policy/v1beta1
kind: PodSecurityPolicy
metadata: {name: sandbox-baseline}
spec:
  privileged: false
  hostNetwork: false
  hostPID: false
  hostIPC: false
  allowedCapabilities: []
  volumes: [configMap, secret, emptyDir, projected, downwardAPI, persistentVolumeClaim]
  runAsUser: {rule: RunAsAny}
  seLinux: {rule: RunAsAny}
  supplementalGroups: {rule: RunAsAny}
  fsGroup: {rule: RunAsAny}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "psp:sandbox-baseline"}
rules: [{apiGroups: [policy], resources: [podsecuritypolicies], verbs: [use], resourceNames: [sandbox-baseline]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "psp:sandbox-baseline"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "psp:sandbox-baseline"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:authenticated"}]
POLICY
log "pod security policy sandbox-baseline in force"

start kube-controller-manager kube-controller-manager \
    --kubeconfig=$K/controller-manager.conf \
    --authentication-kubeconfig=$K/controller-manager.conf --authorization-kubeconfig=$K/controller-manager.conf \
    --bind-address=127.0.0.1 --leader-elect=false \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
    --feature-gates="$TOKEN_GATES" --v=1

start kube-scheduler kube-scheduler \
    --kubeconfig=$K/scheduler.conf \
    --authentication-kubeconfig=$K/scheduler.conf --authorization-kubeconfig=$K/scheduler.conf \
    --bind-address=127.0.0.1 --leader-elect=false --v=1

# --- kubelet -------------------------------------------------------------------------------------
cat >$K/kubelet-config.yaml <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failSwapOn: false
resolvConf: $K/pod-resolv.conf
# The disk is the host's: never evict pods or collect images for disk pressure in a sandbox.
evictionHard: {nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
runtimeRequestTimeout: 15m
serializeImagePulls: false
# The node is Ready at the first status update after the runtime is: every 10 s by default, which
# cost a fresh node up to 10 s.
nodeStatusUpdateFrequency: 2s
# Unchanged statuses are posted this often (the default, 5 min, applies only while the update frequency
# above is left unset; otherwise it follows it: a PATCH of the node every 2 s, written to etcd and sent to
# every watcher).
nodeStatusReportFrequency: 5m
# The defaults (5 requests/s, 5 events/s) throttle pod status updates when dozens of pods start and
# finish together (a fan-out), so operators waiting for a pod's phase see it late.
kubeAPIQPS: 50
kubeAPIBurst: 100
eventRecordQPS: 50
eventBurst: 100
EOF
start kubelet kubelet --config=$K/kubelet-config.yaml --kubeconfig=$K/kubelet.conf \
    --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1

log "all components started; waiting"
set +e
while :; do
    wait -n -p died
    status=$?
    [ -n "${died:-}" ] || continue
    log "FATAL: ${NAMES[$died]:-pid $died} exited with status $status; last lines of its log:"
    tail -n 30 "$LOGS/${NAMES[$died]:-none}.log" 2>/dev/null | sed 's/^/    /'
    trap - TERM INT
    stop_all
    exit 1
done
