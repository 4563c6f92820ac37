"""CNI and pod interfaces: configuration on every node, and what each pod sees on its own eth0."""

from __future__ import annotations

import json
import re
import shlex
from typing import TypedDict

import pytest

from fixtures.cluster import ClusterHandle, nodes_under_test
from fixtures.diagnostics import Diagnose
from fixtures.prestart import Stage
from fixtures.workloads import Backend, PodRef, Workloads, in_cidr
from netconform.probes import ProbePod, run_each

pytestmark = pytest.mark.cni


#: The interface checks look at this many pods at least, so that "unique pod IPs" compares more than a pair.
AT_LEAST = 3


def replicas(cluster: ClusterHandle) -> int:
    """The Deployment's pods: the run's probe pod on every tested node is checked too (it runs anyway, pinned to its
    node, so every node is covered), and the Deployment tops that up to AT_LEAST pods. Each pod of its own had cost
    the run a pod start, which is what a run on a small cluster spends most of its CPU on (#12)."""
    return max(1, AT_LEAST - len(nodes_under_test(cluster)))


def prestart(stage: Stage) -> None:
    """The Deployment and the run's pinned probe pods, requested at the start of the run."""
    stage.workloads.request_server("web", replicas=replicas(stage.cluster))
    if stage.run:
        for node in nodes_under_test(stage.cluster):
            stage.run.request_pinned_client(node)


@pytest.fixture(scope="module")
def web(workloads: Workloads, cluster: ClusterHandle) -> Backend:
    """A Deployment (the replacement check deletes one of its pods)."""
    return workloads.server("web", replicas=replicas(cluster))


@pytest.fixture(scope="module")
def pinned(run_workloads: Workloads, cluster: ClusterHandle) -> tuple[ProbePod, ...]:
    """The run's restricted probe pod on every tested node."""
    return tuple(run_workloads.pinned_client(n) for n in nodes_under_test(cluster))


def probe_pod(workloads: Workloads, pod: PodRef) -> ProbePod:
    return ProbePod(workloads.kube, workloads.namespace, pod.name, pod.ip, pod.node)


def checked(pinned: tuple[ProbePod, ...], workloads: Workloads, pods: tuple[PodRef, ...]) -> list[ProbePod]:
    """The pods the interface checks read: the run's pinned probe pods and the Deployment's `pods`."""
    return [*pinned, *(probe_pod(workloads, p) for p in pods)]


