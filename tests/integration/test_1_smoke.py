"""The local cluster is real: pods on the CNI bridge, a ClusterIP, cluster DNS, and an Ingress reached from the host.

Written with kubectl and plain HTTP only, independent of the suite's own code, so that it can vouch for the
cluster the suite is proven on.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import clean_env, kubectl, run_namespaces

NS = "nc-smoke"
MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: nc-smoke, labels: {netconform.io/run: smoke}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: nc-smoke}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: netconform.local/toolbox:v1, imagePullPolicy: IfNotPresent,
         args: [netexec, --http-port=8080], ports: [{containerPort: 8080}],
         readinessProbe: {httpGet: {path: /hostname, port: 8080}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: nc-smoke}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: nc-smoke}
spec:
  ingressClassName: nginx
  rules:
  - host: smoke.netconform.test
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
"""


def poll(what, fn, deadline=60.0):
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - an observation while polling
            last = e
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def test_smoke_the_local_cluster_is_real(kubeconfig):
    kubectl(kubeconfig, "apply", "-f", "-", input=MANIFEST)
    try:
        kubectl(kubeconfig, "-n", NS, "rollout", "status", "deployment/web", "--timeout=90s")
        pods = json.loads(kubectl(kubeconfig, "-n", NS, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        nodes = {
            n["metadata"]["name"]: n["spec"]["podCIDR"]
            for n in json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json").stdout)["items"]
        }
        for p in pods:  # pod IPs come from the CNI bridge's host-local range on their node
            assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(nodes[p["spec"]["nodeName"]])
        pod = pods[0]["metadata"]["name"]
        cip = kubectl(kubeconfig, "-n", NS, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
        names = {p["metadata"]["name"] for p in pods}
        poll(
            "the ClusterIP to answer from a pod",
            lambda: (
                kubectl(
                    kubeconfig,
                    "-n",
                    NS,
                    "exec",
                    pod,
                    "--",
                    "curl",
                    "-sS",
                    "--max-time",
                    "2",
                    f"http://{cip}/hostname",
                    check=False,
                ).stdout.strip()
                in names
            ),
        )
        dig = poll(
            "kubernetes.default.svc.cluster.local to resolve",
            lambda: kubectl(
                kubeconfig,
                "-n",
                NS,
                "exec",
                pod,
                "--",
                "dig",
                "+short",
                "kubernetes.default.svc.cluster.local",
                check=False,
            ).stdout.strip(),
        )
        assert dig == kubectl(kubeconfig, "get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}").stdout
        node_ip = next(
            a["address"]
            for a in json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json").stdout)["items"][0]["status"][
                "addresses"
            ]
            if a["type"] == "InternalIP"
        )

        def via_ingress():
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            req = urllib.request.Request(f"http://{node_ip}:30080/hostname", headers={"Host": "smoke.netconform.test"})
            return opener.open(req, timeout=3).read().decode().strip() in names

        poll("the Ingress to route a request from the host by Host header", via_ingress)
    finally:
        kubectl(kubeconfig, "delete", "namespace", NS, "--wait=false", check=False)


def test_missing_permission_is_one_line_and_creates_nothing(kubeconfig, tmp_path):
    """A view-only identity: the suite names the missing permission in one line, exit 4, no namespace created."""
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    kubectl(kubeconfig, "-n", "default", "create", "serviceaccount", "nc-viewer", check=False)
    kubectl(
        kubeconfig,
        "create",
        "clusterrolebinding",
        "nc-viewer",
        "--clusterrole=view",
        "--serviceaccount=default:nc-viewer",
        check=False,
    )
    try:
        token = kubectl(kubeconfig, "-n", "default", "create", "token", "nc-viewer").stdout.strip()
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        cfg["users"] = [{"name": "viewer", "user": {"token": token}}]
        cfg["contexts"][0]["context"]["user"] = "viewer"
        viewer = tmp_path / "viewer.kubeconfig"
        viewer.write_text(yaml.safe_dump(cfg))
        before = kubectl(kubeconfig, "get", "ns", "-o", "name").stdout
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "conformance", f"--kube-config={viewer}", "-q"],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
        out = (proc.stdout + proc.stderr).strip()
        assert proc.returncode == 4, out
        assert out.startswith("netconform: permission denied: the credentials lack ") and len(out.splitlines()) == 1
        for right in ("create namespaces", "create pods/exec", "patch deployments (apps)"):
            assert right in out, f"the one line does not name {right!r}: {out}"
        # Nothing new (an earlier run's namespaces may finish terminating meanwhile: fewer is fine).
        created = set(kubectl(kubeconfig, "get", "ns", "-o", "name").stdout.split()) - set(before.split())
        assert not created, created
    finally:
        kubectl(kubeconfig, "delete", "clusterrolebinding", "nc-viewer", check=False)
        kubectl(kubeconfig, "-n", "default", "delete", "serviceaccount", "nc-viewer", check=False)


@contextmanager
def suite_running(kubeconfig: str, run_id: str, *args: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """The whole suite with 4 workers, in a process group of its own that a terminal's Ctrl-C can be sent to; killed
    if it still runs when the test ends (a test that failed before its Ctrl-C leaves no run behind)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "conformance",
            f"--kube-config={kubeconfig}",
            "-n",
            "4",
            "--dist",
            "loadfile",
            "-q",
            "-p",
            "no:randomly",
            "--junitxml=/dev/null",
            "--html=",
            *args,
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=clean_env(NETCONFORM_RUN_ID=run_id, **env),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)


def ctrl_c(proc: subprocess.Popen[bytes]) -> int:
    """SIGINT to the run's process group, as a terminal sends it; the run's exit status."""
    os.killpg(proc.pid, signal.SIGINT)
    return proc.wait(timeout=60)


def test_ctrl_c_mid_run_deletes_what_the_run_created(kubeconfig):
    """Ctrl-C ends the run within seconds, and every namespace the run labelled is being deleted."""
    run_id = "rctrlc" + str(os.getpid())
    with suite_running(kubeconfig, run_id) as proc:
        poll("the run to create its namespaces", lambda: len(run_namespaces(kubeconfig, run_id)) >= 3, deadline=60)
        assert ctrl_c(proc) != 0
    left = run_namespaces(kubeconfig, run_id)
    assert all(deleting for _, deleting in left), f"namespaces not being deleted: {left}"


def test_ctrl_c_while_workers_start_deletes_what_a_worker_creates_after_it(kubeconfig, tmp_path):
    """Ctrl-C while xdist's controller is still starting workers (seen in CI on a loaded machine): gw0 has collected
    and creates a module's namespace on a thread of its own as the controller deletes the run's. The controller
    must end its workers first, and a worker must stop creating namespaces when it ends, or that one is left
    behind. (`ctrlcrace` holds the controller and gw0's creation at those points; see its docstring.)"""
    run_id = "rrace" + str(os.getpid())
    os.mkfifo(tmp_path / "swept")
    held = tmp_path / "held"
    race = {"PYTHONPATH": str(Path(__file__).parent), "NETCONFORM_RACE_DIR": str(tmp_path)}
    with suite_running(kubeconfig, run_id, "-p", "ctrlcrace", **race) as proc:
        poll("gw0 to hold a namespace creation", held.exists, deadline=90)
        assert ctrl_c(proc) != 0
    left = run_namespaces(kubeconfig, run_id)
    assert all(deleting for _, deleting in left), (
        f"namespaces not being deleted (gw0 held the creation of area {held.read_text()!r}): {left}"
    )
