"""Build the cluster's binaries from Go modules, cached outside the checkout by a key of version + recipe.

Each component is built from a small wrapper module that `require`s the upstream module at a pinned version,
with the `replace`/`exclude` lines upstream's own go.mod needs (its local-path replaces mapped to published
versions). The cache key hashes the whole recipe, so changing a version, a flag or a replace line rebuilds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import lock, paths

#: Deadline of one `go build` or `go mod download` (the cold Kubernetes build measured ~6 min on 2 cores).
GO_TIMEOUT_S = 3600
#: Bump when the build procedure itself (not a recipe's data) changes.
PROCEDURE_REVISION = "1"

DEFAULT_KUBERNETES_VERSION = "v1.35.4"


class BuildError(RuntimeError):
    """A build step failed; the message names the component, the command and the log."""


@dataclass(frozen=True)
class GoRecipe:
    name: str
    module: str
    version: str
    #: Import paths of main packages to build (binaries are named after the last element).
    packages: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    #: Source of a wrapper `main` package, for modules that ship a library entry point but no main.
    main_go: str | None = None
    main_binary: str | None = None
    ldflags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        blob = json.dumps(
            {"recipe": dataclasses.asdict(self), "go": go_version(), "rev": PROCEDURE_REVISION},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def binaries(self) -> tuple[str, ...]:
        names = [p.rsplit("/", 1)[-1] for p in self.packages]
        if self.main_binary:
            names.append(self.main_binary)
        return tuple(names)


_go_version: str | None = None


def go_version() -> str:
    global _go_version
    if _go_version is None:
        _go_version = subprocess.run(
            ["go", "env", "GOVERSION"], check=True, capture_output=True, text=True, env=go_env(), timeout=60
        ).stdout.strip()
    return _go_version


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(paths.GOMODCACHE),
        GOCACHE=str(paths.GOCACHE),
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOFLAGS="-mod=mod -buildvcs=false",
    )
    return env


def _run(cmd: list[str], cwd: Path, log: Path, what: str) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            proc = subprocess.run(
                cmd, cwd=cwd, env=go_env(), stdout=out, stderr=subprocess.STDOUT, timeout=GO_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise BuildError(
                f"building {what}: `{' '.join(cmd[:3])} ...` ran over {GO_TIMEOUT_S} s; log {log}"
            ) from None  # noqa: E501
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise BuildError(
            f"building {what} failed: `{' '.join(cmd[:3])} ...` exited {proc.returncode}; log {log}:\n{tail}"
        )


def upstream_gomod(module: str, version: str) -> str:
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=True,
        capture_output=True,
        text=True,
        env=go_env(),
        cwd="/",
        timeout=GO_TIMEOUT_S,
    ).stdout
    return Path(json.loads(out)["GoMod"]).read_text()


def staging_replaces(gomod: str, staging_version: str) -> tuple[str, ...]:
    """Map `k8s.io/x => ./staging/src/k8s.io/x` lines to the published `k8s.io/x vX` modules."""
    names = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/", gomod, flags=re.M)
    return tuple(f"{n} => {n} {staging_version}" for n in sorted(set(names)))


def kubernetes_recipe(version: str = DEFAULT_KUBERNETES_VERSION) -> GoRecipe:
    m = re.fullmatch(r"v1\.(\d+)\.(\d+)", version)
    if not m:
        raise BuildError(f"--kubernetes-version must look like v1.35.4, given: {version}")
    minor, patch = m.groups()
    staging = f"v0.{minor}.{patch}"
    ldflags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    base = "k8s.io/kubernetes"
    return GoRecipe(
        name="kubernetes",
        module=base,
        version=version,
        packages=tuple(
            f"{base}/{p}"
            for p in (
                "cmd/kube-apiserver",
                "cmd/kube-controller-manager",
                "cmd/kube-scheduler",
                "cmd/kubelet",
                "cmd/kube-proxy",
                "cmd/kubectl",
                "test/images/agnhost",
            )
        ),
        replaces=staging_replaces(upstream_gomod(base, version), staging),
        ldflags=tuple(ldflags),
    )


ETCD_VERSION = "v3.6.16"
COREDNS_VERSION = "v1.13.2"
TRAEFIK_VERSION = "v3.6.12"
PEBBLE_VERSION = "v2.10.3"
CERT_MANAGER_VERSION = "v1.11.5"
# The one version the module proxy serves (advisories are reported against it): it runs only inside the local
# cluster's node network namespaces, as their NetworkPolicy engine.
KUBE_ROUTER_VERSION = "v2.1.0"
# v0.16 needs github.com/metallb/frr-k8s v0.0.27, which the module proxy does not serve; v0.15.2 builds.
METALLB_VERSION = "v0.15.2"


def etcd_recipe() -> GoRecipe:
    siblings = (
        "go.etcd.io/etcd/api/v3",
        "go.etcd.io/etcd/client/pkg/v3",
        "go.etcd.io/etcd/client/v3",
        "go.etcd.io/etcd/pkg/v3",
    )
    return GoRecipe(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version=ETCD_VERSION,
        replaces=tuple(f"{s} => {s} {ETCD_VERSION}" for s in siblings),
        main_go='package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
        "func main() { etcdmain.Main(os.Args) }\n",
        main_binary="etcd",
    )


def coredns_recipe() -> GoRecipe:
    return GoRecipe(
        name="coredns",
        module="github.com/coredns/coredns",
        version=COREDNS_VERSION,
        packages=("github.com/coredns/coredns",),
    )


def traefik_recipe() -> GoRecipe:
    # The replace and exclude lines of traefik's own go.mod: without them go-http-auth resolves to a
    # placeholder version and the build fails.
    return GoRecipe(
        name="traefik",
        module="github.com/traefik/traefik/v3",
        version=TRAEFIK_VERSION,
        packages=("github.com/traefik/traefik/v3/cmd/traefik",),
        replaces=(
            "github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e",
            "github.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59",
            "github.com/mailgun/minheap => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595",
        ),
        excludes=("github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible",),
        ldflags=(f"-X github.com/traefik/traefik/v3/pkg/version.Version={TRAEFIK_VERSION}",),
    )


def pebble_recipe() -> GoRecipe:
    return GoRecipe(
        name="pebble",
        module="github.com/letsencrypt/pebble/v2",
        version=PEBBLE_VERSION,
        packages=(
            "github.com/letsencrypt/pebble/v2/cmd/pebble",
            "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv",
        ),
    )


def cert_manager_recipe() -> GoRecipe:
    # v1.11.5 is the newest release whose cmd/* live in the main module (later ones are nested modules the
    # module proxy does not serve). Its one replace keeps its version scope: unscoped, the controller breaks.
    base = "github.com/cert-manager/cert-manager"
    return GoRecipe(
        name="cert-manager",
        module=base,
        version=CERT_MANAGER_VERSION,
        packages=tuple(f"{base}/cmd/{c}" for c in ("controller", "webhook", "cainjector", "acmesolver")),
        replaces=("github.com/miekg/dns v1.1.41 => github.com/miekg/dns v1.1.34",),
        ldflags=(f"-X {base}/pkg/util.AppVersion={CERT_MANAGER_VERSION}",),
    )


def kube_router_recipe() -> GoRecipe:
    """kube-router, of which the local cluster runs only the NetworkPolicy controller (iptables and ipsets)."""
    base = "github.com/cloudnativelabs/kube-router/v2"
    return GoRecipe(
        name="kube-router",
        module=base,
        version=KUBE_ROUTER_VERSION,
        packages=(f"{base}/cmd/kube-router",),
        ldflags=(f"-X {base}/pkg/version.Version={KUBE_ROUTER_VERSION}",),
    )


def metallb_recipe() -> GoRecipe:
    """MetalLB's controller (assigns addresses) and speaker (answers ARP for them), for LoadBalancer Services."""
    base = "go.universe.tf/metallb"
    return GoRecipe(
        name="metallb",
        module=base,
        version=METALLB_VERSION,
        packages=(f"{base}/controller", f"{base}/speaker"),
        ldflags=(f"-X {base}/internal/version.version={METALLB_VERSION}",),
    )


