"""ExternalName Services: the name is a CNAME for the target and resolves onward to the target's address."""

from __future__ import annotations

import pytest

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.preconditions import Precondition
from fixtures.workloads import ServiceRef, Workloads
from netconform import probes
from netconform.probes import ProbePod

pytestmark = pytest.mark.externalname

#: The run's probe pod is this module's client: the name it resolves is fully qualified. Its one Service lives in the
#: run's namespace too: a namespace of its own would cost a run about 0.45 CPU-s for one Service (#12).
SHARED_CLIENT = True


@pytest.fixture(scope="module")
def target(cluster: ClusterHandle) -> str:
    """The CNAME target: --external-name, or the API Service's FQDN, which every cluster resolves internally."""
    return cluster.settings.external_name or f"kubernetes.default.svc.{cluster.info.cluster_domain}"


@pytest.fixture(scope="module")
def service(run_workloads: Workloads, target: str) -> ServiceRef:
    return run_workloads.service("externalname", "service", NAME="external", TARGET=target)


def test_externalname_resolves_to_a_cname_and_onward(
    cluster_dns: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    service: ServiceRef,
    target: str,
) -> None:
    """`external.<ns>.svc.<domain>` answers with a CNAME to the target and the target's own address."""
    cluster_dns.require()
    name = f"{service.name}.{service.namespace}.svc.{cluster.info.cluster_domain}"
    deadline = cluster.settings.deadline(probes.PROBE_S)
    try:
        direct = probes.eventually(probes.lookup_probe(client, target + "."), lambda a: bool(a.values("A")), deadline)
    except probes.NotConsistent as e:
        diagnose.fail(
            f"the ExternalName target {target} itself does not resolve from a pod",
            expected="an A record",
            observed=e.last.summary(),
            objects=[client.describe()],
            reproduce=client.repro(e.last.command),
        )
    want_cname = {target.rstrip(".") + "."}
    try:
        probes.eventually(
            probes.lookup_probe(client, name),
            lambda a: a.values("CNAME") == want_cname and a.values("A") == direct.values("A"),
            deadline,
        )
    except probes.NotConsistent as e:
        diagnose.involve(service.namespace)
        diagnose.involve(client.namespace, client.name)
        diagnose.fail(
            f"ExternalName {name} is not a CNAME for {target}",
            expected=f"CNAME {target}. then A {sorted(direct.values('A'))}",
            observed=e.last.summary(),
            objects=[client.describe(), f"service {service.namespace}/{service.name} -> {target}"],
            reproduce=client.repro(e.last.command),
        )
