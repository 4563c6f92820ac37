"""Manifest loading: templates filled, every image moved to a mirror, missing values named."""

import pytest

from netconform import manifests


def test_every_shipped_manifest_renders_and_names_the_same_image():
    values = {
        k: "x"
        for k in (
            "NAMESPACE",
            "NAME",
            "BACKEND",
            "REPLICAS",
            "APP",
            "POLICY",
            "TARGET",
            "TARGET_IP",
            "CLASS",
            "HOST",
            "BLUE_HOST",
            "GREEN_HOST",
            "SECRET",
            "ACME_SERVER",
            "SKIP_TLS_VERIFY",
            "ISSUER",
            "COLOUR",
            "NODE",
            "X",
            "Y",
            "Z",
            "RUN",
            "EXCEPT_1",
            "EXCEPT_2",
            "TIMEOUT",
            "DNS_IP",
            "DOMAIN",
            "HOST_PORT",
            "STAYING_SET",
            "HTTP_TARGET",
            "HTTPS_TARGET",
        )
    }
    values["IMAGE"] = "netconform.local/toolbox:v1"
    count = 0
    for path in sorted(manifests.ROOT.glob("*/*.yaml")):
        if path.parent.name == "kind":
            continue
        docs = manifests.load(path.parent.name, path.stem, values)
        assert docs, path
        for d in docs:
            assert {"apiVersion", "kind", "metadata"} <= d.keys(), path
            assert all(i == values["IMAGE"] for i in manifests.images_of(d)), path
        count += 1
    assert count >= 10


def test_missing_value_is_named():
    with pytest.raises(manifests.ManifestError, match=r"no value for \$\{HOST\}"):
        manifests.render("host: ${HOST}\n", {}, "t.yaml")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("netconform.local/toolbox:v1", "mirror.example:5000/team/toolbox:v1"),
        ("registry.k8s.io/e2e-test-images/agnhost:2.53", "mirror.example:5000/team/e2e-test-images/agnhost:2.53"),
        ("busybox:1.36", "mirror.example:5000/team/busybox:1.36"),
        ("library/nginx:1", "mirror.example:5000/team/library/nginx:1"),
        ("localhost/x:1", "mirror.example:5000/team/x:1"),
    ],
)
def test_image_rewrite_keeps_path_and_tag(image, expected):
    assert manifests.rewrite_image(image, "mirror.example:5000/team/") == expected


def test_rewrite_reaches_deployments_pods_and_init_containers():
    docs = manifests.render(
        "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n"
        "      initContainers: [{name: i, image: a.io/i:1}]\n      containers: [{name: c, image: b.io/c:2}]\n"
        "---\nkind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: c:3}]\n",
        {},
    )
    out = [manifests.rewrite_images(d, "m.io") for d in docs]
    assert manifests.images_of(out[0]) == ["m.io/c:2", "m.io/i:1"]
    assert manifests.images_of(out[1]) == ["m.io/c:3"]


def test_the_run_label_goes_on_a_deployments_pods_too():
    """A Deployment's pods carry the run's label (kubectl get pods -l netconform.io/run=<run> finds every pod of a
    run); its selector stays as written, so the label never changes which pods a Service or the Deployment picks."""
    from netconform.kube import RUN_LABEL, _with_labels

    (doc,) = manifests.load("common", "server", {"NAME": "web", "REPLICAS": "2", "IMAGE": "img"})
    labelled = _with_labels(doc, {RUN_LABEL: "r1"})
    assert labelled["metadata"]["labels"][RUN_LABEL] == "r1"
    assert labelled["spec"]["template"]["metadata"]["labels"] == {
        **doc["spec"]["template"]["metadata"]["labels"],
        RUN_LABEL: "r1",
    }
    assert labelled["spec"]["selector"] == doc["spec"]["selector"]
    assert RUN_LABEL not in doc["spec"]["template"]["metadata"]["labels"]  # the manifest itself is left as it was


def test_an_object_without_a_pod_template_gets_the_label_on_itself_only():
    from netconform.kube import RUN_LABEL, _with_labels

    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"app": "web"}}}
    assert _with_labels(svc, {RUN_LABEL: "r1"}) == {**svc, "metadata": {"name": "s", "labels": {RUN_LABEL: "r1"}}}
