"""Bad input gets one readable line and a meaningful exit status within seconds, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_suite(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "-p", "no:randomly", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("NETCONFORM_")},
            "KUBECONFIG": "/nonexistent/kubeconfig",
            **(env or {}),
        },
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip(), time.monotonic() - started


def kubeconfig(tmp_path: Path, server: str) -> Path:
    f = tmp_path / "kubeconfig"
    f.write_text(f"""apiVersion: v1
kind: Config
current-context: a
clusters: [{{name: c, cluster: {{server: "{server}", insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: a, context: {{cluster: c, user: u}}}}, {{name: b, context: {{cluster: c, user: u}}}}]
""")
    return f


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        ((), 2, "netconform: no kubeconfig: /nonexistent/kubeconfig (from $KUBECONFIG) does not exist"),
        (("--timeout-scale=fast",), 4, "ERROR: --timeout-scale: could not convert string to float"),
        (("--provider=docker",), 4, "ERROR: --provider: must be one of kubeconfig, kind, local"),
    ],
)
def test_no_cluster_or_bad_option_is_one_line(args, code, line):
    rc, out, seconds = run_suite(*args)
    assert rc == code and out.splitlines()[0].startswith(line), out
    assert "Traceback" not in out and seconds < 10


@pytest.mark.parametrize("run", ["cpuB", "run_1", "-r1", "r" * 25])
def test_a_run_id_that_cannot_name_a_namespace_is_one_line_before_anything_is_created(run):
    rc, out, seconds = run_suite(env={"NETCONFORM_RUN_ID": run})
    line = f"ERROR: NETCONFORM_RUN_ID={run!r}: a run id is 1 to 24 lowercase letters"
    assert rc == 4 and out.splitlines()[0].startswith(line), out
    assert "Traceback" not in out and seconds < 10


def test_unreachable_api_server(tmp_path):
    # A port on loopback that nothing listens on: refused at once.
    rc, out, seconds = run_suite(f"--kube-config={kubeconfig(tmp_path, 'https://127.0.0.1:1')}")
    assert rc == 3 and out.startswith("netconform: no cluster answered at https://127.0.0.1:1"), out
    assert len(out.splitlines()) == 1 and seconds < 10


def test_unknown_context_lists_the_known_ones(tmp_path):
    rc, out, _ = run_suite(f"--kube-config={kubeconfig(tmp_path, 'https://127.0.0.1:1')}", "--kube-context=prod")
    assert rc == 2 and out == f"netconform: context 'prod' not found in {tmp_path / 'kubeconfig'}; known contexts: a, b"


def test_a_kubeconfig_list_is_read_as_kubectl_reads_it(tmp_path):
    """$KUBECONFIG may list files (kubectl merges them, the first file's current context wins, a missing one is
    skipped); it was refused as one file that does not exist. Each server here is a loopback port nothing listens
    on: the line says which one the run tried."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    one, two = kubeconfig(first, "https://127.0.0.1:1"), kubeconfig(second, "https://127.0.0.1:2")
    missing = tmp_path / "missing"
    for files, server in (([missing, one, two], "127.0.0.1:1"), ([two, one], "127.0.0.1:2")):
        rc, out, _ = run_suite(env={"KUBECONFIG": os.pathsep.join(map(str, files))})
        assert rc == 3 and out.startswith(f"netconform: no cluster answered at https://{server}"), out
    rc, out, _ = run_suite(env={"KUBECONFIG": f"{missing}{os.pathsep}{missing}2"})
    assert rc == 2 and out.startswith(f"netconform: no kubeconfig: none of {missing}, {missing}2 (from $KUBECONFIG)")
    # Named, but only separators: refused, never $KUBECONFIG's cluster in its place.
    rc, out, _ = run_suite(f"--kube-config={os.pathsep}", env={"KUBECONFIG": str(one)})
    assert rc == 2 and out.startswith(f"netconform: kubeconfig '{os.pathsep}' names no file"), out


def test_a_failures_reproduce_command_names_a_kubeconfig_list_as_kubectl_takes_it():
    from netconform.kube import Kube

    # kubectl's --kubeconfig takes one file; a list goes in $KUBECONFIG.
    listed = Kube(api=None, kubeconfig=f"/a{os.pathsep}/b", context="c")  # type: ignore[arg-type]
    assert listed.kubectl("get", "pods") == f"KUBECONFIG=/a{os.pathsep}/b kubectl --context=c get pods"
    one = Kube(api=None, kubeconfig="/a", context=None)  # type: ignore[arg-type]
    assert one.kubectl("get", "pods") == "kubectl --kubeconfig=/a get pods"


def test_kubeconfig_that_does_not_parse(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("clusters: [\n")
    rc, out, _ = run_suite(f"--kube-config={bad}")
    assert rc == 2 and out.startswith(f"netconform: kubeconfig {bad} does not parse") and len(out.splitlines()) == 1


def test_collect_only_needs_no_cluster_and_k_selects_one_area():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-k", "ingress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert proc.returncode == 0 and ids and all(i.startswith("conformance/test_ingress.py::") for i in ids), proc.stdout
