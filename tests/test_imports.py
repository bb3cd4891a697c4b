"""`import trtrepo` and the CLI's light commands work with torch, TensorRT, Torch-TensorRT and tritonclient absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "tensorrt", "torch_tensorrt", "tritonclient", "boto3", "botocore", "azure")

# Installed first thing in the child interpreter (sitecustomize): importing any heavy package fails as if it were
# not installed, and find_spec() says "not installed" too, which is what trtrepo.deps probes.
BLOCKER = f"""
import sys
from importlib.abc import MetaPathFinder

BLOCKED = {HEAVY!r}


class Blocker(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked for this test")
        return None


sys.meta_path.insert(0, Blocker())
"""


@pytest.fixture(scope="module")
def blocked_env(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> dict[str, str]:
    site = tmp_path_factory.mktemp("blocker")
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(repo_root), env.get("PYTHONPATH", "")])
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_blocker_blocks(blocked_env: dict[str, str], tmp_path: Path) -> None:
    result = run(["-c", "import torch"], blocked_env, tmp_path)
    assert result.returncode != 0 and "torch is blocked for this test" in result.stderr


def test_import_trtrepo_and_cli_without_heavy_packages(blocked_env: dict[str, str], tmp_path: Path) -> None:
    code = ("import sys, trtrepo, trtrepo.cli, trtrepo.spec, trtrepo.deps, trtrepo.build, trtrepo.doctor, "
            "trtrepo.repository.writer, trtrepo.repository.config, trtrepo.repository.manifest, trtrepo.targets.base, "
            "trtrepo.remote, trtrepo.publish; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    result = run(["-c", code], blocked_env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"], ["serve", "--help"], ["check", "--help"],
                                  ["bench", "--help"], ["publish", "--help"], ["fetch-plugins", "--help"],
                                  ["doctor"], ["--version"]])
def test_light_commands_without_heavy_packages(blocked_env: dict[str, str], tmp_path: Path, args: list[str]) -> None:
    result = run(["-m", "trtrepo", *args], blocked_env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_publish_without_boto3_names_the_extra(blocked_env: dict[str, str], tmp_path: Path) -> None:
    result = run(["-m", "trtrepo", "publish", "--verify-only", "s3://models/prod"], blocked_env, tmp_path)
    assert result.returncode == 3, result.stderr
    assert "s3:// repositories need boto3" in result.stderr and "pip install 'trtrepo[s3]'" in result.stderr


def test_doctor_reports_what_is_missing_and_how_to_install_it(blocked_env: dict[str, str], tmp_path: Path) -> None:
    from trtrepo.deps import INSTALL_HINTS

    result = run(["-m", "trtrepo", "doctor", "--json"], blocked_env, tmp_path)
    assert result.returncode == 0, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["torch"] == {"name": "torch", "ok": False, "detail": "not installed", "needed_for": "build, check",
                               "fix": INSTALL_HINTS["torch"]}
    assert not checks["tritonclient"]["ok"] and checks["tritonclient"]["fix"] == INSTALL_HINTS["tritonclient"]
    assert not checks["TensorRT"]["ok"] and not checks["Torch-TensorRT"]["ok"]


def test_build_without_torch_names_the_install_command(blocked_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text("models:\n  - name: m\n    source: json:loads\n"
                                         "    inputs: [{name: x, shape: [1]}]\n    outputs: [y]\n")
    result = run(["-m", "trtrepo", "build", "model.yaml"], blocked_env, tmp_path)
    assert result.returncode == 3
    assert result.stderr.splitlines() == ["error: trtrepo build needs torch, which is not available here",
                                          "hint: pip install torch"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.yaml"]


def test_cli_and_remote_import_no_cloud_sdk() -> None:
    """google-cloud-storage and azure-storage-blob are imported only when a gs:// / as:// store is opened ("google"
    itself cannot be blocked above: protobuf lives in it)."""
    code = ("import sys, trtrepo, trtrepo.remote, trtrepo.publish, trtrepo.cli\n"
            "from trtrepo.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('google.cloud', 'google.auth', 'azure', 'boto3'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
