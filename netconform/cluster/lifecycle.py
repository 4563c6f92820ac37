"""`cluster up`, `down` and `status`: one code path for 1 to 4 nodes."""

from __future__ import annotations

import json
import shutil
import signal
import string
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from . import (
    build,
    cgroups,
    config,
    controlplane,
    files,
    hostsys,
    images,
    lock,
    metallb,
    network,
    node,
    paths,
    pki,
    preflight,
    procs,
    timings,
    xtables,
)
from .config import Node

ADDONS = Path(__file__).parent / "addons"
KUBECTL_TIMEOUT_S = 120


class Stages:
    """Prints each stage with the time elapsed since `up` began and, when recorded, how long it took last time
    (`timings`); `record` keeps this run's times for the next."""

    def __init__(self, out: Callable[[str], None], prefix: str = "") -> None:
        self.t0 = time.monotonic()
        self.out = out
        self.prefix = prefix
        self.expected = timings.load()
        self.seen: dict[str, float] = {}

    def __call__(self, msg: str) -> None:
        elapsed = time.monotonic() - self.t0
        if msg.startswith(" "):  # a detail of the stage above (what `down` removed, ...): not a stage of its own
            self.out(f"[{elapsed:6.1f}s] {msg}")
            return
        key = self.prefix + timings.stage_key(msg)
        last = self.expected.get(key)
        self.seen[key] = elapsed
        self.out(f"[{elapsed:6.1f}s] {msg}" + (f" (last time at {last:.1f}s)" if last is not None else ""))

    def building(self, name: str, version: str) -> Callable[[], float]:
        """Say a cold build starts, with the last build's time, and keep saying how far it is until the returned
        function is called (it returns the build's seconds)."""
        key = f"build {name}"
        last = self.expected.get(key)
        started = time.monotonic()
        self(
            f"building {name} {version} from Go modules: "
            + (f"last build took {last:.0f}s" if last else "cold, minutes")
        )
        done = threading.Event()

        def beat() -> None:
            while not done.wait(30):
                took = time.monotonic() - started
                self.out(
                    f"[{time.monotonic() - self.t0:6.1f}s]   {name}: {took:.0f}s"
                    + (f" of about {last:.0f}s" if last else "")
                )

        threading.Thread(target=beat, daemon=True).start()

        def finish() -> float:
            done.set()
            took = time.monotonic() - started
            self.seen[key] = took
            return took

        return finish

    def record(self) -> None:
        timings.save(self.seen)


@dataclass
class Cluster:
    nodes: list[Node]
    bins: Path
    kubeconfig: Path

    @property
    def ranges(self) -> config.Ranges:
        return self.nodes[0].ranges

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bins / "kubectl"), f"--kubeconfig={self.kubeconfig}", "--request-timeout=30s"]
        argv += [f"--cache-dir={paths.STATE / 'kubectl-cache'}", *args]  # not root's ~/.kube: gone at `down`
        try:
            proc = subprocess.run(
                argv, input=input, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, env=procs.component_env()
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"kubectl {' '.join(args)} did not finish within {KUBECTL_TIMEOUT_S} s") from None
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc


def _meta() -> Path:
    return paths.STATE / "cluster.json"


def read_meta() -> dict[str, object] | None:
    try:
        return json.loads(_meta().read_text())
    except (OSError, ValueError):
        return None


def healthy() -> bool:
    """Every recorded process is alive (a cheap check; `status` asks the API too)."""
    rec = procs.recorded()
    return bool(rec) and read_meta() is not None and all(procs.alive(p) for p in rec.values())


NETWORK_POLICY_ENGINES = ("kube-router", "none")
LOADBALANCERS = ("metallb", "none")


class ClusterInUse(UsageError):
    """A running cluster of another shape: replacing it needs --recreate."""


class HostNotReady(UsageError):
    """The host preflight found something that stops the cluster (before anything was built or started)."""


def shape(meta: dict[str, object]) -> str:
    ranges = config.Ranges.from_meta(meta)
    return (
        f"{meta.get('nodes')} node(s), Kubernetes {meta.get('kubernetes_version')}, network policy "
        f"{meta.get('network_policy')}, load balancer {meta.get('loadbalancer')}, node subnet {ranges.node_subnet}, "
        f"pods {ranges.pod_cidr}, Services {ranges.service_cidr}"
    )