ECHO_SOURCE = Path(__file__).parent / "echo" / "main.go"


def echo_recipe() -> GoRecipe:
    """nc-echo, the suite's own test server (standard library only; the key follows its source)."""
    return GoRecipe(name="nc-echo", module="", version="v1", main_go=ECHO_SOURCE.read_text(), main_binary="nc-echo")


def all_recipes(kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> list[GoRecipe]:
    return [
        echo_recipe(),
        kubernetes_recipe(kubernetes_version),
        etcd_recipe(),
        coredns_recipe(),
        traefik_recipe(),
        pebble_recipe(),
        cert_manager_recipe(),
        kube_router_recipe(),
        metallb_recipe(),
    ]


def wrapper_gomod(recipe: GoRecipe) -> str:
    lines = [
        f"module netconform.local/build/{recipe.name}",
        "",
        "go 1.25",
        "",
    ]
    if recipe.module:  # a recipe without module is the project's own source, with no requirements
        lines += [f"require {recipe.module} {recipe.version}", ""]
    if recipe.replaces:
        lines += ["replace (", *(f"\t{r}" for r in recipe.replaces), ")", ""]
    for e in recipe.excludes:
        lines.append(f"exclude {e}")
    return "\n".join(lines) + "\n"


def tools_go(recipe: GoRecipe) -> str:
    # The classic tools.go: a never-built file whose imports pin main packages for `go mod tidy`.
    imports = "\n".join(f'\t_ "{p}"' for p in recipe.packages)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def bin_dir(recipe: GoRecipe) -> Path:
    return paths.CACHE / "bin" / f"{recipe.name}-{recipe.version}-{recipe.key}"


def is_built(recipe: GoRecipe) -> bool:
    return (bin_dir(recipe) / ".complete").exists()


def build(recipe: GoRecipe, say: Callable[[str], None] = print) -> Path:
    """Build (or find in the cache) the binaries of one recipe; return their directory. Under the cluster lock
    (re-entrant: `up` holds it already), so two builds never share the cache's work folders."""
    out = bin_dir(recipe)
    if is_built(recipe):
        return out
    with lock.held(say=say):
        return _build(recipe, out, say)


def _build(recipe: GoRecipe, out: Path, say: Callable[[str], None]) -> Path:
    if is_built(recipe):  # built by whoever held the lock before us
        return out
    src = paths.CACHE / "src" / f"{recipe.name}-{recipe.key}"
    src.mkdir(parents=True, exist_ok=True)
    log = paths.CACHE / "logs" / f"build-{recipe.name}-{recipe.key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    (src / "go.mod").write_text(wrapper_gomod(recipe))
    (src / "go.sum").unlink(missing_ok=True)
    if recipe.packages:
        (src / "tools.go").write_text(tools_go(recipe))
    if recipe.main_go:
        (src / "main.go").write_text(recipe.main_go)
    started = time.monotonic()
    say(f"building {recipe.name} {recipe.version} (log {log})")
    _run(["go", "mod", "tidy"], src, log, recipe.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp."))
    tmp.chmod(0o755)  # mkdtemp's 0700; the binaries' folder stays readable as before
    ldflags = " ".join(("-s", "-w", *recipe.ldflags))
    base = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o"]
    if recipe.packages:
        _run([*base, str(tmp) + "/", *recipe.packages], src, log, recipe.name)
    if recipe.main_go and recipe.main_binary:
        _run([*base, str(tmp / recipe.main_binary), "."], src, log, recipe.name)
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    tmp.rename(out)
    (out / ".complete").write_text(json.dumps({"seconds": round(time.monotonic() - started, 1)}))
    say(f"built {recipe.name} in {time.monotonic() - started:.0f}s")
    return out


def build_all(
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION, say: Callable[[str], None] = print
) -> dict[str, Path]:
    return {r.name: build(r, say) for r in all_recipes(kubernetes_version)}


def main() -> None:
    import sys

    names = sys.argv[1:]
    for r in all_recipes():
        if not names or r.name in names:
            build(r)


if __name__ == "__main__":
    main()
