"""`netconform images`: the README's mirror example lists exactly the images a run with that registry pulls."""

import re
import shlex
from pathlib import Path

import pytest

from netconform import cli, manifests

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> tuple[list[str], str]:
    """The README's `netconform images --image-registry ...` line: its arguments and the output it promises."""
    line = next(x for x in README.read_text().splitlines() if x.startswith("netconform images --image-registry"))
    command, _, comment = line.partition("#")
    return shlex.split(command)[1:], comment.strip().removeprefix("prints ").strip()


def test_the_readme_example_prints_what_it_promises(capsys, monkeypatch):
    monkeypatch.delenv("NETCONFORM_IMAGE", raising=False)
    args, promised = readme_example()
    assert cli.main(args) == 0
    assert capsys.readouterr().out.split() == [promised]


def test_the_listed_images_are_the_ones_every_manifest_of_a_run_names(capsys, monkeypatch):
    monkeypatch.delenv("NETCONFORM_IMAGE", raising=False)
    args, _ = readme_example()
    registry = args[args.index("--image-registry") + 1]
    cli.main(args)
    listed = set(capsys.readouterr().out.split())
    pulled = set()
    for path in sorted(manifests.ROOT.glob("*/*.yaml")):
        text = path.read_text()
        names = {m for m in re.findall(r"\$\{(\w+)\}", text)}
        values = {n: "1" for n in names} | {"IMAGE": "netconform.local/toolbox:v1"}
        for doc in manifests.load(path.parent.name, path.stem, values, registry):
            pulled.update(manifests.images_of(doc))
    assert pulled and pulled <= listed


@pytest.mark.parametrize("bad", ["https://mirror.example", "two words", "mirror.example:port"])
def test_a_registry_that_is_not_one_is_refused_with_one_line(capsys, bad):
    assert cli.main(["images", "--image-registry", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netconform: --image-registry: must be a registry host") and "Traceback" not in err
