"""Ingress: routing by class, by host and by path, as seen through the controller's Service from a pod."""

from __future__ import annotations

import pytest

from fixtures.bulk import expect_bulk
from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.ingress import Hosts, IngressController, request_colours
from fixtures.preconditions import Precondition
from fixtures.prestart import Stage
from fixtures.workloads import Workloads
from netconform import capabilities, probes
from netconform.areas import not_applicable
from netconform.probes import HttpResult, ProbePod

pytestmark = pytest.mark.ingress

#: The run's probe pod is this module's client: no check here depends on the client's namespace.
SHARED_CLIENT = True


def request_routes(workloads: Workloads, ingress_class: str, hosts: Hosts) -> None:
    """The module's Ingresses: blue/green by host, and the path rules."""
    workloads.apply(
        workloads.render("ingress", "colours", CLASS=ingress_class, BLUE_HOST=hosts("blue"), GREEN_HOST=hosts("green"))
    )
    workloads.apply(workloads.render("ingress", "paths", CLASS=ingress_class, HOST=hosts("paths")))


def prestart(stage: Stage) -> None:
    """The backends and the Ingresses, requested at the start of the run."""
    cluster, ws = stage.cluster, stage.workloads
    chosen = capabilities.pick_ingress_class(cluster.info.ingress_classes, cluster.settings.ingress_class)
    request_colours(ws)
    if chosen:
        request_routes(ws, chosen.name, Hosts(ws.namespace, cluster.settings.ingress_domain))


@pytest.fixture(scope="module")
def routes(workloads: Workloads, ingress_controller: IngressController, hosts: Hosts, colours: dict[str, str]) -> None:
    """The module's Ingresses, applied (again) and in place before the checks route through them."""
    request_routes(workloads, ingress_controller.ingress_class.name, hosts)


def expect_route(
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    ctrl: IngressController,
    host: str | None,
    path: str,
    want: str | int,
    what: str,
) -> None:
    """Poll until `host` + `path` answers with backend `want` (a name) or HTTP status `want` (a number)."""
    __tracebackhide__ = True
    url = ctrl.http_url + path

    def ok(r: HttpResult) -> bool:
        return r.status == want if isinstance(want, int) else (r.ok and r.body.strip() == want)

    svc = ctrl.service
    diagnose.until(
        probes.http_probe(client, url, host=host),
        ok,
        via=client,
        what=what,
        expected=f"HTTP {want}" if isinstance(want, int) else f"HTTP 200 from backend {want}",
        objects=[
            f"IngressClass {ctrl.ingress_class.name} ({ctrl.ingress_class.controller}, profile {ctrl.profile.name})",
            f"controller service {svc.namespace}/{svc.name} ({svc.cluster_ip})",
            f"Host {host or '(none)'}",
        ],
    )


def test_ingress_class_is_present(
    diagnose: Diagnose, cluster: ClusterHandle, ingress_controller: IngressController, record_property
) -> None:
    """The IngressClasses are reported; the one under test names a controller."""
    for c in cluster.info.ingress_classes:
        record_property(f"ingressclass:{c.name}", f"{c.controller}{' (default)' if c.default else ''}")
    cls = ingress_controller.ingress_class
    diagnose.check(
        bool(cls.controller),
        f"IngressClass {cls.name} names no controller",
        expected="spec.controller set",
        observed="empty",
    )


def test_ingress_routes_each_host_to_its_own_colour(
    ingress_reach: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    ingress_controller: IngressController,
    hosts: Hosts,
    colours: dict[str, str],
    routes: None,
) -> None:
    """Blue/green: the blue host reaches only blue, the green host only green."""
    ingress_reach.require()
    for colour in ("blue", "green"):
        expect_route(
            diagnose,
            cluster,
            client,
            ingress_controller,
            hosts(colour),
            "/",
            colour,
            f"Host {hosts(colour)} does not reach the {colour} backend",
        )


def test_ingress_request_without_a_known_host_gets_404(
    ingress_reach: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    ingress_controller: IngressController,
    routes: None,
) -> None:
    """A request whose Host matches no rule (the bare controller address) gets 404."""
    ingress_reach.require()
    expect_route(
        diagnose,
        cluster,
        client,
        ingress_controller,
        None,
        "/",
        404,
        "a request without a known Host was not answered 404",
    )


@pytest.mark.parametrize(
    ("path", "want"),
    [("/foo", "blue"), ("/foo/bar", "blue"), ("/foobar", 404), ("/exact", "green"), ("/exact/sub", 404)],
    ids=["prefix-itself", "prefix-subpath", "prefix-not-partial-element", "exact-itself", "exact-not-subpath"],
)
def test_ingress_path_matching(
    ingress_reach: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    ingress_controller: IngressController,
    hosts: Hosts,
    routes: None,
    path: str,
    want: str | int,
) -> None:
    """Prefix matches per path element (/foo matches /foo/bar, not /foobar); Exact matches only the exact path."""
    ingress_reach.require()
    expect_route(
        diagnose,
        cluster,
        client,
        ingress_controller,
        hosts("paths"),
        path,
        want,
        f"path {path} on {hosts('paths')} routed wrongly",
    )


def test_ingress_without_class_is_not_served(
    ingress_reach: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    workloads: Workloads,
    client: ProbePod,
    ingress_controller: IngressController,
    hosts: Hosts,
    colours: dict[str, str],
    routes: None,
) -> None:
    """An Ingress naming no class, with no default IngressClass, is not served; the same rule with a class is."""
    ingress_reach.require()
    if any(c.default for c in cluster.info.ingress_classes):
        not_applicable("a default IngressClass exists: an Ingress without class is rightly served")
    workloads.apply(workloads.render("ingress", "noclass", HOST=hosts("noclass")))
    # The classed rules of this module are served meanwhile, so a 404 here is the controller's choice.
    expect_route(
        diagnose, cluster, client, ingress_controller, hosts("blue"), "/", "blue", "the classed Ingress is not served"
    )
    expect_route(
        diagnose,
        cluster,
        client,
        ingress_controller,
        hosts("noclass"),
        "/",
        404,
        "an Ingress without ingressClassName was served",
    )


def test_ingress_carries_1_mib_each_way(
    ingress_reach: Precondition,
    diagnose: Diagnose,
    client: ProbePod,
    ingress_controller: IngressController,
    hosts: Hosts,
    colours: dict[str, str],
    routes: None,
) -> None:
    """Through the controller by host (blue), 1 MiB uploaded and 1 MiB downloaded arrive whole (small requests pass
    where an MTU or buffering problem breaks every larger one)."""
    ingress_reach.require()
    host = hosts("blue")
    expect_bulk(
        diagnose,
        probes.bulk_probe(client, ingress_controller.http_url, host=host),
        f"a 1 MiB transfer through the ingress controller (Host {host}) does not arrive whole",
        [
            client.describe(),
            f"Host {host}",
            f"controller service {ingress_controller.service.namespace}/{ingress_controller.service.name}",
        ],
    )
