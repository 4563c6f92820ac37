"""A gate you can trust: it tests exactly the cluster named, never ends green by skipping what was required, never
hangs on a silent API server, fails fast on an image it cannot run, and exposes no command endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from blackhole import BlackholeRelay

from conftest import ROOT, clean_env, identity_kubeconfig, kubectl, run_namespaces
from netconform import areas, manifests

LOCAL_FALLBACK = "testing netconform's local cluster"


def conformance(env: dict[str, str], timeout: float = 120) -> tuple[int, str, float]:
    """`make conformance`'s script, as a user runs it."""
    started = time.monotonic()
    proc = subprocess.run(
        ["scripts/conformance"], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=clean_env(**env)
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip(), time.monotonic() - started


def server_of(kubeconfig: str) -> str:
    return str(yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"])


@pytest.mark.parametrize("case", ["unreachable", "rejected-token", "unknown-context"])
def test_make_conformance_never_substitutes_the_local_cluster(case, kubeconfig, tmp_path):
    """A kubeconfig that exists but does not work ends the run with its one line and a non-zero status; nothing
    else is tested in its place."""
    path = tmp_path / "kubeconfig"
    env = {"KUBECONFIG": str(path), "WORKERS": "1"}
    if case == "unreachable":
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        cfg["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
        path.write_text(yaml.safe_dump(cfg))
        want_rc, want = 3, "no cluster answered at https://127.0.0.1:1"
    elif case == "rejected-token":  # what an expired token gets: 401 on every request
        identity_kubeconfig(kubeconfig, path, {"token": "expired-or-revoked"})
        want_rc, want = 4, "refused the credentials (401"
    else:
        path.write_text(Path(kubeconfig).read_text())
        env["ARGS"] = "--kube-context=staging"
        want_rc, want = 2, "context 'staging' not found"
    rc, out, seconds = conformance(env)
    lines = out.splitlines()
    assert lines[0] == f"netconform: testing the cluster of {path} (LOCAL=1 tests the local cluster instead)", out
    assert LOCAL_FALLBACK not in out and "booting" not in out, out
    assert rc == want_rc and want in out, out
    assert [line for line in lines if line.startswith("netconform: ")][-1].count("\n") == 0
    assert seconds < 30, f"took {seconds:.0f}s"


def test_make_conformance_uses_the_local_cluster_only_without_any_kubeconfig(tmp_path):
    """No $KUBECONFIG and no ~/.kube/config: the local cluster, said in the first line."""
    rc, out, _ = conformance(
        {"HOME": str(tmp_path), "WORKERS": "1", "ARGS": "-k test_dns_cluster_dns_service_has_ready_endpoints"}
    )
    assert out.splitlines()[0].startswith("netconform: no kubeconfig") and LOCAL_FALLBACK in out.splitlines()[0]
    assert rc == 0 and "1 passed" in out, out


def test_a_kubeconfig_list_tests_the_cluster_kubectl_would_use(kubeconfig, tmp_path):
    """$KUBECONFIG listing a missing file, the cluster's kubeconfig, then one naming an unreachable server: as for
    kubectl, the missing file is skipped and the first existing file's current context is the cluster tested, by
    the controller and its workers alike."""
    other = tmp_path / "other"
    cfg = yaml.safe_load(Path(kubeconfig).read_text())
    cfg["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    other.write_text(yaml.safe_dump(cfg))
    listed = os.pathsep.join([str(tmp_path / "missing"), kubeconfig, str(other)])
    rc, out, _ = conformance({"KUBECONFIG": listed, "WORKERS": "2", "ARGS": "-k test_externalname"})
    assert out.splitlines()[0].startswith(f"netconform: testing the cluster of {listed}"), out
    assert rc == 0 and "1 passed" in out and "127.0.0.1:1" not in out, out


@pytest.mark.timeout(600)
def test_require_all_on_one_schedulable_node_fails_exactly_the_unsupported_checks(kubeconfig, run_suite):
    """With one schedulable node, node pairs are unsupported: skips that say so, counted apart; under --require=all
    exactly those checks fail, naming the area, and the rest pass."""
    selection = ("-m", "crossnode or endpoints")
    nodes = kubectl(kubeconfig, "get", "nodes", "-o", "name").stdout.split()
    cordoned = [n for n in nodes if n != "node/nc-node-1"]
    for n in cordoned:
        kubectl(kubeconfig, "cordon", n)
    try:
        plain = run_suite(*selection)
        required = run_suite(*selection, "--require=all")
    finally:
        for n in cordoned:
            kubectl(kubeconfig, "uncordon", n)
    unsupported = {t for t in plain.outcomes if "test_crossnode" in t}
    assert unsupported and plain.ids("skipped") == unsupported, plain.output
    assert plain.ids("passed") == {t for t in plain.outcomes if "test_endpoints" in t} != set()
    for t in unsupported:
        assert plain.properties[t].get(areas.OUTCOME_PROPERTY) == areas.UNSUPPORTED, (t, plain.properties[t])
    n_passed = len(plain.ids("passed"))
    assert f"netconform: {n_passed} passed, 0 failed, {len(unsupported)} unsupported, 0 not applicable" in plain.output
    assert plain.rc == 0
    # a failure in setup (before anything is created) is a JUnit <error>: red either way
    assert required.ids("failed") | required.ids("error") == unsupported, required.output
    assert required.ids("passed") == plain.ids("passed") and not required.ids("skipped")
    for t in unsupported:
        assert "required area 'crossnode' is unsupported on this cluster" in required.messages[t], required.messages[t]
    assert required.rc == 1


@pytest.mark.timeout(300)
def test_black_holed_api_server_ends_the_run_within_60s_and_notes_what_it_left(kubeconfig, tmp_path):
    """Packets to the API server dropped mid-run: the run ends within 60 s with one line naming the server, notes
    the namespaces it could not delete, and the next run deletes them first."""
    upstream = urlparse(server_of(kubeconfig))
    relay = BlackholeRelay((str(upstream.hostname), int(upstream.port or 443)))
    port = relay.start()
    cfg = yaml.safe_load(Path(kubeconfig).read_text())
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    via_relay = tmp_path / "relay.kubeconfig"
    via_relay.write_text(yaml.safe_dump(cfg))
    run = "rbh" + str(os.getpid())
    cmd = [sys.executable, "-m", "pytest", "-m", "clusterip or dns or headless", "-n", "2", "-p", "no:randomly"]
    proc = subprocess.Popen(
        [*cmd, f"--kube-config={via_relay}", "-q"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(NETCONFORM_RUN_ID=run),
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(run_namespaces(kubeconfig, run)) < 3:
            time.sleep(0.5)
        assert len(run_namespaces(kubeconfig, run)) >= 3, "the run never got going"
        relay.dropping.set()
        dropped = time.monotonic()
        out, _ = proc.communicate(timeout=120)
        ended = time.monotonic() - dropped
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"black-holed API server: the run ended {ended:.1f}s after the drop")
    assert ended <= 60, f"the run took {ended:.0f}s to end after the API server went silent:\n{out[-3000:]}"
    assert proc.returncode != 0
    assert f"the API server at https://127.0.0.1:{port} stopped answering" in out, out[-3000:]
    note = ROOT / "reports" / run / "leftover-namespaces.json"
    left = json.loads(note.read_text())["namespaces"]
    assert left and set(left) <= {n for n, _ in run_namespaces(kubeconfig, run)}, (left, out[-2000:])
    assert "could not delete the run's namespaces" in out

    relay.dropping.clear()  # the server answers again: the next run (any selection) deletes what was noted
    subprocess.run(
        [*cmd, f"--kube-config={via_relay}", "-q", "-k", "no_check_has_this_name"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        env=clean_env(),
    )
    relay.stop()
    alive = [n for n, deleting in run_namespaces(kubeconfig, run) if not deleting]
    assert not alive and not note.exists(), f"left behind: {alive}"


def test_an_image_the_cluster_cannot_pull_fails_every_check_at_once_with_its_name(run_suite):
    """A mirror that does not answer (loopback, refused): every check fails within 30 s with the image's name."""
    run = run_suite("-m", "dns or clusterip", "--image-registry=127.0.0.1:1", workers=2)
    assert run.outcomes and run.ids("failed") | run.ids("error") == set(run.outcomes), run.output
    for t in run.outcomes:
        assert "cannot run the probe image 127.0.0.1:1/toolbox:v1" in run.messages[t], run.messages[t]
        assert "ErrImagePull" in run.messages[t] or "ImagePullBackOff" in run.messages[t], run.messages[t]
    slowest = max(run.times.values())
    assert slowest <= 30, run.times
    print(f"unpullable image: {len(run.outcomes)} checks failed in {run.seconds:.1f}s (slowest {slowest:.1f}s)")


def test_no_command_endpoint_is_exposed_through_nodeport_or_ingress(kubeconfig):
    """The backends the suite puts behind a NodePort and an Ingress answer what the checks read, and /shell is a
    404 (agnhost netexec, which they replace, would run `id` there)."""
    ns = "nc-expose-" + str(os.getpid())
    values = {"NAMESPACE": ns, "IMAGE": "netconform.local/toolbox:v1"}
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"netconform.io/run": ns}}}]
    docs += manifests.load("common", "server", {**values, "NAME": "web", "REPLICAS": "1"})
    docs += manifests.load("nodeport", "service", {**values, "NAME": "web", "APP": "web", "POLICY": "Cluster"})
    docs += manifests.load("ingress", "backend", {**values, "NAME": "blue"})
    host = f"blue.{ns}.netconform.test"
    docs += manifests.load("ingress", "colours", {**values, "CLASS": "nginx", "BLUE_HOST": host, "GREEN_HOST": "x"})
    for d in docs:
        if d["kind"] != "Namespace":
            d["metadata"]["namespace"] = ns
    kubectl(kubeconfig, "apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        kubectl(kubeconfig, "-n", ns, "rollout", "status", "deploy/web", "deploy/blue", "--timeout=60s")
        node_ip = kubectl(
            kubeconfig, "get", "node", "nc-node-1", "-o", "jsonpath={.status.addresses[0].address}"
        ).stdout
        port = kubectl(kubeconfig, "-n", ns, "get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}").stdout
        through = {"NodePort": (f"http://{node_ip}:{port}", {}), "Ingress": (f"http://{node_ip}:30080", {"Host": host})}
        for what, (base, headers) in through.items():
            ok_path = "/hostname" if what == "NodePort" else "/"
            assert poll_status(base + ok_path, headers) == 200, f"{what}: the backend does not answer at all"
            status, body = get(base + "/shell?cmd=id", headers)
            assert status == 404 and "uid=" not in body, f"{what} {base}/shell?cmd=id: {status} {body[:200]}"
    finally:
        kubectl(kubeconfig, "delete", "ns", ns, "--wait=false", check=False)


def get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=3) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def poll_status(url: str, headers: dict[str, str], deadline_s: float = 30) -> int | None:
    end, status = time.monotonic() + deadline_s, None
    while time.monotonic() < end:
        try:
            status = get(url, headers)[0]
            if status == 200:
                return status
        except OSError:
            pass
        time.sleep(0.5)
    return status


@pytest.mark.timeout(600)
def test_two_runs_at_once_against_one_cluster_both_pass(run_suite):
    """Two runs side by side share no namespace, host name or NodePort, and each writes its own reports."""
    from concurrent.futures import ThreadPoolExecutor

    selection = ("-m", "ingress or tls or nodeport or headless")
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: run_suite(*selection, workers=2), range(2)))
    for run in runs:
        failed = run.ids("failed") | run.ids("error")
        assert run.outcomes and not failed, "\n\n".join(f"{t}\n{run.messages[t]}" for t in sorted(failed))
    assert set(runs[0].outcomes) == set(runs[1].outcomes)
    for run in runs:  # each its own report folder, never the other's files
        info = json.loads((ROOT / "reports" / run.run_id / "cluster-info.json").read_text())
        assert info["run"] == run.run_id
    print(f"two runs at once: {runs[0].seconds:.1f}s and {runs[1].seconds:.1f}s")