def up(
    nodes: int = 1,
    kubernetes_version: str = build.DEFAULT_KUBERNETES_VERSION,
    network_policy: str = "kube-router",
    loadbalancer: str = "metallb",
    out: Callable[[str], None] = print,
    recreate: bool = False,
    wait: bool = True,
    retain: bool = False,
    ranges: config.Ranges = config.DEFAULT_RANGES,
) -> Path:
    """Bring the cluster up (or find it running with the same shape); return the admin kubeconfig path.

    One command at a time (`lock`); a running cluster of another shape is replaced only with `recreate`; the host
    is checked before anything is built; a failed or interrupted start removes what it started unless `retain`."""
    if network_policy not in NETWORK_POLICY_ENGINES:
        raise ValueError(f"--network-policy must be one of {', '.join(NETWORK_POLICY_ENGINES)}, not {network_policy!r}")
    if loadbalancer not in LOADBALANCERS:
        raise ValueError(f"--loadbalancer must be one of {', '.join(LOADBALANCERS)}, not {loadbalancer!r}")
    if paths.problems():
        raise UsageError("; ".join(paths.problems()))
    say = Stages(out, prefix=f"up {nodes} node(s): ")
    with lock.held(wait=wait, say=say), interrupts_as_keyboard_interrupt():
        return _up(nodes, kubernetes_version, network_policy, loadbalancer, say, recreate, retain, ranges)


@contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM during `up` unwinds like Ctrl-C, so what was started is removed either way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _up(
    nodes: int,
    kubernetes_version: str,
    network_policy: str,
    loadbalancer: str,
    say: Stages,
    recreate: bool,
    retain: bool,
    ranges: config.Ranges,
) -> Path:
    meta = read_meta()
    want: dict[str, object] = {
        "nodes": nodes,
        "kubernetes_version": kubernetes_version,
        "network_policy": network_policy,
        "loadbalancer": loadbalancer,
        **ranges.as_meta(),
    }
    running = meta is not None and healthy()
    same_ranges = meta is not None and config.Ranges.from_meta(meta) == ranges
    if meta and running and same_ranges and all(meta.get(k) == v for k, v in want.items() if k not in ranges.OPTIONS):
        say(f"cluster already running ({nodes} node(s)); kubeconfig {paths.KUBECONFIG}")
        return paths.KUBECONFIG
    if meta and running and not recreate:
        raise ClusterInUse(
            f"a local cluster is running with {shape(meta)}; this asks for {shape(want)}. Add --recreate to replace "
            "it (whoever uses it loses it), or run `netconform cluster down` first"
        )
    if paths.STATE.exists() and any(paths.STATE.iterdir()) and not (paths.STATE / paths.MARKER).exists():
        raise UsageError(
            f"{paths.STATE} exists and was not created by `netconform cluster up`; choose another "
            "NETCONFORM_STATE or empty it yourself"
        )
    if meta or procs.recorded() or network.existing_netns() or Path(config.RUN).exists():
        say("cleaning up state of an earlier cluster")
        _down(out=lambda m: say("  " + m))
    found = preflight.problems(ranges)
    if found:
        raise HostNotReady(
            "the host is not ready for the local cluster (nothing was built or started):\n  " + "\n  ".join(found)
        )
    for note in preflight.notes():
        say(f"note: {note}")
    node_list = config.nodes(nodes, ranges)
    recipes = [
        build.kubernetes_recipe(kubernetes_version),
        build.etcd_recipe(),
        build.coredns_recipe(),
        build.traefik_recipe(),
        build.pebble_recipe(),
        build.cert_manager_recipe(),
        build.echo_recipe(),
    ]
    if network_policy == "kube-router":
        recipes.append(build.kube_router_recipe())
    if loadbalancer == "metallb":
        recipes.append(build.metallb_recipe())
    bins = {}
    for r in recipes:
        if build.is_built(r):
            bins[r.name] = build.build(r, say=lambda m: None)
            continue
        finish = say.building(r.name, r.version)
        try:
            bins[r.name] = build.build(r, say=lambda m: None)
        finally:
            took = finish()
        say(f"built {r.name} in {took:.0f}s")
    say("binaries ready")
    archives = images.build_archives(bins, say)
    say("images ready")
    k8s = bins["kubernetes"]
    cluster = Cluster(node_list, k8s, paths.KUBECONFIG)
    try:
        _start(cluster, bins, archives, say, network_policy, loadbalancer)
    except BaseException as e:
        what = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        if retain:
            say(f"up {what}; --retain: what it started is left as it is; logs in {paths.LOGS}")
            raise
        kept = paths.CACHE / "logs" / "last-failed-up"
        shutil.rmtree(kept, ignore_errors=True)
        if paths.LOGS.exists():
            shutil.copytree(paths.LOGS, kept)
        say(f"up {what}; removing what it started (--retain keeps it); its logs are kept in {kept}")
        _down(out=lambda m: say("  " + m))
        raise
    _meta().write_text(
        json.dumps(
            {
                **want,
                "bins": str(k8s),
                "kubeconfig": str(paths.KUBECONFIG),
                "nodes_detail": [{"name": n.name, "ip": n.ip} for n in node_list],
            }
        )
    )
    say(f"cluster ready: {len(node_list)} node(s); kubeconfig {paths.KUBECONFIG}")
    say.record()
    return paths.KUBECONFIG


