"""Options work the way people type them: `--opt value` as `--opt=value`, from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netconform.errors import UsageError
from netconform.pytest_options import (
    ROOT,
    SUITE_DIR,
    SUITE_INI,
    joined_options,
    restart_args,
    with_kind_spellings,
)


def test_space_form_is_joined_for_the_suites_options_only():
    assert joined_options(["--kube-config", "/k", "-n", "4", "--kube-context", "ctx", "-k", "dns"]) == [
        "--kube-config=/k",
        "-n",
        "4",
        "--kube-context=ctx",
        "-k",
        "dns",
    ]
    assert joined_options(["--kube-config=/k", "--", "--kube-config", "x"]) == [
        "--kube-config=/k",
        "--",
        "--kube-config",
        "x",
    ]


def test_a_run_already_read_right_is_left_alone():
    assert restart_args(["--kube-config=/k", "-k", "dns"], SUITE_INI) is None


def test_a_run_from_another_folder_gets_the_suites_ini_and_checks():
    again = restart_args(["--kube-config", "/k"], None)
    assert again == ["-c", str(SUITE_INI), "--rootdir", str(ROOT), "--kube-config=/k", str(SUITE_DIR)]
    # test paths of the user's own are kept as given
    assert restart_args(["--kube-config=/k", "conformance/test_dns.py"], None)[-1] == "conformance/test_dns.py"


def collected(cwd: Path, *args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETCONFORM_")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    ).stdout
    return [line for line in out.splitlines() if "::" in line]


def test_space_form_from_any_folder_collects_exactly_the_suite(tmp_path: Path):
    """The measured failure: `--kube-config PATH` collected the project's own tests beside the checks."""
    kubeconfig = tmp_path / "admin.kubeconfig"
    kubeconfig.write_text("")
    (tmp_path / "test_stray.py").write_text("def test_stray():\n    pass\n")
    want = collected(ROOT)
    assert want and all(item.startswith("conformance/") for item in want)
    for cwd in (ROOT, tmp_path):
        got = collected(cwd, "--kube-config", str(kubeconfig))
        assert sorted(Path(i.split("::")[0]).name + i[i.index("::") :] for i in got) == sorted(
            Path(i.split("::")[0]).name + i[i.index("::") :] for i in want
        ), f"from {cwd}"


def kind_options(**given: object) -> object:
    """What pytest-kind's options hold: their defaults, and `given` (by dest)."""
    defaults = {"kubeconfig": None, "kind_bin": None, "cluster_name": "pytest-kind", "keep_cluster": False}
    return lambda dest: {**defaults, **given}.get(dest)


def test_pytest_kinds_kubeconfig_names_the_cluster_to_test():
    """The measured failure: `--kubeconfig PATH` (pytest-kind's) was ignored and $KUBECONFIG's cluster tested."""
    cli = {"kube_config": None, "kind_bin": None, "provider": None}
    assert with_kind_spellings(cli, kind_options(kubeconfig="/k"))["kube_config"] == "/k"
    assert with_kind_spellings(cli, kind_options(kind_bin="/bin/kind"))["kind_bin"] == "/bin/kind"
    assert with_kind_spellings({**cli, "kube_config": "/k"}, kind_options(kubeconfig="/k"))["kube_config"] == "/k"
    assert with_kind_spellings(cli, kind_options()) == cli
    assert with_kind_spellings(cli, lambda dest: None) == cli  # pytest-kind not loaded


def test_two_spellings_naming_different_files_are_refused():
    with pytest.raises(UsageError, match="--kubeconfig and --kube-config name different values"):
        with_kind_spellings({"kube_config": "/a", "kind_bin": None}, kind_options(kubeconfig="/b"))


@pytest.mark.parametrize(
    ("given", "flag"),
    [({"cluster_name": "other"}, "--cluster-name"), ({"keep_cluster": True}, "--keep-cluster")],
)
def test_pytest_kind_options_the_suite_would_ignore_are_refused(given: dict[str, object], flag: str):
    with pytest.raises(UsageError, match=f"{flag} is pytest-kind's option"):
        with_kind_spellings({"kube_config": None, "kind_bin": None}, kind_options(**given))


def test_kubeconfig_spelling_reaches_the_run(tmp_path: Path):
    """End to end, without a cluster: the file named by --kubeconfig is the one the run reads (its error names it),
    also in the space form from another folder; $KUBECONFIG's would be another."""
    named = tmp_path / "named.kubeconfig"
    named.write_text("not: [a kubeconfig")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETCONFORM_")}
    env["KUBECONFIG"] = str(tmp_path / "from-env.kubeconfig")
    for cwd, args in ((ROOT, [f"--kubeconfig={named}"]), (tmp_path, ["--kubeconfig", str(named)])):
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args, str(SUITE_DIR / "test_externalname.py")],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert run.returncode != 0 and str(named) in run.stderr + run.stdout, (cwd, run.stdout, run.stderr)
        assert "from-env" not in run.stderr + run.stdout
