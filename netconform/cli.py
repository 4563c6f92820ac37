"""The `netconform` command: the local cluster, cleanup of earlier runs, image export."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .cluster import config
from .errors import NetconformError, UsageError


def _ranges(args: argparse.Namespace) -> config.Ranges:
    """The options' ranges; a wrong one is a UsageError (one line naming the option, exit 2)."""
    try:
        return config.Ranges.parse(args.node_subnet, args.pod_cidr, args.service_cidr)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _range_options(p: argparse.ArgumentParser) -> None:
    d = config.DEFAULT_RANGES
    p.add_argument(
        "--node-subnet", help=f"the node bridge and LoadBalancer pool, /24 or larger (default {d.node_subnet})"
    )
    p.add_argument("--pod-cidr", help=f"pod addresses, a /24 per node, /22 or larger (default {d.pod_cidr})")
    p.add_argument("--service-cidr", help=f"Service addresses, /12 to /24 (default {d.service_cidr})")


def _cluster_up(args: argparse.Namespace) -> int:
    from .cluster import lifecycle
    from .cluster.procs import ComponentFailed

    try:
        path = lifecycle.up(
            ranges=_ranges(args),
            nodes=args.nodes,
            kubernetes_version=args.kubernetes_version,
            network_policy=args.network_policy,
            loadbalancer=args.loadbalancer,
            out=lambda m: print(m, file=sys.stderr, flush=True),
            recreate=args.recreate,
            wait=not args.no_wait,
            retain=args.retain,
        )
    except NetconformError as e:
        print(f"netconform: {e}", file=sys.stderr)
        return 2
    except ComponentFailed as e:
        print(f"netconform: cluster up failed: {e}", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError, OSError) as e:
        print(f"netconform: cluster up failed: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    from .cluster import lifecycle

    try:
        lifecycle.down(out=lambda m: print(m, file=sys.stderr), wait=not args.no_wait)
    except NetconformError as e:
        print(f"netconform: {e}", file=sys.stderr)
        return 2
    return 0


def _cluster_preflight(args: argparse.Namespace) -> int:
    """What stops the local cluster on this host (what `up` checks before building anything)."""
    from .cluster import lifecycle, preflight

    try:
        ranges = _ranges(args)
    except UsageError as e:
        print(f"netconform: {e}", file=sys.stderr)
        return 2
    running = lifecycle.healthy()
    if running:
        print("netconform: the local cluster is running: its ports are its own and are not checked", file=sys.stderr)
    found = preflight.problems(ranges, ports=not running)
    for note in preflight.notes():
        print(f"netconform: note: {note}", file=sys.stderr)
    for line in found:
        print(f"netconform: {line}", file=sys.stderr)
    if not found:
        print("netconform: this host can run the local cluster", file=sys.stderr)
    return 2 if found else 0


def _cluster_status(args: argparse.Namespace) -> int:
    from .cluster import lifecycle

    st = lifecycle.status()
    print(json.dumps(st, indent=2))
    return 0 if st["running"] else 3


def _cluster_kubeconfig(args: argparse.Namespace) -> int:
    from .cluster import lifecycle

    st = lifecycle.status()
    if not st["kubeconfig"]:
        print("netconform: no local cluster; run `netconform cluster up`", file=sys.stderr)
        return 3
    print(st["kubeconfig"])
    return 0


def _cluster_bin_dir(args: argparse.Namespace) -> int:
    from .cluster import lifecycle

    meta = lifecycle.read_meta()
    if not meta:
        print("netconform: no local cluster; run `netconform cluster up`", file=sys.stderr)
        return 3
    print(meta["bins"])
    return 0


def _context(args: argparse.Namespace) -> int:
    """Exit 0 when the kubeconfig context answers; print which one (used by `make conformance`)."""
    from . import kube
    from .errors import NetconformError

    try:
        client = kube.connect(args.kube_config, args.kube_context, timeout_s=args.timeout)
    except NetconformError as e:
        print(str(e), file=sys.stderr)
        return e.exit_code
    print(f"server {client.api.configuration.host}" + (f", context {client.context}" if client.context else ""))
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    from . import kube
    from .errors import NetconformError

    try:
        client = kube.connect(args.kube_config, args.kube_context)
        removed = kube.sweep_namespaces(client, older_than_s=args.older_than, current_run=None)
    except NetconformError as e:
        print(f"netconform: {e}", file=sys.stderr)
        return e.exit_code
    for ns in removed:
        print(f"deleted namespace {ns}")
    return 0


def _rbac(args: argparse.Namespace) -> int:
    """Print the suite's least rights: the ClusterRoles and bindings for a ServiceAccount (default) or a user."""
    from . import rbac

    if args.user:
        docs = rbac.user_documents(args.user, args.privileged)
    else:
        namespace, _, name = args.serviceaccount.rpartition("/")
        if not namespace or not name:
            print("netconform: --serviceaccount takes NAMESPACE/NAME", file=sys.stderr)
            return 2
        docs = rbac.service_account_documents(namespace, name, args.privileged)
    print(rbac.dump(docs), end="")
    return 0


def _images(args: argparse.Namespace) -> int:
    """Print every image a run will use, one per line, as the run names them (after --image-registry): the list to
    mirror into an air-gapped registry."""
    from . import manifests
    from .settings import resolve

    cli = {"image": args.image, "image_registry": args.image_registry}
    try:
        s = resolve({k: v for k, v in cli.items() if v is not None}, env=os.environ)
    except UsageError as e:
        print(f"netconform: {e}", file=sys.stderr)
        return 2
    for image in manifests.run_images(s.image, s.image_registry):
        print(image)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netconform", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    cluster = sub.add_parser("cluster", help="the local cluster").add_subparsers(dest="action", required=True)
    p = cluster.add_parser("up", help="boot (or reuse) the local cluster; prints the kubeconfig path")
    p.add_argument("--nodes", type=int, default=1, help="number of nodes, 1 to 4 (default 1)")
    p.add_argument("--kubernetes-version", default="v1.35.4")
    p.add_argument(
        "--network-policy",
        choices=("kube-router", "none"),
        default="kube-router",
        help="NetworkPolicy engine on every node (default kube-router's firewall; none: policies are not enforced)",
    )
    p.add_argument(
        "--loadbalancer",
        choices=("metallb", "none"),
        default="metallb",
        help="LoadBalancer implementation (default MetalLB in layer 2 mode, addresses on the node bridge; none: "
        "LoadBalancer Services stay pending)",
    )
    p.add_argument(
        "--recreate", action="store_true", help="replace a running cluster of another shape (default: refuse)"
    )
    p.add_argument("--no-wait", action="store_true", help="refuse at once if another cluster command is running")
    p.add_argument("--retain", action="store_true", help="after a failed or interrupted up, keep what it started")
    _range_options(p)
    p.set_defaults(func=_cluster_up)
    p = cluster.add_parser("down", help="remove everything the local cluster created")
    p.add_argument("--no-wait", action="store_true", help="refuse at once if another cluster command is running")
    p.set_defaults(func=_cluster_down)
    p = cluster.add_parser("preflight", help="check this host can run the local cluster (up does, before building)")
    _range_options(p)
    p.set_defaults(func=_cluster_preflight)
    cluster.add_parser("status", help="nodes, processes, kubeconfig").set_defaults(func=_cluster_status)
    cluster.add_parser("kubeconfig", help="print the kubeconfig path").set_defaults(func=_cluster_kubeconfig)
    cluster.add_parser("bin-dir", help="print the directory of the cluster's binaries (kubectl)").set_defaults(
        func=_cluster_bin_dir
    )
    p = sub.add_parser("context", help="check that the kubeconfig context answers")
    p.add_argument("--kube-config", default=None)
    p.add_argument("--kube-context", default=None)
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=_context)
    p = sub.add_parser("cleanup", help="delete namespaces left behind by earlier, killed runs")
    p.add_argument("--kube-config", default=None)
    p.add_argument("--kube-context", default=None)
    p.add_argument("--older-than", type=float, default=600.0, help="seconds (default 600)")
    p.set_defaults(func=_cleanup)
    p = sub.add_parser("images", help="print every image a run will use (to mirror into an air-gapped registry)")
    p.add_argument("--image", default=None, help="the test image (default: netconform.local/toolbox:v1)")
    p.add_argument("--image-registry", default=None, help="the mirror a run will pull from (rewrites every image)")
    p.set_defaults(func=_images)
    p = sub.add_parser("rbac", help="print the exact rights the suite needs (ClusterRoles and bindings)")
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--serviceaccount", default="default/netconform", help="NAMESPACE/NAME (default default/netconform)"
    )
    who.add_argument("--user", help="bind to this user instead of a ServiceAccount")
    p.add_argument("--privileged", action="store_true", help="also the privileged extras (nodes/proxy)")
    p.set_defaults(func=_rbac)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("netconform: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