def _start(
    cluster: Cluster,
    bins: dict[str, Path],
    archives: tuple[Path, Path],
    say: Stages,
    network_policy: str,
    loadbalancer: str,
) -> None:
    k8s = bins["kubernetes"]
    for d in (paths.STATE, config.RUN):
        files.private_dir(d)
        (d / paths.MARKER).write_text("created by `netconform cluster up`; `netconform cluster down` removes it\n")
    paths.LOGS.mkdir(parents=True, exist_ok=True)
    network.create_bridge(cluster.ranges)
    for n in cluster.nodes:
        network.create_node_netns(n)
    say("network: bridge and node namespaces")
    say(f"  the nodes' iptables: {xtables.prepare()}")
    clients = {
        "admin": ("netconform-admin", ("system:masters",)),
        "controller-manager": ("system:kube-controller-manager", ()),
        "scheduler": ("system:kube-scheduler", ()),
        "kube-proxy": ("system:kube-proxy", ()),
        "kube-router": ("netconform:kube-router", ()),
    }
    clients.update({f"kubelet-{n.name}": (f"system:node:{n.name}", ("system:nodes",)) for n in cluster.nodes})
    p = pki.create(
        paths.STATE / "pki",
        (cluster.ranges.api_service_ip, "127.0.0.1", cluster.ranges.host_ip),
        config.CLUSTER_DOMAIN,
        clients,
    )
    server = f"https://{cluster.ranges.host_ip}:{config.API_PORT}"
    ca = p.ca.cert.read_bytes()
    kcfg: dict[str, Path] = {}
    for stem, (cn, _) in clients.items():
        kcfg[stem] = paths.STATE / f"{stem}.kubeconfig"
        files.write_private(kcfg[stem], pki.kubeconfig(server, ca, p.clients[stem], cn))
    resolv = paths.STATE / "resolv.conf"
    # Pods with dnsPolicy Default get this file: it points nowhere outside the cluster.
    resolv.write_text("nameserver 127.0.0.1\n")
    say("PKI and kubeconfigs")
    controlplane.start_etcd(bins["etcd"], p)
    names = images.image_names()
    for n in cluster.nodes:
        node.start_containerd(n, names["pause"])
    controlplane.start_apiserver(k8s, p, cluster.ranges)
    with ThreadPoolExecutor(max_workers=len(cluster.nodes)) as pool:

        def prep(n: Node) -> None:
            node.wait_containerd(n)
            node.import_images(n, archives[0])
            if n == cluster.nodes[0]:  # add-ons are pinned to the first node
                node.import_images(n, archives[1])

        list(pool.map(prep, cluster.nodes))
    say("containerd running, images imported on every node")
    _wait_api(cluster)
    say("kube-apiserver ready")
    controlplane.start_controller_manager(k8s, p, kcfg["controller-manager"], cluster.ranges)
    controlplane.start_scheduler(k8s, kcfg["scheduler"])
    hostsys.save()  # before the first kubelet changes them
    for n in cluster.nodes:
        serving = pki.kubelet_serving(p, n.name, n.ip)
        node.start_kubelet(n, k8s, kcfg[f"kubelet-{n.name}"], node.kubelet_config(n, serving, p.ca.cert, resolv))
        node.start_kube_proxy(n, k8s, kcfg["kube-proxy"])
    _apply(cluster, "rbac.yaml")
    pod_cidrs = _wait_pod_cidrs(cluster)
    for n in cluster.nodes:
        f = node.write_cni(n, pod_cidrs[n.name])
        cluster.kubectl(
            "annotate",
            "--overwrite",
            "node",
            n.name,
            f"netconform.io/cni-conf-dir={f.parent}",
            "netconform.io/cni-bin-dir=/usr/lib/cni",
        )
    network.route_pod_cidrs(cluster.nodes, pod_cidrs)
    if network_policy == "kube-router":
        # Once its ClusterRole exists and its node is registered: it exits when it cannot find its node.
        for n in cluster.nodes:
            node.start_network_policy(n, bins["kube-router"], kcfg["kube-router"])
    say("nodes registered; pod CIDRs routed: " + ", ".join(f"{k}={v}" for k, v in sorted(pod_cidrs.items())))
    for addon in ADDON_FILES:
        _apply(cluster, addon, **_images_values())
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=netconform-cluster",
        "-f",
        "-",
        input=cert_manager_crds(bins["cert-manager"]),
    )
    if loadbalancer == "metallb":
        _apply_metallb(cluster)
    _wait(cluster, "nodes Ready", lambda: _all_nodes_ready(cluster), 90)
    say("nodes Ready")
    _wait(cluster, "CoreDNS ready", lambda: _rollout_done(cluster, "kube-system", "coredns"), 90)
    _wait(cluster, "Traefik ready", lambda: _rollout_done(cluster, "netconform-ingress", "traefik"), 90)
    say("CoreDNS and ingress controller ready")
    _wait(cluster, "cert-manager ready", lambda: _rollout_done(cluster, "cert-manager", "cert-manager"), 90)
    _wait(cluster, "Pebble ready", lambda: _rollout_done(cluster, "netconform-acme", "pebble"), 90)
    say("cert-manager and the ACME test server ready")
    if loadbalancer == "metallb":
        _wait(cluster, "MetalLB ready", lambda: _metallb_ready(cluster), 90)
        say("MetalLB ready")


