"""Options work the way people type them: `--opt value` as `--opt=value`, from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from netconform.pytest_options import ROOT, SUITE_DIR, SUITE_INI, joined_options, restart_args


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
