"""Which iptables the nodes use: the kernel's legacy tables where the kernel has them built in, else the host's own.

Every node program that writes packet filter rules (kube-proxy, kube-router, the CNI portmap plugin run by
containerd, the kubelet's canary chains), and every fault the project's tests inject into a node, finds `iptables`,
`iptables-save`, `iptables-restore` and their IPv6 twins first on its PATH in TOOLS: links to the legacy (x_tables)
tools. A node's tables live in its own network namespace and go with it at `down`; the host's tables are not touched.

Why: kube-router saves and restores its node's whole filter table on every sync, and kube-proxy its tables on
each of its own, each time a process. The same node ruleset (1213 rules, taken from a 2-node run) in a scratch
namespace, 50 times each: `iptables-save -t filter` 7.8 ms of CPU with the nf_tables backend and 2.2 ms with the
legacy one, a restore of the filter table 7.2 and 3.2 ms; a single `-C` or `-S` call 1.6 and 1.5 ms (starting the
process is most of it). Over a whole 2-node run the `iptables`, `-save` and `-restore` processes took 3.6-3.8 CPU-s
instead of 4.3-5.1 (`benchmarks/cpu_by_command.py`, fresh clusters before and after in turn, 4 runs each, 2026-12-05).

Never loads a kernel module: a legacy table the kernel has as a module would be loaded on the host at the first call
in a node. So the legacy tools are used only when the kernel's configuration (/proc/config.gz) has every table the
nodes use built in (`=y`), and the tools are installed; otherwise the nodes use the host's iptables as they are.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from . import config

TOOLS = config.RUN / "node-tools"
LEGACY_MULTI = Path("/usr/sbin/xtables-legacy-multi")
NAMES = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")
KERNEL_CONFIG = Path("/proc/config.gz")
#: The x_tables tables of both families: kube-proxy, kube-router and the kubelet use filter, nat and mangle; raw
#: and security too, so that no call on any table loads one.
BUILT_IN = tuple(
    f"CONFIG_{family}_NF_{table}"
    for family in ("IP", "IP6")
    for table in ("IPTABLES", "FILTER", "NAT", "MANGLE", "RAW", "SECURITY")
)


def missing_built_ins(kernel_config: str) -> list[str]:
    """The options of BUILT_IN that `kernel_config` (a kernel's .config) does not set to `y`."""
    set_y = {line.split("=", 1)[0] for line in kernel_config.splitlines() if line.endswith("=y")}
    return [option for option in BUILT_IN if option not in set_y]


def prepare() -> str:
    """Make TOOLS when the legacy tools can be used without loading a module; say which iptables the nodes use."""
    if not LEGACY_MULTI.exists():
        return f"the host's (no {LEGACY_MULTI})"
    try:
        missing = missing_built_ins(gzip.decompress(KERNEL_CONFIG.read_bytes()).decode(errors="replace"))
    except OSError:
        return f"the host's (no kernel configuration at {KERNEL_CONFIG} to show the legacy tables are built in)"
    if missing:
        return f"the host's (legacy tables not built into the kernel: {', '.join(missing)})"
    TOOLS.mkdir(mode=0o755, exist_ok=True)
    for name in NAMES:
        link = TOOLS / name
        link.unlink(missing_ok=True)
        link.symlink_to(LEGACY_MULTI)
    return "legacy (built into the kernel)"


def node_env() -> dict[str, str]:
    """The environment entries a program run in a node needs to find the node's iptables (none without TOOLS)."""
    if not TOOLS.is_dir():
        return {}
    return {"PATH": f"{TOOLS}:{os.environ.get('PATH', os.defpath)}"}
