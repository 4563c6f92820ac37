"""The local cluster's pure parts: build recipes and cache keys, image archives, CNI config, mirror lookup."""

import json
import tarfile

from netconform.cluster import build, images, node
from netconform.cluster.config import Node, nodes


def test_staging_replaces_map_local_paths_to_published_versions():
    gomod = "replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tk8s.io/kubelet => ./staging/src/k8s.io/kubelet\n)\n"
    assert build.staging_replaces(gomod, "v0.35.4") == (
        "k8s.io/api => k8s.io/api v0.35.4",
        "k8s.io/kubelet => k8s.io/kubelet v0.35.4",
    )


def test_cache_key_changes_with_the_recipe(monkeypatch):
    monkeypatch.setattr(build, "go_version", lambda: "go1.26.8")
    a = build.coredns_recipe()
    b = build.GoRecipe(**{**a.__dict__, "ldflags": ("-X x=y",)})
    assert a.key != b.key and a.key == build.coredns_recipe().key


def test_wrapper_module_keeps_scoped_replaces_and_excludes():
    text = build.wrapper_gomod(build.cert_manager_recipe()) + build.wrapper_gomod(build.traefik_recipe())
    assert "\tgithub.com/miekg/dns v1.1.41 => github.com/miekg/dns v1.1.34" in text
    assert "exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible" in text
    assert '_ "github.com/coredns/coredns"' in build.tools_go(build.coredns_recipe())


def test_oci_archive_holds_named_images_sharing_layers(tmp_path):
    layer = tmp_path / "fs"
    (layer / "bin").mkdir(parents=True)
    (layer / "bin" / "tool").write_text("x")
    out = tmp_path / "images.tar"
    images.write_oci_archive(
        [
            images.ImageSpec("netconform.local/a:v1", (layer,), entrypoint=("/bin/tool",)),
            images.ImageSpec("netconform.local/b:v1", (layer,)),
        ],
        out,
    )
    with tarfile.open(out) as t:
        index = json.load(t.extractfile("index.json"))
        names = [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]]
        layers = [n for n in t.getnames() if n.startswith("blobs/")]
    assert names == ["netconform.local/a:v1", "netconform.local/b:v1"]
    assert len(layers) == 1 + 2 + 2  # one shared layer, a config and a manifest per image


def test_mirror_comes_from_the_machines_apt_sources():
    deb822 = "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n"
    assert images.mirror_from_sources(deb822) == "http://mirror.invalid/debian"
    assert images.mirror_from_sources("deb [arch=amd64] http://m.invalid/d bookworm main\n") == "http://m.invalid/d"


def test_cni_conflist_per_node_has_hairpin_portmap_and_its_own_ipam_state():
    n1, n2 = nodes(2)
    c1, c2 = node.cni_conflist(n1, "10.244.0.0/24"), node.cni_conflist(n2, "10.244.1.0/24")
    assert [p["type"] for p in c1["plugins"]] == ["bridge", "portmap"]
    assert c1["plugins"][0]["hairpinMode"] and not c1["plugins"][0]["ipMasq"]
    assert c1["plugins"][0]["ipam"]["dataDir"] != c2["plugins"][0]["ipam"]["dataDir"]
    assert n1.ip != n2.ip and Node(1).netns == "nc-node-1"