ADDON_FILES = ("coredns.yaml", "traefik.yaml", "cert-manager.yaml", "pebble.yaml", "image-keeper.yaml")


def _apply_metallb(cluster: Cluster) -> None:
    """Its CRDs, established before the pool is written; then its namespace, rights, pool, controller and
    speakers (addons/metallb.yaml)."""
    apply = ("apply", "--server-side", "--force-conflicts", "--field-manager=netconform-cluster", "-f", "-")
    cluster.kubectl(*apply, input=metallb.crds())
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/ipaddresspools.metallb.io",
        "crd/l2advertisements.metallb.io",
    )
    _apply(cluster, "metallb.yaml", **_images_values())


def _images_values() -> dict[str, str]:
    n = images.image_names()
    return {
        "TOOLBOX_IMAGE": n["toolbox"],
        "COREDNS_IMAGE": n["coredns"],
        "TRAEFIK_IMAGE": n["traefik"],
        "CERT_MANAGER_IMAGE": n["cert-manager"],
        "ACMESOLVER_IMAGE": n["acmesolver"],
        "PEBBLE_IMAGE": n["pebble"],
        "METALLB_CONTROLLER_IMAGE": n["metallb-controller"],
        "METALLB_SPEAKER_IMAGE": n["metallb-speaker"],
    }


def cert_manager_crds(_bins: Path) -> str:
    """cert-manager's CRDs from its module, with the Helm template expressions (labels only) filled in."""
    crd_dir = images.module_dir("github.com/cert-manager/cert-manager", build.CERT_MANAGER_VERSION) / "deploy" / "crds"
    docs = []
    for f in sorted(crd_dir.glob("crd-*.yaml")):
        lines = []
        for line in f.read_text().splitlines():
            if "{{" in line:
                if line.strip().startswith("#"):
                    continue
                key = line.split(":", 1)[0]
                line = f"{key}: cert-manager"
            lines.append(line)
        docs.append("\n".join(lines))
    return "\n---\n".join(docs)


