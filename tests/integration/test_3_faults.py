"""The fault catalogue: each fault breaks one thing on the local cluster; exactly the checks of that thing turn red,
quickly, with a message that names the cause; the rest stay green; the cluster is healthy again afterwards."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import browser
import pytest
from faultplugin import FAULT_COMMENT, FAULT_TABLES, add_rule, clear_rules, node_namespaces

from conftest import SuiteRun, kubectl
from netconform.cluster import config, lifecycle, procs


@dataclass
class Ctx:
    kubeconfig: str

    def kubectl(self, *args: str) -> str:
        return kubectl(self.kubeconfig, *args).stdout

    def wait_rollout(self, ns: str, name: str) -> None:
        self.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=90s")


@dataclass
class Fault:
    name: str
    paths: tuple[str, ...]
    inject: Callable[[Ctx], None]
    restore: Callable[[Ctx], None]
    must_fail: tuple[str, ...]
    must_pass: tuple[str, ...]
    says: tuple[str, ...]  # each failure message names the broken thing with one of these
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    #: Tests matching these may fail or pass (the fault legitimately reaches them too).
    may_fail: tuple[str, ...] = ()
    #: Without --require, what every skip must say (a fault that removes a capability).
    skips_say: str = "ingress controller is not running"
    #: xdist's distribution: "load" spreads one module's checks over workers (each its own namespace); a module
    #: whose checks share one lab and run in order (NetworkPolicy) keeps it whole with "loadfile".
    dist: str = "load"
    #: The layer the run's diagnosis must name (None: nothing fails, so there is no diagnosis) and a fragment of
    #: where it must place the break ("" when no one node or server explains it).
    layer: str | None = None
    where: str = ""
    #: Also draw this run's report in Chromium and check the failed cells and the diagnosis are on it.
    drawn: bool = False

    def for_nodes(self, nodes: int) -> Fault:
        """The expectations on a cluster of `nodes` nodes: with one node the node-pair checks are unsupported
        (skipped), so they can be neither the ones that catch a fault nor the ones that must stay green."""
        if nodes >= 2:
            return self

        def keep(fragments: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(f for f in fragments if not f.startswith("test_crossnode") and f not in NODE_PAIR_ONLY)

        return dataclasses.replace(self, must_fail=keep(self.must_fail), must_pass=keep(self.must_pass))


# -- injections -------------------------------------------------------------------------------------------------
def scale_coredns(replicas: int) -> Callable[[Ctx], None]:
    def act(ctx: Ctx) -> None:
        ctx.kubectl("-n", "kube-system", "scale", "deployment/coredns", f"--replicas={replicas}")
        if replicas:
            ctx.wait_rollout("kube-system", "coredns")
        else:
            deadline = time.monotonic() + 60
            while (
                json.loads(ctx.kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json"))[
                    "items"
                ]
                and time.monotonic() < deadline
            ):
                time.sleep(0.5)

    return act


def stop_components(prefix: str, *nodes: str) -> None:
    """Stop the cluster's recorded processes named `<prefix><node>` (on every node when none is named)."""
    names = {f"{prefix}{n}" for n in nodes}
    procs.stop_pids(
        [pid for name, pid in procs.recorded().items() if name.startswith(prefix) and (not names or name in names)],
        deadline_s=3,
    )


def stop_kube_proxy(ctx: Ctx) -> None:
    stop_components("kube-proxy-")
    for ns in node_namespaces():
        chains = procs.run(["iptables", "-w", "-t", "nat", "-S"], netns=ns).stdout
        for line in chains.splitlines():
            if line.startswith("-N KUBE-"):
                procs.run(["iptables", "-w", "-t", "nat", "-F", line.split()[1]], netns=ns)


def start_kube_proxy(ctx: Ctx) -> None:
    """kube-proxy back on every node, and every node's KUBE-SERVICES reprogrammed: a node left without its rules
    would fail later tests far from this fault."""
    lifecycle.ensure_kube_proxy(lifecycle.current())
    waiting = set(node_namespaces())
    deadline = time.monotonic() + 30
    while waiting and time.monotonic() < deadline:
        for ns in sorted(waiting):
            rules = procs.run(["iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"], netns=ns, check=False).stdout
            if rules.count("\n") > 3:
                waiting.discard(ns)
        if waiting:
            time.sleep(0.5)
    assert not waiting, f"kube-proxy did not reprogram KUBE-SERVICES within 30 s on {sorted(waiting)}"


