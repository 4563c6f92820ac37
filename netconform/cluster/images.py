"""Container images for the local cluster, built here without a registry.

Images are OCI layouts written by this module (plain tar layers, no compression: they are imported into a
local containerd and never pushed), cached as tarballs outside the checkout and imported under exact names,
which is how the CRI looks them up. The toolbox rootfs comes from `debootstrap --variant=minbase` using the
mirror of this machine's own apt sources.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import paths

IMAGE_REVISION = "2"
REGISTRY = "netconform.local"
TOOLBOX_PACKAGES = ("dnsutils", "iproute2", "iputils-ping", "curl", "netcat-openbsd", "openssl", "ca-certificates")
SUITE = "bookworm"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageSpec:
    """One image: a name, the files of its layers, and its runtime config."""

    name: str  # full reference, e.g. netconform.local/toolbox:0.1
    layers: tuple[Path, ...]  # each a directory or a tar file
    entrypoint: tuple[str, ...] = ()
    user: str = ""
    env: tuple[str, ...] = (PATH_ENV,)
    extra: dict[str, str] = field(default_factory=dict)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob(layout: tarfile.TarFile, data: bytes, written: set[str]) -> str:
    digest = _sha(data)
    if digest not in written:
        info = tarfile.TarInfo("blobs/sha256/" + digest.split(":", 1)[1])
        info.size = len(data)
        layout.addfile(info, io.BytesIO(data))
        written.add(digest)
    return digest


def layer_from_dir(src: Path) -> bytes:
    """A tar layer of a directory tree, with numeric owners and fixed times (reproducible)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.mtime = 0
            info.uname = info.gname = ""
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def write_oci_archive(specs: list[ImageSpec], out: Path) -> None:
    """Write one OCI image-layout tarball holding every image in `specs` (shared layers stored once)."""
    layer_cache: dict[Path, bytes] = {}
    written: set[str] = set()
    manifests = []
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as layout:
        for spec in specs:
            diff_ids, layer_descs = [], []
            for src in spec.layers:
                if src not in layer_cache:
                    layer_cache[src] = src.read_bytes() if src.is_file() else layer_from_dir(src)
                data = layer_cache[src]
                digest = _blob(layout, data, written)
                diff_ids.append(digest)
                layer_descs.append(
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": len(data)}
                )
            config = {
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Env": list(spec.env),
                    "Entrypoint": list(spec.entrypoint) or None,
                    "User": spec.user,
                    "Labels": {"netconform.image.revision": IMAGE_REVISION},
                },
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
            cfg = json.dumps(config, sort_keys=True).encode()
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": _blob(layout, cfg, written),
                        "size": len(cfg),
                    },
                    "layers": layer_descs,
                },
                sort_keys=True,
            ).encode()
            manifests.append(
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _blob(layout, manifest, written),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": spec.name,
                        "org.opencontainers.image.ref.name": spec.name.rsplit(":", 1)[1],
                    },
                }
            )
        for name, data in (
            ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            ("index.json", json.dumps({"schemaVersion": 2, "manifests": manifests}).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            layout.addfile(info, io.BytesIO(data))
    tmp.rename(out)


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt already uses (never one written into the project)."""
    texts = [p.read_text() for p in sorted(sources_dir.glob("sources.list.d/*")) if p.is_file()]
    if (sources_dir / "sources.list").exists():
        texts.append((sources_dir / "sources.list").read_text())
    return mirror_from_sources("\n".join(texts))


def mirror_from_sources(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"^URIs:\s*(\S+)", line) or re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", line)
        if m and "security" not in m.group(1):
            return m.group(1)
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list{,.d/*}; the toolbox image needs one")


def toolbox_rootfs(say: Callable[[str], None] = print) -> Path:
    key = hashlib.sha256(json.dumps([TOOLBOX_PACKAGES, SUITE, IMAGE_REVISION]).encode()).hexdigest()[:12]
    root = paths.CACHE / "rootfs" / f"toolbox-{key}"
    if (root / ".complete").exists():
        return root / "fs"
    if root.exists():
        shutil.rmtree(root)
    (root / "fs").mkdir(parents=True)
    log = paths.CACHE / "logs" / f"debootstrap-{key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"debootstrap toolbox rootfs (log {log})")
    with log.open("w") as out:
        rc = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(TOOLBOX_PACKAGES),
                SUITE,
                str(root / "fs"),
                apt_mirror(),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,  # ~30 s measured; a stalled mirror must not hang `up`
        ).returncode
    if rc != 0:
        raise RuntimeError(f"debootstrap failed (exit {rc}); log {log}")
    fs = root / "fs"
    # Slim the image: docs, manuals and apt lists are not needed by probes.
    for sub in ("usr/share/doc", "usr/share/man", "usr/share/info", "var/lib/apt/lists", "var/cache/apt"):
        shutil.rmtree(fs / sub, ignore_errors=True)
    (root / ".complete").write_text("")
    return fs


TOOLBOX_TAG = "v1"


def image_names() -> dict[str, str]:
    """The exact references pods use (manifests name these; the CRI finds images only by exact name)."""
    from . import build

    return {
        "toolbox": f"{REGISTRY}/toolbox:{TOOLBOX_TAG}",
        "pause": f"{REGISTRY}/pause:{TOOLBOX_TAG}",
        "acmesolver": f"{REGISTRY}/cert-manager-acmesolver:{build.CERT_MANAGER_VERSION}",
        "coredns": f"{REGISTRY}/coredns:{build.COREDNS_VERSION}",
        "traefik": f"{REGISTRY}/traefik:{build.TRAEFIK_VERSION}",
        "cert-manager": f"{REGISTRY}/cert-manager-controller:{build.CERT_MANAGER_VERSION}",
        "pebble": f"{REGISTRY}/pebble:{build.PEBBLE_VERSION}",
        "metallb-controller": f"{REGISTRY}/metallb-controller:{build.METALLB_VERSION}",
        "metallb-speaker": f"{REGISTRY}/metallb-speaker:{build.METALLB_VERSION}",
    }


#: Images every node needs; the rest (cluster add-ons, pinned to the first node) go to the first node only.
NODE_IMAGES = ("toolbox", "pause", "acmesolver", "metallb-speaker")


def _single_file_dir(dest: Path, files: dict[str, Path]) -> Path:
    """A directory holding `files` (path in image -> source), made once, as a layer source."""
    if (dest / ".complete").exists():
        return dest / "fs"
    shutil.rmtree(dest, ignore_errors=True)
    for rel, src in files.items():
        target = dest / "fs" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    (dest / ".complete").write_text("")
    return dest / "fs"


def build_archives(bins: dict[str, Path], say: Callable[[str], None] = print) -> tuple[Path, Path]:
    """Two OCI archives, (every node's images, the add-on images), cached by the inputs' keys."""
    rootfs = toolbox_rootfs(say)
    names = image_names()
    key = hashlib.sha256(
        json.dumps([str(rootfs), sorted((k, str(v)) for k, v in bins.items()), names, IMAGE_REVISION]).encode()
    ).hexdigest()[:12]
    out = (paths.CACHE / "images" / f"node-images-{key}.tar", paths.CACHE / "images" / f"addon-images-{key}.tar")
    if all(p.exists() for p in out):
        return out
    out[0].parent.mkdir(parents=True, exist_ok=True)
    say("writing image archives")
    layers = paths.CACHE / "layers"

    def files(name: str, mapping: dict[str, Path]) -> Path:
        return _single_file_dir(
            layers / f"{name}-{hashlib.sha256(str(sorted(mapping.items())).encode()).hexdigest()[:12]}", mapping
        )

    k8s, cm, pebble = bins["kubernetes"], bins["cert-manager"], bins["pebble"]
    agnhost = files("agnhost", {"usr/local/bin/agnhost": k8s / "agnhost"})
    echo = files("nc-echo", {"usr/local/bin/nc-echo": bins["nc-echo"] / "nc-echo"})
    nonroot = ("65532",)
    write_oci_archive(
        [
            ImageSpec(names["toolbox"], (rootfs, agnhost, echo), entrypoint=("/usr/local/bin/agnhost",)),
            # Every pod's sandbox: nc-echo's pause, alone (a static program needs no root filesystem).
            ImageSpec(names["pause"], (echo,), entrypoint=("/usr/local/bin/nc-echo", "pause")),
            # cert-manager starts solver pods with runAsNonRoot: the image names a numeric non-root user.
            ImageSpec(
                names["acmesolver"],
                (files("acmesolver", {"acmesolver": cm / "acmesolver"}),),
                entrypoint=("/acmesolver",),
                user=nonroot[0],
            ),
            *metallb_images(bins, "speaker", files),
        ],
        out[0],
    )
    pebble_certs = pebble_module_dir() / "test" / "certs" / "localhost"
    write_oci_archive(
        [
            ImageSpec(
                names["coredns"],
                (files("coredns", {"coredns": bins["coredns"] / "coredns"}),),
                entrypoint=("/coredns",),
            ),
            ImageSpec(
                names["traefik"],
                (files("traefik", {"traefik": bins["traefik"] / "traefik"}),),
                entrypoint=("/traefik",),
            ),
            ImageSpec(
                names["cert-manager"],
                (files("cm-controller", {"controller": cm / "controller"}),),
                entrypoint=("/controller",),
                user=nonroot[0],
            ),
            ImageSpec(
                names["pebble"],
                (
                    files(
                        "pebble",
                        {
                            "pebble": pebble / "pebble",
                            "pebble-challtestsrv": pebble / "pebble-challtestsrv",
                            "certs/cert.pem": pebble_certs / "cert.pem",
                            "certs/key.pem": pebble_certs / "key.pem",
                        },
                    ),
                ),
                entrypoint=("/pebble",),
                user=nonroot[0],
            ),
            *metallb_images(bins, "controller", files),
        ],
        out[1],
    )
    for old in out[0].parent.glob("*.tar"):  # archives of earlier recipes: never used again
        if old not in out:
            old.unlink()
    return out


def metallb_images(
    bins: dict[str, Path], component: str, files: Callable[[str, dict[str, Path]], Path]
) -> list[ImageSpec]:
    """MetalLB's controller or speaker image, when the cluster has MetalLB (`--loadbalancer=metallb`)."""
    if "metallb" not in bins:
        return []
    name = f"metallb-{component}"
    layer = files(name, {component: bins["metallb"] / component})
    return [ImageSpec(image_names()[name], (layer,), entrypoint=(f"/{component}",))]


def pebble_module_dir() -> Path:
    from . import build

    return module_dir("github.com/letsencrypt/pebble/v2", build.PEBBLE_VERSION)


def module_dir(module: str, version: str) -> Path:
    """Where a module's source is in the module cache (downloaded if needed), for files it ships."""
    from . import build

    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=True,
        capture_output=True,
        text=True,
        env=build.go_env(),
        cwd="/",
        timeout=build.GO_TIMEOUT_S,
    ).stdout
    return Path(json.loads(out)["Dir"])
