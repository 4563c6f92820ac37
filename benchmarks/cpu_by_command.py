"""Where a command's machine time goes, by command name, from the kernel's own sampling: `perf record -a` samples
every CPU at a fixed rate whatever runs there, so a process of a millisecond counts as much as a daemon's
millisecond. It answers what `cpu_by_process.py` cannot: that one counts ended processes in 10 ms ticks (a `runc`
call, a `curl`, an `iptables` call mostly count 0) and under whichever live process reaped them. On whole suite runs
of 2026-12-03 it gave the suite's Python 4.1 CPU-s where `time` measured 8.6, and `runc` 0.8 where this gives 6.6.

Usage (as root, on the running local cluster; needs `perf`):
    python3 benchmarks/cpu_by_command.py [--top N] [--hz HZ] -- pytest -q -p no:randomly --kube-config=... -n 4
Prints the command's wall time, the machine's CPU seconds (/proc/stat: user + nice + system) and, per command name (the
kernel's 15-character `comm`), CPU seconds = samples / HZ; `idle` is the samples of the idle task."""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from cpu_by_process import HZ, busy_ticks, exit_with, run_to_the_end  # this script's folder is first on the import path

#: `perf record` as the benchmarks run it. --no-buildid-cache: perf otherwise copies every binary it sampled into
#: ~/.debug and leaves it there (1.2 GB after the sessions of 2026-12-02 and -03); the reports need command names only.
PERF_RECORD = ["perf", "record", "-q", "--no-buildid-cache"]

#: The idle task's name in samples.
IDLE = "swapper"


def samples_by_command(report: str) -> Counter[str]:
    """Sample counts from `perf report --sort comm --stdio --show-nr-samples` (lines "  12.71%  1234  python")."""
    found: Counter[str] = Counter()
    for line in report.splitlines():
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(.+?)\s*$", line)
        if m:
            found[m.group(2)] += int(m.group(1))
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--hz", type=int, default=499, help="samples per second on each CPU")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the command to measure after --")
    if shutil.which("perf") is None:
        print("cpu_by_command: needs `perf` (Debian: linux-perf)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "perf.data"
        # Every CPU sampled in the background while the command runs as this script's own child: perf would end a
        # workload of its own with SIGTERM on a Ctrl-C, and pytest would then leave its run's namespaces behind.
        perf = subprocess.Popen(
            [*PERF_RECORD, "-a", "-e", "cpu-clock", "-F", str(args.hz), "-o", str(data)],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # perf opens its events on every CPU
        busy, start = busy_ticks(), time.monotonic()
        rc, interrupted = run_to_the_end(command)
        wall, cpu = time.monotonic() - start, (busy_ticks() - busy) / HZ
        if perf.poll() is None:
            perf.send_signal(signal.SIGINT)  # perf writes its recording and ends
        perf.wait(timeout=60)
        if interrupted:
            raise KeyboardInterrupt
        report = subprocess.run(
            ["perf", "report", "-i", str(data), "--sort", "comm", "--stdio", "--show-nr-samples"],
            capture_output=True,
            text=True,
        )
    counts = samples_by_command(report.stdout)
    if report.returncode != 0 or not counts:
        print(f"cpu_by_command: perf recorded nothing to report: {report.stderr.strip()[-300:]}", file=sys.stderr)
        return 2
    idle = counts.pop(IDLE, 0)
    print(f"wall {wall:.1f} s, machine CPU {cpu:.1f} s, exit {rc}; by command (perf, {args.hz} Hz on each CPU):")
    busy_samples = sum(counts.values())
    for name, n in counts.most_common(args.top):
        print(f"{n / args.hz:8.2f} s  {n * 100 / busy_samples:4.1f}%  {name}")
    rest = sum(n for _, n in counts.most_common()[args.top :])
    print(f"{rest / args.hz:8.2f} s        the other {max(0, len(counts) - args.top)} commands")
    print(f"{idle / args.hz:8.2f} s        idle")
    return rc


if __name__ == "__main__":
    exit_with(main, "cpu_by_command")