def test_admission_refusals_are_shown_in_the_servers_words_and_rbac_as_permission(kubeconfig, tmp_path):
    """Pod Security and a quota refuse with their own message (not "permission"); an RBAC denial says permission."""
    from netconform.errors import AdmissionDenied, Forbidden
    from netconform.kube import connect

    kube = connect(kubeconfig)
    ns = "nc-admission-" + str(os.getpid())
    labels = {"netconform.io/run": ns, "pod-security.kubernetes.io/enforce": "restricted"}
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}])
    try:
        pod = manifests.load("common", "node-client", {"NAME": "host", "IMAGE": "netconform.local/toolbox:v1"})
        with pytest.raises(AdmissionDenied) as psa:
            kube.apply(pod, ns)
        assert "violates PodSecurity" in str(psa.value) and "permission" not in str(psa.value), psa.value
        assert str(psa.value).startswith(f"the API server refused to patch Pod in namespace {ns}: ")
        quota = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "no-pods"},
            "spec": {"hard": {"pods": "0"}},
        }
        kube.apply([quota], ns)
        client = manifests.load("common", "client", {"NAME": "c", "IMAGE": "netconform.local/toolbox:v1"})
        wait_for_quota = time.monotonic() + 10
        while True:  # the quota controller fills in status.hard before admission enforces it
            try:
                kube.apply(client, ns)
            except AdmissionDenied as e:
                assert "exceeded quota" in str(e) and "permission" not in str(e), e
                break
            kube.delete("v1", "Pod", "c", ns, grace=0)
            assert time.monotonic() < wait_for_quota, "the quota never refused the pod"
            time.sleep(0.5)
        kubectl(kubeconfig, "-n", ns, "create", "serviceaccount", "nobody")  # no rights at all
        token = kubectl(kubeconfig, "-n", ns, "create", "token", "nobody").stdout.strip()
        nobody = connect(str(identity_kubeconfig(kubeconfig, tmp_path / "nobody.kubeconfig", {"token": token})))
        with pytest.raises(Forbidden, match="permission denied: cannot patch Pod in namespace .*need that RBAC"):
            nobody.apply(client, ns)
    finally:
        kube.delete("v1", "Namespace", ns)
