"""Where a command's machine time goes, by process name: CPU seconds of every process over the command (its own and
its reaped children's, so kube-router's iptables calls count as kube-router's). On a 2-core machine the suite is
CPU-bound; this names what to make cheaper.

Usage (as root, on the running local cluster):
    python3 benchmarks/cpu_by_process.py [--top N] -- pytest -q -p no:randomly --kube-config=... -n 4 --dist loadfile
Processes that ended during the command are counted under the live process that reaped them (pid 1 for orphans:
the container runtime's double forks); whatever no live process reaped is the last line. Then, from the kernel's
process accounting (BSD acct, one record per ended process), how many processes of each name each parent started
and their own CPU (in 10 ms ticks: a process shorter than that counts 0): what showed that each node's kube-router
runs about 200 full syncs (18 iptables calls each) per suite run."""

from __future__ import annotations

import argparse
import ctypes
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

HZ = os.sysconf("SC_CLK_TCK")


def snapshot() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (name, own ticks, reaped children's ticks, start time)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # ended while listing
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(pid)] = (name, int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]), int(fields[19]))
    return found


def busy_ticks() -> int:
    with open("/proc/stat") as f:
        user, nice, system = f.readline().split()[1:4]
    return int(user) + int(nice) + int(system)


def by_name(before: dict[int, tuple[str, int, int, int]], after: dict[int, tuple[str, int, int, int]]) -> Counter[str]:
    spent: Counter[str] = Counter()
    for pid, (name, own, children, start) in after.items():
        old = before.get(pid)
        if old and old[3] == start:  # the same process (not a reused pid)
            spent[name] += own - old[1] + children - old[2]
        else:
            spent[name] += own + children
    return spent


#: acct_v3's time unit (AHZ).
ACCT_HZ = 100


def comp_t(v: int) -> int:
    """The kernel's 16-bit float: 13 bits of mantissa, 3 of base-8 exponent."""
    return (v & 0x1FFF) << (3 * (v >> 13))


def ended(
    records: bytes, live: dict[int, tuple[str, int, int, int]]
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """(parent name, name) of every ended process: how many, and their own CPU in AHZ ticks (not their children's),
    from struct acct_v3 records (64 bytes: pid and ppid at 16 and 20, user and system time at 32 and 34, the name
    in the last 16)."""
    names = {}
    rows = []
    for i in range(0, len(records) - 63, 64):
        pid, ppid = struct.unpack_from("<II", records, i + 16)
        utime, stime = struct.unpack_from("<HH", records, i + 32)
        name = records[i + 48 : i + 64].split(b"\0")[0].decode(errors="replace")
        names[pid] = name
        rows.append((ppid, name, comp_t(utime) + comp_t(stime)))
    parent = lambda ppid: names.get(ppid) or (live[ppid][0] if ppid in live else "?")  # noqa: E731
    counts: Counter[tuple[str, str]] = Counter()
    cpu: Counter[tuple[str, str]] = Counter()
    for ppid, name, ticks in rows:
        counts[(parent(ppid), name)] += 1
        cpu[(parent(ppid), name)] += ticks
    return counts, cpu


def run_to_the_end(command: list[str], **popen: Any) -> tuple[int, bool]:
    """Run `command` and wait for it to end, also through a Ctrl-C: the terminal sends it to the command as well,
    which ends in its own time (pytest deletes its run's namespaces first; Python's own subprocess helpers kill a
    child a quarter of a second after a Ctrl-C). (exit status, whether a Ctrl-C came.)"""
    proc = subprocess.Popen(command, **popen)
    interrupted = False
    while True:
        try:
            return proc.wait(), interrupted
        except KeyboardInterrupt:
            interrupted = True


def exit_with(main: Callable[[], int], name: str) -> NoReturn:
    """Exit with what `main` returns; after a Ctrl-C (which reached the command measured too), one line and 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)


def measure(command: list[str], top: int, acct: Path, libc: ctypes.CDLL) -> int:
    """Run `command` with process accounting into `acct`; print where the CPU went; its exit status."""
    acct.touch(mode=0o600)
    accounting = libc.acct(str(acct).encode()) == 0
    before, busy0, t0 = snapshot(), busy_ticks(), time.monotonic()
    try:
        rc, interrupted = run_to_the_end(command, stdout=subprocess.DEVNULL)
    finally:
        if accounting:
            libc.acct(None)
    if interrupted:
        raise KeyboardInterrupt
    after, busy1, wall = snapshot(), busy_ticks(), time.monotonic() - t0
    spent = by_name(before, after)
    total = busy1 - busy0
    print(f"wall {wall:.1f} s, machine CPU {total / HZ:.1f} s, exit {rc}")
    for name, ticks in spent.most_common(top):
        print(f"{ticks / HZ:8.1f} s  {100 * ticks / max(total, 1):4.0f}%  {name}")
    print(f"{(total - sum(spent.values())) / HZ:8.1f} s        ended, reaped by no live process (or rounding)")
    if accounting:
        counts, cpu = ended(acct.read_bytes(), after)
        print(f"processes that ended: {sum(counts.values())}; the most started, by parent:")
        for (parent, name), n in counts.most_common(top):
            print(f"{n:8d}  {parent} -> {name}")
        print(f"their own CPU (not their children's): {sum(cpu.values()) / ACCT_HZ:.1f} s; the most, by parent:")
        for (parent, name), ticks in cpu.most_common(top):
            print(f"{ticks / ACCT_HZ:8.1f} s  {counts[(parent, name)]:6d} x  {parent} -> {name}")
    else:
        print("(process accounting unavailable: run as root on a kernel with BSD_PROCESS_ACCT for process counts)")
    return rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    libc = ctypes.CDLL(None, use_errno=True)
    with tempfile.TemporaryDirectory(prefix="nc-acct-") as folder:  # removed also after a Ctrl-C or an error
        return measure(command, args.top, Path(folder) / "acct", libc)


if __name__ == "__main__":
    exit_with(main, "cpu_by_process")