def _apply(cluster: Cluster, name: str, **extra: str) -> None:
    values = {
        "CLUSTER_DOMAIN": config.CLUSTER_DOMAIN,
        "DNS_SERVICE_IP": cluster.ranges.dns_service_ip,
        "ADDON_NODE": cluster.nodes[0].name,
        "INGRESS_SERVICE_IP": cluster.ranges.ingress_service_ip,
        "INGRESS_DOMAIN": config.INGRESS_DOMAIN,
        "INGRESS_HTTP_NODEPORT": str(config.INGRESS_HTTP_NODEPORT),
        "INGRESS_HTTPS_NODEPORT": str(config.INGRESS_HTTPS_NODEPORT),
        "LB_POOL": cluster.ranges.lb_pool,
        **extra,
    }
    text = string.Template((ADDONS / name).read_text()).substitute(values)
    # The cluster owns its add-ons: take fields back from whoever changed them (a fault, a hand edit).
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=netconform-cluster", "-f", "-", input=text
    )


def _wait(cluster: Cluster, what: str, ok: Callable[[], bool], deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        _check_processes()
        if ok():
            return
        time.sleep(0.5)
    raise procs.ComponentFailed(_suspect(what), f"not ready: {what} within {deadline_s:.0f}s")


def _suspect(what: str) -> str:
    return "kubelet-nc-node-1" if what.endswith(" ready") else "kube-apiserver"


def _check_processes() -> None:
    for name, pid in procs.recorded().items():
        if not procs.alive(pid):
            raise procs.ComponentFailed(name, "exited")


def _wait_api(cluster: Cluster) -> None:
    _wait(
        cluster,
        "kube-apiserver /readyz",
        lambda: cluster.kubectl("get", "--raw", "/readyz", check=False).returncode == 0,
        60,
    )


def _wait_pod_cidrs(cluster: Cluster) -> dict[str, str]:
    found: dict[str, str] = {}

    def ok() -> bool:
        proc = cluster.kubectl("get", "nodes", "-o", "json", check=False)
        if proc.returncode != 0:
            return False
        for item in json.loads(proc.stdout)["items"]:
            if item["spec"].get("podCIDR"):
                found[item["metadata"]["name"]] = item["spec"]["podCIDR"]
        return all(n.name in found for n in cluster.nodes)

    _wait(cluster, "nodes registered with a podCIDR", ok, 60)
    return found


def _all_nodes_ready(cluster: Cluster) -> bool:
    proc = cluster.kubectl("get", "nodes", "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    items = json.loads(proc.stdout)["items"]
    # Ready, and the node controller has lifted its not-ready taint: until then nothing schedules there, and a run
    # started at once would see fewer schedulable nodes than the cluster has.
    transient = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
    ready = {
        i["metadata"]["name"]
        for i in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in i["status"].get("conditions", []))
        and not any(t.get("key") in transient for t in (i.get("spec") or {}).get("taints") or [])
    }
    return all(n.name in ready for n in cluster.nodes)


def _metallb_ready(cluster: Cluster) -> bool:
    """Its controller ready, and a ready speaker on every node."""
    if not _rollout_done(cluster, metallb.NAMESPACE, metallb.CONTROLLER):
        return False
    proc = cluster.kubectl("-n", metallb.NAMESPACE, "get", "daemonset", metallb.SPEAKER, "-o", "json", check=False)
    return proc.returncode == 0 and json.loads(proc.stdout)["status"].get("numberReady", 0) == len(cluster.nodes)


def _rollout_done(cluster: Cluster, ns: str, name: str) -> bool:
    proc = cluster.kubectl("-n", ns, "get", "deployment", name, "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    st = json.loads(proc.stdout)
    return st["status"].get("readyReplicas", 0) >= st["spec"]["replicas"]


def down(out: Callable[[str], None] = print, wait: bool = True) -> None:
    """Remove every process, mount, namespace, link, rule, cgroup and state folder of the cluster, and put back the
    host settings it changed. Idempotent; one command at a time (`lock`)."""
    if paths.problems():
        raise UsageError("; ".join(paths.problems()))
    with lock.held(wait=wait, say=out):
        _down(out)


def _down(out: Callable[[str], None]) -> None:
    # Every node name this cluster can have, plus any found in the state folder (a killed cluster's).
    node_names = sorted(
        {n.name for n in config.nodes(config.MAX_NODES)} | {p.name for p in (paths.STATE / "nodes").glob("*")}
    )
    # Only what the cluster started: the members of its tracking cgroup (what it started and what those forked,
    # containerd's shims among them) and of its nodes' cgroups (containers). A pid file alone is not trusted where
    # the cgroup can vouch for it (the pid may belong to someone else by now).
    layout = cgroups.host()
    tracked = procs.tracked_pids()
    trust_pid_files = layout.tracking is None
    recorded = [p for p in procs.recorded().values() if p in tracked or (trust_pid_files and procs.alive(p))]
    containers = cgroups.pids([d for n in node_names for d in cgroups.dirs(layout, n)])
    all_pids = sorted(set(recorded + tracked + containers))
    if all_pids:
        # Control plane and node agents first (kubelet would restart containers), then shims and containers. A
        # throwaway cluster: a short grace, then SIGKILL (kube-apiserver alone takes seconds to exit).
        procs.stop_pids(sorted(set(recorded)), deadline_s=3)
        procs.stop_pids(sorted(set(procs.tracked_pids() + containers)), deadline_s=5)
        out(f"stopped {len(all_pids)} process(es)")
    for item in hostsys.restore():
        out(item)
    mounts = _our_mounts((paths.STATE, config.RUN))
    for m in mounts:
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)
    if mounts:
        out(f"unmounted {len(mounts)} mount(s)")
    for item in network.teardown():
        out(f"removed {item}")
    removed_cg = 0
    for n in node_names:
        removed_cg += cgroups.remove(cgroups.dirs(layout, n))
        node.remove_state(n)
    if procs.remove_tracking_cgroup():
        removed_cg += 1
    if removed_cg:
        out(f"removed {removed_cg} cgroup(s)")
    for d in (paths.STATE, config.RUN):
        if not d.exists():
            continue
        if (d / paths.MARKER).exists() or not any(d.iterdir()):
            shutil.rmtree(d, ignore_errors=True)
            out(f"removed {d}")
        else:
            out(f"left {d}: not created by `netconform cluster up` (no {paths.MARKER} in it)")


def _our_mounts(folders: tuple[Path, ...]) -> list[str]:
    """Mount points at or under `folders`, compared by whole path components (/var/lib/netconform2 is not ours)."""
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        mp = Path(line.split()[1].replace("\\040", " "))
        if any(mp == f or f in mp.parents for f in folders):
            points.append(str(mp))
    return sorted(set(points), key=len, reverse=True)


def status() -> dict[str, object]:
    meta = read_meta()
    rec = procs.recorded()
    return {
        "running": healthy(),
        "kubeconfig": str(paths.KUBECONFIG) if meta else None,
        "nodes": (meta or {}).get("nodes_detail", []),
        "kubernetes_version": (meta or {}).get("kubernetes_version"),
        "processes": {name: ("running" if procs.alive(pid) else "dead") for name, pid in sorted(rec.items())},
        "logs": str(paths.LOGS),
        "ingress": {"http_nodeport": config.INGRESS_HTTP_NODEPORT, "https_nodeport": config.INGRESS_HTTPS_NODEPORT},
    }


def current() -> Cluster:
    """The running cluster, as recorded by `up`."""
    meta = read_meta()
    if not meta:
        raise RuntimeError("no local cluster; run `netconform cluster up`")
    nodes = config.nodes(int(str(meta["nodes"])), config.Ranges.from_meta(meta))
    return Cluster(nodes, Path(str(meta["bins"])), paths.KUBECONFIG)


def ensure_kube_proxy(cluster: Cluster) -> list[str]:
    """Start kube-proxy again on every node where it is not running (after a fault stopped it)."""
    started = []
    for n in cluster.nodes:
        if procs.running(f"kube-proxy-{n.name}") is None:
            node.start_kube_proxy(n, cluster.bins, paths.STATE / "kube-proxy.kubeconfig")
            started.append(n.name)
    return started


def ensure_network_policy(cluster: Cluster) -> list[str]:
    """Start the NetworkPolicy engine again on every node where it is not running (after a fault stopped it); a
    cluster booted with `--network-policy=none` has none to start."""
    if (read_meta() or {}).get("network_policy") != "kube-router":
        return []
    bins = build.bin_dir(build.kube_router_recipe())
    started = []
    for n in cluster.nodes:
        if procs.running(f"kube-router-{n.name}") is None:
            node.start_network_policy(n, bins, paths.STATE / "kube-router.kubeconfig")
            started.append(n.name)
    return started


def reapply_addon(cluster: Cluster, name: str) -> None:
    _apply(cluster, f"{name}.yaml", **_images_values())
