"""Integration tests against the running local cluster: the smoke test, the whole suite, the fault catalogue."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_LABEL = "netconform.io/local-cluster"


@dataclass
class SuiteRun:
    """What one run of the conformance suite produced: outcome and message per test id, and its wall time."""

    rc: int
    seconds: float
    outcomes: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)
    properties: dict[str, dict[str, str]] = field(default_factory=dict)
    output: str = ""
    junit: Path | None = None
    run_id: str = ""

    @property
    def report_dir(self) -> Path:
        return ROOT / "reports" / self.run_id

    def diagnosis(self) -> dict[str, object] | None:
        """The run's diagnosis.json: the layer, where, summary and evidence (None when nothing failed)."""
        path = self.report_dir / "diagnosis.json"
        assert path.exists(), f"the run wrote no diagnosis:\n{self.output}"
        found: dict[str, object] | None = json.loads(path.read_text())
        return found

    def ids(self, outcome: str) -> set[str]:
        return {k for k, v in self.outcomes.items() if v == outcome}

    def matching(self, fragment: str) -> dict[str, str]:
        return {k: v for k, v in self.outcomes.items() if fragment in k}


def parse_junit(
    path: Path,
) -> tuple[dict[str, str], dict[str, str], dict[str, float], dict[str, dict[str, str]]]:
    outcomes, messages, times, properties = {}, {}, {}, {}
    for tc in ET.parse(path).iter("testcase"):
        tid = f"{tc.get('classname', '').replace('.', '/')}.py::{tc.get('name')}"
        tid = tid.replace("conformance/", "", 1) if tid.startswith("conformance/") else tid
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = tc.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (el.get("message") or "") + "\n" + (el.text or "")
                break
        outcomes[tid], messages[tid], times[tid] = outcome, message, float(tc.get("time") or 0)
        properties[tid] = {p.get("name", ""): p.get("value", "") for p in tc.iter("property")}
    return outcomes, messages, times, properties


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a suite run: none of the suite's own options or a kubeconfig from the outside leak in,
    so the run tests exactly the cluster the test names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETCONFORM_") and k != "KUBECONFIG"}
    return {**env, **extra}


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """The admin kubeconfig of the local cluster `make test` brought up, after checking it is that cluster.

    Never a cluster named by the suite's options or environment: these tests break and restore the cluster.
    """
    from netconform.cluster import lifecycle
    from netconform.kube import connect

    meta = lifecycle.read_meta()
    path = lifecycle.paths.KUBECONFIG
    if not meta or not path.exists():
        pytest.fail("no local cluster: these tests run only against `netconform cluster up`", pytrace=False)
    kube = connect(str(path))
    nodes = kube.list_objects("v1", "Node")
    foreign = [n["metadata"]["name"] for n in nodes if n["metadata"]["labels"].get(LOCAL_LABEL) != "true"]
    if not nodes or foreign or len(nodes) != int(str(meta["nodes"])):
        pytest.fail(f"{kube.server} is not the local cluster (nodes {foreign or 'none'})", pytrace=False)
    return str(path)


@pytest.fixture(scope="session")
def suite_on(tmp_path_factory: pytest.TempPathFactory):
    """Run the conformance suite (or part of it) in a subprocess against the cluster of `kube_config`; return its
    per-test outcomes. For a test that boots a cluster of its own; the others use `run_suite`."""
    tmp_path_factory.getbasetemp()  # made once here: two runs started at once would race to make it

    def run(*args: str, kube_config: str, workers: int = 4, env: dict[str, str] | None = None) -> SuiteRun:
        junit = tmp_path_factory.mktemp("suite") / "junit.xml"
        paths = [a for a in args if a.startswith("conformance")] or ["conformance"]
        args = tuple(a for a in args if not a.startswith("conformance"))
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            *paths,
            f"--kube-config={kube_config}",
            f"--junitxml={junit}",
            "-p",
            "no:randomly",
            "-q",
            "--html=",
            *(["-n", str(workers), "--dist", "loadfile"] if workers else []),
            *args,
        ]
        run_id = "r" + secrets.token_hex(3)
        started = time.monotonic()
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=clean_env(
                PYTHONPATH=str(Path(__file__).parent),
                # Each run its own id: its namespaces never collide with a previous run's still terminating.
                NETCONFORM_RUN_ID=run_id,
                **(env or {}),
            ),
        )
        seconds = time.monotonic() - started
        output = proc.stdout[-6000:] + proc.stderr[-3000:]
        run = SuiteRun(proc.returncode, seconds, output=output, junit=junit, run_id=run_id)
        if junit.exists():
            run.outcomes, run.messages, run.times, run.properties = parse_junit(junit)
        return run

    return run


