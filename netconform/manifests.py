"""Manifests: load `manifests/<area>/<name>.yaml`, fill `${VARS}`, rewrite images for a mirror."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml

#: libyaml's safe loader where PyYAML was built with it (the pure-Python one took a second of CPU per run).
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ROOT = Path(__file__).resolve().parent.parent / "manifests"
Obj = dict[str, Any]


class ManifestError(ValueError):
    pass


def render(text: str, values: dict[str, str], source: str = "<manifest>") -> list[Obj]:
    try:
        filled = string.Template(text).substitute(values)
    except KeyError as e:
        raise ManifestError(f"{source}: no value for ${{{e.args[0]}}}") from None
    return [d for d in yaml.load_all(filled, Loader=SAFE_LOADER) if d]


def load(area: str, name: str, values: dict[str, str], registry: str | None = None, root: Path = ROOT) -> list[Obj]:
    path = root / area / f"{name}.yaml"
    docs = render(path.read_text(), values, str(path))
    return [rewrite_images(d, registry) for d in docs] if registry else docs


def rewrite_image(image: str, registry: str) -> str:
    """Move an image to a mirror, keeping its path and tag: `reg.io/a/b:1` -> `<mirror>/a/b:1`."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        image = rest  # drop the original registry host
    return f"{registry.rstrip('/')}/{image}"


def _pod_specs(doc: Obj) -> list[Obj]:
    kind = doc.get("kind")
    if kind == "Pod":
        return [doc.get("spec") or {}]
    if kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"):
        return [((doc.get("spec") or {}).get("template") or {}).get("spec") or {}]
    return []


def rewrite_images(doc: Obj, registry: str) -> Obj:
    for spec in _pod_specs(doc):
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                c["image"] = rewrite_image(c["image"], registry)
    return doc


def images_of(doc: Obj) -> list[str]:
    return [
        c["image"] for spec in _pod_specs(doc) for key in ("containers", "initContainers") for c in spec.get(key) or []
    ]


class _AnyValue(dict[str, str]):
    """Fills every variable but the ones given with a value that parses as a name or a number."""

    def __missing__(self, key: str) -> str:
        return "1"


def run_images(image: str, registry: str | None = None, root: Path = ROOT) -> list[str]:
    """Every image a run's manifests use (each area's folder), rewritten for `registry` as a run rewrites them."""
    found = {image}
    for path in sorted(root.glob("*/*.yaml")):
        for doc in render(path.read_text(), _AnyValue(IMAGE=image), str(path)):
            found.update(images_of(doc))
    return sorted(rewrite_image(i, registry) if registry else i for i in found)
