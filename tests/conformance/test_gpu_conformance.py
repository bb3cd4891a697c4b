"""The GPU tier of the conformance proof (scripts/gpu_conformance.sh runs the same with compute-sanitizer on top):
AOT launches through the CUDA driver API and host enqueue compared with the eager op, and the two broken copies only a
GPU can catch. Skips with the reason without a CUDA GPU or TensorRT headers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from trtrepo import deps

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "plugin_src"
TEST_OPS = Path(__file__).resolve().parent / "ops"
Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = [pytest.mark.gpu, pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(not deps.has_cuda_torch(), reason="needs CUDA torch and a visible GPU")]


def _report(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((path / "conformance.json").read_text())  # type: ignore[no-any-return]


def test_gpu_lanes_pass(run_cli: Cli, trt_headers: list[Path], tmp_path: Path) -> None:
    args = ["run", "--source", PLUGIN_SRC, "--source", TEST_OPS, "--out", tmp_path / "out",
            "--examples", REPO / "examples/seq_block/model.yaml"]
    for inc in trt_headers:
        args += ["--headers", inc]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = _report(tmp_path / "out")
    eager = [c for c in data["checks"] if c["check"].startswith("matches_eager")]
    assert {c["lane"] for c in eager} == {"aot", "host"}
    assert {c["dtype"] for c in eager} == {"fp32", "fp16", "bf16"}
    assert any(c["check"] == "matches_eager[residual_out]" for c in eager)  # a second output
    assert any(c["check"] == "enqueue_on_given_stream" for c in data["checks"])
    edge = [c for c in eager if "(int32)" in c["case"] and c["lane"] == "aot"]
    assert edge, "the 2^31-element cases were launched"


def test_swapped_scalars_fail_the_aot_launch(run_cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "plugin_src"  # named like the original: its unchanged ops hit the build cache
    assert run_cli("broken", "swapped-scalars", "--source", PLUGIN_SRC, "--to", root).returncode == 0
    proc = run_cli("run", "--source", root, "--lanes", "aot", "--no-int32", "--out", tmp_path / "out")
    assert proc.returncode == 1, proc.stdout[-2000:]
    failed = _report(tmp_path / "out")["failures"]
    assert failed and {(c["lane"], c["check"]) for c in failed} == {("aot", "matches_eager[out]")}


def test_wrong_dtype_dispatch_fails_the_host(run_cli: Cli, trt_headers: list[Path], tmp_path: Path) -> None:
    root = tmp_path / "plugin_src"
    assert run_cli("broken", "wrong-dtype", "--source", PLUGIN_SRC, "--to", root).returncode == 0
    proc = run_cli("run", "--source", root, "--headers", trt_headers[-1], "--lanes", "host",
                   "--out", tmp_path / "out")
    assert proc.returncode == 1, proc.stdout[-2000:]
    failed = _report(tmp_path / "out")["failures"]
    assert failed and {(c["check"], c["dtype"]) for c in failed} == {("matches_eager[out]", "bf16")}