def delete_ingress_controller(ctx: Ctx) -> None:
    ctx.kubectl("-n", "netconform-ingress", "delete", "deployment", "traefik", "--wait=true", "--timeout=60s")
    deadline = time.monotonic() + 30
    while ctx.kubectl("-n", "netconform-ingress", "get", "pods", "-o", "name").strip() and time.monotonic() < deadline:
        time.sleep(0.5)


def restore_ingress_controller(ctx: Ctx) -> None:
    lifecycle.reapply_addon(lifecycle.current(), "traefik")
    ctx.wait_rollout("netconform-ingress", "traefik")


def drop_nodeports(ctx: Ctx) -> None:
    # Before DNAT (raw PREROUTING) for traffic arriving at the node, and in OUTPUT for the node's own localhost.
    for chain in ("PREROUTING", "OUTPUT"):
        for proto in ("tcp", "udp"):
            add_rule("raw", chain, "-p", proto, "--dport", "30000:32767")


def drop_large_packets(ctx: Ctx) -> None:
    """A black hole for large packets on every forwarded path to and from the test servers (port 8080): requests
    and answers of a few hundred bytes pass, every full-size segment is lost (an MTU mismatch without ICMP)."""
    for port in ("--dport", "--sport"):
        add_rule("mangle", "FORWARD", "-p", "tcp", port, "8080", "-m", "length", "--length", "1200:65535")


def remove_route(ctx: Ctx) -> None:
    """On node 2, the route to node 1's pod CIDR."""
    cidr = kubectl(ctx.kubeconfig, "get", "node", "nc-node-1", "-o", "jsonpath={.spec.podCIDR}").stdout
    procs.run(["ip", "-n", "nc-node-2", "route", "del", cidr])


def restore_route(ctx: Ctx) -> None:
    cidr = kubectl(ctx.kubeconfig, "get", "node", "nc-node-1", "-o", "jsonpath={.spec.podCIDR}").stdout
    ip = kubectl(
        ctx.kubeconfig,
        "get",
        "node",
        "nc-node-1",
        "-o",
        "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}",
    ).stdout
    procs.run(["ip", "-n", "nc-node-2", "route", "replace", cidr, "via", ip])


def set_mtu(mtu: int) -> Callable[[Ctx], None]:
    def act(ctx: Ctx) -> None:
        procs.run(["ip", "link", "set", "ncv2", "mtu", str(mtu)])  # node 2's bridge-side veth

    return act


def unroute_acme_solver(ctx: Ctx) -> None:
    """Pebble's DNS answers the test hosts with 127.0.0.1: HTTP-01 validation never reaches the ingress."""
    patch = '[{"op": "replace", "path": "/spec/template/spec/containers/1/command/2", "value": "127.0.0.1"}]'
    ctx.kubectl("-n", "netconform-acme", "patch", "deployment", "pebble", "--type=json", "-p", patch)
    ctx.wait_rollout("netconform-acme", "pebble")


def reroute_acme_solver(ctx: Ctx) -> None:
    lifecycle.reapply_addon(lifecycle.current(), "pebble")
    ctx.wait_rollout("netconform-acme", "pebble")


def stop_policy_engine(*nodes: str) -> Callable[[Ctx], None]:
    """Stop kube-router on these nodes (all when none named): rules it programmed stay, new policies are not."""

    def act(ctx: Ctx) -> None:
        stop_components("kube-router-", *nodes)

    return act


def start_policy_engine(ctx: Ctx) -> None:
    lifecycle.ensure_network_policy(lifecycle.current())


#: The bit kube-router's NetworkPolicy chains set on a packet a policy allows; a pod's chain rejects one without it.
ENGINE_ALLOWED_MARK = "0x10000/0x10000"


