"""The CPU tier of the conformance proof: the plugin library of every plugin root and the conformance host built
against each TensorRT header version with -Werror, and every check that needs no GPU — the AOT lowering at every case,
the library file, the host's IExprBuilder, and the plugin library driven through IPluginV3 up to onShapeChange.
Skips with the reason where the TensorRT headers are absent (CI)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from trtrepo import deps
from trtrepo.conformance import host
from trtrepo.ops.description import discover_ops
from trtrepo.ops.toolchain import header_version

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "plugin_src"
TEST_OPS = Path(__file__).resolve().parent / "ops"
Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(deps.find_nvcc() is None, reason="nvcc not found: the builds make PTX and kernels")]

HOST_CHECKS = {"creator_registered", "field_names", "create_build", "capabilities", "nb_outputs", "output_dtypes",
               "output_shapes[symbolic]", "output_shapes[constant]", "supports_format_combination",
               "configure_plugin", "workspace_size", "fields_to_serialize", "create_runtime", "serialize_round_trip",
               "clone", "attach_to_context", "on_shape_change", "no_errors_logged"}
LOAD_CHECKS = {"host_exit", "dlopen", "static_registration", "exports_getCreators", "exports_setLoggerFinder",
               "getCreators_creators", "duplicate_registration_refused", "no_legacy_registry_calls", "host_finished"}


@pytest.mark.slow
def test_cpu_tier_over_every_header_version(run_cli: Cli, trt_headers: list[Path], tmp_path: Path) -> None:
    args = ["run", "--source", PLUGIN_SRC, "--source", TEST_OPS, "--out", tmp_path / "out",
            "--examples", REPO / "examples/gelu_block/model.yaml", "--examples", REPO / "examples/seq_block/model.yaml"]
    for inc in trt_headers:
        args += ["--headers", inc]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "out" / "conformance.json").read_text())
    assert data["ok"] and not data["failures"]
    versions = sorted(header_version(inc) for inc in trt_headers)
    assert sorted(data["facts"]["host"]) == versions
    checks = data["checks"]
    ops = set(discover_ops([PLUGIN_SRC, TEST_OPS]))
    assert {"trtrepo::bias_gelu", "trtrepo::fused_add_rms_norm", "trtrepo_conf::chunk_sum"} <= ops
    for version in versions:
        mine = [c for c in checks if c["tensorrt"] == version]
        for op in ops:
            seen = {c["check"] for c in mine if c["op"] == op and c["lane"] == "host"}
            assert seen >= HOST_CHECKS, (version, op, HOST_CHECKS - seen)
            assert {c["dtype"] for c in mine if c["op"] == op} == {"fp32", "fp16", "bf16"}
        assert {c["check"] for c in mine if c["op"] == "-" and c["lane"] == "host"} >= LOAD_CHECKS
        assert {c["check"] for c in mine if c["lane"] in ("library", "expr")} == {"exports", "links_no_tensorrt",
                                                                                "expr_builder"}
        assert any(c["check"] == "refuses_wrong_field_type" for c in mine)
        facts = data["facts"]["host"][version]
        assert facts["werror"] and not facts["enqueue"]
        reproduce = (Path(facts["plugin_library"]).parent / "reproduce.sh").read_text()
        assert "-Werror" in reproduce and facts["headers"] in reproduce and "-lnvinfer" not in reproduce
        assert "-Werror" in (Path(facts["host"]).parent / "reproduce.sh").read_text()
    aot = [c for c in checks if c["lane"] == "aot"]
    assert {c["op"] for c in aot} == ops
    refusal = [c for c in aot if c["check"] == "int32_refusal"]
    assert [c["op"] for c in refusal] == ["trtrepo::bias_gelu"] and "does not fit int32" in refusal[0]["detail"]
    origins = {c["case"].rsplit("(", 1)[-1] for c in aot}
    assert any("seq_block:max" in o for o in origins) and any("gelu_block:min" in o for o in origins)
    assert not any(c["check"].startswith("matches_eager") or c["check"] == "enqueue" for c in checks)
    assert any("no CUDA GPU" in s for s in data["skipped"])


def test_bad_serialization_is_caught_without_a_gpu(run_cli: Cli, trt_headers: list[Path], tmp_path: Path) -> None:
    made = run_cli("broken", "bad-serialization", "--source", PLUGIN_SRC, "--to", tmp_path / "plugin_src")
    assert made.returncode == 0, made.stderr
    proc = run_cli("run", "--source", tmp_path / "plugin_src", "--headers", trt_headers[-1], "--lanes", "host",
                   "--out", tmp_path / "out")
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((tmp_path / "out" / "conformance.json").read_text())
    failed = {c["check"] for c in data["failures"]}
    assert "fields_to_serialize" in failed
    assert failed <= {"fields_to_serialize", "serialize_round_trip", "clone", "attach_to_context"}
    # only the cases whose eps is not the default can show the round trip losing it
    lost = {c["case"] for c in data["failures"] if c["check"] == "serialize_round_trip"}
    assert lost and all("eps=1e-06" not in case for case in lost)


def test_missing_headers_exit_3(run_cli: Cli, tmp_path: Path) -> None:
    proc = run_cli("run", "--source", PLUGIN_SRC, "--headers", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert proc.returncode == 3 and "no NvInferRuntime.h" in proc.stderr
    assert not (tmp_path / "out" / "conformance.json").exists()


def test_unknown_lane_exit_2(run_cli: Cli, tmp_path: Path) -> None:
    proc = run_cli("run", "--source", PLUGIN_SRC, "--lanes", "tensorrt", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "--lanes" in proc.stderr


@pytest.fixture(scope="module")
def host_binary(trt_headers: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trtrepo.ops import toolchain

    inc = trt_headers[-1]
    return host.build_host(toolchain.TensorRTHeaders(inc, header_version(inc)), tmp_path_factory.mktemp("hostc"))


def test_host_refuses_bad_input(host_binary: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("library /x.so\ncase c0 A 1 ns 1 1\nfield eps 1 1 zz\nend\n")
    proc = subprocess.run([host_binary, "--cases", bad, "--records", tmp_path / "r.jsonl"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "line 3" in proc.stderr
    missing = tmp_path / "missing.txt"
    missing.write_text(f"library {tmp_path / 'none.so'}\n")
    rc, records, _ = host.run_host(host_binary, missing, tmp_path / "r2.jsonl", enqueue=False)
    assert rc == 3 and records[-1]["event"] == "load" and not records[-1]["loaded"]
    assert subprocess.run([host_binary], capture_output=True, timeout=60, check=False).returncode == 2


def test_expr_builder_selftest_can_fail(host_binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [good] = host.expr_selftest(host_binary, tmp_path / "a", "11.1.0")
    assert good.ok, good.detail
    real = host._reference

    def truncating(op: str, a: int, b: int) -> int | None:  # C++'s / instead of floor division
        if op == "kFLOOR_DIV" and b != 0 and (a < 0) != (b < 0) and a % b:
            return int(a / b)
        return real(op, a, b)

    monkeypatch.setattr(host, "_reference", truncating)
    [bad] = host.expr_selftest(host_binary, tmp_path / "b", "11.1.0")
    assert not bad.ok and "kFLOOR_DIV" in bad.detail
