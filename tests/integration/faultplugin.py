"""Faults that must land inside a running suite (they target objects the suite itself creates).

Loaded with `-p faultplugin`; $NETCONFORM_FAULT names the fault. Applied just before the targeted test's call,
after its fixtures exist.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator

import pytest

from netconform import certs
from netconform.cluster import network, procs

FAULT_COMMENT = "netconform-fault"
#: The tables fault rules go into (and are cleared from).
FAULT_TABLES = ("filter", "raw", "mangle")


def node_namespaces() -> list[str]:
    """The network namespaces of the local cluster's nodes."""
    return sorted(n for n in network.existing_netns() if n.startswith("nc-node-"))


def in_nodes(*cmd: str) -> None:
    """Run a command in every node's network namespace."""
    for ns in node_namespaces():
        procs.run(list(cmd), netns=ns)


def add_rule(table: str, chain: str, *match: str) -> None:
    """A DROP rule in every node, marked so that `clear_rules` finds it again."""
    in_nodes(
        "iptables", "-w", "-t", table, "-I", chain, *match, "-m", "comment", "--comment", FAULT_COMMENT, "-j", "DROP"
    )


def _blackhole_one_backend(item: pytest.Item) -> None:
    workloads = item._request.getfixturevalue("workloads")  # type: ignore[attr-defined]
    pods = sorted(workloads.ready_pods("app=web"), key=lambda p: p["metadata"]["name"])
    victim = pods[0]
    ip = victim["status"]["podIP"]
    # mangle, not filter: a NetworkPolicy engine may keep its own jump first in filter FORWARD and accept pod
    # traffic there (kube-router does, for every pod); mangle FORWARD comes before it, after the Service DNAT.
    add_rule("mangle", "FORWARD", "-d", ip)
    print(f"netconform fault: blackholed {victim['metadata']['name']} ({ip})")


def _expire_tls_secret(item: pytest.Item) -> None:
    req = item._request  # type: ignore[attr-defined]
    ca = req.getfixturevalue("certificate_authority")
    own = req.getfixturevalue("own_cert")
    kube = req.getfixturevalue("kube")
    ns = req.getfixturevalue("namespace")
    now = dt.datetime.now(dt.UTC)
    cert, key = certs.issue(
        ca,
        own.host,
        dns=(own.host,),
        server=True,
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=2),
    )
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "secure-tls"},
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": b64(certs.cert_pem(cert)), "tls.key": b64(certs.key_pem(key))},
            }
        ],
        ns,
    )


#: Every nat rule that sends a known client back to its replica (session affinity), deleted by rule number:
#: iptables-nft cannot read back its own `-S` form of a `recent` match.
DROP_AFFINITY = (
    "for c in $(iptables -w -t nat -S | grep -e '--rcheck' | awk '{print $2}' | sort -u); do "
    "for n in $(iptables -w -t nat -L $c -n --line-numbers | awk '/recent: CHECK/{print $1}' | sort -rn); do "
    "iptables -w -t nat -D $c $n; done; done"
)


def _drop_affinity(item: pytest.Item) -> None:
    """A service proxy without session affinity. Applied when the check starts: the rules are deleted until none has
    come back for 2 s (a proxy sync still pending from an earlier endpoint change writes them again once); nothing
    changes the Services' endpoints during the check, so they stay gone."""
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 2:
        counts = [
            procs.run(
                ["sh", "-c", "iptables -w -t nat -S | grep -c -e '--rcheck'"], netns=ns, check=False
            ).stdout.strip()
            for ns in node_namespaces()
        ]
        if any(c not in ("", "0") for c in counts):
            in_nodes("sh", "-c", DROP_AFFINITY)
            quiet_since = time.monotonic()
        time.sleep(0.1)


def _no_graceful_termination(item: pytest.Item) -> Callable[[], object]:
    """Pods of this check are killed at once when deleted: no preStop, no terminating phase (a runtime or kubelet
    that does not honour graceful termination)."""
    kube = item._request.getfixturevalue("workloads").kube  # type: ignore[attr-defined]
    delete = kube.delete

    def at_once(api_version: str, kind: str, name: str, namespace: str | None = None, grace: int | None = None) -> None:
        delete(api_version, kind, name, namespace, grace=0)

    kube.delete = at_once
    return lambda: vars(kube).pop("delete", None)  # the module's later checks delete as before


FAULTS = {
    "blackhole-backend": ("test_clusterip_spreads_requests_over_every_replica", _blackhole_one_backend),
    "no-graceful-termination": ("test_clusterip_terminating_pod", _no_graceful_termination),
    "no-session-affinity": ("test_clusterip_session_affinity", _drop_affinity),
    "expired-tls": ("test_tls_own_certificate_from_a_secret_is_served_and_valid", _expire_tls_secret),
}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A fault that returns an undo ends with its check; the others hold for the rest of the module, by design."""
    fault = os.environ.get("NETCONFORM_FAULT")
    undo = FAULTS[fault][1](item) if fault in FAULTS and item.name.startswith(FAULTS[fault][0]) else None
    try:
        return (yield)
    finally:
        if undo:
            undo()


def clear_rules() -> None:
    """Remove every rule a fault of this plugin added (by its comment)."""
    for ns in node_namespaces():
        for table in FAULT_TABLES:
            rules = procs.run(["iptables", "-w", "-t", table, "-S"], netns=ns, check=False).stdout
            for rule in rules.splitlines():
                if FAULT_COMMENT in rule and rule.startswith("-A "):
                    args = rule.split()[1:]
                    procs.run(
                        ["iptables", "-w", "-t", table, "-D", *[a.strip('"') for a in args]],
                        netns=ns,
                        check=False,
                    )