def mark_policy_allowed(node: str) -> Callable[[Ctx], None]:
    """Another agent on `node` uses the firewall mark bit the policy engine reads as "allowed by a policy", and sets
    it on every packet that comes from another node for the node's pods, before the engine's chains see it (a mark
    collision). The engine's rules are all in place and it syncs as usual, but the policies of the node's pods no
    longer hold against pods on other nodes. Unlike wiping the engine's chains, which it re-programs on its next
    event, this holds for the whole run.

    Only traffic from other nodes, which passes one pod chain on its way in, the one that takes the bit. A packet
    between two pods of the node is bridged, and kube-router v2.1.0 jumps to a pod's chain twice for it (with and
    without `--physdev-is-bridged`): the first pass clears the bit and the second rejects, so the bit changes nothing
    there (in 3 runs that marked it, no connection within the node went wrong). Marking the node's outgoing traffic
    too let its pods' egress out as well: wrong connections went both ways between the nodes, and what they had in
    common, an end on each node, named neither (one of those runs ended with a diagnosis that placed it nowhere)."""

    def act(ctx: Ctx) -> None:
        cidr = kubectl(ctx.kubeconfig, "get", "node", node, "-o", "jsonpath={.spec.podCIDR}").stdout
        procs.run(
            ["iptables", "-w", "-t", "mangle", "-I", "PREROUTING"]
            + ["-i", config.NODE_UPLINK, "-d", cidr, "-m", "comment", "--comment", FAULT_COMMENT]
            + ["-j", "MARK", "--set-xmark", ENGINE_ALLOWED_MARK],
            netns=node,
        )

    return act


def stop_lb_speakers(ctx: Ctx) -> None:
    """No node announces LoadBalancer addresses any more: MetalLB's speakers are gone from every node (their
    DaemonSet selects no node), and the host forgets the addresses it had learnt (a client new to them)."""
    patch = '{"spec": {"template": {"spec": {"nodeSelector": {"netconform.io/no-such-node": "true"}}}}}'
    ctx.kubectl("-n", "metallb-system", "patch", "daemonset", "speaker", "-p", patch)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = ctx.kubectl(
            "-n", "metallb-system", "get", "pods", "-l", "app.kubernetes.io/component=speaker", "-o", "name"
        )
        if not pods.strip():
            break
        time.sleep(0.5)
    procs.run(["ip", "neigh", "flush", "dev", "ncbr0"], check=False)


def start_lb_speakers(ctx: Ctx) -> None:
    # The patched field is kubectl's, not the add-on's: re-applying the add-on would leave it; remove it.
    ctx.kubectl("-n", "metallb-system", "patch", "daemonset", "speaker", "--type=json", "-p", SPEAKERS_BACK)
    wait_lb_speakers(ctx)


SPEAKERS_BACK = '[{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]'


def wait_lb_speakers(ctx: Ctx) -> None:
    """A ready MetalLB speaker on every node."""
    ctx.kubectl("-n", "metallb-system", "rollout", "status", "daemonset/speaker", "--timeout=90s")
    ready = ctx.kubectl("-n", "metallb-system", "get", "daemonset", "speaker", "-o", "jsonpath={.status.numberReady}")
    assert ready == str(len(node_namespaces())), f"{ready} MetalLB speakers ready, not one per node"


#: A service proxy that ignores loadBalancerSourceRanges: each Service's load-balancer chain sends every source on
#: to the backends, and the proxy's drop rules are wiped.
IGNORE_SOURCE_RANGES = (
    "iptables -w -F KUBE-PROXY-FIREWALL 2>/dev/null; "
    "for c in $(iptables -w -t nat -S | awk '/^-N KUBE-FW-/{print $2}'); do "
    'e="KUBE-EXT-${c#KUBE-FW-}"; iptables -w -t nat -C "$c" -j "$e" 2>/dev/null || '
    'iptables -w -t nat -A "$c" -j "$e"; done'
)