#: What eth0_facts reads, in one exec: eth0's address, eth0's link, the default route.
ETH0_COMMANDS = (
    ["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
    ["ip", "-o", "link", "show", "dev", "eth0"],
    ["ip", "-4", "route", "show", "default"],
)


class Eth0Facts(TypedDict):
    ip: str | None
    mtu: int | None
    default_dev: str | None
    raw: str


def eth0_facts(pod: ProbePod) -> Eth0Facts:
    """What the pod sees from inside: eth0's IPv4 address and MTU, and the device of its default route."""
    addr, link, route = run_each(pod, ETH0_COMMANDS)
    ip = re.search(r"inet (\S+)/", addr)
    mtu = re.search(r"mtu (\d+)", link)
    dev = re.search(r"default via \S+ dev (\S+)", route)
    return {
        "ip": ip.group(1) if ip else None,
        "mtu": int(mtu.group(1)) if mtu else None,
        "default_dev": dev.group(1) if dev else None,
        "raw": (addr + link + route).strip(),
    }


def check_interfaces(diagnose: Diagnose, cluster: ClusterHandle, pods: list[ProbePod]) -> None:
    __tracebackhide__ = True
    cidrs = {n.name: n.pod_cidrs for n in cluster.info.nodes}
    mtus = {}
    for pod in pods:
        facts = eth0_facts(pod)
        repro = pod.repro(["ip", "-o", "addr", "show", "dev", "eth0"])
        diagnose.check(
            facts["ip"] == pod.ip,
            "status.podIP differs from the address on the pod's eth0",
            expected=f"eth0 has {pod.ip}",
            observed=f"eth0 has {facts['ip']}",
            objects=[pod.describe()],
            reproduce=repro,
        )
        if cidrs.get(pod.node):
            diagnose.check(
                in_cidr(pod.ip, cidrs[pod.node]),
                "pod IP outside its node's podCIDR",
                expected=f"{pod.ip} in {', '.join(cidrs[pod.node])}",
                observed=pod.ip,
                objects=[pod.describe(), f"node {pod.node}"],
            )
        diagnose.check(
            facts["default_dev"] == "eth0",
            "the pod's default route does not go through eth0",
            expected="default via ... dev eth0",
            observed=str(facts["raw"]),
            objects=[pod.describe()],
            reproduce=pod.repro(["ip", "-4", "route", "show", "default"]),
        )
        mtus[pod.name] = facts["mtu"]
    ips = [p.ip for p in pods]
    diagnose.check(
        len(set(ips)) == len(ips),
        "two pods share an IP",
        expected="unique pod IPs",
        observed=", ".join(f"{p.name}={p.ip}" for p in pods),
    )
    diagnose.check(
        len(set(mtus.values())) == 1,
        "pods' eth0 MTUs differ",
        expected="one MTU for all test pods",
        observed=", ".join(f"{k}={v}" for k, v in sorted(mtus.items())),
    )


def test_cni_pod_interfaces_match_pod_status(
    diagnose: Diagnose, cluster: ClusterHandle, workloads: Workloads, web: Backend, pinned: tuple[ProbePod, ...]
) -> None:
    """Each pod's eth0 carries status.podIP, inside its node's podCIDR; IPs are unique; one MTU; default via eth0.
    The pods: the Deployment's and the run's probe pod on every tested node (at least 3)."""
    diagnose.involve(workloads.namespace, *web.names)
    check_interfaces(diagnose, cluster, checked(pinned, workloads, web.pods))


@pytest.mark.privileged
def test_cni_pod_mtu_is_not_above_the_node_mtu(
    diagnose: Diagnose,
    cluster: ClusterHandle,
    workloads: Workloads,
    node_clients: Workloads,
    web: Backend,
    pinned: tuple[ProbePod, ...],
    node_name: str,
) -> None:
    """The pods' eth0 MTU is not above the MTU of the node's own interface (the one with its InternalIP)."""
    node = next(n for n in cluster.info.nodes if n.name == node_name)
    host = node_clients.node_client(node_name)
    out, links = run_each(host, [["ip", "-o", "addr", "show"], ["ip", "-o", "link", "show"]])
    dev = next((line.split()[1] for line in out.splitlines() if f"inet {node.internal_ip}/" in line), None)
    diagnose.check(
        dev is not None,
        "no interface carries the node's InternalIP",
        expected=str(node.internal_ip),
        observed=out[-300:],
        objects=[host.describe()],
    )
    link = next((line for line in links.splitlines() if re.match(rf"\d+: {re.escape(str(dev))}[:@]", line)), "")
    found = re.search(r"mtu (\d+)", link)
    if found is None:
        diagnose.fail(
            f"no MTU for {dev}, the interface with the node's InternalIP",
            expected=f"a line for {dev} with its mtu in `ip -o link show`",
            observed=links[-300:],
            objects=[host.describe()],
        )
    node_mtu = int(found.group(1))
    pods = [p for p in checked(pinned, workloads, web.pods) if p.node == node_name]
    if not pods:
        cluster.require("cni", f"no test pod was scheduled on {node_name}, so its pod MTU went unchecked")
    for pod in pods:
        mtu = eth0_facts(pod)["mtu"]
        diagnose.check(
            mtu is not None and mtu <= node_mtu,
            "pod MTU above the node's MTU",
            expected=f"eth0 MTU <= {node_mtu} ({dev} on {node_name})",
            observed=f"eth0 MTU {mtu}",
            objects=[pod.describe(), f"node {node_name}"],
        )


def test_cni_replacement_pod_gets_a_new_ip(
    diagnose: Diagnose, cluster: ClusterHandle, workloads: Workloads, web: Backend, pinned: tuple[ProbePod, ...]
) -> None:
    """Deleting a pod: its replacement gets a different IP, and the interface checks still hold."""
    victim = sorted(web.pods, key=lambda p: p.name)[0]
    workloads.delete_pod(victim.name)
    pods = workloads.wait_ready("app=web", len(web.pods), "Deployment web after a pod deletion")
    new = [p for p in pods if p.name not in web.names]
    diagnose.check(
        len(new) == 1, "no single replacement pod", expected="1 new pod", observed=", ".join(p.name for p in pods)
    )
    diagnose.check(
        new[0].ip != victim.ip,
        "the replacement pod reused the deleted pod's IP",
        expected=f"an IP other than {victim.ip}",
        observed=new[0].ip,
        objects=[f"pod {workloads.namespace}/{new[0].name}"],
    )
    check_interfaces(diagnose, cluster, checked(pinned, workloads, pods))


FILE_MARK = "@@nc-file"


def read_cni_dirs(host: ProbePod, conf_dir: str, bin_dir: str) -> tuple[str, dict[str, str], set[str]]:
    """In one exec from the node: the configuration folder's listing, the text of each configuration file in it,
    and the names of the executables in the plugin folder."""
    conf, bins = shlex.quote(f"/host{conf_dir}"), shlex.quote(f"/host{bin_dir}")
    listing, texts, executables = run_each(
        host,
        [
            f"ls -1 {conf} 2>&1",
            f'for f in {conf}/*; do case "$f" in *.conf|*.conflist|*.json) '
            f'printf \'\\n{FILE_MARK} %s\\n\' "${{f##*/}}"; cat "$f";; esac; done',
            f'for b in {bins}/*; do [ -x "$b" ] && echo "${{b##*/}}"; done; true',
        ],
    )
    parts = re.split(rf"^{FILE_MARK} (.+)\n", texts, flags=re.M)
    files = dict(zip(parts[1::2], parts[2::2], strict=True))
    return listing, files, set(executables.split())


def first_config(listing: list[str]) -> str | None:
    """The file the container runtime uses: the first .conf/.conflist/.json in lexical order."""
    return next((f for f in sorted(listing) if f.endswith((".conf", ".conflist", ".json"))), None)


@pytest.mark.privileged
def test_cni_configuration_is_valid_on_every_node(
    diagnose: Diagnose, cluster: ClusterHandle, node_clients: Workloads, node_name: str
) -> None:
    """The node's first CNI config parses, has a cniVersion, and every plugin type exists in the CNI bin dir."""
    node = next(n for n in cluster.info.nodes if n.name == node_name)
    conf_dir = node.cni_conf_dir or cluster.settings.cni_conf_dir
    bin_dir = node.cni_bin_dir or cluster.settings.cni_bin_dir
    host = node_clients.node_client(node_name)
    listing, files, executables = read_cni_dirs(host, conf_dir, bin_dir)
    first = first_config(listing.split())
    diagnose.check(
        first is not None,
        f"no CNI configuration on node {node_name}",
        expected=f"a .conf or .conflist in {conf_dir}",
        observed=listing.strip() or "(empty)",
        objects=[host.describe()],
        reproduce=host.repro(["ls", "-1", f"/host{conf_dir}"]),
    )
    try:
        conf = json.loads(files.get(str(first), ""))
    except ValueError as e:
        diagnose.fail(
            f"CNI configuration {conf_dir}/{first} on {node_name} does not parse",
            expected="JSON",
            observed=str(e),
            objects=[host.describe()],
            reproduce=host.repro(["cat", f"/host{conf_dir}/{first}"]),
        )
    diagnose.check(
        bool(conf.get("cniVersion")),
        "CNI configuration without cniVersion",
        expected="a cniVersion",
        observed=str(sorted(conf)),
        objects=[f"{conf_dir}/{first} on {node_name}"],
    )
    plugins = conf.get("plugins") or [conf]
    types = [p.get("type") for p in plugins]
    missing = [str(t) for t in types if t not in executables]
    diagnose.check(
        not missing,
        f"CNI plugins named in {first} are missing on {node_name}",
        expected=f"executables {', '.join(map(str, types))} in {bin_dir}",
        observed=f"missing: {', '.join(missing)}",
        objects=[f"{conf_dir}/{first} on {node_name}"],
        reproduce=host.repro(["ls", "-l", f"/host{bin_dir}"]),
    )