@pytest.fixture(scope="session")
def run_suite(kubeconfig: str, suite_on):
    """`suite_on` against the local cluster `make test` brought up, unless `kube_config` names another."""

    def run(
        *args: str, workers: int = 4, env: dict[str, str] | None = None, kube_config: str | None = None
    ) -> SuiteRun:
        return suite_on(*args, kube_config=kube_config or kubeconfig, workers=workers, env=env)

    return run


#: kubectl's discovery and HTTP cache for these tests: a folder of their own (under make test's TMPDIR), removed when
#: the session ends, not the user's ~/.kube/cache.
KUBE_CACHE = Path(tempfile.mkdtemp(prefix="kubectl-cache-"))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(KUBE_CACHE, ignore_errors=True)


def kubectl(
    kubeconfig: str, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = ["kubectl", f"--kubeconfig={kubeconfig}", f"--cache-dir={KUBE_CACHE}", *args]
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def run_namespaces(kubeconfig: str, run: str) -> list[tuple[str, bool]]:
    """(name, being deleted) of every namespace labelled with the run."""
    out = kubectl(
        kubeconfig,
        "get",
        "ns",
        "-l",
        f"netconform.io/run={run}",
        "--no-headers",
        "-o",
        "custom-columns=N:.metadata.name,D:.metadata.deletionTimestamp",
    ).stdout
    rows = [line.split() for line in out.strip().splitlines() if line.strip()]
    return [(name, deleted != "<none>") for name, deleted in rows]


class PodWatch:
    """Every pod the cluster adds while it is open, as (namespace, name, run label, owner kind), from
    `kubectl get pods -A --watch`: a run's pods include those its Deployments' controllers make."""

    COLUMNS = (
        "E:.type,NS:.object.metadata.namespace,N:.object.metadata.name,"
        r"RUN:.object.metadata.labels.netconform\.io/run,OWNER:.object.metadata.ownerReferences[0].kind"
    )

    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig
        self.added: list[tuple[str, str, str, str]] = []

    def __enter__(self) -> PodWatch:
        argv = ["kubectl", f"--kubeconfig={self.kubeconfig}", f"--cache-dir={KUBE_CACHE}", "get", "pods", "-A"]
        argv += ["--watch", "--output-watch-events", "--no-headers", "-o", f"custom-columns={self.COLUMNS}"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        for line in out.splitlines():
            fields = line.split()
            if len(fields) == 5 and fields[0] == "ADDED":
                self.added.append((fields[1], fields[2], fields[3], fields[4]))

    def of_run(self, run_id: str) -> list[tuple[str, str, str, str]]:
        """The pods added in the run's namespaces (nc-<area>-<run>[-<part>])."""
        return [p for p in self.added if f"-{run_id}" in p[0]]


def identity_kubeconfig(admin: str, out: Path, user: dict[str, object]) -> Path:
    """The admin kubeconfig's cluster with another identity."""
    import yaml

    cfg = yaml.safe_load(Path(admin).read_text())
    cfg["users"] = [{"name": "suite", "user": user}]
    for ctx in cfg["contexts"]:
        ctx["context"]["user"] = "suite"
    out.write_text(yaml.safe_dump(cfg))
    out.chmod(0o600)
    return out


@pytest.fixture(scope="session")
def least_privileged(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory):
    """A kubeconfig for a ServiceAccount bound to exactly the rights `netconform rbac` prints (with or without
    the privileged extras); every binding is removed at the end."""
    from netconform import rbac

    made: list[str] = []

    def make(privileged: bool) -> str:
        name = "nc-suite-privileged" if privileged else "nc-suite"
        docs = rbac.service_account_documents("default", name, privileged)
        kubectl(kubeconfig, "apply", "-f", "-", input=rbac.dump(docs))
        made.extend(d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding")
        made.append(f"sa:{name}")
        token = kubectl(kubeconfig, "-n", "default", "create", "token", name, "--duration=2h").stdout.strip()
        out = tmp_path_factory.mktemp("identity") / f"{name}.kubeconfig"
        return str(identity_kubeconfig(kubeconfig, out, {"token": token}))

    yield make
    for name in made:
        if name.startswith("sa:"):
            kubectl(kubeconfig, "-n", "default", "delete", "serviceaccount", name[3:], check=False)
        else:
            kubectl(kubeconfig, "delete", "clusterrolebinding", name, check=False)


@pytest.fixture(scope="session")
def measured() -> dict[str, float]:
    """Figures one integration test measures for a later one (the healthy suite's wall time)."""
    return {}


SUITE_ARGS = ("-n", "4", "--dist", "loadfile")