def silence_one_dns_replica(ctx: Ctx) -> None:
    """Two cluster DNS replicas, and on every node the DNS traffic to the second one dropped: it is running and
    listed as ready, and answers nothing."""
    scale_coredns(2)(ctx)
    pods = json.loads(ctx.kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json"))["items"]
    victim = sorted(pods, key=lambda p: p["metadata"]["name"])[-1]["status"]["podIP"]
    for proto in ("udp", "tcp"):
        add_rule("mangle", "FORWARD", "-d", victim, "-p", proto, "--dport", "53")


def revive_dns_replicas(ctx: Ctx) -> None:
    clear_rules()
    scale_coredns(1)(ctx)


CONFLIST = config.nodes(2)[1].cni_conf_dir / "10-netconform.conflist"
SAVED_CONFLIST: list[str] = []


def drop_portmap_on_node_2(ctx: Ctx) -> None:
    """Node 2's CNI configuration without the portmap plugin: pods created there get no hostPort mapping."""
    text = CONFLIST.read_text()
    SAVED_CONFLIST.append(text)
    conf = json.loads(text)
    conf["plugins"] = [p for p in conf["plugins"] if p.get("type") != "portmap"]
    CONFLIST.write_text(json.dumps(conf, indent=2))


def restore_portmap_on_node_2(ctx: Ctx) -> None:
    CONFLIST.write_text(SAVED_CONFLIST.pop())


#: The loops `node_loops` started, until `stop_loops`.
FLUSHER: list[subprocess.Popen[bytes]] = []


def node_loops(script: str, *nodes: str) -> Callable[[Ctx], None]:
    """Run `script` (one pass) every 0.1 s in these nodes' network namespaces (every node's when none is named)
    until `stop_loops`."""

    def act(ctx: Ctx) -> None:
        loop = f"while true; do {script}; sleep 0.1; done"
        for ns in nodes or node_namespaces():
            argv, env = procs.in_node(ns, ["sh", "-c", loop])  # the node's iptables, as its proxy uses them
            FLUSHER.append(subprocess.Popen(argv, env=env))

    return act


def stop_loops() -> None:
    while FLUSHER:
        proc = FLUSHER.pop()
        proc.kill()
        proc.wait(10)


def stop_loops_and_resync_kube_proxy(ctx: Ctx) -> None:
    """Stop the loops, and restart kube-proxy everywhere so that it writes every chain again."""
    stop_loops()
    stop_components("kube-proxy-")
    start_kube_proxy(ctx)


#: The bridge no longer sends a frame back out of the port it came in on (every pod's port, also new ones).
HAIRPIN_OFF = (
    "for p in $(ip -o link show master cni0 | awk -F': ' '{print $2}' | cut -d@ -f1); "
    "do bridge link set dev $p hairpin off; done"
)


def hairpin_back_on(ctx: Ctx) -> None:
    """Stop the loops and set hairpin mode again on every pod's bridge port, as the CNI plugin had set it."""
    stop_loops()
    for ns in node_namespaces():
        procs.run(["sh", "-c", HAIRPIN_OFF.replace("hairpin off", "hairpin on")], netns=ns)


def nothing(ctx: Ctx) -> None:
    pass


def clear(ctx: Ctx) -> None:
    clear_rules()


CROSS = ("nc-node-1-to-nc-node-2", "nc-node-2-to-nc-node-1")
#: Id fragments that only node-pair checks (test_crossnode.py) carry.
NODE_PAIR_ONLY = ("-Cluster]", "-Local]")
FAULTS = [
    Fault(
        "coredns-scaled-to-zero",
        ("conformance/test_dns.py", "conformance/test_clusterip.py", "conformance/test_headless.py"),
        scale_coredns(0),
        scale_coredns(1),
        must_fail=(
            "test_dns_service_name_resolves_to_clusterip",
            "test_dns_cluster_dns_service_has_ready_endpoints",
            "test_dns_srv",
            "test_dns_pod_hostname",
            "test_dns_policy_none",
            "test_dns_every_replica",
            "test_headless_name_resolves",
            "test_headless_publish_not_ready_addresses",
        ),
        must_pass=(
            "test_clusterip",
            "test_dns_pod_resolv_conf",
            "test_headless_service_has_no_cluster_ip",
            "test_headless_endpoints_equal",
        ),
        says=("DNS", "kube-dns"),
        # Every headless check that resolves its name.
        may_fail=("test_headless",),
        layer="cluster DNS",
    ),
    Fault(
        "kube-proxy-stopped-and-flushed",
        (
            "conformance/test_clusterip.py",
            "conformance/test_clusterip_terminating.py",
            "conformance/test_nodeport.py",
            "conformance/test_crossnode.py",
        ),
        stop_kube_proxy,
        start_kube_proxy,
        must_fail=(
            "test_clusterip_spreads",
            "test_clusterip_converges",
            "test_clusterip_session_affinity",
            "test_clusterip_udp",
            "test_clusterip_one_port_number",
            "test_clusterip_internal_traffic_policy",
            "test_clusterip_not_ready_pod",
            "test_clusterip_hairpin",
            "test_clusterip_carries",
            "test_clusterip_terminating",
            "test_nodeport_answers",
            "test_nodeport_udp",
            "test_nodeport_carries",
            "test_crossnode_clusterip",
            "-Cluster]",
        ),
        must_pass=("test_crossnode_pod_to_pod", "test_clusterip_endpointslices", "test_nodeport_is_allocated"),
        says=("ClusterIP", "NodePort"),
        # externalTrafficPolicy Local: nodes with the backend must answer (they fail), the others must not
        # (they rightly stay silent with no proxy at all).
        may_fail=("-Local]",),
        layer="service proxy",
    ),
    Fault(
        "ingress-controller-deleted",
        ("conformance/test_ingress.py",),
        delete_ingress_controller,
        restore_ingress_controller,
        must_fail=("test_ingress",),
        must_pass=(),
        says=("ingress controller",),
        args=("--require=ingress",),
        layer="ingress controller",
    ),
    Fault(
        "ingress-controller-deleted-without-require",
        ("conformance/test_ingress.py",),
        delete_ingress_controller,
        restore_ingress_controller,
        must_fail=(),
        must_pass=(),
        says=(),
    ),
    Fault(
        "one-backend-blackholed",
        ("conformance/test_clusterip.py", "conformance/test_crossnode.py"),
        nothing,
        clear,
        must_fail=("test_clusterip_spreads_requests_over_every_replica",),
        must_pass=("test_crossnode_pod_to_pod", "test_clusterip_endpointslices", "test_clusterip_hairpin"),
        says=("never answered: web-", "unanswered"),
        # The rule stays for the rest of the run: later checks of the same worker through the web replicas fail
        # when their requests land on the black-holed one.
        may_fail=(
            "test_clusterip_converges",
            "test_clusterip_carries",
            "test_clusterip_udp",
            "test_clusterip_session_affinity",
            "test_clusterip_one_port_number",
            "test_clusterip_internal_traffic_policy",
        ),
        args=("-p", "faultplugin"),
        env={"NETCONFORM_FAULT": "blackhole-backend"},
        layer="service proxy",
    ),
    Fault(
        "pods-killed-without-grace",
        ("conformance/test_clusterip.py", "conformance/test_clusterip_terminating.py"),
        nothing,
        nothing,
        must_fail=("test_clusterip_terminating_pod",),
        must_pass=("test_clusterip_spreads", "test_clusterip_not_ready", "test_clusterip_hairpin"),
        says=("terminating",),
        args=("-p", "faultplugin"),
        env={"NETCONFORM_FAULT": "no-graceful-termination"},
        layer="service proxy",
    ),
    Fault(
        "nodeport-range-dropped",
        ("conformance/test_nodeport.py", "conformance/test_clusterip.py"),
        drop_nodeports,
        clear,
        must_fail=("test_nodeport_answers", "test_nodeport_udp", "test_nodeport_carries"),
        must_pass=("test_clusterip", "test_nodeport_is_allocated"),
        says=("NodePort",),
        layer="NodePort",
    ),
    Fault(
        "expired-tls-secret",
        ("conformance/test_tls.py",),
        nothing,
        nothing,
        must_fail=("test_tls_own_certificate",),
        must_pass=("test_tls_default_certificate",),
        says=("expired: valid until",),
        args=("-p", "faultplugin"),
        env={"NETCONFORM_FAULT": "expired-tls"},
        layer="ingress TLS",
    ),
    Fault(
        "acme-solver-path-unrouted",
        ("conformance/test_certmanager.py",),
        unroute_acme_solver,
        reroute_acme_solver,
        must_fail=("test_certmanager_acme",),
        must_pass=("test_certmanager_ca_issuer",),
        says=("Challenge",),
        layer="certificate issuance",
    ),
    Fault(
        "route-to-node-1-pods-removed-on-node-2",
        ("conformance/test_crossnode.py",),
        remove_route,
        restore_route,
        must_fail=tuple(f"pod_to_pod_keeps_the_client_ip[{p}-{proto}]" for p in CROSS for proto in ("tcp", "udp"))
        + tuple(f"pod_to_pod_icmp[{p}]" for p in CROSS),
        must_pass=("[nc-node-1-to-nc-node-1", "[nc-node-2-to-nc-node-2"),
        says=("nc-node-1", "nc-node-2"),
        may_fail=CROSS,
        layer="pod network",
        where="between nc-node-1 and nc-node-2",
        drawn=True,
    ),
    Fault(
        "policy-engine-stopped-on-node-2",
        ("conformance/test_networkpolicy.py",),
        stop_policy_engine("nc-node-2"),
        start_policy_engine,
        # x/b, y/a, y/c and z/b run on nc-node-2: policies that isolate them are not enforced there.
        must_fail=("[default-deny-incoming]", "[allow-by-namespace-selector]", "test_networkpolicy_update_from"),
        must_pass=("[egress-to-a-cidr]",),  # it isolates x/a only, on nc-node-1
        says=("nc-node-2",),
        may_fail=("test_networkpolicy",),
        dist="loadfile",
        layer="NetworkPolicy",
        where="nc-node-2",
    ),
    Fault(
        "policy-allowed-mark-set-on-node-2",
        ("conformance/test_networkpolicy.py",),
        mark_policy_allowed("nc-node-2"),
        clear,
        # x/b, y/a, y/c and z/b run on nc-node-2: policies that isolate them let in pods of nc-node-1.
        must_fail=(
            "[default-deny-incoming]",
            "[allow-by-namespace-selector]",
            "test_networkpolicy_applies_to_pods_on_another_node",
        ),
        must_pass=("test_networkpolicy_default_deny_egress",),  # egress is enforced where it leaves, untouched
        says=("to a pod on node nc-node-2",),
        may_fail=("test_networkpolicy",),
        dist="loadfile",
        layer="NetworkPolicy",
        where="nc-node-2",
    ),
    Fault(
        "policy-engine-stopped-everywhere",
        ("conformance/test_networkpolicy.py",),
        stop_policy_engine(),
        start_policy_engine,
        must_fail=("test_networkpolicy",),
        must_pass=(),
        says=("NetworkPolicy is not enforced",),
        args=("--require=networkpolicy",),
        dist="loadfile",
        layer="NetworkPolicy",
    ),
    Fault(
        "policy-engine-stopped-everywhere-without-require",
        ("conformance/test_networkpolicy.py",),
        stop_policy_engine(),
        start_policy_engine,
        must_fail=(),
        must_pass=(),
        says=(),
        skips_say="NetworkPolicy is not enforced",
        dist="loadfile",
    ),
    Fault(
        "lb-speakers-stopped-everywhere",
        ("conformance/test_loadbalancer.py", "conformance/test_clusterip.py", "conformance/test_nodeport.py"),
        stop_lb_speakers,
        start_lb_speakers,
        must_fail=(
            "test_loadbalancer_gets_an_address_that_answers",
            "test_loadbalancer_local_policy_keeps_the_client_address",
            "test_loadbalancer_routes_hosts_to_backends",
            "test_loadbalancer_carries",  # its runner leg
        ),
        # Pods reach the address through their own node's proxy; the runner is kept out by the ranges anyway.
        must_pass=("test_loadbalancer_source_ranges", "test_clusterip", "test_nodeport"),
        says=("announces",),
        layer="LoadBalancer",
    ),
    Fault(
        "lb-source-ranges-ignored",
        ("conformance/test_loadbalancer.py",),
        node_loops(IGNORE_SOURCE_RANGES),
        stop_loops_and_resync_kube_proxy,
        must_fail=("test_loadbalancer_source_ranges_keep_other_sources_out",),
        must_pass=("test_loadbalancer_gets_an_address_that_answers", "test_loadbalancer_local_policy"),
        says=("outside loadBalancerSourceRanges",),
        layer="LoadBalancer",
    ),
    Fault(
        "one-dns-replica-silent",
        ("conformance/test_dns.py",),
        silence_one_dns_replica,
        revive_dns_replicas,
        must_fail=("test_dns_every_replica_answers",),
        must_pass=("test_dns_pod_resolv_conf", "test_dns_cluster_dns_service_has_ready_endpoints"),
        says=("replica coredns-", "cluster DNS"),
        # Lookups through the Service reach the silent replica about half the time (dig tries once).
        may_fail=("test_dns_service_name", "test_dns_srv", "test_dns_pod_hostname", "test_dns_policy_none"),
        layer="cluster DNS",
        where="coredns-",
    ),
    Fault(
        "portmap-removed-on-node-2",
        ("conformance/test_nodeport.py",),
        drop_portmap_on_node_2,
        restore_portmap_on_node_2,
        must_fail=("test_nodeport_host_port_answers_on_its_node[nc-node-2]",),
        must_pass=(
            "test_nodeport_host_port_answers_on_its_node[nc-node-1]",
            "test_nodeport_answers",
            "test_nodeport_udp",
        ),
        says=("hostPort",),
        layer="hostPort",
        where="nc-node-2",
    ),
    Fault(
        "large-packets-dropped",
        (
            "conformance/test_crossnode.py",
            "conformance/test_clusterip.py",
            "conformance/test_clusterip_terminating.py",
            "conformance/test_nodeport.py",
            "conformance/test_loadbalancer.py",
            "conformance/test_ingress.py",
        ),
        drop_large_packets,
        clear,
        must_fail=(
            # (a pair of one node is a pod talking to itself: no packet leaves it)
            *(f"test_crossnode_path_mtu[{p}]" for p in CROSS),
            "test_clusterip_carries_1_mib",
            "test_nodeport_carries_1_mib",
            "test_loadbalancer_carries_1_mib",
            "test_ingress_carries_1_mib",
        ),
        must_pass=(
            "test_crossnode_pod_to_pod",
            "test_clusterip_spreads",
            "test_nodeport_answers",
            "test_loadbalancer_gets_an_address",
            "test_ingress_routes_each_host",
        ),
        says=("1 MiB", "open connection"),
        # Its slow upload to port 8080 is full-size segments too.
        may_fail=("test_clusterip_terminating_pod",),
        layer="path MTU",
    ),
    Fault(
        "session-affinity-ignored",
        ("conformance/test_clusterip.py",),
        nothing,
        stop_loops_and_resync_kube_proxy,
        must_fail=("test_clusterip_session_affinity_keeps", "test_clusterip_session_affinity_lapses"),
        must_pass=(
            "test_clusterip_spreads",
            "test_clusterip_udp",
            "test_clusterip_hairpin",
            "test_clusterip_not_ready",
        ),
        says=("session affinity",),
        args=("-p", "faultplugin"),
        env={"NETCONFORM_FAULT": "no-session-affinity"},
        # The module whole on one worker: its Services are programmed long before these checks start, so the rules
        # the fault deletes at their start are not written back during them.
        dist="loadfile",
        layer="service proxy",
    ),
    Fault(
        "hairpin-off",
        ("conformance/test_clusterip.py",),
        node_loops(HAIRPIN_OFF),
        hairpin_back_on,
        must_fail=("test_clusterip_hairpin",),
        must_pass=("test_clusterip_spreads", "test_clusterip_udp", "test_clusterip_session_affinity"),
        says=("hairpin",),
        layer="service proxy",
    ),
    Fault(
        "node-2-veth-mtu-lowered",
        ("conformance/test_crossnode.py",),
        set_mtu(1280),
        set_mtu(1500),
        must_fail=tuple(f"test_crossnode_path_mtu[{p}]" for p in CROSS),
        must_pass=("[nc-node-1-to-nc-node-1", "[nc-node-2-to-nc-node-2", "pod_to_pod_icmp"),
        says=("full-size", "1 MiB"),
        may_fail=CROSS,
        layer="path MTU",
        where="nc-node-2",
    ),
]


def healthy(ctx: Ctx) -> None:
    """The cluster is back: API ready, DNS and ingress rolled out, kube-proxy running, no fault rules left."""
    ctx.kubectl("get", "--raw", "/readyz")
    ctx.wait_rollout("kube-system", "coredns")
    ctx.wait_rollout("netconform-ingress", "traefik")
    if (lifecycle.read_meta() or {}).get("loadbalancer") == "metallb":
        wait_lb_speakers(ctx)
    assert not lifecycle.ensure_kube_proxy(lifecycle.current()), "kube-proxy was not running"
    assert not lifecycle.ensure_network_policy(lifecycle.current()), "the NetworkPolicy engine was not running"
    for ns in node_namespaces():
        for table in FAULT_TABLES:
            assert FAULT_COMMENT not in procs.run(["iptables", "-w", "-t", table, "-S"], netns=ns).stdout


def matching(run: SuiteRun, fragments: tuple[str, ...]) -> dict[str, str]:
    return {t: o for t, o in run.outcomes.items() if any(f in t for f in fragments)}


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_is_detected_by_exactly_the_expected_checks(
    fault: Fault, kubeconfig, run_suite, record_property, tmp_path
):
    if (
        fault.name.startswith(("route-", "node-2-", "policy-engine-stopped-on-node-2", "portmap-removed-on-node-2"))
        and "nc-node-2" not in node_namespaces()
    ):
        pytest.skip("needs a cluster with 2 nodes")
    fault = fault.for_nodes(len(node_namespaces()))
    ctx = Ctx(kubeconfig)
    fault.inject(ctx)
    try:
        run = run_suite(*fault.paths, *fault.args, f"--dist={fault.dist}", workers=6, env=fault.env)
    finally:
        fault.restore(ctx)
    healthy(ctx)
    failed = run.ids("failed") | run.ids("error")
    slowest_failure = max((run.times[t] for t in failed), default=0.0)
    record_property("suite_seconds", f"{run.seconds:.1f}")
    record_property("slowest_failing_check_seconds", f"{slowest_failure:.1f}")
    print(
        f"{fault.name}: {len(failed)} failed, {len(run.ids('passed'))} passed, {len(run.ids('skipped'))} skipped; "
        f"suite {run.seconds:.1f}s; slowest failing check {slowest_failure:.1f}s"
    )
    assert run.outcomes, run.output
    for frag in fault.must_fail:
        hit = matching(run, (frag,))
        assert hit, f"no test matches {frag!r}: {sorted(run.outcomes)}"
        assert all(o in ("failed", "error") for o in hit.values()), f"{fault.name} not detected by {frag}: {hit}"
    for frag in fault.must_pass:
        hit = matching(run, (frag,))
        assert hit, f"no test matches {frag!r}"
        assert all(o == "passed" for o in hit.values()), (
            f"{fault.name} broke checks it should not: {hit}\n"
            + "\n".join(run.messages[t] for t, o in hit.items() if o != "passed")
        )
    unexpected = {t for t in failed if not any(f in t for f in fault.must_fail + fault.may_fail)}
    assert not unexpected, f"{fault.name} also failed: " + "\n\n".join(f"{t}: {run.messages[t]}" for t in unexpected)
    for t in failed:
        assert any(w in run.messages[t] for w in fault.says), f"{t} does not name the cause: {run.messages[t]}"
        assert run.times[t] <= 60, f"{t} took {run.times[t]:.0f}s to fail"
    if not fault.must_fail:  # without --require a missing controller is a skip that says why
        skipped = run.ids("skipped")
        assert not failed and skipped and all(fault.skips_say in run.messages[t] for t in skipped), run.output
    finding = run.diagnosis()
    if fault.layer is None:
        assert finding is None, f"a diagnosis where nothing failed: {finding}"
    else:
        assert finding is not None and finding["layer"] == fault.layer, f"the diagnosis names {finding}"
        assert fault.where in str(finding["where"]), f"the diagnosis places it at {finding['where']!r}: {finding}"
    if fault.drawn:
        drawn = browser.measure(run.report_dir / "report.html", tmp_path)
        assert drawn["failed_cells"]["drawn"] >= 2 and drawn["failures"]["count"] >= len(failed), drawn
        assert drawn["diagnosis"]["drawn"] == 1, drawn


@pytest.mark.timeout(900)
def test_whole_suite_with_dns_and_kube_proxy_broken_ends_within_twice_the_healthy_time(
    kubeconfig, run_suite, measured, record_property
):
    """Fail fast: with DNS and kube-proxy both broken, the whole suite ends within 2x its healthy wall time."""
    healthy_s = measured.get("healthy_suite_seconds")
    if healthy_s is None:
        healthy_s = run_suite().seconds
    ctx = Ctx(kubeconfig)
    scale_coredns(0)(ctx)
    stop_kube_proxy(ctx)
    try:
        run = run_suite()
    finally:
        start_kube_proxy(ctx)
        scale_coredns(1)(ctx)
    healthy(ctx)
    failed = run.ids("failed") | run.ids("error")
    record_property("healthy_seconds", f"{healthy_s:.1f}")
    record_property("broken_seconds", f"{run.seconds:.1f}")
    print(f"healthy {healthy_s:.1f}s, DNS+kube-proxy broken {run.seconds:.1f}s, {len(failed)} failed")
    assert len(failed) >= 20, f"only {len(failed)} checks noticed: {sorted(failed)}"
    finding = run.diagnosis()  # the proxy is lower than DNS (whose Service it serves): it is named, DNS listed
    assert finding is not None and finding["layer"] == "service proxy" and "cluster DNS" in finding["also"], finding
    assert run.seconds <= 2 * healthy_s, f"broken suite took {run.seconds:.0f}s, healthy {healthy_s:.0f}s"
